"""The supervisor's own stalls: time it was not reading its sockets does not count against
the actors.

A SIGSTOP of the supervisor (a VM pause, a swap stall, a debugger) stops its loop; the
actors keep heartbeating into its socket. Judged on the wall of monotonic time when it
wakes, every actor looks silent for the length of the pause: all of them used to be
SIGKILLed as hung. A stall is wall time the loop's thread did not run, measured in two parts:
`poll` wraps the loop's one `poll`, and the time it returned beyond what the loop planned to
wait (the poll timeout) is a stall; `catch_up` covers everything else (the handlers,
`run_due`): wall time minus the thread's CPU time (`time.thread_time`) since the last
accounting. Time spent BUSY in handlers is not a stall (the loop was running: counting it
let a same-uid client flooding expensive control requests push every deadline back each
turn, so a hung actor was never found); a pause that lands while handlers run is, and the
hang check drains the actor socket, reads the clock, and only then credits every stall up to
that reading (`settled_now`) before it judges anyone (without that it judged with last-heard
times older than the pause). When a part exceeds
`MIN_STALL_S`, every deadline is extended by it (each
child's last-heard time, every timer: start timeouts, stop escalations, restart backoffs)
BEFORE anything queued is read; the daemon then drains its sockets as usual. Each stall is
counted (`tradepulse_supervisor_stall_seconds_total`) and logged `supervisor_stalled`
(rate-limited, but a stall of `loud_s` or more, the hang limit, always: without the
accounting it would have judged every actor hung, and under load the short stalls of a busy
start had used the budget up). An actor that is really hung is still caught one
hang timeout of supervisor-awake time after the pause. A blocking system call in a handler
(a slow disk) counts as a stall too: the loop was not reading then either.
"""

from __future__ import annotations

import math
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
        cpu_clock: Callable[[], float] = time.thread_time,
        loud_s: float = math.inf,
    ) -> None:
        self._timers = timers
        self._loud_s = loud_s
        self._children = list(children)
        self._log = log
        self._clock = clock
        self._cpu_clock = cpu_clock
        self._budget = LogBudget(burst=3, window_s=10.0)
        self.mark()

    def mark(self) -> None:
        """Measure from now (the loop starts: start-up is not a stall)."""
        self._wall_mark, self._cpu_mark = self._clock(), self._cpu_clock()

    def poll(self, poller: zmq.Poller, timeout_ms: int) -> list[tuple[object, int]]:
        """`poller.poll(timeout_ms)`; the stalls before it and during it extend deadlines."""
        self.catch_up()
        start = self._wall_mark  # from the accounting: a pause between the two is measured here
        events = poller.poll(timeout_ms)
        self.mark()
        self._stalled((self._wall_mark - start) - timeout_ms / 1000)  # woke late
        return events

    def catch_up(self) -> float:
        """The stall since the last accounting outside `poll`: wall time the thread did not
        run (0.0 below `MIN_STALL_S`); deadlines extended by it."""
        wall, cpu = self._wall_mark, self._cpu_mark
        self.mark()
        return self._stalled((self._wall_mark - wall) - (self._cpu_mark - cpu))

    def settled_now(self, read_queued: Callable[[], None]) -> float:
        """The time to judge deadlines at: the stalls so far are credited, `read_queued`
        reads what queued, the clock is read, then every stall up to that reading is
        credited. A pause anywhere before the reading (even inside `read_queued`, or between
        it and the reading) is not silence: crediting only before the drain left that window,
        and a pause landing in it (the post-pause drain is the likeliest place) judged every
        actor hung."""
        self.catch_up()  # a pause before the drain: credited before what queued is heard
        read_queued()  # (else a child's longest heartbeat gap would include it)
        now = self._clock()
        self.catch_up()
        return now

    def _stalled(self, stall_s: float) -> float:
        if stall_s < MIN_STALL_S:
            return 0.0
        self._extend_deadlines(stall_s, self._wall_mark)
        return stall_s

    def _extend_deadlines(self, stall_s: float, now: float) -> None:
        self._timers.postpone(stall_s)
        for child in self._children:
            child.postpone(stall_s, now)
        metrics.SUPERVISOR_STALL_SECONDS.inc(stall_s)
        budget = self._budget
        skipped = budget.force() if stall_s >= self._loud_s else budget.take()
        if skipped is not None:
            self._log.warning("supervisor_stalled", stall_s=round(stall_s, 3), suppressed=skipped)
