"""The session schedule as pure functions: in/out of session, the current session's start
and end, the next transition; weekends, sessions crossing midnight, 24-hour sessions and
the DST change days of the schedule's time zone."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from actors.connector.schedule import next_session, next_transition, session_at
from protocol.fix_config import ScheduleCfg

UTC = dt.UTC


def at(text: str) -> dt.datetime:
    """An ISO time in UTC: "2026-03-09 13:30"."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def sched(**kw: Any) -> ScheduleCfg:
    return ScheduleCfg(**kw)


NY_DAY = sched(timezone="America/New_York", start="09:30", end="16:00")  # mon-fri


def test_a_weekday_session_in_local_time() -> None:
    """09:30-16:00 New York on a winter Monday is 14:30-21:00 UTC: in session inside, out
    before and after (the end is exclusive)."""
    w = session_at(NY_DAY, at("2026-01-05 15:00"))
    assert w is not None and (w.start, w.end) == (at("2026-01-05 14:30"), at("2026-01-05 21:00"))
    assert w.key == "2026-01-05T14:30:00+00:00"
    assert session_at(NY_DAY, at("2026-01-05 14:29:59")) is None
    assert session_at(NY_DAY, at("2026-01-05 14:30")) == w
    assert session_at(NY_DAY, at("2026-01-05 21:00")) is None
    assert next_transition(NY_DAY, at("2026-01-05 15:00")) == at("2026-01-05 21:00")
    assert next_transition(NY_DAY, at("2026-01-05 21:00")) == at("2026-01-06 14:30")


def test_the_weekend_has_no_session_and_monday_is_next() -> None:
    """Mon-fri: nothing on Saturday or Sunday; from Friday's close the next transition is
    Monday's open."""
    assert session_at(NY_DAY, at("2026-01-10 15:00")) is None  # Saturday
    assert session_at(NY_DAY, at("2026-01-11 15:00")) is None  # Sunday
    assert next_transition(NY_DAY, at("2026-01-09 21:00")) == at("2026-01-12 14:30")
    assert next_session(NY_DAY, at("2026-01-09 22:00")).start == at("2026-01-12 14:30")


def test_dst_changes_move_the_session_in_utc() -> None:
    """The same local hours are 13:30-20:00 UTC in summer time: the Monday after the spring
    change (8 March 2026) and before the autumn one (1 November 2026) differ by an hour."""
    before = session_at(NY_DAY, at("2026-03-06 15:00"))  # Friday, EST
    after = session_at(NY_DAY, at("2026-03-09 15:00"))  # Monday, EDT
    assert before is not None and before.start == at("2026-03-06 14:30")
    assert after is not None and (after.start, after.end) == (
        at("2026-03-09 13:30"),
        at("2026-03-09 20:00"),
    )
    autumn = session_at(NY_DAY, at("2026-11-02 15:00"))  # Monday after the change: EST
    assert autumn is not None and autumn.start == at("2026-11-02 14:30")


def test_a_session_crossing_midnight_belongs_to_its_start_day() -> None:
    """17:00-16:59 Sunday-Thursday in New York (an FX week): a session started on Thursday
    lasts into Friday; Friday starts none, so Friday 17:00 to Sunday 17:00 is out."""
    fx = sched(
        timezone="America/New_York", start="17:00", end="16:59",
        days=["sun", "mon", "tue", "wed", "thu"],
    )  # fmt: skip
    w = session_at(fx, at("2026-01-09 15:00"))  # Friday 10:00 New York
    assert w is not None and (w.start, w.end) == (at("2026-01-08 22:00"), at("2026-01-09 21:59"))
    assert session_at(fx, at("2026-01-09 22:30")) is None  # Friday 17:30: closed
    assert session_at(fx, at("2026-01-10 12:00")) is None  # Saturday
    assert next_transition(fx, at("2026-01-09 22:30")) == at("2026-01-11 22:00")  # Sunday 17:00
    assert session_at(fx, at("2026-01-06 04:00")) == w.__class__(
        at("2026-01-05 22:00"), at("2026-01-06 21:59")
    )  # Tuesday 23:00 New York time is Monday's session


def test_equal_start_and_end_is_a_24_hour_session_and_each_day_is_a_new_one() -> None:
    """start == end: 24 hours; sessions of consecutive days touch, and the instant they
    touch belongs to the new one (a transition: logout, logon, daily reset)."""
    every = sched(
        start="00:00", end="00:00", days=["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    )
    w = session_at(every, at("2026-01-05 12:00"))
    assert w is not None and (w.start, w.end) == (at("2026-01-05 00:00"), at("2026-01-06 00:00"))
    nxt = session_at(every, at("2026-01-06 00:00"))
    assert nxt is not None and nxt.start == at("2026-01-06 00:00")
    assert next_transition(every, at("2026-01-05 12:00")) == at("2026-01-06 00:00")


def test_a_24_hour_session_on_a_dst_day_follows_the_local_clock() -> None:
    """Midnight to midnight in London: 23 hours on the spring change day (29 March 2026),
    25 on the autumn one (25 October 2026)."""
    london = sched(timezone="Europe/London", days=["sun"])
    spring = session_at(london, at("2026-03-29 12:00"))
    autumn = session_at(london, at("2026-10-25 12:00"))
    assert spring is not None and spring.end - spring.start == dt.timedelta(hours=23)
    assert autumn is not None and autumn.end - autumn.start == dt.timedelta(hours=25)


def test_a_start_in_the_spring_gap_falls_an_hour_later_on_the_wall_clock() -> None:
    """02:30 does not exist in New York on 8 March 2026: the session opens at 07:30 UTC
    (03:30 EDT, the offset before the change); 01:30 on 1 November exists twice: the first
    (EDT, 05:30 UTC)."""
    gap = sched(timezone="America/New_York", start="02:30", end="04:00", days=["sun"])
    spring = session_at(gap, at("2026-03-08 07:45"))
    assert spring is not None and spring.start == at("2026-03-08 07:30")
    twice = sched(timezone="America/New_York", start="01:30", end="03:00", days=["sun"])
    autumn = session_at(twice, at("2026-11-01 06:00"))
    assert autumn is not None and autumn.start == at("2026-11-01 05:30")


def test_seconds_resolution_and_naive_times_are_refused() -> None:
    """HH:MM:SS works (tests open a session seconds from now); a naive datetime is an
    error, not a guess."""
    s = sched(start="10:00:05", end="10:00:09", days=["mon"])
    assert session_at(s, at("2026-01-05 10:00:05")) is not None
    assert session_at(s, at("2026-01-05 10:00:09")) is None
    assert next_transition(s, at("2026-01-05 10:00:00")) == at("2026-01-05 10:00:05")
    with pytest.raises(ValueError, match="aware"):
        session_at(s, dt.datetime(2026, 1, 5, 10))  # noqa: DTZ001 - naive on purpose
