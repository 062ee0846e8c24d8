"""The trading calendar (`actors.oms.trading_calendar`): open at t, why not, the next
change; overnight and adjacent windows, blackouts over windows, DST days, and properties
checked against a minute-by-minute walk."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from actors.oms.trading_calendar import Change, TradingCalendar, WindowState
from protocol.fix_config import WEEKDAYS
from protocol.windows import TradingCfg

NY = ZoneInfo("America/New_York")
UTC = dt.UTC
WEEKDAYS_5 = ["mon", "tue", "wed", "thu", "fri"]


def cal(**trading: Any) -> TradingCalendar:
    return TradingCalendar(TradingCfg.model_validate(trading))


def new_york(days: list[str], start: str, end: str) -> TradingCalendar:
    """One window in New York time."""
    return cal(timezone="America/New_York", windows=[{"days": days, "start": start, "end": end}])


def at(text: str, zone: dt.tzinfo = UTC) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=zone)


def test_no_windows_no_blackouts_is_always_open_with_no_change() -> None:
    """Nothing configured (today's behaviour): open at any instant, no change scheduled."""
    c = cal()
    assert c.state_at(at("2025-06-01T03:00")) == WindowState(True)
    assert c.next_change(at("2025-06-01T03:00")) is None


def test_a_day_window_is_open_inside_and_names_the_close_then_the_next_open() -> None:
    """Mon-Fri 09:30-16:00 New York: open at 10:00 Monday, closes 16:00 local (20:00 UTC
    in June); from Friday's close the next open is Monday 09:30."""
    c = new_york(WEEKDAYS_5, "09:30", "16:00")
    monday = at("2025-06-02T10:00", NY)
    assert c.state_at(monday).open
    change = c.next_change(monday)
    assert change is not None
    assert change.at == at("2025-06-02T20:00")
    assert change.state.why == "outside_window" and not change.state.open
    friday_close = at("2025-06-06T16:00", NY)
    assert c.state_at(friday_close).why == "outside_window"  # [start, end)
    reopen = c.next_change(friday_close)
    assert reopen is not None and reopen.at == at("2025-06-09T09:30", NY) and reopen.state.open


def test_an_overnight_window_spans_midnight_from_the_day_it_starts() -> None:
    """sun 18:00-02:00: open Sunday 23:00 and Monday 01:59, closed Monday 02:00 and
    Saturday 23:00 (it starts only on Sundays)."""
    c = cal(windows=[{"days": ["sun"], "start": "18:00", "end": "02:00"}])
    assert c.state_at(at("2025-06-01T23:00")).open  # Sunday
    assert c.state_at(at("2025-06-02T01:59")).open  # Monday morning
    assert not c.state_at(at("2025-06-02T02:00")).open
    assert not c.state_at(at("2025-05-31T23:00")).open  # Saturday
    change = c.next_change(at("2025-06-01T23:00"))
    assert change is not None and change.at == at("2025-06-02T02:00")


def test_adjacent_windows_are_one_open_stretch() -> None:
    """fri 00:00-24:00 then sat 00:00-12:00: no change at Saturday midnight; the close
    is Saturday noon."""
    c = cal(windows=[{"days": ["fri"], "start": "00:00", "end": "24:00"},
                     {"days": ["sat"], "start": "00:00", "end": "12:00"}])  # fmt: skip
    change = c.next_change(at("2025-06-06T08:00"))  # Friday
    assert change is not None and change.at == at("2025-06-07T12:00")


def test_a_one_off_blackout_overrides_the_window_and_gives_its_reason() -> None:
    """Inside an open window a one-off blackout closes trading with its reason; the next
    change is its end (the window is still open then)."""
    c = cal(
        windows=[{"days": list(WEEKDAYS), "start": "00:00", "end": "24:00"}],
        blackouts=[{"start": "2025-06-03T13:55", "end": "2025-06-03T14:05", "reason": "FOMC"}],
    )
    state = c.state_at(at("2025-06-03T14:00"))
    assert state == WindowState(False, "blackout", "FOMC")
    assert state.text == "blackout (FOMC)"
    change = c.next_change(at("2025-06-03T14:00"))
    assert change == Change(at("2025-06-03T14:05"), WindowState(True))
    before = c.next_change(at("2025-06-03T09:00"))
    assert before is not None and before.at == at("2025-06-03T13:55")
    assert before.state.reason == "FOMC"


def test_chained_one_off_blackouts_report_the_end_of_the_last() -> None:
    """Overlapping one-off blackouts: one closed stretch; the next change is when the
    last of them ends."""
    c = cal(blackouts=[
        {"start": "2025-12-24T00:00", "end": "2025-12-26T00:00", "reason": "Christmas"},
        {"start": "2025-12-25T12:00", "end": "2025-12-27T00:00", "reason": "Boxing Day"},
    ])  # fmt: skip
    change = c.next_change(at("2025-12-24T10:00"))
    assert change is not None and change.at == at("2025-12-27T00:00") and change.state.open


def test_a_blackout_ending_inside_closed_hours_reopens_with_the_window() -> None:
    """A blackout that ends at night: the next change is the next window open, not the
    blackout's end (trading stays closed across it)."""
    c = cal(
        windows=[{"days": WEEKDAYS_5, "start": "09:00", "end": "17:00"}],
        blackouts=[{"start": "2025-06-03T12:00", "end": "2025-06-03T20:00", "reason": "halt"}],
    )
    change = c.next_change(at("2025-06-03T13:00"))
    assert change is not None and change.at == at("2025-06-04T09:00")


def test_a_weekly_blackout_recurs_on_its_days() -> None:
    """wed 13:55-14:05 every week: closed on Wednesdays in it, open on Thursdays."""
    c = cal(blackouts=[{"days": ["wed"], "start": "13:55", "end": "14:05", "reason": "fix"}])
    assert c.state_at(at("2025-06-04T14:00")).why == "blackout"
    assert c.state_at(at("2025-06-05T14:00")).open
    change = c.next_change(at("2025-06-05T14:00"))
    assert change is not None and change.at == at("2025-06-11T13:55")


def test_always_closed_has_no_next_change() -> None:
    """A weekly blackout covering every window: closed, and no change scheduled."""
    every_day = {"days": list(WEEKDAYS), "start": "00:00", "end": "24:00", "reason": "x"}
    c = cal(windows=[{"days": WEEKDAYS_5, "start": "09:00", "end": "17:00"}], blackouts=[every_day])
    assert c.state_at(at("2025-06-03T10:00")).why == "blackout"
    assert c.next_change(at("2025-06-03T10:00")) is None


def test_windows_follow_local_time_across_the_dst_changes() -> None:
    """09:30 New York is 14:30 UTC in winter and 13:30 UTC in summer: the open after the
    spring-forward weekend (9 March 2025) moves by an hour, as does the fall-back one."""
    c = new_york(WEEKDAYS_5, "09:30", "16:00")
    spring = c.next_change(at("2025-03-08T12:00"))  # Saturday, EST
    assert spring is not None and spring.at == at("2025-03-10T13:30")
    fall = c.next_change(at("2025-11-01T12:00"))  # Saturday, EDT
    assert fall is not None and fall.at == at("2025-11-03T14:30")


def test_an_overnight_window_over_the_dst_change_lasts_its_local_hours() -> None:
    """sat 22:00 - sun 04:00 New York over the spring-forward night: 22:00 EST (03:00 UTC)
    to 04:00 EDT (08:00 UTC), five real hours; over the fall-back night, seven."""
    c = new_york(["sat"], "22:00", "04:00")
    inside = at("2025-03-09T05:00")  # 00:00 EST
    assert c.state_at(inside).open
    close = c.next_change(inside)
    assert close is not None and close.at == at("2025-03-09T08:00")
    close = c.next_change(at("2025-11-02T05:00"))
    assert close is not None and close.at == at("2025-11-02T09:00")


def test_a_window_inside_the_spring_forward_gap_is_closed_that_day() -> None:
    """sun 02:15-02:45 New York does not exist on 9 March 2025: closed all that night; the
    next open is the next Sunday's."""
    c = new_york(["sun"], "02:15", "02:45")
    change = c.next_change(at("2025-03-09T00:00", NY))
    assert change is not None
    # 02:15 is taken with the offset before the change (EST): 07:15 UTC, and 02:45 also:
    # a 30-minute window at 03:15-03:45 EDT on the wall clock
    assert change.at == at("2025-03-09T07:15")


def test_a_blackout_months_ahead_is_the_next_change_of_an_always_open_week() -> None:
    """No windows, a one-off blackout three months ahead: the next change is its start
    (found without walking every week in between)."""
    c = cal(blackouts=[{"start": "2025-09-01T00:00", "end": "2025-09-02T00:00", "reason": "x"}])
    change = c.next_change(at("2025-06-01T00:00"))
    assert change is not None and change.at == at("2025-09-01T00:00")
    assert change.state == WindowState(False, "blackout", "x")


def test_a_holiday_starting_at_night_defers_the_reopening_past_it() -> None:
    """Closed at night; a 20-day one-off holiday begins before the next open: the next
    change is the first window open after the holiday, 20 days on."""
    c = cal(
        windows=[{"days": WEEKDAYS_5, "start": "09:00", "end": "17:00"}],
        blackouts=[{"start": "2025-06-02T06:00", "end": "2025-06-22T06:00", "reason": "hol"}],
    )
    change = c.next_change(at("2025-06-01T22:00"))  # Sunday night
    assert change is not None and change.at == at("2025-06-23T09:00") and change.state.open


def test_a_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        cal().state_at(dt.datetime(2025, 1, 1))  # noqa: DTZ001 - the point of the test


# ------------------------------------------------------------------ properties

ZONES = ["UTC", "America/New_York", "Europe/London", "Australia/Sydney", "Asia/Kolkata",
         "America/Santiago", "Australia/Lord_Howe"]  # fmt: skip
QUARTERS = st.sampled_from([0, 15, 30, 45])
HHMM = st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), QUARTERS)
DAYS = st.lists(st.sampled_from(WEEKDAYS), min_size=1, max_size=7, unique=True)


@st.composite
def rules(draw: st.DrawFn) -> dict[str, Any]:
    start = draw(HHMM)
    end = draw(HHMM.filter(lambda e: e != start) | st.just("24:00"))
    return {"days": draw(DAYS), "start": start, "end": end}


@st.composite
def configs(draw: st.DrawFn) -> dict[str, Any]:
    windows = draw(st.lists(rules(), max_size=3))
    weekly = [r | {"reason": "weekly"} for r in draw(st.lists(rules(), max_size=2))]
    base = dt.datetime(2025, 3, 1, tzinfo=UTC)
    one_off = []
    for _ in range(draw(st.integers(0, 3))):
        a = base + dt.timedelta(minutes=15 * draw(st.integers(0, 4 * 24 * 300)))
        b = a + dt.timedelta(minutes=15 * draw(st.integers(1, 4 * 24 * 30)))
        one_off.append({"start": a.isoformat(), "end": b.isoformat(), "reason": "once"})
    return {"timezone": draw(st.sampled_from(ZONES)), "windows": windows,
            "blackouts": weekly + one_off}  # fmt: skip


INSTANTS = st.builds(
    lambda m: dt.datetime(2025, 3, 1, tzinfo=UTC) + dt.timedelta(minutes=15 * m),
    st.integers(0, 4 * 24 * 300),  # March to December: both DST changes of each zone
)


# found by hypothesis: the flip at a chunk's first instant was the end of a blackout that
# ended there (Sunday 00:00), and the sweep dropped intervals ending at its floor
_CHUNK_EDGE = {
    "timezone": "UTC",
    "windows": [
        {"days": ["mon"], "start": "00:00", "end": "24:00"},
        {"days": ["sat"], "start": "01:00", "end": "00:15"},
    ],
    "blackouts": [
        {"days": ["mon"], "start": "00:00", "end": "24:00", "reason": "weekly"},
        {
            "days": ["mon", "tue", "wed", "thu", "fri", "sat"],
            "start": "00:15",
            "end": "00:00",
            "reason": "weekly",
        },  # fmt: skip
        {
            "start": "2025-03-01T00:15:00+00:00",
            "end": "2025-03-02T00:15:00+00:00",
            "reason": "once",
        },  # fmt: skip
    ],
}


@settings(max_examples=300, deadline=None)
@given(configs(), INSTANTS)
@example(_CHUNK_EDGE, dt.datetime(2025, 3, 1, tzinfo=UTC))
def test_the_next_change_flips_the_state_and_nothing_flips_before_it(
    trading: dict[str, Any], t: dt.datetime
) -> None:
    """The next change is after t and its state differs from t's; the state at t holds at
    every 15-minute mark (every boundary lies on one in these zones) up to it; with no
    change, the state holds for the next 16 days."""
    c = cal(**trading)
    now = c.state_at(t)
    change = c.next_change(t)
    end = change.at if change is not None else t + dt.timedelta(days=16)
    if change is not None:
        assert change.at > t
        assert change.state == c.state_at(change.at)
        assert change.state.open != now.open
    probe = t
    while probe < end:
        assert c.state_at(probe).open == now.open, (probe, change)
        probe += dt.timedelta(minutes=15)


def test_a_year_long_one_off_blackout_is_jumped_not_swept_day_by_day(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The worst config the validation allows (64 windows, 255 weekly blackouts, one
    366-day one-off just ahead): the next change after the one-off is found with a few
    chunk sweeps, not ~50 (which blocked the OMS loop ~0.3 s), and it is the right one."""
    from actors.oms import trading_calendar as tc
    from protocol.fix_config import WEEKDAYS

    def hm(m: int) -> str:
        return f"{m // 60:02d}:{m % 60:02d}"

    days = list(WEEKDAYS)
    wins = [{"days": days, "start": hm(600 + i * 10), "end": hm(605 + i * 10)} for i in range(64)]
    weekly = [
        {"days": days, "start": hm(i * 5 % 1440), "end": hm((i * 5 + 3) % 1440), "reason": f"b{i}"}
        for i in range(255)
    ]
    one = {"start": "2025-06-02T01:00", "end": "2026-06-03T00:59", "reason": "long"}
    cal = tc.TradingCalendar(
        TradingCfg.model_validate({"windows": wins, "blackouts": [*weekly, one]})
    )
    sweeps = []
    real = tc.TradingCalendar._sweep
    monkeypatch.setattr(
        tc.TradingCalendar, "_sweep", lambda self, *a: sweeps.append(1) or real(self, *a)
    )
    change = cal.next_change(dt.datetime(2025, 6, 2, 0, 30, tzinfo=dt.UTC))
    assert change is not None and change.at == dt.datetime(2026, 6, 3, 10, 3, tzinfo=dt.UTC)
    assert change.state.open
    assert len(sweeps) <= 3
