"""The connector's session gate on a steered clock: in/out of session at start, the open
and close callbacks at the transitions (a close before the open when two sessions touch),
the in-session gauge, and nothing at all without a schedule."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from actors.connector.adapter import RequestFailed
from actors.connector.policy import ReconnectPolicy
from actors.connector.schedule import SessionWindow
from actors.connector.session_gate import SessionGate, failure_code
from actors.runtime import metrics
from protocol.config import BackoffCfg
from protocol.fix_config import WEEKDAYS, ScheduleCfg
from protocol.messages import ErrorCode, VenueConnState
from tests.connector.fix.test_adapter import Done, Harness, order

LOG = structlog.get_logger("test")
MON_10 = dt.datetime(2026, 1, 5, 10, 0, tzinfo=dt.UTC).timestamp()


class Clock:
    """Wall clock and timers in one: `advance` runs the timers that come due."""

    def __init__(self, now_s: float) -> None:
        self.now_s = now_s
        self.timers: list[tuple[float, Callable[[], None]]] = []

    def __call__(self) -> float:
        return self.now_s

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> None:
        self.timers.append((self.now_s + delay_s, fn))

    def advance(self, seconds: float) -> None:
        end = self.now_s + seconds
        while True:
            due = sorted((t for t in self.timers if t[0] <= end), key=lambda t: t[0])
            if not due:
                break
            self.timers.remove(due[0])
            self.now_s = max(self.now_s, due[0][0])
            due[0][1]()
        self.now_s = end


def gate(schedule: ScheduleCfg | None, clock: Clock, seen: list[Any]) -> SessionGate:
    return SessionGate(
        "gated", schedule, clock, LOG, clock=clock,
        on_open=lambda w: seen.append(("open", w.start.time().isoformat())),
        on_close=lambda w: seen.append(("close", w.end.time().isoformat())),
    )  # fmt: skip


def in_session_gauge() -> float:
    return metrics.VENUE_IN_SESSION.labels(venue="gated")._value.get()  # type: ignore[no-any-return]  # noqa: SLF001


def test_out_of_session_at_start_then_open_then_close() -> None:
    """10:00 with a 10:00:05-10:00:09 session: out at start (gauge 0), open at 10:00:05
    (gauge 1), closed at 10:00:09 (gauge 0), with a callback each."""
    clock, seen = Clock(MON_10), []
    g = gate(ScheduleCfg(start="10:00:05", end="10:00:09", days=["mon"]), clock, seen)
    assert not g.in_session and g.window is None and in_session_gauge() == 0
    assert g.next_open == "2026-01-05T10:00:05+00:00"
    assert "outside the trading session" in g.detail
    clock.advance(4.9)
    assert seen == [] and not g.in_session
    clock.advance(0.2)
    assert seen == [("open", "10:00:05")] and g.in_session and in_session_gauge() == 1
    clock.advance(4.0)
    assert seen[-1] == ("close", "10:00:09") and not g.in_session and in_session_gauge() == 0


def test_touching_sessions_close_then_open_at_the_same_moment() -> None:
    """A 24-hour session every day: at midnight the old one closes and the new one opens
    (the connector logs out and on again: a daily reset, if configured)."""
    clock = Clock(dt.datetime(2026, 1, 5, 23, 59, 58, tzinfo=dt.UTC).timestamp())
    seen: list[Any] = []
    g = gate(ScheduleCfg(days=list(WEEKDAYS)), clock, seen)
    assert g.in_session and isinstance(g.window, SessionWindow)
    first = g.window
    clock.advance(3)
    assert seen == [("close", "00:00:00"), ("open", "00:00:00")]
    assert g.window is not None and g.window.start == first.end


def test_without_a_schedule_always_in_session_and_no_timer() -> None:
    clock, seen = Clock(MON_10), []
    g = gate(None, clock, seen)
    assert g.in_session and g.window is None and clock.timers == [] and g.next_open == ""


def test_a_session_opening_restarts_the_reconnect_policy() -> None:
    """After a DOWN day, the open starts from the first backoff step, CONNECTING."""
    policy = ReconnectPolicy(BackoffCfg(initial_s=0.1, max_s=1.0, jitter=0.0), 2, 5.0)
    for _ in range(3):
        policy.on_down(False, 0.0)
    assert policy.state is VenueConnState.DOWN
    assert policy.restart() is VenueConnState.CONNECTING
    assert (policy.failures, policy.attempt) == (0, 0)
    assert policy.on_down(False, 1.0).delay_s == 0.1


def test_orders_queued_at_the_close_are_failed_out_of_session(tmp_path: Path) -> None:
    """Orders the rate limit still held when the session closed (the connector's close is
    `adapter.disconnect`) were failed VENUE_DOWN, which the OMS keeps queued for the next
    CONNECTED, i.e. the next session (found by review). What the connector tells the OMS
    for them out of session is OUT_OF_SESSION: the OMS rejects such a new order."""
    h = Harness(tmp_path)
    try:
        a = h.connected(rate_limit_per_s=1.0, rate_burst=1)
        results = [Done() for _ in range(3)]
        for i, r in enumerate(results):
            a.place(order(f"c{i}"), r)
        h.loop.turn(0)
        a.disconnect("end of trading session")  # what ConnectorActor._session_closed does
        h.loop.run_until(lambda: a.is_idle)
        held = [r.calls[0] for r in results[1:]]
        assert all(isinstance(e, RequestFailed) for e in held)
        told = [failure_code(e, in_session=False) for e in held]
        assert told == [ErrorCode.OUT_OF_SESSION] * 2
        assert failure_code(held[0], in_session=True) is ErrorCode.VENUE_DOWN
    finally:
        h.close()
