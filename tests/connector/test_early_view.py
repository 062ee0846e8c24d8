"""The venue's open orders asked at logon (actors/connector/early_view.py): the OMS's
request is answered from them only while nothing can have come between the two."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from actors.connector.adapter import RequestFailed
from actors.connector.early_view import MAX_AGE_S, EarlyOpenOrders, ViewMarks
from protocol.messages import ErrorCode
from tests.log_stub import RecordingLog


class _Venue:
    """The session's marks, and the AFs asked (answered by the test)."""

    def __init__(self) -> None:
        self.marks = ViewMarks(connection=1, next_out=10, resends=0, next_in=20, exec_mark=0)
        self.asked: list[Any] = []

    def view_marks(self) -> ViewMarks:
        return self.marks

    def ask(self, done: Any) -> None:
        self.asked.append(done)

    def sent_af(self) -> None:
        self.marks = replace(self.marks, next_out=self.marks.next_out + 1)

    def read(self, messages: int = 1, executions: int = 0) -> None:
        m = self.marks
        self.marks = replace(m, next_in=m.next_in + messages, exec_mark=m.exec_mark + executions)


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _early() -> tuple[EarlyOpenOrders, _Venue, _Clock, RecordingLog]:
    venue, clock, log = _Venue(), _Clock(), RecordingLog()
    early = EarlyOpenOrders(venue, venue.ask, log, clock)
    return early, venue, clock, log


def _answered_at_logon(early: EarlyOpenOrders, venue: _Venue, orders: list[str]) -> None:
    early.start()
    assert len(venue.asked) == 1
    venue.sent_af()
    venue.read(messages=len(orders))  # the reports
    venue.asked[0](orders)


def test_request_after_a_quiet_wait_is_answered_from_the_logon_view():
    """Nothing sent or read since the logon's AF was answered: the OMS's request gets that
    answer at once and no second AF goes out; it is served once only."""
    early, venue, _clock, log = _early()
    _answered_at_logon(early, venue, ["a", "b"])
    got: list[Any] = []
    early.open_orders(got.append)
    assert got == [["a", "b"]] and len(venue.asked) == 1 and early.served == 1
    assert {"orders": 2} in log.events("open_orders_from_logon")
    early.open_orders(got.append)  # the next pass asks the venue
    assert len(venue.asked) == 2 and len(got) == 1


def test_a_fill_between_the_logon_view_and_the_request_asks_the_venue_again():
    """An execution read after the logon's answer (a fill the OMS applies before its pass
    begins) is not in that view: the request asks the venue again and gets the new answer,
    never the held one."""
    early, venue, _clock, _log = _early()
    _answered_at_logon(early, venue, ["a", "b"])
    venue.read(messages=1, executions=1)  # the fill of "a"
    got: list[Any] = []
    early.open_orders(got.append)
    assert got == [] and len(venue.asked) == 2
    venue.asked[1](["b"])
    assert got == [["b"]] and early.served == 0


def test_any_message_read_or_sent_after_the_view_drops_it():
    """A heartbeat read, a message sent (a D the OMS sent meanwhile), a resend on the
    venue's request or a new connection each drop the held view."""
    changes = [
        lambda v: v.read(messages=1),
        lambda v: setattr(v, "marks", replace(v.marks, next_out=v.marks.next_out + 1)),
        lambda v: setattr(v, "marks", replace(v.marks, resends=1)),
        lambda v: setattr(v, "marks", replace(v.marks, connection=2)),
        lambda v: setattr(v, "marks", replace(v.marks, numbering=1)),  # an operator's reset
    ]
    for change in changes:
        early, venue, _clock, _log = _early()
        _answered_at_logon(early, venue, ["a"])
        change(venue)
        got: list[Any] = []
        early.open_orders(got.append)
        assert got == [] and len(venue.asked) == 2


def test_something_sent_after_the_af_before_its_answer_drops_the_view():
    """A message numbered after the AF and before its answer completed (e.g. a PossDup D
    answering the venue's ResendRequest, or any D) may reach the venue after the AF:
    the view is not held, and a request waiting for it asks again."""
    for extra in ("next_out", "resends"):
        early, venue, _clock, _log = _early()
        early.start()
        got: list[Any] = []
        early.open_orders(got.append)  # the OMS asks while the AF is out: it waits
        assert len(venue.asked) == 1 and got == []
        venue.sent_af()
        m = venue.marks
        venue.marks = replace(m, **{extra: getattr(m, extra) + 1})
        venue.asked[0](["a"])
        assert got == [] and len(venue.asked) == 2
        venue.asked[1](["a", "c"])
        assert got == [["a", "c"]]


def test_a_request_during_the_logon_af_gets_its_answer_when_it_completes():
    early, venue, _clock, _log = _early()
    early.start()
    got: list[Any] = []
    early.open_orders(got.append)
    venue.sent_af()
    venue.read(messages=3)
    venue.asked[0](["a", "b", "c"])
    assert got == [["a", "b", "c"]] and len(venue.asked) == 1 and early.served == 1


def test_an_old_or_failed_view_is_not_served_and_start_asks_once():
    early, venue, clock, _log = _early()
    _answered_at_logon(early, venue, ["a"])
    clock.now += MAX_AGE_S + 0.1
    got: list[Any] = []
    early.open_orders(got.append)
    assert len(venue.asked) == 2 and got == []
    early.start()  # a later logon asks nothing early
    assert len(venue.asked) == 2

    early, venue, clock, _log = _early()
    early.start()
    venue.sent_af()
    venue.asked[0](RequestFailed(ErrorCode.TIMEOUT, "no report"))
    early.open_orders(got.append)
    assert len(venue.asked) == 2


def test_an_execution_read_while_the_logon_af_is_answered_keeps_no_view():
    """A venue whose mass status is not one snapshot may send an execution between its
    reports: applied before the OMS's pass begins, it would make the view stale for the
    order it touched. The answer is not held; the request asks the venue again."""
    early, venue, _clock, log = _early()
    early.start()
    venue.sent_af()
    venue.read(messages=3, executions=1)  # two reports and a fill among them
    venue.asked[0](["a", "b"])
    assert {"orders": 2, "held": False} in log.events("open_orders_at_logon")
    got: list[Any] = []
    early.open_orders(got.append)
    assert got == [] and len(venue.asked) == 2


def test_a_view_the_oms_never_asks_for_is_let_go_after_its_age():
    """A connector whose OMS never asks (stopped, crash-looping) does not keep 10,000
    orders: the view is dropped once it is too old to be served."""
    venue, clock, log = _Venue(), _Clock(), RecordingLog()
    timers: list[tuple[float, Any]] = []
    early = EarlyOpenOrders(
        venue, venue.ask, log, clock, later=lambda d, fn: timers.append((d, fn))
    )
    _answered_at_logon(early, venue, ["a"])
    assert [d for d, _ in timers] == [MAX_AGE_S] and early._held is not None
    clock.now += MAX_AGE_S
    timers[0][1]()
    assert early._held is None
    assert {"reason": "too old"} in log.events("open_orders_at_logon_dropped")


def test_the_logon_asks_only_while_no_oms_was_heard() -> None:
    """`ConnectorActor.on_session_up`: the early AF goes out at a logon only while no OMS
    has been heard from (a warm start: it replays its journal); a connector restarted
    alone, the OMS already answering, asks nothing (the OMS asks at once anyway). A
    process test of this raced the rig's OMS against the logon under load."""
    from types import SimpleNamespace

    from actors.connector.actor import ConnectorActor

    for oms_epoch, serves, asked in ((None, True, 1), (7, True, 0), (None, False, 0)):
        started: list[int] = []
        actor = SimpleNamespace(
            gate=SimpleNamespace(in_session=True),
            policy=SimpleNamespace(on_up=lambda _now: "CONNECTED"),
            _set_state=lambda *_a: None,
            early=SimpleNamespace(start=lambda s=started: s.append(1)),
            _oms_epoch=oms_epoch,
            fallbacks=SimpleNamespace(serves_mass_status=serves),
        )
        ConnectorActor.on_session_up(actor, "logged on")  # type: ignore[arg-type]
        assert len(started) == asked, (oms_epoch, serves)
