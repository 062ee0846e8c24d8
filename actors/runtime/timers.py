"""A monotonic timer heap for a single-threaded event loop (actors and the supervisor).

`call_later` runs at its time. `call_every` is periodic housekeeping: besides its own time,
it runs up to `min(interval / 2, MAX_EARLY_S)` early whenever the loop is awake anyway (for
another timer or a message), and its next run counts from then. So an idle actor's timers
fall into step and share wake-ups instead of each adding its own (issue 16: an idle
connector woke 25 times a second for its tick, its resend checks and its beats).
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable

MAX_EARLY_S = 0.1  # how early a periodic timer may run: its period stays >= interval - this

# (due, seq, fn, how early it may run)
_Entry = tuple[float, int, Callable[[], None], float]


class Timers:
    def __init__(self) -> None:
        # one-shot timers (a request's deadline: thousands under load) apart from the few
        # periodic ones, so the early-run scan looks at the periodic ones only (it popped
        # and pushed back every deadline due within MAX_EARLY_S each turn: 4 % of the OMS)
        self._once: list[_Entry] = []
        self._periodic: list[_Entry] = []
        self._seq = itertools.count()

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> None:
        self._push(delay_s, fn, 0.0)

    def call_every(self, interval_s: float, fn: Callable[[], None]) -> None:
        """Run `fn` every `interval_s`, or up to `min(interval_s / 2, MAX_EARLY_S)` sooner
        when the loop is awake anyway (rescheduled even if it raises)."""
        early_s = min(interval_s / 2, MAX_EARLY_S)

        def tick() -> None:
            try:
                fn()
            finally:
                self._push(interval_s, tick, early_s)

        self._push(interval_s, tick, early_s)

    def _push(self, delay_s: float, fn: Callable[[], None], early_s: float) -> None:
        heap = self._periodic if early_s else self._once
        heapq.heappush(heap, (time.monotonic() + delay_s, next(self._seq), fn, early_s))

    def wait_s(self, cap_s: float) -> float:
        """How long the loop may block: until the next timer, at most `cap_s`, never < 0."""
        for heap in (self._once, self._periodic):
            if heap:
                cap_s = min(cap_s, heap[0][0] - time.monotonic())
        return max(0.0, cap_s)

    def postpone(self, delay_s: float) -> None:
        """Move every pending timer `delay_s` later (the loop was stalled that long: the
        supervisor judges deadlines in time it was awake)."""
        for heap in (self._once, self._periodic):
            heap[:] = [(due + delay_s, seq, fn, early) for due, seq, fn, early in heap]
            heapq.heapify(heap)

    def run_due(self) -> None:
        """Run what is due, then the periodic timers close enough to run early."""
        now = time.monotonic()
        once, periodic = self._once, self._periodic
        while True:  # what is due, in (due, seq) order across both heaps
            due_once = bool(once) and once[0][0] <= now
            if periodic and periodic[0][0] <= now and not (due_once and once[0] < periodic[0]):
                heapq.heappop(periodic)[2]()
            elif due_once:
                heapq.heappop(once)[2]()
            else:
                break
        early: list[_Entry] = []
        later: list[_Entry] = []
        while periodic and periodic[0][0] <= now + MAX_EARLY_S:
            entry = heapq.heappop(periodic)
            (early if entry[0] - entry[3] <= now else later).append(entry)
        for entry in later:  # back in the heap before anything runs: a `postpone` by one of
            heapq.heappush(periodic, entry)  # the early ones must move them too
        for entry in early:
            entry[2]()
