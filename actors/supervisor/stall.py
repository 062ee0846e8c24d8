"""The supervisor's own stalls: time it was not reading its sockets does not count against
the actors.

A SIGSTOP of the supervisor (a VM pause, a swap stall, a debugger) stops its loop; the
actors keep heartbeating into its socket. Judged on the wall of monotonic time when it
wakes, every actor looks silent for the length of the pause: all of them used to be
SIGKILLed as hung. `StallWatch.poll` wraps the loop's one `poll`: the time between two
turns beyond what the loop planned to wait (the poll timeout) is time the supervisor was
away. When that exceeds `MIN_STALL_S`, every deadline is extended by the stall (each
child's last-heard time, every timer: start timeouts, stop escalations, restart backoffs)
BEFORE anything queued is read; the daemon then drains its sockets as usual. Each stall is
counted (`tradepulse_supervisor_stall_seconds_total`) and logged `supervisor_stalled`
(rate-limited). An actor that is really hung is still caught one
hang timeout of supervisor-awake time after the pause.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, Final, Protocol

import zmq

from actors.runtime import metrics
from actors.runtime.ratelog import LogBudget
from actors.runtime.timers import Timers

MIN_STALL_S: Final = 0.1  # below this a late turn is ordinary scheduling noise


class _Judged(Protocol):
    def postpone(self, stall_s: float, now: float) -> None: ...


class StallWatch:
    def __init__(
        self,
        timers: Timers,
        children: Iterable[_Judged],
        log: Any,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._timers = timers
        self._children = list(children)
        self._log = log
        self._clock = clock
        self._budget = LogBudget(burst=3, window_s=10.0)
        self._turn_end = clock()

    def poll(self, poller: zmq.Poller, timeout_ms: int) -> list[tuple[object, int]]:
        """`poller.poll(timeout_ms)`, then `on_stall` if the loop was away too long."""
        start = self._clock()
        events = poller.poll(timeout_ms)
        self.account(start, timeout_ms / 1000)
        return events

    def account(self, poll_started: float, planned_wait_s: float) -> float:
        """The stall of the turn whose poll started at `poll_started` (0.0 if none)."""
        end = self._clock()
        busy = poll_started - self._turn_end  # handlers and timers of the previous turn
        late = (end - poll_started) - planned_wait_s  # woke later than the timeout allowed
        self._turn_end = end
        stall = busy + max(0.0, late)
        if stall < MIN_STALL_S:
            return 0.0
        self._extend_deadlines(stall, end)
        return stall

    def _extend_deadlines(self, stall_s: float, now: float) -> None:
        self._timers.postpone(stall_s)
        for child in self._children:
            child.postpone(stall_s, now)
        metrics.SUPERVISOR_STALL_SECONDS.inc(stall_s)
        if (skipped := self._budget.take()) is not None:
            self._log.warning("supervisor_stalled", stall_s=round(stall_s, 3), suppressed=skipped)
