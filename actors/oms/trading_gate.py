"""The OMS's view of the trading windows: is intake open by the calendar now, and why not.

`TradingGate` answers from `actors.oms.trading_calendar` but recomputes only when needed:
it keeps the state and the instant of the next change, and refreshes when that instant
has passed, when the config object it reads changed (a live `reload` swaps the OMS's
config: the windows are read from it at every check, never copied at start), and at least
every `RECHECK_S`. So a check on the order path is one clock read and two comparisons.

A tick every `TICK_S` (an OMS timer) keeps the metrics (`tradepulse_trading_window_open`,
`..._next_change_timestamp_seconds`) and the log current between orders. Log events:
`trading_window_closed_at_start` (warning: the OMS started outside the windows or in a
blackout) or `trading_window_open_at_start` (info, with windows configured),
`trading_window_opened` (info), `trading_window_closed` (warning, also when the
reason changes, and after a reload that opens or closes), `trading_window_config_applied`
(info, after a reload),
`order_refused_trading_closed` (info, at most 3 per 10 s with the count left out; every
refusal is counted in `tradepulse_orders_refused_total{reason="outside_trading_window"}`).

When trading closes (by the clock or by a reload) `on_close` runs: the OMS drops every
venue's queued new orders that were never sent (`drop_unsent`: REJECTED with
`DROPPED_OUTSIDE_TRADING_WINDOW`), as a venue session close does; an order accepted while
open is never sent into a closed window.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from actors.oms.trading_calendar import OPEN, Change, TradingCalendar, WindowState
from actors.runtime import metrics
from actors.runtime.ratelog import LogBudget
from protocol.config import SystemConfig
from protocol.windows import TradingCfg

TICK_S = 1.0
RECHECK_S = 3600.0  # recomputed at least this often, whatever the cached next change


class GateHost(Protocol):
    """What the gate needs of the OMS (`actors.oms.actor.OmsActor`)."""

    @property
    def cfg(self) -> SystemConfig: ...

    @property
    def log(self) -> Any: ...

    @property
    def venues(self) -> Mapping[str, _Queue]: ...

    def call_every(self, interval_s: float, fn: Callable[[], None]) -> None: ...


class _Queue(Protocol):
    def drop_unsent(self) -> None:
        """Reject the queued new orders the host will not send now."""
        ...


class TradingGate:
    def __init__(
        self,
        trading: Callable[[], TradingCfg],
        log: Any,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._source = trading
        self._log = log
        self._clock = clock
        self._cfg = trading()
        self._calendar = TradingCalendar(self._cfg)
        self._state: WindowState = OPEN
        self._change: Change | None = None
        self._due = -math.inf
        self._at = -math.inf  # the clock at the last refresh
        self._refusals_log = LogBudget(burst=3, window_s=10.0)
        self.on_close: Callable[[], None] | None = None  # run when trading closes
        self._refresh(self._clock(), at_start=True)

    @classmethod
    def start(cls, host: GateHost) -> TradingGate:
        """The gate of the OMS `host`, reading `host.cfg.trading`, ticking on its timer."""
        gate = cls(lambda: host.cfg.trading, host.log)
        host.call_every(TICK_S, gate.tick)

        def drop_unsent() -> None:
            for link in host.venues.values():
                link.drop_unsent()

        gate.on_close = drop_unsent
        return gate

    # ------------------------------------------------------------------ checks

    def tick(self) -> None:
        """Refresh if the next change has come, or the config changed."""
        cfg, now = self._source(), self._clock()
        if cfg is not self._cfg:
            same = cfg == self._cfg  # a reload that rebuilt an unchanged section
            self._cfg, self._calendar = cfg, TradingCalendar(cfg)
            self._refresh(now, reloaded=not same)
        elif now >= self._due or now < self._at:  # due, or the clock was set back
            self._refresh(now)

    @property
    def state(self) -> WindowState:
        self.tick()
        return self._state

    def refusal(self) -> tuple[str, str] | None:
        """Why a new order is refused now, as (why, text), or None while open."""
        state = self.state
        if state.open:
            return None
        if (skipped := self._refusals_log.take()) is not None:
            self._log.info("order_refused_trading_closed", why=state.why, reason=state.reason,
                           suppressed=skipped)  # fmt: skip
        return state.why, f"trading closed: {state.text}; {self._reopen()}"

    @property
    def closed(self) -> bool:
        """Whether the calendar closes trading now (no log, no count: `refusal` does)."""
        return not self.state.open

    def closed_text(self) -> str | None:
        """The intake state while the calendar closes it ("closed: ..."), else None."""
        state = self.state
        return None if state.open else f"closed: {state.text}; {self._reopen()}"

    def info(self) -> dict[str, Any]:
        """The window state for `status` / `intake status` (JSON-able)."""
        state, change = self.state, self._change
        zone = self._cfg.timezone
        out: dict[str, Any] = {
            "open": state.open, "why": state.why, "reason": state.reason, "timezone": zone,
            "configured": self._cfg.configured, "next_change": None, "next_change_in_s": None,
            "next_why": None, "next_reason": None,
        }  # fmt: skip
        if change is not None:
            out["next_change"] = change.at.isoformat()
            out["next_change_in_s"] = round(change.at.timestamp() - self._clock(), 3)
            out["next_why"], out["next_reason"] = change.state.why, change.state.reason
        out["text"] = self._summary(state, change)
        return out

    # ------------------------------------------------------------------ internals

    def _refresh(self, now: float, *, at_start: bool = False, reloaded: bool = False) -> None:
        t = dt.datetime.fromtimestamp(now, dt.UTC)
        self._at = now
        was = self._state
        self._state = self._calendar.state_at(t)
        self._change = self._calendar.next_change(t)
        due = self._change.at.timestamp() if self._change is not None else math.inf
        self._due = min(due, now + RECHECK_S)
        metrics.TRADING_WINDOW_OPEN.set(1 if self._state.open else 0)
        metrics.TRADING_WINDOW_NEXT_CHANGE.set(0 if math.isinf(due) else due)
        fields = self._fields()
        if at_start:
            if not self._state.open:
                self._log.warning("trading_window_closed_at_start", **fields)
            elif self._cfg.configured:
                self._log.info("trading_window_open_at_start", **fields)
            return
        if reloaded:
            self._log.info("trading_window_config_applied", **fields)
        if self._state != was:
            event = "trading_window_opened" if self._state.open else "trading_window_closed"
            (self._log.info if self._state.open else self._log.warning)(event, **fields)
        if was.open and not self._state.open and self.on_close is not None:
            self.on_close()

    def _fields(self) -> dict[str, Any]:
        change = self._change
        return {
            "open": self._state.open,
            "why": self._state.why,
            "reason": self._state.reason,
            "next_change": change.at.isoformat() if change else None,
        }

    def _reopen(self) -> str:
        change = self._change
        return f"reopens {self._when(change.at)}" if change else "no reopening scheduled"

    def _summary(self, state: WindowState, change: Change | None) -> str:
        if not self._cfg.configured:
            return "open (no trading windows configured)"
        if not state.open:
            return f"closed: {state.text}; {self._reopen()}"
        if change is None:
            return "open; no close scheduled"
        return f"open; closes {self._when(change.at)}: {change.state.text}"

    def _when(self, at: dt.datetime) -> str:
        """`at` for people: local time in the configured zone, UTC, and how far off."""
        utc = at.astimezone(dt.UTC)
        local = at.astimezone(self._cfg.zone)
        when = f"at {utc:%Y-%m-%d %H:%M:%S} UTC"
        if self._cfg.timezone != "UTC":
            when = f"at {local:%Y-%m-%d %H:%M:%S %Z} {self._cfg.timezone} ({utc:%H:%M:%S} UTC)"
        return f"{when}, in {_duration(at.timestamp() - self._clock())}"


def _duration(seconds: float) -> str:
    """A coarse countdown: 45s, 12m30s, 3h05m, 2d04h."""
    s = max(0, math.ceil(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"
