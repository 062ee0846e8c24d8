"""The OMS's trading gate (`actors.oms.trading_gate`): refusal texts, the start-up warning,
transitions logged once, the metrics, a live config swap applied at the next check, and the
cached next change (no recomputation between changes)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from prometheus_client import REGISTRY

from actors.oms import trading_gate
from actors.oms.trading_gate import TradingGate
from protocol.windows import TradingCfg
from tests.log_stub import RecordingLog

T0 = dt.datetime(2025, 6, 3, 14, 0, tzinfo=dt.UTC)  # a Tuesday


class _Clock:
    def __init__(self, at: dt.datetime) -> None:
        self.now = at.timestamp()

    def __call__(self) -> float:
        return self.now

    def to(self, at: dt.datetime) -> None:
        self.now = at.timestamp()


class _Source:
    """The OMS's config as the gate reads it: swapped whole by a reload."""

    def __init__(self, **trading: Any) -> None:
        self.cfg = TradingCfg.model_validate(trading)
        self.reads = 0

    def __call__(self) -> TradingCfg:
        self.reads += 1
        return self.cfg


def blackout(start: dt.datetime, end: dt.datetime, reason: str = "FOMC") -> dict[str, str]:
    return {"start": start.isoformat(), "end": end.isoformat(), "reason": reason}


def gauge(name: str) -> float | None:
    return REGISTRY.get_sample_value(name)


def _window(log: RecordingLog) -> list[str]:
    """The window's state events (refusal lines aside)."""
    return [e for e in log.names() if e.startswith("trading_window")]


def test_starting_in_a_blackout_warns_and_refuses_with_the_reason_and_reopening() -> None:
    """Started inside a blackout: `trading_window_closed_at_start` (warning, with the
    reason and the next change); a new order is refused saying blackout, the reason and
    when it reopens (local time and countdown); the open gauge is 0, the next-change
    gauge is the blackout's end."""
    end = T0 + dt.timedelta(minutes=5)
    log, clock = RecordingLog(), _Clock(T0)
    src = _Source(timezone="America/New_York", blackouts=[blackout(T0, end)])
    gate = TradingGate(src, log, clock)
    level, event, fields = log.lines[0]
    assert (level, event) == ("warning", "trading_window_closed_at_start")
    assert fields == {"open": False, "why": "blackout", "reason": "FOMC",
                      "next_change": end.isoformat()}  # fmt: skip
    refusal = gate.refusal()
    assert refusal is not None
    why, text = refusal
    assert why == "blackout"
    assert text == (
        "trading closed: blackout (FOMC); reopens at 2025-06-03 10:05:00 EDT "
        "America/New_York (14:05:00 UTC), in 5m00s"
    )
    assert gate.closed_text() == text.replace("trading closed", "closed")
    assert gauge("tradepulse_trading_window_open") == 0
    assert gauge("tradepulse_trading_window_next_change_timestamp_seconds") == end.timestamp()


def test_the_state_flips_exactly_at_the_change_and_is_logged_once() -> None:
    """Just before the blackout ends: closed; at its end: open, `trading_window_opened`
    logged once (ticks after it log nothing), gauge 1, no next change."""
    end = T0 + dt.timedelta(minutes=5)
    log, clock = RecordingLog(), _Clock(T0)
    gate = TradingGate(_Source(blackouts=[blackout(T0, end)]), log, clock)
    clock.to(end - dt.timedelta(microseconds=1))
    assert gate.refusal() is not None
    clock.to(end)
    assert gate.refusal() is None
    gate.tick()
    gate.tick()
    assert _window(log) == ["trading_window_closed_at_start", "trading_window_opened"]
    assert gauge("tradepulse_trading_window_open") == 1
    assert gauge("tradepulse_trading_window_next_change_timestamp_seconds") == 0
    assert gate.info()["text"] == "open; no close scheduled"


def test_a_window_closing_logs_closed_with_the_next_open() -> None:
    """A window 09:00-14:30 UTC every day: open at 14:00, closes at 14:30 with
    `trading_window_closed` (warning) naming the next open, tomorrow 09:00."""
    every_day = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    log, clock = RecordingLog(), _Clock(T0)
    src = _Source(windows=[{"days": every_day, "start": "09:00", "end": "14:30"}])
    gate = TradingGate(src, log, clock)
    assert _window(log) == ["trading_window_open_at_start"]
    info = gate.info()
    assert info["open"] and info["next_change"] == "2025-06-03T14:30:00+00:00"
    assert info["next_change_in_s"] == 1800 and info["next_why"] == "outside_window"
    assert info["text"] == (
        "open; closes at 2025-06-03 14:30:00 UTC, in 30m00s: outside the trading windows"
    )
    clock.to(T0 + dt.timedelta(minutes=30))
    gate.tick()
    level, event, fields = log.lines[-1]
    assert (level, event) == ("warning", "trading_window_closed")
    assert fields["why"] == "outside_window"
    assert fields["next_change"] == "2025-06-04T09:00:00+00:00"
    assert gate.refusal() == (
        "outside_window",
        "trading closed: outside the trading windows; reopens at 2025-06-04 09:00:00 UTC, "
        "in 18h30m",
    )


def test_a_swapped_config_applies_at_the_next_check_without_a_restart() -> None:
    """The gate reads the config at every check: a reload that adds a blackout covering
    now closes intake at once (`trading_window_config_applied`, then
    `trading_window_closed`, and the on-close hook runs once: queued unsent orders are
    dropped); removing it reopens (`trading_window_opened`)."""
    log, clock = RecordingLog(), _Clock(T0)
    src = _Source()
    gate = TradingGate(src, log, clock)
    closes: list[str] = []
    gate.on_close = lambda: closes.append("closed")
    assert gate.refusal() is None and _window(log) == []
    src.cfg = TradingCfg.model_validate({"blackouts": [blackout(T0, T0 + dt.timedelta(hours=1))]})
    refusal = gate.refusal()
    assert refusal is not None and refusal[0] == "blackout"
    assert _window(log) == ["trading_window_config_applied", "trading_window_closed"]
    assert closes == ["closed"] and gate.closed
    src.cfg = TradingCfg()
    assert gate.refusal() is None
    assert _window(log)[2:] == ["trading_window_config_applied", "trading_window_opened"]
    assert closes == ["closed"] and not gate.closed
    assert gate.info()["text"] == "open (no trading windows configured)"


def test_the_clock_closing_the_window_runs_the_on_close_hook_once() -> None:
    """At the window's end the next check closes intake and runs `on_close` (the OMS
    drops every venue's queued unsent orders); checks while closed do not run it again."""
    log, clock = RecordingLog(), _Clock(T0)
    src = _Source(windows=[{"days": ["tue"], "start": "09:00", "end": "14:30"}])
    gate = TradingGate(src, log, clock)
    closes: list[str] = []
    gate.on_close = lambda: closes.append("closed")
    assert not gate.closed and closes == []
    clock.to(T0 + dt.timedelta(minutes=30))
    assert gate.closed and closes == ["closed"]
    gate.tick()
    clock.to(T0 + dt.timedelta(minutes=40))
    assert gate.closed and closes == ["closed"]


def test_the_calendar_is_consulted_only_when_the_next_change_is_due(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Between changes a check is a clock read and a comparison: the calendar is not asked
    again until the cached next change (or the hourly recheck) comes."""
    calls: list[str] = []
    real = trading_gate.TradingCalendar

    class Counting(real):  # type: ignore[misc, valid-type]
        def next_change(self, t: dt.datetime) -> Any:
            calls.append("next_change")
            return super().next_change(t)

    monkeypatch.setattr(trading_gate, "TradingCalendar", Counting)
    end = T0 + dt.timedelta(minutes=5)
    clock = _Clock(T0)
    gate = TradingGate(_Source(blackouts=[blackout(T0, end)]), RecordingLog(), clock)
    for s in range(0, 299, 7):
        clock.to(T0 + dt.timedelta(seconds=s))
        assert gate.refusal() is not None
    assert calls == ["next_change"]
    clock.to(end)
    assert gate.refusal() is None
    assert calls == ["next_change", "next_change"]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.2, "1s"), (59, "59s"), (61, "1m01s"), (3600, "1h00m"), (90061, "1d01h")],
)
def test_countdowns_are_coarse_and_readable(seconds: float, text: str) -> None:
    assert trading_gate._duration(seconds) == text


def test_a_reload_with_an_equal_section_logs_nothing() -> None:
    """A reload that rebuilt `[trading]` unchanged (a new, equal object) is not reported."""
    log, clock = RecordingLog(), _Clock(T0)
    src = _Source(blackouts=[blackout(T0, T0 + dt.timedelta(hours=1))])
    gate = TradingGate(src, log, clock)
    src.cfg = src.cfg.model_copy(deep=True)
    assert gate.refusal() is not None
    assert _window(log) == ["trading_window_closed_at_start"]


def test_a_clock_set_back_is_recomputed_not_served_from_the_cache() -> None:
    """After the blackout ended the clock is set back into it (NTP step): closed again at
    once, although the cached next change lies ahead."""
    end = T0 + dt.timedelta(minutes=5)
    clock = _Clock(T0)
    gate = TradingGate(_Source(blackouts=[blackout(T0, end)]), RecordingLog(), clock)
    clock.to(end + dt.timedelta(minutes=1))
    assert gate.refusal() is None
    clock.to(T0 + dt.timedelta(minutes=1))
    assert gate.refusal() is not None


def test_refusals_are_logged_within_a_budget() -> None:
    """A strategy hammering a closed window: a few `order_refused_trading_closed` lines,
    not one per order (every refusal is counted by intake's metric)."""
    log = RecordingLog()
    gate = TradingGate(_Source(blackouts=[blackout(T0, T0 + dt.timedelta(hours=1))]), log,
                       _Clock(T0))  # fmt: skip
    for _ in range(50):
        assert gate.refusal() is not None
    logged = log.events("order_refused_trading_closed")
    assert len(logged) == 3
    assert logged[0] == {"why": "blackout", "reason": "FOMC", "suppressed": 0}
