"""The heartbeat's per-venue gauges: when the venue last answered, when its positions were
last compared with the OMS's, and by how much they differed then.

`tradepulse_last_heartbeat_timestamp_seconds` moves with every good beat, an answer shown
but not compared included (a ccxt balance read while fills kept arriving names no
consistent cut: `actors.connector.adapter.NoConsistentCut`). A venue whose every answer is
such would never be compared, and a real divergence there would go unseen:
`tradepulse_position_compared_timestamp_seconds` moves only when positions were compared
(the PositionsNotCompared alert), or when the venue is rightly not compared (out of its
trading session, its connector stopped by an operator). A venue never compared since is as
old as the first heartbeat of this supervisor run that watched it: a restart of the heartbeat
starts each venue's time where the last incarnation left it (`compared_file`)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import Path

import structlog

from actors.position_heartbeat.compared_file import ComparedFile, load_times
from actors.runtime import metrics
from protocol.paths import heartbeat_compared_path


class VenueGauges:
    def __init__(
        self, venues: Iterable[str], runtime_dir: Path, log: structlog.typing.FilteringBoundLogger
    ) -> None:
        names = list(venues)
        self._beat = {v: metrics.LAST_HEARTBEAT.labels(venue=v) for v in names}
        self._compared = {v: metrics.POSITION_COMPARED.labels(venue=v) for v in names}
        self._divergence = {v: metrics.POSITION_DIVERGENCE.labels(venue=v) for v in names}
        path = heartbeat_compared_path(runtime_dir)
        self.compared_s, problem = load_times(path, names, time.time())  # venue -> unix time
        if problem is not None:  # every venue at 0: not compared for as long as anyone knows
            log.error("position_compared_state_unreadable", path=str(path), problem=problem)
        for venue, since in self.compared_s.items():
            self._compared[venue].set(since)
        self.file = ComparedFile(path, log)
        self.file.changed(self.compared_s)  # written at once: a restart from here keeps them

    def answered(self, venue: str) -> None:
        """A good beat: the venue answered (compared or not)."""
        self._beat[venue].set(time.time())
        self.file.changed(self.compared_s)  # a failed write is retried at a beat

    def excused(self, venue: str) -> None:
        """Rightly not compared this beat (out of session, stopped by an operator)."""
        now = time.time()
        self._beat[venue].set(now)
        self._set_compared(venue, now)

    def compared(self, venue: str, diff: Mapping[str, Decimal]) -> None:
        """Compared with the OMS's positions: the absolute difference summed over symbols."""
        self._set_compared(venue, time.time())
        self._divergence[venue].set(float(sum((abs(d) for d in diff.values()), Decimal(0))))

    def flush(self) -> None:
        """At a stop: the file holds the compared times exactly."""
        self.file.flush(self.compared_s)

    def _set_compared(self, venue: str, now: float) -> None:
        self.compared_s[venue] = now
        self._compared[venue].set(now)
        self.file.changed(self.compared_s)
