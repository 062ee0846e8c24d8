"""When `risk.max_daily_loss`'s trading days start (`risk.day_start` in `risk.day_timezone`).

Pure: epoch seconds in, dates and epoch seconds out. Risk owns the day
(`actors.risk.trading_day`); the OMS marks each position's realised P&L at the start of the
day of its fills with the same clock (`actors.oms.positions`), so a risk that starts after a
boundary it slept through can split the day's P&L there.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from protocol.config import RiskLimitsCfg
from protocol.windows import clock, zone_of

_ONE_DAY = dt.timedelta(days=1)
_NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class DayClock:
    """When trading days start (pure: epoch seconds in, dates and epoch seconds out)."""

    start: dt.time
    zone: dt.tzinfo
    # the last day asked for by `day_start_ns` (start, next start; epoch ns): every fill of
    # the OMS asks, and all but the day's first are inside it (zoneinfo costs 1-3 us a call)
    _day: list[int] = field(default_factory=lambda: [0, 0], compare=False, repr=False)

    @classmethod
    def of(cls, cfg: RiskLimitsCfg) -> DayClock:
        return cls(clock(cfg.day_start), zone_of(cfg.day_timezone))

    def start_of(self, day: dt.date) -> float:
        """The instant the day named `day` starts (a local time a DST change skips: as
        many seconds after the change as it would have been after midnight's offset)."""
        return dt.datetime.combine(day, self.start, tzinfo=self.zone).timestamp()

    def day_at(self, ts: float) -> dt.date:
        """The name of the trading day in progress at `ts`."""
        day = dt.datetime.fromtimestamp(ts, self.zone).date()
        return day if self.start_of(day) <= ts else day - _ONE_DAY

    def next_start(self, ts: float) -> float:
        """The first day start after `ts`."""
        day = self.day_at(ts) + _ONE_DAY
        while (start := self.start_of(day)) <= ts:
            day += _ONE_DAY
        return start

    def start_ns(self, day: dt.date) -> int:
        """`start_of` in epoch nanoseconds (day starts are whole seconds: exact)."""
        return round(self.start_of(day)) * _NS_PER_S

    def day_start_ns(self, ts_ns: int) -> int:
        """The start (epoch ns) of the trading day in progress at `ts_ns`."""
        day = self._day
        if not day[0] <= ts_ns < day[1]:
            ts = ts_ns // _NS_PER_S  # whole seconds, as day starts are (a float division
            # read 1 ns before a start as the start)
            day[:] = self.start_ns(self.day_at(ts)), round(self.next_start(ts)) * _NS_PER_S
        return day[0]
