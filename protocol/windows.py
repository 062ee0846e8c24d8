"""The `[trading]` config section: when new orders may be taken (change windows).

    [trading]
    timezone = "America/New_York"          # IANA name: every local time below is in it
    windows = [                            # none: always open
      {days = ["mon", "tue", "wed", "thu", "fri"], start = "09:30", end = "16:00"},
      {days = ["sun"], start = "18:00", end = "02:00"},      # overnight: ends next day
    ]
    blackouts = [                          # override the windows: closed inside
      {start = "2025-12-24T13:00", end = "2025-12-26T00:00", reason = "Christmas"},
      {days = ["wed"], start = "13:55", end = "14:05", reason = "FOMC"},
    ]

A window or a recurring blackout starts at `start` on each of `days` (the day it *starts*)
and ends at the next `end`: the same day if `end` is after `start`, else the next day (an
overnight window); `end = "24:00"` is the next midnight. Times are HH:MM or HH:MM:SS. A
one-off blackout has ISO 8601 `start` and `end` (no offset: local time in `timezone`).
The pure logic (open at t? why not? next change?) is `actors.oms.trading_calendar`.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from protocol.domain import MAX_REASON_CHARS
from protocol.fix_config import Weekday

MAX_WINDOWS = 64
MAX_BLACKOUTS = 256
MAX_ONE_OFF = dt.timedelta(days=366)  # keeps the next-change search bounded
MIDNIGHT_END = "24:00"
MIN_YEAR, MAX_YEAR = 1970, 9000  # one-off blackouts: the next-change search stays in range


class _Cfg(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def clock(value: str, *, end: bool = False) -> dt.time:
    """A time of day (HH:MM or HH:MM:SS, no offset); `end`: "24:00" is allowed (as 00:00
    of the next day, see `ends_next_day`)."""
    if end and value == MIDNIGHT_END:
        return dt.time(0, 0)
    try:
        parsed = dt.time.fromisoformat(value) if len(value) in (5, 8) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is not None or parsed.microsecond:
        raise ValueError(f"{value!r} is not a time of day (HH:MM or HH:MM:SS)")
    return parsed


def _days(days: list[Weekday]) -> list[Weekday]:
    if len(set(days)) != len(days):
        raise ValueError("a day is listed twice")
    return days


def _check_times(start: str, end: str) -> None:
    """A weekly rule's times: valid, and not equal (that would be empty or ambiguous)."""
    if clock(start) == clock(end, end=True) and end != MIDNIGHT_END:
        raise ValueError(f"start and end are both {start} (a whole day: 00:00 to 24:00)")


class WindowCfg(_Cfg):
    """Trading allowed from `start` to `end` (local time) on each of `days`."""

    days: Annotated[list[Weekday], Field(min_length=1, max_length=7)]
    start: str
    end: str

    @field_validator("days")
    @classmethod
    def _check_days(cls, days: list[Weekday]) -> list[Weekday]:
        return _days(days)

    @model_validator(mode="after")
    def _times(self) -> WindowCfg:
        _check_times(self.start, self.end)
        return self

    @property
    def start_time(self) -> dt.time:
        return clock(self.start)

    @property
    def end_time(self) -> dt.time:
        return clock(self.end, end=True)

    @property
    def ends_next_day(self) -> bool:
        return self.end == MIDNIGHT_END or self.end_time <= self.start_time


class BlackoutCfg(_Cfg):
    """Trading closed, whatever the windows say: once (`start`/`end` ISO datetimes) or
    every week (`days` with `start`/`end` times of day, like a window)."""

    days: Annotated[list[Weekday] | None, Field(min_length=1, max_length=7)] = None
    start: str
    end: str
    reason: Annotated[str, Field(min_length=1, max_length=MAX_REASON_CHARS)]

    @field_validator("days")
    @classmethod
    def _check_days(cls, days: list[Weekday] | None) -> list[Weekday] | None:
        return None if days is None else _days(days)

    @field_validator("reason")
    @classmethod
    def _reason(cls, value: str) -> str:
        if not value.strip() or not value.isprintable():
            raise ValueError("reason must be printable text, not blank")
        return value

    @model_validator(mode="after")
    def _times(self) -> BlackoutCfg:
        if self.days is not None:
            _check_times(self.start, self.end)  # the rules of a window
        else:
            start, end = _instant(self.start), _instant(self.end)
            if (start.tzinfo is None) == (end.tzinfo is None):  # else: TradingCfg checks
                if end <= start:
                    raise ValueError("end must be after start")
                if end - start > MAX_ONE_OFF:
                    raise ValueError("longer than 366 days")
        return self

    @property
    def recurring(self) -> WindowCfg | None:
        """The weekly rule of a recurring blackout; None: a one-off."""
        if self.days is None:
            return None
        return WindowCfg(days=self.days, start=self.start, end=self.end)

    def span(self, zone: dt.tzinfo) -> tuple[dt.datetime, dt.datetime]:
        """A one-off blackout's [start, end) in UTC (naive times are in `zone`)."""
        return _utc(_instant(self.start), zone), _utc(_instant(self.end), zone)


def _instant(value: str) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"{value!r} is not an ISO 8601 date-time (e.g. 2025-12-24T13:00); "
            "a weekly blackout needs days"
        ) from None


def _utc(when: dt.datetime, zone: dt.tzinfo) -> dt.datetime:
    """`when` in UTC (naive: in `zone`); ValueError "date out of range" for an instant the
    calendar cannot search past (its years must be within MIN_YEAR..MAX_YEAR in UTC)."""
    try:
        utc = (when if when.tzinfo else when.replace(tzinfo=zone)).astimezone(dt.UTC)
    except OverflowError:  # near year 1 or 9999, the offset leaves datetime's range
        utc = None
    if utc is None or not MIN_YEAR <= utc.year <= MAX_YEAR:
        raise ValueError(f"{when.isoformat()}: date out of range (years {MIN_YEAR}-{MAX_YEAR})")
    return utc


def zone_of(name: str) -> zoneinfo.ZoneInfo:
    """The IANA zone `name`; ValueError naming it if unknown."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):  # "America": a dir
        raise ValueError(f"unknown time zone {name!r} (an IANA name, e.g. Europe/London)") from None


def _time_of_day(value: str) -> str:
    clock(value)
    return value


def _zone_name(value: str) -> str:
    zone_of(value)
    return value


# config fields of other sections that name a local time of day and its zone (risk's day)
TimeOfDay = Annotated[str, AfterValidator(_time_of_day)]
ZoneName = Annotated[str, AfterValidator(_zone_name)]


class TradingCfg(_Cfg):
    """When new orders are taken: inside a window (none: always) and in no blackout."""

    timezone: str = "UTC"
    windows: Annotated[list[WindowCfg], Field(max_length=MAX_WINDOWS)] = Field(default_factory=list)
    blackouts: Annotated[list[BlackoutCfg], Field(max_length=MAX_BLACKOUTS)] = Field(
        default_factory=list
    )

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        zone_of(value)
        return value

    @model_validator(mode="after")
    def _one_off_spans(self) -> TradingCfg:
        zone = self.zone
        for i, b in enumerate(self.blackouts):
            if b.days is None:
                try:
                    start, end = b.span(zone)
                except ValueError as exc:
                    raise ValueError(f"blackouts[{i}] ({b.reason}): {exc}") from None
                if end <= start:
                    raise ValueError(f"blackouts[{i}] ({b.reason}): end must be after start")
                if end - start > MAX_ONE_OFF:
                    raise ValueError(f"blackouts[{i}] ({b.reason}): longer than 366 days")
        return self

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zone_of(self.timezone)

    @property
    def configured(self) -> bool:
        """False: no windows and no blackouts (always open)."""
        return bool(self.windows or self.blackouts)
