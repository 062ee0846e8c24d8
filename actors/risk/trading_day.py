"""The trading day `risk.max_daily_loss` counts over, and its baseline on disk.

A trading day starts at `risk.day_start` (a local time of day in `risk.day_timezone`) and is
named by the local date it starts on (`day_start = "17:00"` in America/New_York: the day
named 2026-12-07 runs from 17:00 that Monday to 17:00 on Tuesday). The daily loss is the
realised P&L at the day's start (its baseline) minus the realised P&L now. Risk's realised
P&L is the OMS book's, cumulative since the last cold start: without a baseline taken at
each boundary, yesterday's gains hid today's losses from the limit and yesterday's losses
halted today's trading.

`state/risk/trading_day.json` holds `{day, baseline}`, replaced whole with `write_atomic`
(temp file, fsync, rename, dir fsync) whenever a day starts. At risk's start, after its first
rebuild from the OMS: the stored day is the current one -> its baseline (a kill -9 of risk or
of the OMS, a warm start: the day's loss keeps counting); another day, or no file -> a new
day, whose baseline is the realised P&L at its start: the OMS marks each position's realised
P&L at the start of the day of its fills (`actors.oms.positions`, same `risk.day_start`; a
reload of it reaches the OMS too: `actors.supervisor.reload`), so fills after the boundary
while risk was down (crash-looping, resting orders filling at the venue) count to the new
day. A position whose P&L at the day's start the OMS does not know (marked for other days:
a reload the OMS did not confirm; P&L booked against no cost) counts at its P&L now, as
all did before, logged `risk_trading_day_baseline_approximate`; a cold start's opening
position is known (its P&L restarts at 0). A cold start moves the file to its archive
(the new book starts at 0). An unreadable file is logged (`risk_trading_day_unreadable`) and
a new day starts, but the loss of the day so far is then unknown: risk engages the
kill-switch (`state_unreadable`, as for an unreadable kill-switch file) and an operator
decides.

The boundary is a timer, not a look at every turn: the next boundary is computed and the
timer set for it (at most `_MAX_WAIT_S` ahead: it looks at the wall clock again, for a clock
step or a suspended host). A reload of `day_start` / `day_timezone` keeps the baseline of the
day in progress (its loss keeps counting), names it as the new setting does, and waits for
the new setting's next boundary.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from actors.runtime import metrics
from actors.runtime.durable import remove_stale_temps, write_atomic
from protocol.config import RiskLimitsCfg
from protocol.day_clock import DayClock
from protocol.paths import read_regular, trading_day_path

_MAX_WAIT_S = 60.0  # the boundary timer looks at the wall clock at least this often
_NS_PER_S = 1_000_000_000
_NEVER_NS = 1 << 63  # after any journal time
GAUGE_INTERVAL_S = 1.0  # tradepulse_risk_daily_realized_pnl is refreshed this often


class _Gate(Protocol):
    """What the day needs of the gate (`actors.risk.checks.RiskGate`)."""

    limits: RiskLimitsCfg

    @property
    def day_start_pnl(self) -> Decimal: ...

    def start_trading_day(self, baseline: Decimal | None = None) -> None: ...

    def realized_pnl(self) -> Decimal: ...

    def realized_pnl_at(self, start_ns: int) -> tuple[Decimal, list[str]]: ...


class DayRecord(BaseModel):
    """The file's content: the trading day in progress and the realised P&L it started at."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[1] = 1
    day: dt.date
    baseline: Annotated[Decimal, Field(allow_inf_nan=False)]
    ts_ns: int = 0  # when it was written


class TradingDay:
    """Owns the gate's daily-loss baseline: sets it at `begin` (risk's first rebuild) and at
    every boundary, persists it, publishes the day's realised P&L as a gauge."""

    def __init__(
        self,
        cfg: RiskLimitsCfg,
        state_dir: Path,
        gate: _Gate,
        *,
        log: Any,
        call_later: Callable[[float, Callable[[], None]], None],
        call_every: Callable[[float, Callable[[], None]], None],
    ) -> None:
        self.clock = DayClock.of(cfg)
        self.path = trading_day_path(state_dir)
        self.gate = gate
        self.log = log
        self.wall: Callable[[], float] = time.time  # tests move it
        self.day: dt.date | None = None  # None until `begin`
        self.unreadable: str | None = None  # why the stored day could not be read, at `begin`
        self._call_later = call_later
        self._next = 0.0  # the next boundary (epoch seconds)
        self._next_ns = _NEVER_NS  # the same in epoch ns (`at_event`; none before `begin`)
        self._timer = 0  # the armed timer's number: a timer armed since makes it a no-op
        self._gauge = metrics.RISK_DAILY_REALIZED_PNL
        call_every(GAUGE_INTERVAL_S, self.publish)

    def begin(self) -> str | None:
        """The day at start, once the gate's exposure is the OMS's (its realised P&L is the
        book's): the stored day's baseline if it is still that day, else a new day now.
        Returns why the stored day could not be read (None: read, or none stored)."""
        now = self.wall()
        today = self.clock.day_at(now)
        remove_stale_temps(self.path)  # risk is the file's one writer
        self.unreadable = None
        stored = self._load()
        if stored is not None and stored.day == today:
            self.day = today
            self.gate.start_trading_day(stored.baseline)
            self.log.info("risk_trading_day_resumed", day=str(today), baseline=str(stored.baseline))
        else:
            self._start(today, previous=stored.day if stored is not None else None, late=True)
        self._arm(now)
        self.publish()
        return self.unreadable

    def at_event(self, ts_ns: int) -> None:
        """An order event the OMS stamped at `ts_ns` (its journal time, the OMS's day marks'
        clock), before risk applies it: one stamped at or past the next boundary starts the
        new day first, so its fill counts to that day. The timer alone came too late when
        risk read the events first (a loop turn runs its handlers before its due timers):
        a risk stalled over the boundary (stopped, starved, a long turn) took the fills
        made after it into the day before (found by review, reproduced on the actor's
        loop: tests/risk/test_trading_day_actor.py)."""
        if ts_ns >= self._next_ns and self.wall() >= self._next:
            self._wake(self._timer)

    def at_rebuild(self) -> None:
        """The gate's exposure was just rebuilt (before the events buffered meanwhile are
        applied): past the boundary the timer has not run for yet, the rebuilt P&L holds
        the fills made after it, so the new day starts now at the P&L at the day's start
        as the OMS marked it (`realized_pnl_at`, as at risk's start; found by review: the
        timer took the rebuilt P&L as the baseline, the day's loss so far uncounted)."""
        if self.day is None or self.wall() < self._next:
            return
        now = self.wall()
        day = self.clock.day_at(now)
        if day > self.day:
            self._start(day, previous=self.day, late=True)
            self.publish()
        self._arm(now)

    def reconfigure(self, cfg: RiskLimitsCfg) -> None:
        """A reload: the day in progress keeps its baseline, named as the new setting names
        it, and ends at the new setting's next boundary."""
        new = DayClock.of(cfg)
        if new == self.clock:
            return
        self.clock = new
        if self.day is None:
            return  # `begin` reads it
        now = self.wall()
        day = new.day_at(now)
        if day != self.day:
            self.log.info("risk_trading_day_renamed", day=str(day), previous_day=str(self.day))
            self.day = day
            self._save()
        self._arm(now)

    def publish(self) -> None:
        if self.day is not None:
            self._gauge.set(float(self.gate.realized_pnl() - self.gate.day_start_pnl))

    def summary(self) -> dict[str, Any]:
        """Today's figures, for `tradepulse exposure` (None before `begin`)."""
        if self.day is None:
            return {"day": None}
        realized, baseline = self.gate.realized_pnl(), self.gate.day_start_pnl
        started = dt.datetime.fromtimestamp(self.clock.start_of(self.day), dt.UTC)
        return {
            "day": self.day.isoformat(), "started_at": started.isoformat(),
            "baseline": str(baseline), "realized_pnl": str(realized),
            "daily_realized_pnl": str(realized - baseline),
            "max_daily_loss": str(self.gate.limits.max_daily_loss),
        }  # fmt: skip

    # ------------------------------------------------------------------ internals

    def _start(self, day: dt.date, previous: dt.date | None, *, late: bool = False) -> None:
        """`late`: at risk's start, after the boundary: the baseline is the realised P&L
        at the day's start as the OMS marked it (fills since, risk down, count to today)."""
        unknown: list[str] = []
        if late:
            baseline, unknown = self.gate.realized_pnl_at(self.clock.start_ns(day))
            self.gate.start_trading_day(baseline)
        else:
            self.gate.start_trading_day()
        self.day = day
        baseline = self.gate.day_start_pnl
        self.log.info(
            "risk_trading_day_started", day=str(day), baseline=str(baseline),
            previous_day=str(previous) if previous is not None else None,
        )  # fmt: skip
        if unknown:  # their fills since the day's start count to the day before
            self.log.warning("risk_trading_day_baseline_approximate", day=str(day),
                             positions=unknown[:20], count=len(unknown))  # fmt: skip
        self._save()

    def _arm(self, now: float) -> None:
        self._next = self.clock.next_start(now)
        self._next_ns = round(self._next) * _NS_PER_S
        self._timer += 1
        number = self._timer
        delay = min(max(self._next - now, 0.0), _MAX_WAIT_S)
        self._call_later(delay, lambda: self._wake(number))

    def _wake(self, number: int) -> None:
        if number != self._timer or self.day is None:
            return  # re-armed since (a reload)
        now = self.wall()
        day = self.clock.day_at(now)
        if day > self.day:  # (not at a clock stepped back: the day in progress goes on)
            self._start(day, previous=self.day)
            self.publish()
        self._arm(now)

    def _save(self) -> None:
        """Persist the day and its baseline; a failure is logged and the day goes on in
        memory (a restart of risk before the next good write then starts a new day)."""
        assert self.day is not None
        record = DayRecord(day=self.day, baseline=self.gate.day_start_pnl, ts_ns=time.time_ns())
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self.path, record.model_dump_json().encode() + b"\n")
        except OSError as exc:
            self.log.error("risk_trading_day_persist_failed", day=str(self.day), error=str(exc))

    def _load(self) -> DayRecord | None:
        try:
            raw = read_regular(self.path)  # a FIFO in its place: unreadable, not waited on
        except FileNotFoundError:
            return None
        except OSError as exc:
            detail = f"{type(exc).__name__}: {exc}"
        else:
            try:
                return DayRecord.model_validate_json(raw)
            except ValidationError as exc:
                detail = f"{exc.error_count()} validation error(s): {exc.errors()[0]['msg']}"
        self.log.error("risk_trading_day_unreadable", path=str(self.path), detail=detail)
        self.unreadable = f"{self.path}: {detail}"
        return None
