"""Hang verdicts that tell a frozen or spinning actor from one the machine keeps waiting.

An actor heartbeats from its loop, so a loop that is frozen (SIGSTOP, blocked for good in
a call) or spinning (a runaway turn) goes silent, and past `heartbeat_interval_s` x
`hang_missed_intervals` (0.6 s by default) the supervisor kills it (`actor_hung`) and
restarts it. A loop the machine keeps waiting is silent too, and killing it does not make
the machine faster: the restart (a FIX logon, a reconciliation, the orders handed to a
connector resubmitted) costs far more than the wait. Measured here with the test suite
beside a running system: connector and OMS turns of 0.2-0.35 s holding 2-9 ms of CPU, the
rest in fsync/fdatasync of the FIX store or journal; past 0.6 s now and then, and the
killed connector's kernel stack was in `ext4_sync_file` -> `blkdev_issue_flush`.

So past the hang limit the supervisor looks at the actor's main thread
(/proc/PID/task/PID/stat) before it kills:

- `D` (uninterruptible sleep: waiting on the disk) -> not yet (`disk`);
- `R` (runnable) having used less than half of a core over the last half limit and less
  than a quarter of the limit in all since the silence passed half of it (its CPU time read
  at every check from then; a healthy turn uses milliseconds) -> not yet (`cpu`): it waits
  for a core (the machine is overloaded) or has just woken from the disk, and is not
  spinning;
- `S` (asleep) having waited on a run queue for a quarter of the limit or more since the
  silence passed half of it (`/proc/PID/task/PID/schedstat`: the kernel adds a wait when the
  thread gets its core) and not spinning -> not yet (`cpu`): it has just had its turn after
  the wait, and its heartbeat is on its way through its I/O thread, itself waiting for a
  core on a loaded machine. (Seen in CI: a connector kept from its core 0.9 s by a real-time
  loop ran 10 ms when the kernel's fair server gave it the core, went back to its poll and
  was judged asleep, hung, before its heartbeat came);
- anything else (`T` stopped, `S` asleep in a call with no end, `R` spinning), or the
  file unreadable -> hung, as before; `actor_hung` names the state it was found in.

A deferred silence is logged once per reason (`actor_hang_deferred`, `reason` disk or cpu)
and counted (`tradepulse_actor_hang_deferrals_total{actor,reason}`); past
`supervisor.hang_deferral_max_s` (5 s; 0 defers nothing) it is hung whatever it waits on.
A silence ends with the next message of the actor, not with a stall of the supervisor's
credited to it (`Child.postpone`). The price: a runaway loop given a third of a core is
killed after ~0.9 s, not 0.6 s; one that writes and fsyncs in a loop without a heartbeat,
one frozen by a cgroup v1 freezer (it reads as `D`), or one that blocks for good in a call
right after a wait for a core, after `hang_deferral_max_s`.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from actors.runtime import metrics
from actors.supervisor.child import Child
from actors.supervisor.process_group import kill_group
from protocol.config import SupervisorCfg

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SPINNING = 0.5  # of a core, used over the last half limit: not waited on
SPUN = 0.25  # of the limit, in CPU time since the silence passed half of it: spinning


@dataclass(frozen=True, slots=True)
class ThreadSample:
    state: str  # R, S, D, T, Z...
    cpu_s: float  # user + system
    waited_s: float | None = None  # on a run queue, in all; None when not readable


def main_thread(pid: int) -> ThreadSample | None:
    """`pid`'s main thread, None when it cannot be read (gone). The name before the fields
    is in parentheses and may hold any byte."""
    try:
        with open(f"/proc/{pid}/task/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    fields = data.rpartition(b")")[2].split()
    try:  # after the name: state, then utime and stime are the 12th and 13th
        state, cpu_s = fields[0].decode(), (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    except (IndexError, ValueError, UnicodeDecodeError):
        return None
    return ThreadSample(state, cpu_s, _run_queue_wait_s(pid))


def _run_queue_wait_s(pid: int) -> float | None:
    """`pid`'s main thread's time runnable but not running, in all (schedstat: on the CPU,
    waiting on a run queue, timeslices; in ns). None without CONFIG_SCHED_INFO."""
    try:
        with open(f"/proc/{pid}/task/{pid}/schedstat", "rb") as fh:
            return int(fh.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return None


@dataclass
class _Silence:
    key: tuple[int, int]  # (pid, messages heard before it): a credited stall does not end it
    first_cpu_s: float | None = None  # the main thread's CPU time at its first sample
    first_waited_s: float | None = None  # and its run-queue wait
    samples: deque[tuple[float, float]] = field(default_factory=deque)  # (monotonic, cpu_s)
    logged: set[str] = field(default_factory=set)


class HangJudge:
    """Kills the children silent past the hang limit (`check`), unless the machine keeps
    them waiting (module docstring)."""

    def __init__(
        self,
        log: Any,
        sample: Callable[[int], ThreadSample | None] = main_thread,
        clock: Callable[[], float] = time.monotonic,
        kill: Callable[[int | None], object] = kill_group,
    ) -> None:
        self._log = log
        self._sample = sample
        self._clock = clock
        self._kill = kill
        self._silences: dict[str, _Silence] = {}

    def check(self, children: Iterable[Child], now: float, cfg: SupervisorCfg) -> None:
        limit_s = cfg.heartbeat_interval_s * cfg.hang_missed_intervals
        for child in children:
            self._judge(child, now, limit_s, cfg)

    def _judge(self, child: Child, now: float, limit_s: float, cfg: SupervisorCfg) -> None:
        sample = None
        if child.running and child.pid is not None and now - child.last_heard > limit_s / 2:
            sample = self._sample(child.pid)
            self._note(child, child.pid, sample, limit_s / 2)
        age = child.hang_age(
            now, limit_s, excused=lambda c, a: self._deferred(c, a, cfg, limit_s, sample)
        )
        if age is not None:
            self._log.error(
                "actor_hung",
                child=child.id,
                pid=child.pid,
                heartbeat_age_s=round(age, 3),
                thread_state=sample.state if sample else None,
            )
            self._kill(child.pid)

    def _note(self, child: Child, pid: int, sample: ThreadSample | None, window_s: float) -> None:
        """The main thread's CPU time at each check since the silence passed half the
        limit, those of the last `window_s` (and one before) kept."""
        key = (pid, child.heard_count)
        silence = self._silences.get(child.id)
        if silence is None or silence.key != key:
            silence = self._silences[child.id] = _Silence(key)
        if sample is None:
            return
        samples, t = silence.samples, self._clock()
        if silence.first_cpu_s is None:
            silence.first_cpu_s, silence.first_waited_s = sample.cpu_s, sample.waited_s
        samples.append((t, sample.cpu_s))
        while len(samples) > 2 and samples[1][0] <= t - window_s:
            samples.popleft()

    def _deferred(
        self,
        child: Child,
        age: float,
        cfg: SupervisorCfg,
        limit_s: float,
        sample: ThreadSample | None,
    ) -> bool:
        """Past the hang limit: whether this silence is the machine's, not a hang."""
        silence = self._silences.get(child.id)
        if sample is None or silence is None or age > cfg.hang_deferral_max_s:
            return False
        if sample.state == "D":
            reason = "disk"
        elif sample.state == "R" or (sample.state == "S" and _waited(silence, sample, limit_s)):
            if len(silence.samples) < 2:
                return False
            (t0, cpu0), (t1, cpu1) = silence.samples[0], silence.samples[-1]
            first = silence.first_cpu_s
            burnt_s = cpu1 - first if first is not None else 0.0
            if cpu1 - cpu0 >= SPINNING * (t1 - t0) or burnt_s >= SPUN * limit_s:
                return False
            reason = "cpu"
        else:
            return False
        if reason not in silence.logged:
            silence.logged.add(reason)
            metrics.ACTOR_HANG_DEFERRALS.labels(actor=child.id, reason=reason).inc()
            self._log.warning(
                "actor_hang_deferred",
                child=child.id,
                pid=child.pid,
                reason=reason,
                heartbeat_age_s=round(age, 3),
                until_s=cfg.hang_deferral_max_s,
            )
        return True


def _waited(silence: _Silence, sample: ThreadSample, limit_s: float) -> bool:
    """Whether the main thread waited on a run queue for `SPUN` of the limit or more since
    the silence's first sample (the kernel adds a wait when the wait ends)."""
    first, now = silence.first_waited_s, sample.waited_s
    return first is not None and now is not None and now - first >= SPUN * limit_s
