"""Defects a review of the ccxt adapter found: a second PlaceOrder of an order whose
first create is unanswered went out again (Binance takes a client id again once the first
order is finished: a market order filled twice); an unreadable answer to a create that
was sent was reported REJECTED (it may be on the book); a replace's mid-turn intent sync
wrote other orders' "done" records before their last executions were durable."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import ccxt

from actors.connector.ccxt.flows import Pending
from actors.connector.ccxt.intents import Intent, IntentLog
from protocol.messages import OrdType, PlaceOrder, ReplaceOnVenue, Side, TimeInForce
from tests.connector.ccxt.test_flows import _Exchange, _flows
from tests.connector.ccxt.test_mapping import rest_order

ORDER = PlaceOrder(
    cl_ord_id="c1", symbol="BTC/USDT", side=Side.BUY, qty=Decimal("0.1"),
    order_type=OrdType.LIMIT, price=Decimal("50000"), tif=TimeInForce.GTC,
)  # fmt: skip


def test_a_resend_while_the_first_create_is_unanswered_is_not_sent_again(
    tmp_path: Path,
) -> None:
    """The OMS sends c1 again while the first create is still on its way; the exchange
    has not processed it yet (a lookup would say "no such order"): one create only."""
    ex = _Exchange(rest_order(status="CANCELED"), rest_order())
    creates: list[int] = []

    async def slow_create(*_args: Any) -> dict[str, Any]:
        creates.append(1)
        await asyncio.sleep(0.05)
        return rest_order()

    async def not_yet(*_args: Any) -> dict[str, Any]:
        raise ccxt.OrderNotFound('binance {"code":-2013,"msg":"Order does not exist."}')

    ex.create_order = slow_create  # type: ignore[method-assign]
    ex.fetch_order = not_yet  # type: ignore[method-assign]
    flows, intents = _flows(tmp_path, ex)
    intent = flows.tracker.live["c1"].intent

    async def both() -> None:
        first = asyncio.ensure_future(flows.submit(Pending(intent, ORDER, lambda _e: None, False)))
        await asyncio.sleep(0)  # the first create is in flight
        await flows.submit(Pending(intent, ORDER, lambda _e: None, True))
        await first

    asyncio.run(both())
    intents.close()
    assert creates == [1]


def test_an_unreadable_answer_to_a_sent_create_is_not_a_rejection(tmp_path: Path) -> None:
    """ccxt fails parsing the answer of a create the exchange took (a TypeError, an
    'internal' failure): the order is looked up, never reported REJECTED."""
    ex = _Exchange(rest_order(status="CANCELED"), TypeError("unexpected answer"))
    ex.fetch_order = _found  # type: ignore[method-assign]
    flows, intents = _flows(tmp_path, ex)
    intent = flows.tracker.live["c1"].intent
    asyncio.run(flows.submit(Pending(intent, ORDER, lambda _e: None, False)))
    kinds = [r.kind for r in flows.tracker.take()]
    intents.close()
    assert "rejected" not in kinds and kinds == ["accepted"], kinds


async def _found(_id: Any, _symbol: str, _params: dict[str, Any]) -> dict[str, Any]:
    return rest_order()


def test_an_intents_only_sync_keeps_finished_orders_records_for_the_flush(
    tmp_path: Path,
) -> None:
    log = IntentLog(tmp_path)
    log.add(Intent(cl_ord_id="x", symbol="BTC/USDT", side="BUY", qty="1"))
    log.sync()
    log.done("x")  # its final execution is queued, not yet durable
    log.add(Intent(cl_ord_id="n", symbol="BTC/USDT", side="BUY", qty="1"))
    log.sync(done=False)  # a replace's persist-before-send
    assert set(IntentLog(tmp_path).live) == {"x", "n"}  # a crash now: x is looked up again
    log.sync()
    assert set(IntentLog(tmp_path).live) == {"n"}
    log.close()


def test_a_replace_whose_cancel_outcome_is_unknown_is_refused_not_left_pending(
    tmp_path: Path,
) -> None:
    """The replace's cancel times out (not known whether it was processed): the old
    order's state is looked up and the replace refused, instead of nothing at all (the
    OMS stayed PENDING_REPLACE for good)."""
    ex = _Exchange(rest_order(), rest_order(orderId=29, clientOrderId="c1.r1"))
    ex.cancel_failures = [ccxt.RequestTimeout("no answer in 5.0 s")]
    flows, intents = _flows(tmp_path, ex)
    request = ReplaceOnVenue(
        cl_ord_id="c1.r1", orig_cl_ord_id="c1", symbol="BTC/USDT", side=Side.BUY,
        qty=Decimal("0.1"), order_type=OrdType.LIMIT, price=Decimal("49000"),
    )  # fmt: skip
    asyncio.run(flows.replace(request))
    kinds = [(r.cl_ord_id, r.kind) for r in flows.tracker.take()]
    intents.close()
    assert ("c1.r1", "cancel_rejected") in kinds and ("c1", "accepted") in kinds, kinds
    assert "c1.r1" not in flows.tracker.held
