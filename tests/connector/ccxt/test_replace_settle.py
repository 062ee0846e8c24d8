"""A replace whose outcome is not known is settled, never reported as the old order's
cancel while its new order rests (review of the ccxt replace settling, /tmp/review2):
the OMS's resend of a replace cut off by a restart (it cancelled again, reported the old
order CANCELLED and then "replaced"); two flows of one replace at once; an unreadable
create answer (the new order forgotten while it rested); the exchange's "no such order"
within the recvWindow (trusted in the flow, not woken for after it in the poll)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import ccxt

from actors.connector.ccxt.flows import Flows
from actors.connector.ccxt.intents import Intent, IntentLog
from actors.connector.ccxt.tracker import Live, Tracker
from protocol.messages import OrdType, ReplaceOnVenue, Side
from tests.connector.ccxt import binance as bn
from tests.connector.ccxt.test_flows import VENUE, D, _Exchange, bare_flows
from tests.connector.ccxt.test_mapping import rest_order
from tests.connector.ccxt.test_replace_restart import NOT_FOUND, _killed_mid_replace
from tests.log_stub import RecordingLog

UNKNOWN_ORDER = {"code": -2011, "msg": "Unknown order sent."}
REQUEST = ReplaceOnVenue(
    cl_ord_id="c1.r1", orig_cl_ord_id="c1", symbol="BTC/USDT", side=Side.BUY,
    qty=D("0.1"), order_type=OrdType.LIMIT, price=D("49000"),
)  # fmt: skip


def _created() -> dict[str, Any]:
    return rest_order(orderId=29, clientOrderId="c1.r1", price="49000.00000000")


def _flows(
    directory: Path, ex: _Exchange, wakes: list[float] | None = None
) -> tuple[Flows, IntentLog]:
    """Flows over the intent log in `directory`; the poll's wake-ups go to `wakes`."""
    intents = IntentLog(directory)
    wake = (lambda: wakes.append(time.monotonic())) if wakes is not None else (lambda: None)
    tracker = Tracker(VENUE, intents, RecordingLog(), wake)
    flows = bare_flows(ex, tracker, intents)
    return flows, intents


def _with_c1(flows: Flows, intents: IntentLog) -> None:
    """c1 (0.1 BTC resting) is an order we answer for."""
    old = Intent(cl_ord_id="c1", symbol="BTC/USDT", side="BUY", qty="0.1")
    intents.add(old)
    flows.tracker.live["c1"] = Live(old)


def _kinds(flows: Flows) -> list[tuple[str, str]]:
    return [(r.cl_ord_id, r.kind) for r in flows.tracker.take()]


def _not_found_for_new(ex: _Exchange) -> None:
    """The exchange has no order c1.r1 (c1: cancelled)."""

    async def fetch(_id: Any, _symbol: str, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("origClientOrderId") == "c1.r1":
            raise bn.raised(400, NOT_FOUND)
        return ex.cancelled

    ex.fetch_order = fetch  # type: ignore[method-assign]


def test_replace_resent_after_a_restart_is_settled_not_cancelled_again(tmp_path: Path) -> None:
    """The OMS sends the replace cut off by a kill -9 again to the next incarnation (its ack
    was lost): the old order is not cancelled again (that cancel's "unknown order" made the
    flow report the old order CANCELLED as the order's end and refuse the replace, then
    the poll reported "replaced" too); the new order found -> "replaced" only."""
    _killed_mid_replace(tmp_path)
    ex = _Exchange(rest_order(status="CANCELED"), _created())
    ex.cancel_failures.append(bn.raised(400, UNKNOWN_ORDER))
    flows, intents = _flows(tmp_path, ex)

    async def resent_then_polled() -> list[tuple[str, str]]:
        await flows.replace(REQUEST)
        await flows.poll_live()
        return _kinds(flows)

    kinds = asyncio.run(resent_then_polled())
    intents.close()
    assert ex.cancels == 0
    assert kinds == [("c1.r1", "replaced")], kinds
    assert set(flows.tracker.live) == {"c1.r1"}


def test_the_same_replace_twice_at_once_runs_one_flow(tmp_path: Path) -> None:
    """A second ReplaceOnVenue of a replace whose cancel is still unanswered starts no
    second cancel + new: one cancel, one create, one "replaced"; it is over only once the
    first flow is (rev25: its ack means the replace went out)."""
    ex = _Exchange(rest_order(status="CANCELED"), _created())
    answer = asyncio.Event()
    creates = [0]

    async def slow_cancel(*_args: Any) -> dict[str, Any]:
        ex.cancels += 1
        await answer.wait()
        return ex.cancelled

    async def create(*_args: Any) -> dict[str, Any]:
        creates[0] += 1
        return _created()

    ex.cancel_order = slow_cancel  # type: ignore[method-assign]
    ex.create_order = create  # type: ignore[method-assign]
    flows, intents = _flows(tmp_path, ex)
    _with_c1(flows, intents)

    async def twice() -> list[tuple[str, str]]:
        first = asyncio.create_task(flows.replace(REQUEST))
        while not ex.cancels:
            await asyncio.sleep(0)
        second = asyncio.create_task(flows.replace(REQUEST))
        for _ in range(50):
            await asyncio.sleep(0)
        assert not second.done()  # waits for the first flow
        answer.set()
        await asyncio.wait_for(asyncio.gather(first, second), 5.0)
        return _kinds(flows)

    kinds = asyncio.run(twice())
    intents.close()
    assert (ex.cancels, creates[0]) == (1, 1)
    assert [k for k in kinds if k[1] != "accepted"] == [("c1.r1", "replaced")], kinds


def test_unreadable_create_answer_is_looked_up_not_taken_as_never_placed(tmp_path: Path) -> None:
    """ccxt raises a non-ccxt exception reading the new order's answer ("internal"): the
    order may rest at the exchange, so it is looked up, found, and "replaced" reported
    (it was: the old order reported CANCELLED and the resting new order forgotten)."""
    ex = _Exchange(rest_order(status="CANCELED"), _created())

    async def create_then_unreadable(*_args: Any) -> dict[str, Any]:
        raise TypeError("unsupported operand type(s) for +: 'NoneType' and 'str'")

    ex.create_order = create_then_unreadable  # type: ignore[method-assign]
    flows, intents = _flows(tmp_path, ex)
    _with_c1(flows, intents)
    asyncio.run(flows.replace(REQUEST))
    kinds = _kinds(flows)
    intents.close()
    assert ("c1", "cancelled") not in kinds, kinds
    assert ("c1.r1", "replaced") in kinds, kinds
    assert set(flows.tracker.live) == {"c1.r1"}


def test_no_such_new_order_within_the_recv_window_leaves_the_replace_unsettled(
    tmp_path: Path,
) -> None:
    """The create's answer is lost and the lookup says "no such order" while the create
    may still reach the exchange (its recvWindow): not proof it was never placed, so the
    replace is unsettled and the poll refuses nothing until the window has passed; then
    the old order's state and the replace refused."""
    ex = _Exchange(rest_order(status="CANCELED"), ccxt.RequestTimeout("no answer in 5.0 s"))
    _not_found_for_new(ex)
    flows, intents = _flows(tmp_path, ex)
    flows.unseen_after_s = 60.0
    _with_c1(flows, intents)
    asyncio.run(flows.replace(REQUEST))
    assert _kinds(flows) == [("c1", "accepted")]
    assert "c1.r1" in flows.tracker.unsettled
    asyncio.run(flows.poll_live())
    assert _kinds(flows) == []
    assert set(flows.tracker.live) == {"c1", "c1.r1"}
    flows.tracker.unsettled["c1.r1"] = time.monotonic() - 1.0  # the window has passed
    asyncio.run(flows.poll_live())
    kinds = _kinds(flows)
    intents.close()
    assert kinds == [("c1", "cancelled"), ("c1.r1", "cancel_rejected")], kinds
    assert flows.tracker.live == {}


def test_restart_settles_an_unseen_new_order_once_the_recv_window_ends(tmp_path: Path) -> None:
    """After a restart the new order of a replace cut off is not at the exchange, but its
    create may still arrive within the recvWindow: the first poll refuses nothing and the
    poll is woken when the window ends (the stream up, it would wait `poll_idle_s`); that
    poll refuses the replace."""
    _killed_mid_replace(tmp_path)
    ex = _Exchange(rest_order(status="CANCELED"), ccxt.RequestTimeout("unused"))
    _not_found_for_new(ex)
    wakes: list[float] = []
    flows, intents = _flows(tmp_path, ex, wakes)
    trust_at = time.monotonic() + 1.0
    flows.trust_unseen_at = trust_at

    async def polled_until_settled() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        await flows.poll_live()
        early = _kinds(flows)
        deadline = time.monotonic() + 10.0
        while not any(w >= trust_at for w in wakes) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert any(w >= trust_at for w in wakes), "the poll was not woken after the window"
        await flows.poll_live()
        return early, _kinds(flows)

    early, later = asyncio.run(polled_until_settled())
    intents.close()
    assert [k for k in early if k[1] != "accepted"] == [], early
    assert [k for k in later if k[1] != "accepted"] == [
        ("c1", "cancelled"),
        ("c1.r1", "cancel_rejected"),
    ], later
    assert flows.tracker.live == {}


def test_replace_resent_after_it_was_carried_out_changes_nothing(tmp_path: Path) -> None:
    """The OMS sends a replace again whose "replaced" is already queued (its ack was lost),
    in the same incarnation or the next: the old order is not cancelled again (that
    cancel's "unknown order" reported the old order CANCELLED after "replaced", and the
    replace refused, while the new order rested); nothing more is reported."""
    ex = _Exchange(rest_order(status="CANCELED"), _created())
    flows, intents = _flows(tmp_path, ex)
    _with_c1(flows, intents)
    asyncio.run(flows.replace(REQUEST))
    assert ("c1.r1", "replaced") in _kinds(flows)
    intents.sync()
    ex.cancel_failures.append(bn.raised(400, UNKNOWN_ORDER))
    asyncio.run(flows.replace(REQUEST))
    again = _kinds(flows)
    intents.close()
    next_flows, next_intents = _flows(tmp_path, ex)
    asyncio.run(next_flows.replace(REQUEST))
    after_restart = _kinds(next_flows)
    next_intents.close()
    assert (again, after_restart, ex.cancels) == ([], [], 1)
    assert set(next_flows.tracker.live) == {"c1.r1"}
