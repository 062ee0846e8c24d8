"""The heartbeat's per-venue gauges: when the venue last answered, when its positions were
last compared with the OMS's, and by how much they differed then.

`tradepulse_last_heartbeat_timestamp_seconds` moves with every good beat, an answer shown
but not compared included (a ccxt balance read while fills kept arriving names no
consistent cut: `actors.connector.adapter.NoConsistentCut`). A venue whose every answer is
such would never be compared, and a real divergence there would go unseen:
`tradepulse_position_compared_timestamp_seconds` moves only when positions were compared
(the PositionsNotCompared alert), or when the venue is rightly not compared (out of its
trading session, its connector stopped by an operator). It starts at the heartbeat's own
start, so a venue never compared since is as old as the heartbeat."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from decimal import Decimal

from actors.runtime import metrics


class VenueGauges:
    def __init__(self, venues: Iterable[str]) -> None:
        names = list(venues)
        self._beat = {v: metrics.LAST_HEARTBEAT.labels(venue=v) for v in names}
        self._compared = {v: metrics.POSITION_COMPARED.labels(venue=v) for v in names}
        self._divergence = {v: metrics.POSITION_DIVERGENCE.labels(venue=v) for v in names}
        now = time.time()
        for gauge in self._compared.values():
            gauge.set(now)

    def answered(self, venue: str) -> None:
        """A good beat: the venue answered (compared or not)."""
        self._beat[venue].set(time.time())

    def excused(self, venue: str) -> None:
        """Rightly not compared this beat (out of session, stopped by an operator)."""
        now = time.time()
        self._beat[venue].set(now)
        self._compared[venue].set(now)

    def compared(self, venue: str, diff: Mapping[str, Decimal]) -> None:
        """Compared with the OMS's positions: the absolute difference summed over symbols."""
        self._compared[venue].set(time.time())
        self._divergence[venue].set(float(sum((abs(d) for d in diff.values()), Decimal(0))))
