"""`FixAdapter.exec_mark`: an answer that completes names exactly the executions the venue
sent before it, also those read in the same batch and not yet handed to the listener (the
connector's execution cut, actors/connector/exec_cut.py, is built on it)."""

from __future__ import annotations

from typing import Any

from tests.connector.fix.test_adapter import Done, Harness, h, order  # noqa: F401 - fixture


def test_an_answer_read_with_executions_before_it_counts_them(h: Harness) -> None:  # noqa: F811
    a = h.connected()
    a.place(order("c1"), Done())
    h.loop.run_until(lambda: h.listener.execs)
    assert a.exec_mark == 1  # the New, handed on
    venue_on_app = h.venue._on_app

    def fill_then_answer(msg_type: str, f: dict[int, Any]) -> None:
        if msg_type == "AN":  # a fill written just before the position report
            h.venue.exec_report("c1", "F", "2", cum="10", last="10", px="100")
        venue_on_app(msg_type, f)

    h.venue._on_app = fill_then_answer  # type: ignore[method-assign]
    h.venue.positions = [("AAPL", "10", "0", "100")]
    marks: list[int] = []
    a.positions(lambda result: marks.append(a.exec_mark))
    h.loop.run_until(lambda: marks)
    assert marks == [2]  # the fill before the answer counts, handed on or not yet
    h.loop.run_until(lambda: len(h.listener.execs) >= 2)
    assert a.exec_mark == 2
