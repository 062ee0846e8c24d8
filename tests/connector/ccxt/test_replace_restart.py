"""A replace (cancel + new) cut off by a kill -9 of the connector after its new order went
out (chaos run 20261204T191437-s1, order k1-1-1119 at bx): the next connector incarnation
reported the new order as `new` (the OMS, in PENDING_REPLACE, refused it) and the old
order's cancel as the order's end, so the OMS showed CANCELLED an order resting at the
exchange. The next incarnation must settle the replace from its intents: the new order
found -> "replaced"; never placed -> the old order's state and the replace refused."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import ccxt
import pytest

from actors.connector.ccxt.flows import Flows
from actors.connector.ccxt.intents import Intent, IntentLog
from actors.connector.ccxt.tracker import Live, Tracker
from protocol.messages import OrdType, ReplaceOnVenue, Side
from tests.connector.ccxt import binance as bn
from tests.connector.ccxt.test_flows import VENUE, D, _Exchange, bare_flows
from tests.connector.ccxt.test_mapping import rest_order
from tests.log_stub import RecordingLog

NOT_FOUND = {"code": -2013, "msg": "Order does not exist."}


class _Killed(BaseException):
    """kill -9 of the connector: nothing after it runs, only what is on disk survives."""


def _flows(directory: Path, ex: _Exchange) -> tuple[Flows, IntentLog]:
    """One connector incarnation's flows over the intent log in `directory`."""
    intents = IntentLog(directory)
    tracker = Tracker(VENUE, intents, RecordingLog(), lambda: None)
    flows = bare_flows(ex, tracker, intents)
    return flows, intents


def _killed_mid_replace(directory: Path) -> None:
    """c1 (0.1 BTC resting) is replaced by c1.r1: the cancel is answered, the new order's
    intent written and the new order sent; a loop turn's flush (the adapter's intent sync,
    which writes the "done" records of orders forgotten) runs while the create is in flight,
    then the connector is killed before the answer. So the old order's intent must still be
    live on disk (forgotten only once the replace's outcome is queued): forgotten before the
    create, the next incarnation found the new order alone and reported it `new`."""
    ex = _Exchange(rest_order(status="CANCELED"), rest_order())
    flows, intents = _flows(directory, ex)
    old = Intent(cl_ord_id="c1", symbol="BTC/USDT", side="BUY", qty="0.1")
    intents.add(old)
    intents.sync()
    flows.tracker.live["c1"] = Live(old)

    async def sent_then_killed(*_args: Any) -> dict[str, Any]:
        intents.sync()
        raise _Killed

    ex.create_order = sent_then_killed  # type: ignore[method-assign]
    request = ReplaceOnVenue(
        cl_ord_id="c1.r1", orig_cl_ord_id="c1", symbol="BTC/USDT", side=Side.BUY,
        qty=D("0.1"), order_type=OrdType.LIMIT, price=D("49000"),
    )  # fmt: skip
    with pytest.raises(_Killed):
        asyncio.run(flows.replace(request))


def _restart(directory: Path, ex: _Exchange) -> list[tuple[str, str]]:
    """The next incarnation's first poll (what its session start does): the executions."""
    flows, intents = _flows(directory, ex)
    asyncio.run(flows.poll_live())
    kinds = [(r.cl_ord_id, r.kind) for r in flows.tracker.take()]
    intents.sync()
    intents.close()
    return kinds


def test_replace_cut_by_a_restart_is_reported_replaced_when_the_new_order_rests(
    tmp_path: Path,
) -> None:
    """The new order rests at the exchange: the next incarnation reports "replaced" (the
    new venue order) before any event of the new order, never the old order's cancel
    (which was the replace's), and answers for the new order only."""
    _killed_mid_replace(tmp_path)
    created = rest_order(orderId=29, clientOrderId="c1.r1", price="49000.00000000")
    kinds = _restart(tmp_path, _Exchange(rest_order(status="CANCELED"), created))
    assert ("c1.r1", "replaced") in kinds, kinds
    assert ("c1", "cancelled") not in kinds, kinds
    assert ("c1.r1", "accepted") not in kinds, kinds  # "replaced" is its acceptance
    assert set(IntentLog(tmp_path).live) == {"c1.r1"}


def test_replace_cut_by_a_restart_is_refused_when_the_new_order_never_arrived(
    tmp_path: Path,
) -> None:
    """The exchange has no such new order (the create never reached it): the replace did
    not happen; the OMS hears the old order's state (cancelled by the replace's cancel),
    then the replace refused, and nothing is left to answer for."""
    _killed_mid_replace(tmp_path)
    ex = _Exchange(rest_order(status="CANCELED"), bn.raised(400, NOT_FOUND))

    async def fetch(_id: Any, _symbol: str, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("origClientOrderId") == "c1.r1":
            raise bn.raised(400, NOT_FOUND)
        return ex.cancelled

    ex.fetch_order = fetch  # type: ignore[method-assign]
    kinds = _restart(tmp_path, ex)
    assert [k for k in kinds if k[1] != "accepted"] == [
        ("c1", "cancelled"),
        ("c1.r1", "cancel_rejected"),
    ], kinds
    assert ("c1.r1", "replaced") not in kinds, kinds
    assert IntentLog(tmp_path).live == {}


def test_replace_whose_new_order_is_not_known_waits_for_the_poll(tmp_path: Path) -> None:
    """The new order's answer is lost and its lookups fail too (not known whether it was
    placed): the old order's cancel is not reported as the order's end (the new order may
    rest); the next poll finds the new order and reports "replaced"."""
    created = rest_order(orderId=29, clientOrderId="c1.r1", price="49000.00000000")
    ex = _Exchange(rest_order(status="CANCELED"), ccxt.RequestTimeout("no answer in 5.0 s"))
    lookups_fail = [True]

    async def fetch(_id: Any, _symbol: str, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("origClientOrderId") != "c1.r1":
            return ex.cancelled
        if lookups_fail[0]:
            raise ccxt.RequestTimeout("no answer in 5.0 s")
        return created

    ex.fetch_order = fetch  # type: ignore[method-assign]
    flows, intents = _flows(tmp_path, ex)
    old = Intent(cl_ord_id="c1", symbol="BTC/USDT", side="BUY", qty="0.1")
    intents.add(old)
    flows.tracker.live["c1"] = Live(old)
    request = ReplaceOnVenue(
        cl_ord_id="c1.r1", orig_cl_ord_id="c1", symbol="BTC/USDT", side=Side.BUY,
        qty=D("0.1"), order_type=OrdType.LIMIT, price=D("49000"),
    )  # fmt: skip
    asyncio.run(flows.replace(request))
    first = [(r.cl_ord_id, r.kind) for r in flows.tracker.take()]
    assert ("c1", "cancelled") not in first, first
    assert "c1.r1" in flows.tracker.unsettled
    lookups_fail[0] = False
    asyncio.run(flows.poll_live())
    later = [(r.cl_ord_id, r.kind) for r in flows.tracker.take()]
    intents.close()
    assert ("c1.r1", "replaced") in later, later
    assert ("c1", "cancelled") not in later, later
    assert set(flows.tracker.live) == {"c1.r1"}
