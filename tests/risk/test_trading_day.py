"""`risk.max_daily_loss` counts over a trading day (`actors.risk.trading_day`), with an
injected wall clock and timers. Before, nothing ever started a trading day: risk's realised
P&L is the OMS book's since the last cold start, so over warm starts day after day the
"daily" loss ran since that cold start (yesterday's gains hid today's losses, yesterday's
losses halted today's trading)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from actors.risk.checks import ExposureView, ReasonCode, RiskGate
from actors.risk.trading_day import TradingDay
from protocol.config import RiskLimitsCfg
from protocol.day_clock import DayClock
from protocol.messages import OrdType, PositionView, RiskCheck, Side
from protocol.paths import trading_day_path
from tests.log_stub import RecordingLog

D = Decimal
LIMITS = RiskLimitsCfg(max_daily_loss=D(1_000_000), price_band_pct=1000.0)


def ts(text: str) -> float:
    return dt.datetime.fromisoformat(text).timestamp()


class Loop:
    """The actor's timers and wall clock, moved by the test."""

    def __init__(self, now: str) -> None:
        self.now = ts(now)
        self.timers: list[tuple[float, Callable[[], None]]] = []  # (due wall time, fn)

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> None:
        self.timers.append((self.now + delay_s, fn))

    def call_every(self, _interval_s: float, _fn: Callable[[], None]) -> None:
        pass

    def advance(self, to: str) -> None:
        """Move the clock to `to`, running each timer due on the way at its time."""
        end = ts(to)
        while due := [t for t in self.timers if t[0] <= end]:
            first = min(due, key=lambda t: t[0])
            self.timers.remove(first)
            self.now = max(self.now, first[0])
            first[1]()
        self.now = end


def gate_with(realized: str | int, limits: RiskLimitsCfg = LIMITS) -> RiskGate:
    g = RiskGate(limits, reference_prices={"AAPL": D(100)})
    set_realized(g, realized)
    return g


def set_realized(g: RiskGate, realized: str | int) -> None:
    """The OMS book's realised P&L, as a rebuild of the gate's exposure would bring it."""
    row = PositionView(venue="sim", symbol="AAPL", qty=D(0), realized_pnl=D(realized))
    g.exposure = ExposureView.rebuild([], [row])


def day_of(g: RiskGate, loop: Loop, state: Path, log: RecordingLog, **cfg: str) -> TradingDay:
    limits = LIMITS.model_copy(update=cfg)
    day = TradingDay(limits, state, g, log=log, call_later=loop.call_later,
                     call_every=loop.call_every)  # fmt: skip
    day.wall = lambda: loop.now
    return day


def check(coid: str = "c1") -> RiskCheck:
    return RiskCheck(client_order_id=coid, venue="sim", symbol="AAPL", side=Side.BUY,
                     qty=D(1), order_type=OrdType.LIMIT, price=D(100))  # fmt: skip


def events(log: RecordingLog, name: str) -> list[dict[str, object]]:
    return [fields for _level, event, fields in log.lines if event == name]


# --------------------------------------------------------------------------- the clock


def test_a_day_starts_at_day_start_in_its_zone_and_is_named_by_its_start_date() -> None:
    """17:00 New York: the day named 2026-12-07 runs from 17:00 EST (22:00 UTC) that day to
    17:00 the next; across the March DST change the day is 23 hours long."""
    c = DayClock.of(LIMITS.model_copy(update={"day_start": "17:00",
                                               "day_timezone": "America/New_York"}))  # fmt: skip
    assert c.day_at(ts("2026-12-07T21:59:59+00:00")) == dt.date(2026, 12, 6)
    assert c.day_at(ts("2026-12-07T22:00:00+00:00")) == dt.date(2026, 12, 7)
    assert c.next_start(ts("2026-12-07T12:00:00+00:00")) == ts("2026-12-07T22:00:00+00:00")
    assert c.next_start(ts("2026-12-07T22:00:00+00:00")) == ts("2026-12-08T22:00:00+00:00")
    # 2027-03-14: clocks go forward at 02:00 EST; 17:00 EDT is 21:00 UTC
    assert c.start_of(dt.date(2027, 3, 14)) - c.start_of(dt.date(2027, 3, 13)) == 23 * 3600
    utc = DayClock.of(LIMITS)
    assert utc.day_at(ts("2026-12-07T00:00:00+00:00")) == dt.date(2026, 12, 7)
    assert utc.day_at(ts("2026-12-06T23:59:59+00:00")) == dt.date(2026, 12, 6)


# --------------------------------------------------------------------------- the day


def test_yesterdays_gain_no_longer_offsets_todays_loss(tmp_path: Path) -> None:
    """A +500k day, then a -1.4M day against a 1M limit: at the boundary the baseline
    becomes +500k, so today's loss is 1.4M and the next order is refused `daily_loss`.
    Before, the loss counted from the last cold start: -900k, under the limit, approved."""
    loop, log = Loop("2026-12-07T09:00:00+00:00"), RecordingLog()
    g = gate_with(0)
    day = day_of(g, loop, tmp_path, log)
    day.begin()
    assert events(log, "risk_trading_day_started")[-1]["day"] == "2026-12-07"
    set_realized(g, 500_000)  # the day's gain
    loop.advance("2026-12-08T00:00:01+00:00")  # the boundary timer fires
    started = events(log, "risk_trading_day_started")[-1]
    assert (started["day"], started["baseline"]) == ("2026-12-08", "500000")
    set_realized(g, -900_000)  # today: -1.4M
    assert g.daily_loss() == D(1_400_000)
    verdict = g.check(check(), now_ns=1)
    assert verdict.code is ReasonCode.DAILY_LOSS, verdict
    assert day.summary()["daily_realized_pnl"] == "-1400000"
    stored = json.loads(trading_day_path(tmp_path).read_text())
    assert (stored["day"], D(stored["baseline"])) == ("2026-12-08", D(500_000))


def test_a_restart_of_risk_mid_day_keeps_the_baseline(tmp_path: Path) -> None:
    """The day started at +500k; risk is killed and starts again the same day (its
    exposure rebuilt from the OMS: -900k): the stored baseline stands, the loss is 1.4M and
    the order is refused. A baseline taken anew at the restart would count 0."""
    loop, log = Loop("2026-12-07T09:00:00+00:00"), RecordingLog()
    day_of(gate_with(500_000), loop, tmp_path, log).begin()
    loop.advance("2026-12-07T15:00:00+00:00")
    g = gate_with(-900_000)  # the new incarnation's first rebuild
    log2 = RecordingLog()
    day_of(g, loop, tmp_path, log2).begin()
    assert events(log2, "risk_trading_day_started") == []
    resumed = events(log2, "risk_trading_day_resumed")
    assert resumed == [{"day": "2026-12-07", "baseline": "500000"}]
    assert g.check(check(), now_ns=1).code is ReasonCode.DAILY_LOSS


def test_a_start_on_a_new_day_resets_the_baseline(tmp_path: Path) -> None:
    """Yesterday lost 1.2M (over the limit: trading halted yesterday). Risk starts again
    today: a new day at -1.2M, today's loss is 0 and the order is approved. Before,
    yesterday's loss halted today's trading."""
    loop, log = Loop("2026-12-07T09:00:00+00:00"), RecordingLog()
    g = gate_with(0)
    day_of(g, loop, tmp_path, log).begin()
    set_realized(g, -1_200_000)
    assert g.check(check(), now_ns=1).code is ReasonCode.DAILY_LOSS
    loop.now = ts("2026-12-08T08:00:00+00:00")  # risk was down over the boundary
    g2 = gate_with(-1_200_000)
    log2 = RecordingLog()
    day_of(g2, loop, tmp_path, log2).begin()
    started = events(log2, "risk_trading_day_started")
    assert started == [{"day": "2026-12-08", "baseline": "-1200000", "previous_day": "2026-12-07"}]
    assert g2.check(check(), now_ns=1).approved


def test_the_timer_waits_for_the_boundary_and_ignores_a_clock_stepped_back(
    tmp_path: Path,
) -> None:
    """No new day before the boundary (the timer is set for it, at most a minute ahead),
    nor when the wall clock steps back over it: the day in progress goes on."""
    loop, log = Loop("2026-12-07T23:58:00+00:00"), RecordingLog()
    g = gate_with(100)
    day_of(g, loop, tmp_path, log).begin()
    assert max(due for due, _fn in loop.timers) - loop.now <= 60
    loop.advance("2026-12-07T23:59:59+00:00")
    assert len(events(log, "risk_trading_day_started")) == 1
    loop.advance("2026-12-08T00:00:00+00:00")
    assert events(log, "risk_trading_day_started")[-1]["day"] == "2026-12-08"
    set_realized(g, 50)
    loop.now = ts("2026-12-07T23:59:00+00:00")  # an NTP step back
    loop.advance("2026-12-08T00:00:30+00:00")
    assert len(events(log, "risk_trading_day_started")) == 2
    assert g.day_start_pnl == 100


def test_a_reload_of_the_boundary_keeps_the_days_loss_and_moves_the_next_boundary(
    tmp_path: Path,
) -> None:
    """At 10:00 UTC day_start becomes 17:00 New York (22:00 UTC): the day in progress keeps
    its baseline (now named 2026-12-06, as the new setting names it; persisted so a restart
    agrees) and the next day starts at 22:00 UTC, not at midnight."""
    loop, log = Loop("2026-12-07T09:00:00+00:00"), RecordingLog()
    g = gate_with(100)
    day = day_of(g, loop, tmp_path, log)
    day.begin()
    loop.advance("2026-12-07T10:00:00+00:00")
    day.reconfigure(LIMITS.model_copy(update={"day_start": "17:00",
                                               "day_timezone": "America/New_York"}))  # fmt: skip
    assert g.day_start_pnl == 100
    assert json.loads(trading_day_path(tmp_path).read_text())["day"] == "2026-12-06"
    set_realized(g, 70)
    loop.advance("2026-12-07T21:59:00+00:00")
    assert g.day_start_pnl == 100
    loop.advance("2026-12-07T22:00:01+00:00")
    assert (g.day_start_pnl, day.day) == (70, dt.date(2026, 12, 7))


@pytest.mark.parametrize("content", [b"{not json", b'{"version": 1, "day": "x", "baseline": "1"}'])
def test_an_unreadable_day_file_is_logged_and_a_new_day_starts(
    tmp_path: Path, content: bytes
) -> None:
    """A file that is not a day record (not JSON, a day that is no date) is logged at error
    level, `begin` says why (risk engages the kill-switch: the day's loss so far is unknown,
    tests/risk/test_trading_day_actor.py) and a new day starts at the realised P&L now,
    written over it."""
    path = trading_day_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    loop, log = Loop("2026-12-07T09:00:00+00:00"), RecordingLog()
    g = gate_with(-5)
    why = day_of(g, loop, tmp_path, log).begin()
    assert why is not None and str(path) in why
    assert [e for lvl, e, _f in log.lines if lvl == "error"] == ["risk_trading_day_unreadable"]
    assert g.day_start_pnl == -5
    assert json.loads(path.read_text())["day"] == "2026-12-07"


# --------------------------------------------------------------- risk down over a boundary


def _slept(tmp_path: Path, *rows: PositionView) -> tuple[RiskGate, RecordingLog]:
    """Risk's day 2026-12-07 began at 0; risk was down over midnight UTC and starts on
    2026-12-08 at 08:00 over the OMS's book `rows` (its first rebuild)."""
    loop = Loop("2026-12-07T09:00:00+00:00")
    day_of(gate_with(0), loop, tmp_path, RecordingLog()).begin()
    loop.now = ts("2026-12-08T08:00:00+00:00")
    g, log = RiskGate(LIMITS, reference_prices={"AAPL": D(100)}), RecordingLog()
    g.exposure = ExposureView.rebuild([], rows)
    day_of(g, loop, tmp_path, log).begin()
    return g, log


MIDNIGHT_NS = int(ts("2026-12-08T00:00:00+00:00")) * 1_000_000_000
HOUR_NS = 3600 * 1_000_000_000


def test_fills_after_a_boundary_risk_slept_through_count_to_the_new_day(tmp_path: Path) -> None:
    """The book lost 200k by the boundary and 1.2M more after it, resting orders filling
    while risk was down (crash-looping). The OMS marked -200k at the day's start: the new day
    begins there, its loss is 1.2M over the 1M limit and the order is refused. Before, the
    new day began at the P&L at risk's start (-1.4M): the 1.2M lost today did not count."""
    row = PositionView(venue="sim", symbol="AAPL", qty=D(0), realized_pnl=D(-1_400_000),
                       last_fill_ns=MIDNIGHT_NS + HOUR_NS,
                       day_start_ns=MIDNIGHT_NS, day_start_pnl=D(-200_000))  # fmt: skip
    # no fill since the boundary: its P&L now counts
    quiet = PositionView(venue="sim", symbol="MSFT", qty=D(0), realized_pnl=D(50_000),
                         last_fill_ns=MIDNIGHT_NS - 1, day_start_ns=MIDNIGHT_NS - 24 * HOUR_NS,
                         day_start_pnl=D(7))  # fmt: skip
    g, log = _slept(tmp_path, row, quiet)
    started = events(log, "risk_trading_day_started")
    assert started == [{"day": "2026-12-08", "baseline": "-150000", "previous_day": "2026-12-07"}]
    assert g.daily_loss() == D(1_200_000)
    assert g.check(check(), now_ns=1).code is ReasonCode.DAILY_LOSS
    assert events(log, "risk_trading_day_baseline_approximate") == []


def test_a_position_marked_for_another_day_start_counts_as_before_and_is_logged(
    tmp_path: Path,
) -> None:
    """The OMS marks the days of the setting it started with (a reload of `day_start` it
    did not see): its mark is not the day's start, so its P&L now counts (its fills since
    count to the day before, as all did) and the position is named in a warning."""
    row = PositionView(venue="sim", symbol="AAPL", qty=D(0), realized_pnl=D(-1_400_000),
                       last_fill_ns=MIDNIGHT_NS + HOUR_NS,
                       day_start_ns=MIDNIGHT_NS - HOUR_NS,
                       day_start_pnl=D(-200_000))  # fmt: skip
    g, log = _slept(tmp_path, row)
    assert g.day_start_pnl == D(-1_400_000)
    [warning] = events(log, "risk_trading_day_baseline_approximate")
    assert warning == {"day": "2026-12-08", "positions": ["sim:AAPL"], "count": 1}


def test_a_fill_after_the_boundary_read_before_the_timer_counts_to_the_new_day(
    tmp_path: Path,
) -> None:
    """Risk stalled over the boundary (stopped, starved, a long turn): its next loop turn
    reads the OMS's events before it runs the due boundary timer. An event stamped after
    the boundary starts the new day before it is applied, so its fill's 1.2M loss counts
    today and the order is refused; one stamped before it does not. Before, the timer ran
    after the fill: the new day began at -1.4M and today's loss was 0."""
    loop, log = Loop("2026-12-07T23:00:00+00:00"), RecordingLog()
    g = gate_with(-200_000)
    day = day_of(g, loop, tmp_path, log)
    day.at_event(MIDNIGHT_NS + HOUR_NS)  # before `begin`: nothing
    day.begin()
    loop.now = ts("2026-12-08T00:00:05+00:00")  # stalled: the timer is due, not run yet
    day.at_event(MIDNIGHT_NS - 1)  # a fill of the day before, read late: still that day's
    assert [e["day"] for e in events(log, "risk_trading_day_started")] == ["2026-12-07"]
    day.at_event(MIDNIGHT_NS + 2 * 1_000_000_000)  # a fill after the boundary...
    set_realized(g, -1_400_000)  # ...applied
    loop.advance("2026-12-08T00:00:06+00:00")  # then the due timer: a no-op now
    started = events(log, "risk_trading_day_started")
    assert [(e["day"], e["baseline"]) for e in started] == [
        ("2026-12-07", "-200000"), ("2026-12-08", "-200000")]  # fmt: skip
    assert g.daily_loss() == D(1_200_000)
    assert g.check(check(), now_ns=1).code is ReasonCode.DAILY_LOSS


@pytest.mark.parametrize(
    ("start", "zone"),
    [("00:00", "UTC"), ("17:00", "America/New_York"), ("02:30", "Europe/London"),
     ("00:00", "Australia/Lord_Howe")],
)  # fmt: skip
def test_day_start_ns_remembers_the_day_and_answers_as_the_clock_does(
    start: str, zone: str
) -> None:
    """The OMS asks `day_start_ns` at every fill; it keeps the last day's window instead of
    asking zoneinfo each time, and answers exactly what the clock computes, in time order,
    out of order, on both sides of every boundary and across DST changes (1 ns before a
    start, too: the float division it used to make read that as the start)."""
    import random

    days = DayClock.of(RiskLimitsCfg(day_start=start, day_timezone=zone))
    rng = random.Random(7)
    t0 = int(dt.datetime(2026, 3, 1, tzinfo=dt.UTC).timestamp())
    starts = [round(days.next_start(t0 + 86_400 * i)) for i in range(-1, 300)]
    stamps = [s * 1_000_000_000 + d for s in starts for d in (-1, 0, 1, 3_600_000_000_000)]
    stamps += [rng.randrange(t0, t0 + 300 * 86_400) * 1_000_000_000 for _ in range(2_000)]
    for order in (sorted(stamps), stamps, rng.sample(stamps, len(stamps))):
        for ts_ns in order:
            fresh = DayClock.of(RiskLimitsCfg(day_start=start, day_timezone=zone))
            want = fresh.start_ns(fresh.day_at(ts_ns // 1_000_000_000))  # starts: whole seconds
            assert days.day_start_ns(ts_ns) == want, (zone, ts_ns)
