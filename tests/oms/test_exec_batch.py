"""An `ExecReports` at the OMS (actors/oms/exec_intake.py): its executions applied in their
order, each exactly as a lone `ExecReport` would be, and one `ExecAck` after the commit naming
those applied. An item that is malformed, for another venue, or raises in the OMS fails
alone: counted and logged as a lone message would be, left unacknowledged (the connector
sends it again), its siblings applied and acknowledged. The pitfalls of the `cpu6` risk
batches' review, avoided from the start."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from actors.oms.exec_cut import ExecLog
from actors.oms.exec_intake import ExecIntake
from actors.oms.orders import Outcome
from protocol.codec import Sender, decode
from protocol.messages import ExecAck, ExecReport, ExecReports, Message, RequestRejected
from protocol.wire_out import dump
from tests.log_stub import RecordingLog

V = "simA"


def _report(i: int, venue: str = V) -> ExecReport:
    return ExecReport(venue=venue, exec_id=f"E{i}", kind="accepted", cl_ord_id=f"c{i}")


def _batch(*items: dict[str, Any]) -> ExecReports:
    """Through the wire, as the OMS receives it."""
    msg = ExecReports.model_construct(venue=V, reports=list(items))
    body = decode(Sender(f"connector.{V}", 3).encode(msg)).body
    assert isinstance(body, ExecReports)
    return body


class _Book:
    def __init__(self, poison: str = "") -> None:
        self.applied: list[str] = []
        self.poison = poison

    def apply_exec(self, report: ExecReport, ts_ns: int) -> Outcome:
        if report.exec_id == self.poison:
            raise ArithmeticError("a bug in us")
        self.applied.append(report.exec_id)
        return Outcome("applied", None)


class _Applier:
    """`ExecApplier` without its quarantine (tests/oms/test_exec_quarantine.py has it): what
    raises here is what the real one lets through (a transient error)."""

    def __init__(self, host: _Host) -> None:
        self.host = host

    def apply(self, report: ExecReport, ts_ns: int, epoch: int = 0) -> Outcome | None:
        return self.host.record(self.host.book.apply_exec(report, ts_ns), venue=report.venue)


class _Host:
    def __init__(self, poison: str = "") -> None:
        self.book = _Book(poison)
        self.exec_log = ExecLog()
        self.exec_applier = _Applier(self)
        self.venues: dict[str, Any] = {}
        self.after: list[Callable[[], None]] = []
        self.bad: list[str] = []
        self.refused: list[str] = []
        self.failed: list[str] = []
        self.crash_points: list[str] = []

    def record(self, outcome: Outcome, venue: str = "") -> Outcome:
        return outcome

    def after_commit(self, fn: Callable[[], None], *, first: bool = False) -> None:
        self.after.append(fn)

    def durable_crash_point(self, name: str) -> None:
        self.crash_points.append(name)

    def count_bad(self, source: str, error: str) -> None:
        self.bad.append(error)

    def count_refused(self, type_: str, reason: str) -> None:
        self.refused.append(reason)

    def count_failed(self, type_: str) -> None:
        self.failed.append(type_)

    def commit(self) -> None:
        after, self.after = self.after, []
        for fn in after:
            fn()


class _Reply:
    def __init__(self) -> None:
        self.answers: list[Message] = []

    def __call__(self, body: Message) -> None:
        self.answers.append(body)

    def reject(self, code: Any, reason: str, field: str | None = None) -> None:
        self.answers.append(RequestRejected(code=code, reason=reason))


def _run(host: _Host, batch: ExecReports) -> _Reply:
    reply = _Reply()
    ExecIntake(host, RecordingLog()).on_batch(batch, reply, 3)  # type: ignore[arg-type]
    return reply


def test_a_batch_is_applied_in_order_and_acked_once_after_the_commit() -> None:
    host = _Host()
    reply = _run(host, _batch(*(dump(_report(i)) for i in range(5))))
    assert host.book.applied == ["E0", "E1", "E2", "E3", "E4"]
    assert reply.answers == []  # nothing before the commit
    host.commit()
    assert reply.answers == [ExecAck(venue=V, exec_ids=["E0", "E1", "E2", "E3", "E4"])]


def test_a_malformed_item_is_refused_alone_and_counted() -> None:
    host = _Host()
    bad = {**dump(_report(1)), "last_qty": "not a number"}
    reply = _run(host, _batch(dump(_report(0)), bad, dump(_report(2))))
    host.commit()
    assert host.book.applied == ["E0", "E2"]
    assert len(host.bad) == 1 and "last_qty" in host.bad[0]
    assert reply.answers == [ExecAck(venue=V, exec_ids=["E0", "E2"])]


def test_an_item_that_raises_fails_alone_and_is_not_acked() -> None:
    """A lone execution whose apply raised a transient error is answered INTERNAL and sent
    again; in a batch it fails alone: logged `request_failed`, not acked, its siblings
    applied and acked (a poison one is quarantined and acked: test_exec_quarantine.py)."""
    host = _Host(poison="E1")
    reply = _run(host, _batch(*(dump(_report(i)) for i in range(3))))
    host.commit()
    assert host.book.applied == ["E0", "E2"]
    assert host.failed == ["exec_report"]
    assert reply.answers == [ExecAck(venue=V, exec_ids=["E0", "E2"])]


def test_an_item_for_another_venue_is_refused_alone() -> None:
    host = _Host()
    reply = _run(host, _batch(dump(_report(0)), dump(_report(1, venue="simB"))))
    host.commit()
    assert host.book.applied == ["E0"]
    assert len(host.refused) == 1 and "simB" in host.refused[0]
    assert reply.answers == [ExecAck(venue=V, exec_ids=["E0"])]


def test_a_batch_of_nothing_applicable_is_rejected_at_once() -> None:
    host = _Host()
    reply = _run(host, _batch({"exec_id": 5}, {"venue": V}))
    assert host.book.applied == [] and len(host.bad) == 2
    assert [type(a) for a in reply.answers] == [RequestRejected]


def test_the_crash_point_inside_a_batch_comes_after_its_first_item() -> None:
    """`mid_exec_batch` (the kill -9 test's point) is armed after the first execution of a
    batch of several is applied, never for a lone one."""
    host = _Host()
    _run(host, _batch(*(dump(_report(i)) for i in range(3))))
    assert host.crash_points == ["mid_exec_batch"]
    host = _Host()
    _run(host, _batch(dump(_report(0))))
    assert host.crash_points == []


class _RefusingBook(_Book):
    def apply_exec(self, report: ExecReport, ts_ns: int) -> Outcome:
        return Outcome.refused(None, f"unknown ClOrdID {report.cl_ord_id!r}")


def test_refused_executions_are_logged_within_a_budget() -> None:
    """A venue sending executions the OMS refuses as fast as it can (150=H busts of fills
    it never booked, review of branch ``bust``): each is acked and counted where its kind
    is, but `exec_refused` takes at most 10 lines a second (before: one line each)."""
    host, log = _Host(), RecordingLog()
    host.book = _RefusingBook()
    ExecIntake(host, log).on_batch(  # type: ignore[arg-type]
        _batch(*(dump(_report(i)) for i in range(100))), _Reply(), 3
    )
    assert 1 <= len(log.events("exec_refused")) <= 10
