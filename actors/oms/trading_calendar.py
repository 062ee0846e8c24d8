"""Trading windows and blackouts (`[trading]`, `protocol.windows`) as pure functions of
(config, UTC instant):

    cal = TradingCalendar(cfg.trading)
    cal.state_at(t)      # open? if not: outside the windows, or which blackout
    cal.next_change(t)   # the first instant after t where open/closed flips, and the
                         # state from then on (None: no change is scheduled)

Open = inside some window (or no windows configured) and inside no blackout. Windows and
blackouts are sets of intervals [start, end): adjacent or overlapping windows are one open
stretch, so no change is reported where one window ends and the next begins.

Local times are converted with zoneinfo, as the venue session schedule does
(`actors.connector.schedule`): a time that does not exist on a spring-forward day (02:30
in New York) is taken with the offset before the change (03:30 on the wall clock); a
time that exists twice on a fall-back day is its first occurrence. A rule whose start and
end fall so that the interval is empty on a DST day (02:30-03:00 on the spring-forward
day) is closed that day. A window lasts the local clock time it says (23 or 25 hours of
real time across a change).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from protocol.fix_config import WEEKDAYS
from protocol.windows import BlackoutCfg, TradingCfg, WindowCfg

Why = Literal["open", "outside_window", "blackout"]

_UTC = dt.UTC
_DAY = dt.timedelta(days=1)
_CHUNK_DAYS = 8  # boundaries are searched a chunk of local days at a time
_QUIET = dt.timedelta(days=15)  # weekly rules repeat: a fortnight shows all they do
_HORIZON = dt.timedelta(days=400)  # bound of the search past the one-offs covering t


@dataclass(frozen=True)
class WindowState:
    """Whether new orders are taken at an instant, and if not, why."""

    open: bool
    why: Why = "open"
    reason: str = ""  # the blackout's reason

    @property
    def text(self) -> str:
        if self.why == "blackout":
            return f"blackout ({self.reason})"
        return "outside the trading windows" if self.why == "outside_window" else "open"


OPEN = WindowState(True)
OUTSIDE = WindowState(False, "outside_window")


@dataclass(frozen=True)
class Change:
    """The next flip between open and closed: when, and the state from then on."""

    at: dt.datetime
    state: WindowState


class _Rule:
    """A weekly rule (a window or a recurring blackout) in a zone."""

    def __init__(self, cfg: WindowCfg, zone: dt.tzinfo) -> None:
        self.weekdays = frozenset(WEEKDAYS.index(d) for d in cfg.days)
        self.start, self.end = cfg.start_time, cfg.end_time
        self.end_days = 1 if cfg.ends_next_day else 0
        self.zone = zone

    def interval(self, day: dt.date) -> tuple[dt.datetime, dt.datetime] | None:
        """[start, end) in UTC of the occurrence starting on local `day`; None: the rule
        does not start that day, or its occurrence is empty (a DST gap)."""
        if day.weekday() not in self.weekdays:
            return None
        start = _local(day, self.start, self.zone)
        end = _local(day + dt.timedelta(days=self.end_days), self.end, self.zone)
        return (start, end) if end > start else None

    def contains(self, t: dt.datetime, today: dt.date) -> bool:
        """Whether UTC `t` (local date `today`) is inside an occurrence (one that started
        today, yesterday or the day before: an occurrence lasts at most 25 hours)."""
        for back in (0, 1, 2):
            span = self.interval(today - dt.timedelta(days=back))
            if span is not None and span[0] <= t < span[1]:
                return True
        return False


def _local(day: dt.date, clock: dt.time, zone: dt.tzinfo) -> dt.datetime:
    return dt.datetime.combine(day, clock, tzinfo=zone).astimezone(_UTC)


def _utc(t: dt.datetime) -> dt.datetime:
    if t.tzinfo is None:
        raise ValueError("a trading calendar needs an aware datetime (UTC)")
    return t.astimezone(_UTC)


class TradingCalendar:
    """The `[trading]` section, ready to answer `state_at` and `next_change`."""

    def __init__(self, cfg: TradingCfg) -> None:
        self.zone = cfg.zone
        self.windows = [_Rule(w, self.zone) for w in cfg.windows]
        self.weekly: list[tuple[_Rule, str]] = []
        self.one_off: list[tuple[dt.datetime, dt.datetime, str]] = []
        for b in cfg.blackouts:
            self._add_blackout(b)
        self.one_off.sort()

    def _add_blackout(self, b: BlackoutCfg) -> None:
        rule = b.recurring
        if rule is not None:
            self.weekly.append((_Rule(rule, self.zone), b.reason))
        else:
            self.one_off.append((*b.span(self.zone), b.reason))

    @property
    def always_open(self) -> bool:
        return not (self.windows or self.weekly or self.one_off)

    def state_at(self, t: dt.datetime) -> WindowState:
        """Open or closed at `t` (aware); a blackout wins over a window (the first listed
        one-off, else the first listed weekly one, names the reason)."""
        t = _utc(t)
        for start, end, reason in self.one_off:
            if start <= t < end:
                return WindowState(False, "blackout", reason)
        today = t.astimezone(self.zone).date()
        for rule, reason in self.weekly:
            if rule.contains(t, today):
                return WindowState(False, "blackout", reason)
        if self.windows and not any(w.contains(t, today) for w in self.windows):
            return OUTSIDE
        return OPEN

    def next_change(self, t: dt.datetime) -> Change | None:
        """The first instant strictly after `t` at which open/closed differs from `t`'s,
        with the state from then on; None if there is none (always open, always closed,
        or nothing within `_HORIZON` of the end of the one-off blackouts covering `t`)."""
        t = _utc(t)
        if self.always_open:
            return None
        was_open = self.state_at(t).open
        # inside one-off blackouts nothing flips before the last of them ends: start there
        s = self._past_one_offs(t)
        if s != t:
            state = self.state_at(s)
            if state.open != was_open:
                return Change(s, state)
        day, floor = s.astimezone(self.zone).date(), s
        weekly_opens = was_open  # whether the weekly rules alone open at some point
        while floor < s + _HORIZON:
            if not was_open and (past := self._past_one_offs(floor)) != floor:
                # closed by one-off blackouts until `past`: nothing flips before (a year-long
                # one is not swept a chunk at a time)
                state = self.state_at(past)
                if state.open:
                    return Change(past, state)
                day, floor = past.astimezone(self.zone).date(), past
            cutoff = _local(day + _CHUNK_DAYS * _DAY, dt.time(0), self.zone)
            for edge, is_open, weekly_open in self._sweep(day, floor, cutoff):
                if edge > s and is_open != was_open:
                    return Change(edge, self.state_at(edge))
                weekly_opens = weekly_opens or weekly_open
            if not weekly_opens and cutoff - s >= _QUIET:
                return None  # closed by the weekly rules alone for good: one-offs only close
            if cutoff - self._one_offs_seen(s, cutoff) >= _QUIET:
                # a fortnight with no flip and no one-off blackout: the weekly rules hold
                # `was_open` for good, and only a later one-off blackout can close it
                later = next((a for a, _, _ in self.one_off if a >= cutoff), None)
                if not was_open or later is None:
                    return None
                return Change(later, self.state_at(later))
            day, floor = day + _CHUNK_DAYS * _DAY, cutoff
        return None

    def _past_one_offs(self, t: dt.datetime) -> dt.datetime:
        s = t
        while True:
            ends = [end for start, end, _ in self.one_off if start <= s < end]
            if not ends:
                return s
            s = max(ends)

    def _one_offs_seen(self, s: dt.datetime, cutoff: dt.datetime) -> dt.datetime:
        """The last instant before `cutoff` at which a one-off blackout after `s` began,
        ended or was still running (`s` if none)."""
        return max([s, *(min(b, cutoff) for a, b, _ in self.one_off if a < cutoff and b > s)])

    def _sweep(
        self, day: dt.date, floor: dt.datetime, cutoff: dt.datetime
    ) -> Iterator[tuple[dt.datetime, bool, bool]]:
        """(instant, open from then on, open by the weekly rules alone) at every boundary
        in [floor, cutoff), in order: one sweep over the intervals that overlap it - the
        one-off blackouts, and the occurrences of the weekly rules starting on local days
        [day - 2, day + chunk) (an occurrence lasts at most 25 hours; one starting on a
        later day has no boundary before `cutoff`, that day's local midnight)."""
        events: list[tuple[dt.datetime, int, int, int]] = []  # at, +-1: window, weekly, once

        def add(span: tuple[dt.datetime, dt.datetime] | None, w: int, k: int, o: int) -> None:
            # (one ending at `floor` too: its end may be the flip at the chunk's first instant)
            if span is not None and span[1] >= floor and span[0] < cutoff:
                events.append((span[0], w, k, o))
                events.append((span[1], -w, -k, -o))

        for offset in range(-2, _CHUNK_DAYS):
            local_day = day + offset * _DAY
            for rule in self.windows:
                add(rule.interval(local_day), 1, 0, 0)
            for rule, _ in self.weekly:
                add(rule.interval(local_day), 0, 1, 0)
        for start, end, _ in self.one_off:
            add((start, end), 0, 0, 1)
        events.sort(key=lambda e: e[0])
        windows = weekly = once = 0
        always = not self.windows
        for i, (at, dw, dk, do) in enumerate(events):
            windows, weekly, once = windows + dw, weekly + dk, once + do
            last_at_instant = i + 1 == len(events) or events[i + 1][0] != at
            if last_at_instant and floor <= at < cutoff:
                weekly_open = (always or windows > 0) and weekly == 0
                yield at, weekly_open and once == 0, weekly_open
