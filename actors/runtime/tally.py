"""Metric updates of one loop turn, written once at its end.

A multiprocess metric update is a lock, a pid check (a system call) and an mmap write:
~0.8 us a counter increment, ~1.6 us a histogram observation. On the order path they ran
several times per order, once per outcome (the OMS's orders by status, its queue-depth
gauge set twice per order, risk's checks by outcome, the connector's venue round trips:
~3-4 % of each of those processes in the profiles of issue 16). The hot paths add to their
process's `TURN` instead, and the actor loop flushes it after each turn
(`Actor._iterate`) once `FLUSH_AFTER_S` passed since the first update it holds (the loop
wakes for it if nothing else comes): one write per metric child per interval, however many
orders and turns it carried, and none in the instant after a turn's sends, when the order's
next process needs the CPU. A scrape sees an update at most `FLUSH_AFTER_S` (and a turn)
late; the values are the same.

A histogram's observations are folded into their bucket counts and sum with
prometheus_client's own fields (`_upper_bounds`, `_buckets`, `_sum`); a child without them
(another release) gets its observations one by one, as before (tests/runtime/test_tally.py
compares the two).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from typing import Any, Protocol

FLUSH_AFTER_S = 0.005


class _Incrementable(Protocol):
    def inc(self, amount: float = 1) -> None: ...


class _Settable(Protocol):
    def set(self, value: float) -> None: ...


class _Observable(Protocol):
    def observe(self, amount: float) -> None: ...


class Tally:
    """Counter increments, gauge values and histogram observations, pending until
    `flush`. Keys are the labelled children (looked up once by their callers)."""

    def __init__(self) -> None:
        self._incs: dict[_Incrementable, float] = {}
        self._sets: dict[_Settable, float] = {}
        self._observed: dict[_Observable, list[float]] = {}
        self._since: float | None = None  # when the loop first saw updates pending

    def inc(self, child: _Incrementable, amount: float = 1.0) -> None:
        self._incs[child] = self._incs.get(child, 0.0) + amount

    def set(self, child: _Settable, value: float) -> None:
        self._sets[child] = value  # the turn's last value wins, as it would have

    def observe(self, child: _Observable, value: float) -> None:
        values = self._observed.get(child)
        if values is None:
            self._observed[child] = [value]
        else:
            values.append(value)

    @property
    def pending(self) -> bool:
        return bool(self._incs or self._sets or self._observed)

    def wait_s(self, now: float) -> float:
        """How long the loop may block before `flush_due` has work (inf: none pending)."""
        if self._since is None:
            return math.inf
        return max(0.0, self._since + FLUSH_AFTER_S - now)

    def flush_due(self, now: float) -> None:
        """After a loop turn: flush what is pending once `FLUSH_AFTER_S` old."""
        if self._since is None:
            self._since = now
        elif now - self._since >= FLUSH_AFTER_S:
            self.flush()

    def flush(self) -> None:
        """Write what is pending: one update per child (per bucket of a histogram)."""
        self._since = None
        if self._incs:
            incs, self._incs = self._incs, {}
            for counter, amount in incs.items():
                counter.inc(amount)
        if self._sets:
            sets, self._sets = self._sets, {}
            for gauge, value in sets.items():
                gauge.set(value)
        if self._observed:
            observed, self._observed = self._observed, {}
            for histogram, values in observed.items():
                _observe_all(histogram, values)


def _observe_all(histogram: _Observable, values: list[float]) -> None:
    h: Any = histogram
    bounds = getattr(h, "_upper_bounds", None)
    buckets = getattr(h, "_buckets", None)
    total = getattr(h, "_sum", None)
    if len(values) == 1 or bounds is None or buckets is None or total is None:
        for v in values:
            histogram.observe(v)
        return
    counts: dict[int, int] = {}
    for v in values:
        if v == v:  # NaN is in no bucket, as in `observe`
            i = bisect_left(bounds, v)  # the first bound >= v: `observe`'s bucket
            counts[i] = counts.get(i, 0) + 1
    total.inc(sum(values))
    for i, n in counts.items():
        buckets[i].inc(n)


TURN = Tally()  # this process's: flushed by the actor loop after each turn
