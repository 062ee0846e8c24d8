"""ExecutionReports the connector cannot forward (an ExecType it does not map, no ExecID, a
trade bust without the ExecRefID of the fill it undoes): each counted, logged within a
budget, the session and the orders going on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from tests.connector.fix.test_adapter import Done, Harness, order
from tests.log_stub import RecordingLog


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(tmp_path)
    yield harness
    harness.close()


def _unreadable() -> float:
    labels = {"venue": "mini", "source": "exec_report"}
    value = REGISTRY.get_sample_value("tradepulse_venue_answers_unreadable_total", labels)
    return value or 0.0


def test_unforwardable_exec_reports_are_counted_and_logged_within_a_budget(h: Harness) -> None:
    """100 ExecutionReports with ExecType 3 (done for day, not mapped) and 100 without an
    ExecID: 200 counted, 10 warning lines (one each before); an order placed after them is
    acknowledged and its execution forwarded."""
    a = h.connected()
    log = RecordingLog()
    a._replies._log = log  # the router's logger
    before = _unreadable()
    for k in range(100):
        h.venue.exec_report(f"c{k}", "3", "3")
        h.venue.send("8", [(37, "O"), (150, "F"), (39, "2"), (11, f"d{k}"), (32, "1")])
    a.place(order("c-after"), Done())
    h.loop.run_until(lambda: any(e.cl_ord_id == "c-after" for e in h.listener.execs))
    assert _unreadable() - before == 200
    lines = [kw for lvl, ev, kw in log.lines if ev == "exec_not_forwarded" and lvl == "warning"]
    assert len(lines) == 10
    assert {kw["exec_type"] for kw in lines} <= {"3", "F"}
    assert a.is_active and not h.listener.downs


def test_pending_states_are_not_counted(h: Harness) -> None:
    """ExecType 6 / A / E (pending cancel, new, replace) say nothing to apply: debug only."""
    a = h.connected()
    log = RecordingLog()
    a._replies._log = log
    before = _unreadable()
    for exec_type in ("6", "A", "E"):
        h.venue.exec_report("c1", exec_type, exec_type)
    a.place(order("c-after"), Done())
    h.loop.run_until(lambda: any(e.cl_ord_id == "c-after" for e in h.listener.execs))
    assert _unreadable() == before
    assert [lvl for lvl, ev, _kw in log.lines if ev == "exec_not_forwarded"] == ["debug"] * 3


def test_a_bust_without_exec_ref_id_is_counted_logged_and_not_forwarded(h: Harness) -> None:
    """Through the adapter: a 150=H without 19 is counted and logged with its reason, a
    complete one is forwarded with its ExecRefID, and the session goes on."""
    a = h.connected()
    log = RecordingLog()
    a._replies._log = log
    before = _unreadable()
    h.venue.exec_report("c1", "H", "0")
    h.venue.exec_report("c1", "H", "0", extra=[(19, "F1")])
    a.place(order("c-after"), Done())
    h.loop.run_until(lambda: any(e.cl_ord_id == "c-after" for e in h.listener.execs))
    assert _unreadable() - before == 1
    busts = [e for e in h.listener.execs if e.kind == "trade_cancel"]
    assert [e.exec_ref_id for e in busts] == ["F1"]
    lines = [kw for lvl, ev, kw in log.lines if ev == "exec_not_forwarded" and lvl == "warning"]
    assert [(kw["exec_type"], kw["reason"]) for kw in lines] == [("H", "no ExecRefID(19)")]
    assert a.is_active and not h.listener.downs
