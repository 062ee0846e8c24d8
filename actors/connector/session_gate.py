"""The connector's side of a venue's session schedule (`[venues.schedule]`): whether we are
in a trading session now, and the transitions as they happen.

The connector asks `in_session` before it connects or reconnects and before it serves a
request; the gate calls `on_open(window)` when a session opens and `on_close(window)`
when it closes (the connector logs out then, and stays logged out: planned downtime).
Two sessions that touch give a close and then an open at the same moment. Without a
schedule the venue is always in session and nothing ever fires.

Logs `fix_session_opened` / `fix_session_closed` (session_start, session_end, next_open)
and sets `tradepulse_venue_in_session{venue}`. The clock is the wall clock (UTC), checked
at each transition and at least every `CHECK_S` (a clock step is noticed within it).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any, Protocol

from actors.connector.adapter import RequestFailed
from actors.connector.schedule import SessionWindow, next_session, next_transition, session_at
from actors.runtime import metrics
from protocol.fix_config import ScheduleCfg
from protocol.messages import ErrorCode

CHECK_S = 1.0


class Timers(Protocol):
    def call_later(self, delay_s: float, fn: Callable[[], None]) -> None: ...


class SessionGate:
    def __init__(
        self,
        venue: str,
        schedule: ScheduleCfg | None,
        timers: Timers,
        log: Any,
        *,
        on_open: Callable[[SessionWindow], None],
        on_close: Callable[[SessionWindow], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._schedule = schedule
        self._timers = timers
        self._log = log
        self._on_open = on_open
        self._on_close = on_close
        self._clock = clock
        self._gauge = metrics.VENUE_IN_SESSION.labels(venue=venue)
        now = self._now()
        self.window = session_at(schedule, now) if schedule is not None else None
        self._gauge.set(1 if self.in_session else 0)
        if schedule is not None:
            self._next = next_transition(schedule, now)
            if self.window is None:
                self._log.info("fix_session_closed", at_start=True, next_open=self.next_open)
            self._timers.call_later(self._delay_s(now), self._check)

    @property
    def in_session(self) -> bool:
        return self._schedule is None or self.window is not None

    @property
    def next_open(self) -> str:
        """When the next session opens (ISO, UTC); "" without a schedule."""
        if self._schedule is None:
            return ""
        return next_session(self._schedule, self._now()).start.isoformat()

    @property
    def detail(self) -> str:
        """Why requests are refused now (the venue state's detail)."""
        return f"outside the trading session; next opens {self.next_open}"

    def _now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self._clock(), dt.UTC)

    def _delay_s(self, now: dt.datetime) -> float:
        return max(0.0, min(CHECK_S, (self._next - now).total_seconds()))

    def _check(self) -> None:
        assert self._schedule is not None
        now = self._now()
        current = session_at(self._schedule, now)
        old = self.window
        if current != old:
            self._gauge.set(1 if current is not None else 0)
            if old is not None:
                self.window = None
                self._log.info(
                    "fix_session_closed", session_start=old.key,
                    session_end=old.end.isoformat(), next_open=self.next_open,
                )  # fmt: skip
                self._on_close(old)
            if current is not None:
                self.window = current
                self._log.info(
                    "fix_session_opened", session_start=current.key,
                    session_end=current.end.isoformat(),
                )  # fmt: skip
                self._on_open(current)
        self._next = next_transition(self._schedule, now)
        self._timers.call_later(self._delay_s(now), self._check)


def failure_code(err: RequestFailed, *, in_session: bool) -> ErrorCode:
    """What the OMS is told for a failed request. One still queued (rate limit) when the
    session closed was never sent because the session closed: OUT_OF_SESSION, so the OMS
    rejects such a new order rather than send it into the next session; VENUE_DOWN (kept
    queued for the reconnect) only while in session."""
    if err.code is ErrorCode.VENUE_DOWN and not in_session:
        return ErrorCode.OUT_OF_SESSION
    return err.code
