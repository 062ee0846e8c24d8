"""The ccxt connector's Tracker (actors/connector/ccxt/tracker.py): one order snapshot to
executions in the order the OMS applies them, and a replace in progress."""

from __future__ import annotations

from pathlib import Path

from actors.connector.ccxt.intents import Intent, IntentLog
from actors.connector.ccxt.tracker import Live, Tracker
from tests.connector.ccxt.test_mapping import rest_order
from tests.log_stub import RecordingLog


def _tracker(tmp_path: Path) -> tuple[Tracker, list[int]]:
    wakes: list[int] = []
    intents = IntentLog(tmp_path)
    tracker = Tracker("bx", intents, RecordingLog(), lambda: wakes.append(1))
    intent = Intent(cl_ord_id="c1", symbol="BTC/USDT", side="BUY", qty="0.1")
    intents.add(intent)
    tracker.live["c1"] = Live(intent)
    return tracker, wakes


def test_a_cancelled_snapshot_is_accepted_then_cancelled_and_the_order_forgotten(
    tmp_path: Path,
) -> None:
    tracker, _ = _tracker(tmp_path)
    tracker.apply_order(tracker.live["c1"].intent, rest_order(status="CANCELED"), [])
    assert [(r.kind, r.exec_id) for r in tracker.take()] == [
        ("accepted", "BTC/USDT:28:new"), ("cancelled", "BTC/USDT:28:cancelled")
    ]  # fmt: skip
    assert "c1" not in tracker.live and "c1" in tracker.intents.finished


def test_the_cancel_half_of_a_replace_is_not_a_cancel_for_the_oms(tmp_path: Path) -> None:
    """The old order of a replace is cancelled at the exchange, but for the OMS it lives on
    as the new one: its "cancelled" would end the order. The new order says nothing until
    its "replaced" is queued."""
    tracker, _ = _tracker(tmp_path)
    intent = tracker.live["c1"].intent
    tracker.replacing("c1", "c1.r1")
    tracker.apply_order(intent, rest_order(status="CANCELED"), [])
    assert [r.kind for r in tracker.take()] == ["accepted"]
    new = Intent(cl_ord_id="c1.r1", symbol="BTC/USDT", side="BUY", qty="0.2")
    tracker.live["c1.r1"] = Live(new)
    tracker.apply_order(new, rest_order(orderId=29, clientOrderId="c1.r1"), [])
    assert tracker.take() == []
    tracker.release("c1.r1")
    tracker.covered("BTC/USDT:29:new")  # its "replaced" stands for it
    tracker.apply_order(new, rest_order(orderId=29, clientOrderId="c1.r1", status="CANCELED"), [])
    assert [(r.kind, r.cl_ord_id) for r in tracker.take()] == [("cancelled", "c1.r1")]


def test_a_final_state_waits_for_the_fills_it_covers(tmp_path: Path) -> None:
    """A cancelled order that filled 0.04 before: without its trades the "cancelled" (cum
    0.04) would make the OMS book a synthetic fill; it waits, and the poll is woken."""
    tracker, wakes = _tracker(tmp_path)
    order = rest_order(
        status="CANCELED", executedQty="0.04000000", cummulativeQuoteQty="2000.00000000"
    )
    tracker.apply_order(tracker.live["c1"].intent, order, [])
    assert [r.kind for r in tracker.take()] == ["accepted"] and wakes
    assert "c1" in tracker.live  # not forgotten: the poll comes back for the trades
