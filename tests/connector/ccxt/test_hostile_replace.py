"""A replace (cancel + new) against a broken or hostile exchange, through the ccxt
connector's real `Flows` and `Replaces` over stub exchanges: an answer to its cancel that
cannot be trusted never makes a new order for more than is left (it did: 0.16 and 0.14
bought of 0.1), and never leaves the replace unanswered."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from actors.connector.adapter import RequestFailed
from actors.connector.ccxt.adapter import _sent_once_done
from protocol.messages import OrdType, ReplaceOnVenue, Side
from tests.connector.ccxt import binance as bn
from tests.connector.ccxt.test_flows import _Exchange, _flows
from tests.connector.ccxt.test_hostile_answers import _parsed_order, _unreadable
from tests.connector.ccxt.test_mapping import my_trade, rest_order

D = Decimal
REPLACE = ReplaceOnVenue(
    cl_ord_id="c1.r1", orig_cl_ord_id="c1", symbol="BTC/USDT", side=Side.BUY,
    qty=D("0.1"), order_type=OrdType.LIMIT, price=D("49000"),
)  # fmt: skip  # c1 (0.1) replaced by c1.r1


def _replace_c1(tmp_path: Path, ex: _Exchange) -> tuple[list[float], list[tuple[str, str]]]:
    """`REPLACE` through the real flows on `ex`, c1 having filled 0.06 by its trades: the
    amount of every new order the exchange was sent, and the (ClOrdID, kind) reported."""
    amounts: list[float] = []

    async def create_order(*args: Any) -> dict[str, Any]:
        amounts.append(args[3])
        return rest_order(orderId=29, clientOrderId="c1.r1", origQty=str(args[3]))

    ex.create_order = create_order  # type: ignore[method-assign]
    flows, intents = _flows(tmp_path, ex)
    flows.tracker.live["c1"].filled = D("0.06")
    asyncio.run(flows.replace(REPLACE))
    kinds: list[tuple[str, str]] = [(r.cl_ord_id, r.kind) for r in flows.tracker.take()]
    intents.close()
    return amounts, kinds


def test_a_replace_whose_cancel_is_answered_by_a_proxy_page_sends_no_new_order(
    tmp_path: Path,
) -> None:
    """c1 (0.1) has filled 0.06 when it is replaced; the exchange cancels it and a proxy
    answers the cancel 200 with an HTML page. Not known what the cancel did, so no new
    order goes out: the replace is refused after the old order's state is looked up. The
    page read as an order that filled nothing: a new order for the whole 0.1 (0.16 bought
    of 0.1)."""
    cancelled = rest_order(
        status="CANCELED", executedQty="0.06000000", cummulativeQuoteQty="3000.00000000"
    )
    ex = _Exchange(_parsed_order("<html><body>502 Bad Gateway</body></html>"), rest_order())
    ex.fetch_order = _answer(cancelled)  # type: ignore[method-assign]
    ex.fetch_my_trades = _answer(bn.parse_trades([my_trade(1, "0.06", "50000")]))  # type: ignore[method-assign]
    amounts, kinds = _replace_c1(tmp_path, ex)
    assert amounts == [], f"a new order went out for {amounts}"
    assert ("c1.r1", "cancel_rejected") in kinds and ("c1", "cancelled") in kinds, kinds


def _answer(value: Any) -> Callable[..., Any]:
    async def answer(*_args: Any) -> Any:
        return value

    return answer


def test_a_replace_whose_cancel_says_less_filled_than_its_trades_sends_no_new_order(
    tmp_path: Path,
) -> None:
    """c1 (0.1) has 0.06 filled by its trades; the cancel's answer says 0.02 filled (the
    exchange's cumulative going backwards). No new order on that word: the replace is
    refused, counted. The new order went out for 0.08 (0.14 bought of 0.1)."""
    cancelled = rest_order(
        status="CANCELED", executedQty="0.02000000", cummulativeQuoteQty="1000.00000000"
    )
    ex = _Exchange(cancelled, rest_order())
    before = _unreadable("order")
    amounts, kinds = _replace_c1(tmp_path, ex)
    assert amounts == [], f"a new order went out for {amounts}"
    assert ("c1.r1", "cancel_rejected") in kinds, kinds
    assert _unreadable("order") - before == 1


def test_a_replace_whose_cancel_answer_is_unreadable_is_refused(tmp_path: Path) -> None:
    """The cancel's answer carries a filled quantity out of bounds: the replace is refused
    (the OMS hears it, nothing sent), the answer counted. The ValueError ended the flow
    unacknowledged (the OMS resent the replace after its next pass)."""
    ex = _Exchange(rest_order(status="CANCELED", executedQty="1E+400"), rest_order())
    flows, intents = _flows(tmp_path, ex)
    before = _unreadable("order")
    acked: list[RequestFailed | None] = []
    asyncio.run(_sent_once_done(flows.replace(REPLACE), acked.append))
    kinds = [(r.cl_ord_id, r.kind) for r in flows.tracker.take()]
    intents.close()
    assert acked == [None] and ("c1.r1", "cancel_rejected") in kinds, kinds
    assert _unreadable("order") - before >= 1
