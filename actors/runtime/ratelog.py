"""A log budget: at most `burst` lines of one event per `window_s`, the rest counted.

A peer that sends bad input as fast as it can must not turn each message into a log line
(2,484 tracebacks in 5 s filled a disk's worth of log for 12 orders): the metric counts
every one, the log shows the first few of each window and how many it left out.

    budget = LogBudget()
    if (skipped := budget.take()) is not None:
        log.warning("bad_message", ..., suppressed=skipped)
"""

from __future__ import annotations

import time
from collections.abc import Callable


class LogBudget:
    def __init__(
        self, burst: int = 10, window_s: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._burst = burst
        self._window_s = window_s
        self._clock = clock
        self._window_end = 0.0
        self._used = 0
        self._suppressed = 0

    def take(self) -> int | None:
        """None: do not log this one. Otherwise log it, with the returned number of lines
        left out since the last one logged."""
        now = self._clock()
        if now >= self._window_end:
            self._window_end, self._used = now + self._window_s, 0
        if self._used >= self._burst:
            self._suppressed += 1
            return None
        self._used += 1
        skipped, self._suppressed = self._suppressed, 0
        return skipped

    def force(self) -> int:
        """Log this one whatever the budget (a line an operator must see); returns the
        lines left out since the last one logged, as `take` does."""
        if (skipped := self.take()) is not None:
            return skipped
        skipped, self._suppressed = self._suppressed - 1, 0  # (take counted this one out)
        return skipped
