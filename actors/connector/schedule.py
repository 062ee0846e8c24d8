"""A venue's trading-session schedule as pure functions of (ScheduleCfg, UTC time).

    window = session_at(cfg, now)      # the session `now` is in, or None (out of session)
    when = next_transition(cfg, now)   # the next open or close strictly after `now`

A session opens at `start` (local time in `timezone`) on each of `days` and closes at the
next `end`: the same day if `end` is after `start`, else the next day (a session crossing
midnight); `end` equal to `start` is a 24-hour session (23 or 25 hours on a DST change
day: local clock times, like QuickFIX). `days` are the days a session *starts*.

Local times are converted with zoneinfo: a time that does not exist on a spring-forward
day (02:30 in New York) is taken with the offset before the change (it falls an hour
later on the wall clock, 03:30); a time that exists twice on a fall-back day is its first
occurrence. Sessions of consecutive days that touch (end = next start) are separate
sessions: the connector logs out and on again between them (a daily reset, if any).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from protocol.fix_config import WEEKDAYS, ScheduleCfg

_UTC = dt.UTC
_SCAN_DAYS = 8  # a week of candidate start days, plus the one before


@dataclass(frozen=True, order=True)
class SessionWindow:
    """One trading session: [start, end) in UTC."""

    start: dt.datetime
    end: dt.datetime

    @property
    def key(self) -> str:
        """A stable name of the session (its start, UTC, ISO 8601)."""
        return self.start.astimezone(_UTC).isoformat()

    def __contains__(self, when: dt.datetime) -> bool:
        return self.start <= when < self.end


def _local(cfg: ScheduleCfg, day: dt.date, clock: dt.time) -> dt.datetime:
    """`day` at `clock` in the schedule's zone, as UTC (fold=0: see the module docstring)."""
    return dt.datetime.combine(day, clock, tzinfo=cfg.zone).astimezone(_UTC)


def _window(cfg: ScheduleCfg, day: dt.date) -> SessionWindow:
    start_t, end_t = cfg.start_time, cfg.end_time
    end_day = day if end_t > start_t else day + dt.timedelta(days=1)
    return SessionWindow(_local(cfg, day, start_t), _local(cfg, end_day, end_t))


def _windows(cfg: ScheduleCfg, now: dt.datetime, before: int, after: int) -> list[SessionWindow]:
    """The sessions starting on local days from `before` days before `now` to `after`
    days after it, in order."""
    today = now.astimezone(cfg.zone).date()
    days = set(cfg.days)
    out = []
    for offset in range(-before, after + 1):
        day = today + dt.timedelta(days=offset)
        if WEEKDAYS[day.weekday()] in days:
            out.append(_window(cfg, day))
    return out


def _utc(now: dt.datetime) -> dt.datetime:
    if now.tzinfo is None:
        raise ValueError("a schedule needs an aware datetime (UTC)")
    return now.astimezone(_UTC)


def session_at(cfg: ScheduleCfg, now: dt.datetime) -> SessionWindow | None:
    """The session `now` is in (the latest to start, if two touch), or None."""
    now = _utc(now)
    inside = [w for w in _windows(cfg, now, 2, 0) if now in w]
    return inside[-1] if inside else None


def next_session(cfg: ScheduleCfg, now: dt.datetime) -> SessionWindow:
    """The first session that starts strictly after `now`."""
    now = _utc(now)
    return next(w for w in _windows(cfg, now, 0, _SCAN_DAYS) if w.start > now)


def next_transition(cfg: ScheduleCfg, now: dt.datetime) -> dt.datetime:
    """The next moment strictly after `now` at which a session opens or closes."""
    now = _utc(now)
    current = session_at(cfg, now)
    upcoming = next_session(cfg, now).start
    return min(current.end, upcoming) if current is not None else upcoming
