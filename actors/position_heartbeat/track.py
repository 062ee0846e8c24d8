"""Pure logic of the position heartbeat (no sockets, no clocks: callers pass the time).

- `position_diff`: venue minus OMS position per symbol.
- `DivergenceTracker`: a difference beyond tolerance for N consecutive beats of a venue says
  "engage the kill-switch" (once per episode). One divergent beat is normal: a fill on its
  way from the venue to the OMS shows as a difference until the OMS has applied it.
- `OutageTracker`: missed beats of a venue (the actor reports one per unanswered venue
  position request, and a good one per answer). `missing_intervals` missed in a row raise
  the alert (logged once per episode); a venue without a good answer for longer than the
  outage tolerance says "engage" (once per episode, if configured). A short gap during a
  normal reconnect is only logged: it must not halt trading.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

_ZERO = Decimal(0)


def position_diff(venue: Mapping[str, Decimal], oms: Mapping[str, Decimal]) -> dict[str, Decimal]:
    """venue - oms for every symbol either side holds; equal symbols are left out."""
    out = {}
    for symbol in sorted(set(venue) | set(oms)):
        d = venue.get(symbol, _ZERO) - oms.get(symbol, _ZERO)
        if d != 0:
            out[symbol] = d
    return out


@dataclass(frozen=True)
class DivergenceStep:
    venue: str
    excess: dict[str, Decimal]  # symbols whose |difference| is beyond the tolerance
    consecutive: int  # divergent beats in a row, this one included
    engage: bool  # this beat reached the threshold (once per episode)

    @property
    def divergent(self) -> bool:
        return bool(self.excess)


class DivergenceTracker:
    def __init__(self, tolerance: Decimal, beats: int) -> None:
        self.tolerance = tolerance
        self.beats = beats
        self._count: dict[str, int] = {}
        self._engaged: set[str] = set()  # venues whose current run said "engage" already
        # per venue: symbol -> (its difference beyond tolerance, beats it has stayed so)
        self._runs: dict[str, dict[str, tuple[Decimal, int]]] = {}

    def observe(self, venue: str, diff: Mapping[str, Decimal]) -> DivergenceStep:
        """A symbol's divergence counts beats only while its difference stays beyond
        tolerance and UNCHANGED from the previous beat: executions in flight between venue
        and OMS under continuous trading make a difference that moves from beat to beat (even
        on one side, when the flow is one-sided); a lost fill makes one that stays put once
        the flow pauses (reconciliation also compares positions). Each symbol has its own
        run: transient differences that alternate between symbols never add up to one. The
        venue's count is its longest run. A run at or beyond `beats` engages once: a reload
        that lowers `beats` below a running count engages at the next beat."""
        excess = {s: d for s, d in diff.items() if abs(d) > self.tolerance}
        previous = self._runs.get(venue, {})
        runs: dict[str, tuple[Decimal, int]] = {}
        for symbol, d in excess.items():
            last = previous.get(symbol)
            runs[symbol] = (d, last[1] + 1 if last is not None and last[0] == d else 1)
        self._runs[venue] = runs
        count = max((n for _, n in runs.values()), default=0)
        if count < self.beats and count <= self._count.get(venue, 0):
            self._engaged.discard(venue)  # the run broke below the threshold: a new one engages
        self._count[venue] = count
        engage = count >= self.beats and venue not in self._engaged
        if engage:
            self._engaged.add(venue)
        return DivergenceStep(venue, excess, count, engage=engage)

    def consecutive(self, venue: str) -> int:
        return self._count.get(venue, 0)


@dataclass(frozen=True)
class MissStep:
    venue: str
    missed: int  # beats missed in a row, this one included
    outage_s: float  # since the last good beat (or since tracking began)
    alert: bool  # reached missing_intervals (or beyond) in this beat (once per episode)
    engage: bool  # outage beyond the tolerance in this beat (once per episode)


@dataclass
class _VenueBeat:
    last_ok_s: float
    missed: int = 0
    alerted: bool = False
    engaged: bool = False


@dataclass
class OutageTracker:
    venues: Iterable[str]
    missing_intervals: int
    tolerance_s: float
    engage_on_missing: bool
    now_s: float
    _state: dict[str, _VenueBeat] = field(init=False)

    def __post_init__(self) -> None:
        self._state = {v: _VenueBeat(self.now_s) for v in self.venues}

    def ok(self, venue: str, now_s: float) -> int:
        """A good beat; returns how many beats had been missed before it."""
        st = self._state[venue]
        missed = st.missed
        st.last_ok_s, st.missed, st.alerted, st.engaged = now_s, 0, False, False
        return missed

    def missed(self, venue: str, now_s: float) -> MissStep:
        st = self._state[venue]
        st.missed += 1
        outage_s = now_s - st.last_ok_s
        engage = self.engage_on_missing and not st.engaged and outage_s >= self.tolerance_s
        st.engaged = st.engaged or engage
        # at or beyond the threshold, once: a reload may lower it below a running count
        alert = not st.alerted and st.missed >= self.missing_intervals
        st.alerted = st.alerted or alert
        return MissStep(venue, st.missed, outage_s, alert=alert, engage=engage)

    def missed_count(self, venue: str) -> int:
        return self._state[venue].missed

    def age_s(self, venue: str, now_s: float) -> float:
        return now_s - self._state[venue].last_ok_s
