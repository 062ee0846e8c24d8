"""A monotonic timer heap for a single-threaded event loop (actors and the supervisor)."""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable


class Timers:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> None:
        heapq.heappush(self._heap, (time.monotonic() + delay_s, next(self._seq), fn))

    def call_every(self, interval_s: float, fn: Callable[[], None]) -> None:
        """Run `fn` every `interval_s` (rescheduled even if it raises)."""

        def tick() -> None:
            try:
                fn()
            finally:
                self.call_later(interval_s, tick)

        self.call_later(interval_s, tick)

    def wait_s(self, cap_s: float) -> float:
        """How long the loop may block: until the next timer, at most `cap_s`, never < 0."""
        if self._heap:
            cap_s = min(cap_s, self._heap[0][0] - time.monotonic())
        return max(0.0, cap_s)

    def postpone(self, delay_s: float) -> None:
        """Move every pending timer `delay_s` later (the loop was stalled that long: the
        supervisor judges deadlines in time it was awake)."""
        self._heap = [(due + delay_s, seq, fn) for due, seq, fn in self._heap]
        heapq.heapify(self._heap)

    def run_due(self) -> None:
        now = time.monotonic()
        while self._heap and self._heap[0][0] <= now:
            heapq.heappop(self._heap)[2]()
