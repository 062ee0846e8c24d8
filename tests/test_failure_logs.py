"""A failed test's report carries the notable log lines of the systems it started
(tests/conftest.py `pytest_runtest_makereport`): a failure seen once, as in CI, can be read
afterwards. A passing test's report carries nothing."""

from __future__ import annotations

from typing import Any, cast

import pytest

from tests import conftest, helpers
from tests.helpers import SystemUnderTest


def _report(outcome: str) -> pytest.TestReport:
    return pytest.TestReport("t.py::t", ("t.py", 1, "t"), {}, outcome, None, "call")  # type: ignore[arg-type]


def _run_hook(report: pytest.TestReport) -> pytest.TestReport:
    hook = cast(Any, conftest.pytest_runtest_makereport)(None, None)
    next(hook)
    with pytest.raises(StopIteration) as done:
        hook.send(report)
    return cast(pytest.TestReport, done.value.value)


def test_a_failed_report_shows_the_notable_lines_of_each_system() -> None:
    helpers.CREATED.clear()
    sut = SystemUnderTest()
    try:
        for line in [
            '{"event": "actor_ready", "level": "info", "child": "oms"}',
            '{"event": "order_acked", "level": "info"}',
            '{"event": "reconcile_failed", "level": "warning"}',
            '{"event": "something_broke", "level": "error"}',
            "Traceback (most recent call last):",
        ]:
            sut._on_stdout(line)
        report = _run_hook(_report("failed"))
        [(title, text)] = report.sections
        assert title == "system 0 log (4 notable lines)"
        assert "order_acked" not in text
        assert text.splitlines() == [
            '{"event": "actor_ready", "level": "info", "child": "oms"}',
            '{"event": "reconcile_failed", "level": "warning"}',
            '{"event": "something_broke", "level": "error"}',
            "Traceback (most recent call last):",
        ]
        assert _run_hook(_report("passed")).sections == []
    finally:
        sut.destroy()
        helpers.CREATED.clear()


def test_a_failed_report_shows_what_the_processes_wrote_to_stderr() -> None:
    """CI's report of a chaos run had a link actor exit by SIGABRT and 0 notable lines:
    libzmq writes its assertion to stderr before it aborts, and the report never showed
    stderr. The last lines of it come after the log lines."""
    sut = SystemUnderTest()
    try:
        sut._on_stdout('{"event": "actor_exited", "level": "warning", "signal": "SIGABRT"}')
        for i in range(50):
            sut._on_stderr(f"noise {i}")
        sut._on_stderr("Assertion failed: rc == 0 (src/zap_client.cpp:71)")
        lines = sut.notable_lines(stderr=3)
        assert lines == [
            '{"event": "actor_exited", "level": "warning", "signal": "SIGABRT"}',
            "[stderr] noise 48",
            "[stderr] noise 49",
            "[stderr] Assertion failed: rc == 0 (src/zap_client.cpp:71)",
        ]
    finally:
        sut.destroy()


def test_notable_lines_keeps_the_last_ones() -> None:
    sut = SystemUnderTest()
    try:
        for i in range(10):
            sut._on_stdout(f'{{"event": "venue_state", "level": "info", "n": {i}}}')
        assert [line[-3:-1] for line in sut.notable_lines(limit=3)] == [" 7", " 8", " 9"]
    finally:
        sut.destroy()


def test_a_burst_of_one_event_does_not_push_its_cause_out() -> None:
    """CI's report of a failed load test held 200 lines: 199 `order_resubmitted` and one
    more, the burst's cause gone. An event past 2 x `per_event` lines keeps its first and
    last `per_event` and a count of the rest; the lines before the burst stay."""
    sut = SystemUnderTest()
    try:
        sut._on_stdout('{"event": "actor_exited", "level": "warning", "child": "connector.simA"}')
        for i in range(243):
            sut._on_stdout(f'{{"event": "order_resubmitted", "level": "warning", "n": {i}}}')
            if i == 100:
                sut._on_stdout('{"event": "venue_state", "level": "info"}')
        lines = sut.notable_lines(limit=200, per_event=10)
        assert "actor_exited" in lines[0]
        resubmits = [line for line in lines if "order_resubmitted" in line]
        assert len(resubmits) == 21 and "... 223 more order_resubmitted lines ..." in lines
        assert resubmits[9].endswith('"n": 9}') and resubmits[11].endswith('"n": 233}')
        assert any("venue_state" in line for line in lines)
    finally:
        sut.destroy()
