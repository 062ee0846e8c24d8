"""Per-venue FIX config: the venue's dialect (how it departs from FIX 4.4), its session
schedule and TLS. Every default is the FIX 4.4 standard; docs/fix-venues.md is the
operator's guide ("connecting a new FIX venue").
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

PosFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]  # finite: inf is no value

# Logon fields the session sets itself (header, trailer, Logon body, credentials): an
# extra logon field may not name one of these.
SESSION_TAGS = frozenset({8, 9, 10, 34, 35, 43, 49, 52, 56, 97, 98, 108, 122, 141, 553, 554})

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class _Cfg(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DialectCfg(_Cfg):
    """What the venue serves and how it answers, where FIX 4.4 leaves room or venues differ."""

    # RequestForPositions (AN). False: never asked; positions come from the connector's
    # own fill ledger and the heartbeat compares those with the OMS's.
    serves_positions: bool = True
    # OrderMassStatusRequest (AF). False: reconciliation asks OrderStatusRequest (H) for
    # every open local order instead.
    serves_mass_status: bool = True
    # An AF that matches no orders: "report" = one ExecutionReport with
    # LastRptRequested(912)=Y and no order; "silent" = no answer at all, so no answer
    # within `empty_mass_status_wait_s` means "no orders".
    empty_mass_status: Literal["report", "silent"] = "report"
    empty_mass_status_wait_s: Annotated[PosFloat, Field(le=300)] = 2.0
    # OrderStatusRequest (H) carries Symbol(55) and Side(54), which FIX 4.4 requires.
    status_request_instrument: bool = True
    # ResetSeqNumFlag(141)=Y on our Logon: "cold_start" = only while the FIX store is new;
    # "every_logon" = on every Logon (venues that restart numbering per connection);
    # "never" = never (the venue resets only by its own schedule or by an operator).
    reset_seq_num: Literal["cold_start", "every_logon", "never"] = "cold_start"
    # Extra fields in our Logon, tag number -> value (e.g. {"1137" = "9"} DefaultApplVerID).
    logon_fields: dict[str, str] = Field(default_factory=dict)

    @field_validator("logon_fields")
    @classmethod
    def _logon_fields(cls, fields: dict[str, str]) -> dict[str, str]:
        for key, value in fields.items():
            if not key.isdigit() or not 0 < int(key) < 100000:
                raise ValueError(f"{key!r} is not a FIX tag number")
            if int(key) in SESSION_TAGS:
                raise ValueError(f"tag {key} is set by the session itself")
            if not value or not value.isascii() or not value.isprintable():
                raise ValueError(f"tag {key}: value must be non-empty printable ASCII")
        return fields

    @model_validator(mode="after")
    def _ledger_needs_resends(self) -> DialectCfg:
        # Without AN the connector's fill ledger is the position check, fed only by the
        # reports it receives; a venue that starts every connection at 1 never resends
        # what it sent while we were away, so the ledger would miss fills the OMS learns
        # by reconciliation and the heartbeat would halt trading on a false divergence.
        if not self.serves_positions and self.reset_seq_num == "every_logon":
            raise ValueError(
                "serves_positions = false needs a venue that resends: "
                'not with reset_seq_num = "every_logon"'
            )
        return self

    def logon_extra(self) -> list[tuple[int, str]]:
        return sorted((int(tag), value) for tag, value in self.logon_fields.items())  # by tag


def _clock(value: str) -> dt.time:
    try:
        clock = dt.time.fromisoformat(value)
    except ValueError:
        clock = None
    if clock is None or clock.tzinfo is not None:  # the zone is `timezone`, not an offset
        raise ValueError(f"{value!r} is not a time of day (HH:MM or HH:MM:SS)")
    return clock


class ScheduleCfg(_Cfg):
    """The venue's trading session: it opens at `start` on each of `days` (local time in
    `timezone`) and closes at the next `end` (an `end` at or before `start` closes the next
    day). Outside it the connector stays logged out: planned downtime, not an outage."""

    timezone: str = "UTC"
    start: str = "00:00"
    end: str = "00:00"  # equal to start: the session lasts 24 hours
    days: list[Weekday] = Field(default_factory=lambda: list(WEEKDAYS[:5]), min_length=1)
    # The venue starts every session at sequence number 1 (ResetSeqNumFlag on the first
    # Logon of a session; the store is reset, nothing of the last session is resent).
    reset_seq_num_daily: bool = False

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):  # "America": a dir
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("start", "end")
    @classmethod
    def _time(cls, value: str) -> str:
        _clock(value)
        return value

    @field_validator("days")
    @classmethod
    def _days(cls, days: list[Weekday]) -> list[Weekday]:
        if len(set(days)) != len(days):
            raise ValueError("a day is listed twice")
        return days

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    @property
    def start_time(self) -> dt.time:
        return _clock(self.start)

    @property
    def end_time(self) -> dt.time:
        return _clock(self.end)


class TlsCfg(_Cfg):
    """TLS for the FIX TCP connection (the venue's certificate is always verified)."""

    ca_file: str = ""  # "": the system's trusted CAs
    cert_file: str = ""  # client certificate (PEM), for venues that ask for one
    key_file: str = ""  # its private key (PEM)
    server_hostname: str = ""  # the name the certificate must carry; "": the venue's host
    check_hostname: bool = True

    @model_validator(mode="after")
    def _pair(self) -> TlsCfg:
        if bool(self.cert_file) != bool(self.key_file):
            raise ValueError("cert_file and key_file go together")
        return self
