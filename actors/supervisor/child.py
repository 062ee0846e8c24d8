"""One supervised child: its spec, its current incarnation, and its lifecycle.

The daemon tells a `Child` what happened (spawned, heard from, ready, hung, exited, an
operator asked for a restart) and the child updates its own state and answers what to do
next (`ExitDecision`, `ReadyInfo`); no other module sets its fields. The restart arithmetic
(backoff, intensity budget) stays in the pure `restart_policy` functions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

import psutil

from actors.runtime import metrics
from actors.runtime.backoff import backoff_delay
from actors.runtime.process import EXIT_STATE_CORRUPT
from actors.supervisor.restart_policy import ChildSpec, ChildState, RestartTracker
from protocol.config import RestartCfg

# `tradepulse_actor_restarts_total{reason}`: crash, hang, start_timeout, spawn_failed (no
# process could be started); operator (`tradepulse restart`); kill_switch (risk restarting
# a connector for the kill-switch's mass cancel)
RESTART_REASONS = ("crash", "hang", "start_timeout", "spawn_failed", "operator", "kill_switch")


class ExitAction(Enum):
    STAY_STOPPED = "stay_stopped"  # shutdown, operator stop, temporary / clean transient,
    # a non-critical child whose state is corrupt (DOWN until an operator restarts it)
    RESTART_NOW = "restart_now"  # the exit an operator restart asked for
    RESTART_LATER = "restart_later"  # a crash: after the backoff delay
    GIVE_UP = "give_up"  # a critical child over its budget or its state corrupt: stop all


@dataclass(frozen=True)
class ExitDecision:
    action: ExitAction
    delay_s: float = 0.0
    attempt: int = 0
    down: bool = False  # over its budget (retried at the max delay) or corrupt: holds up no start
    newly_down: bool = False  # the first exit of this episode over the budget (or corrupt)
    why: str = "restart_intensity"  # of a GIVE_UP or DOWN: over the budget, or "state_corrupt"


@dataclass(frozen=True)
class ReadyInfo:
    startup_s: float
    restart_s: float | None  # crash (or restart request) to READY, if it was restarted
    back_up: bool  # it was DOWN (over its budget) and serves again


class Child:
    """A supervised actor process across its incarnations (one `epoch` each)."""

    def __init__(self, spec: ChildSpec, policy: RestartCfg) -> None:
        self.spec = spec
        self.id = spec.id
        self._policy = policy
        self._tracker = RestartTracker(policy.max_restarts, policy.window_s, policy.reset_after_s)
        self._state = ChildState.STOPPED
        self._pid: int | None = None
        self._epoch = 0
        self._spawned_at = self._ready_at = self._last_heard = 0.0
        self.heard_count = 0
        self._loop_lag_s = 0.0
        self._max_gap_s = 0.0  # longest silence of this incarnation while RUNNING
        self._crash_at: float | None = None
        self._restart_requested = False
        self._restart_reason = "operator"  # of the restart requested
        self._held: str | None = None  # stopped by an operator (`tradepulse stop`): the reason
        self._hung = False
        self._start_timed_out = False
        self._down = False  # over its restart budget (gave up once), retried at the max delay
        self._endpoints: dict[str, str] = {}
        self._info: dict[str, Any] = {}
        self._proc: psutil.Process | None = None
        for reason in RESTART_REASONS:  # every series exists from 0: increase() sees the first
            metrics.ACTOR_RESTARTS.labels(actor=self.id, reason=reason)

    @property
    def state(self) -> ChildState:
        return self._state

    @property
    def pid(self) -> int | None:
        return self._pid

    @property
    def epoch(self) -> int:
        return self._epoch

    @property
    def running(self) -> bool:
        return self._state is ChildState.RUNNING

    @property
    def held(self) -> bool:
        """An operator stopped it: it stays stopped until `release` (`tradepulse start`)."""
        return self._held is not None

    @property
    def info(self) -> dict[str, Any]:
        """What its last heartbeat reported (`Actor.heartbeat_info`)."""
        return self._info

    # ------------------------------------------------------------------ lifecycle

    def spawned(self, pid: int, epoch: int, now: float) -> None:
        self._pid, self._epoch, self._state = pid, epoch, ChildState.STARTING
        self._spawned_at = self._last_heard = now
        self._ready_at = 0.0  # its run is timed from its own READY: none yet ran 0 s
        self.heard_count = 0  # messages of this incarnation: a new one ends a silence
        self._max_gap_s = 0.0
        self._hung = self._start_timed_out = False
        self._proc = None

    def still_starting(self, epoch: int) -> bool:
        """Incarnation `epoch` has not sent READY yet (start timeout check: the daemon kills
        it, and its exit counts as a start timeout)."""
        late = self._state is ChildState.STARTING and self._epoch == epoch and bool(self._pid)
        self._start_timed_out |= late
        return late

    def heard(
        self, now: float, loop_lag_s: float | None = None, info: dict[str, Any] | None = None
    ) -> None:
        """Any message of the current incarnation; a heartbeat brings its loop lag and info."""
        if self._state is ChildState.RUNNING:
            self._max_gap_s = max(self._max_gap_s, now - self._last_heard)
        self._last_heard = now
        self.heard_count += 1
        if loop_lag_s is not None:
            self._loop_lag_s = loop_lag_s
        if info:
            self._info = info

    def postpone(self, stall_s: float, now: float) -> None:
        """The supervisor was stalled `stall_s` (not reading): that time is not silence."""
        self._last_heard = min(self._last_heard + stall_s, now)

    def ready(self, now: float, endpoints: dict[str, str]) -> ReadyInfo | None:
        """READY; None if it was not starting (a late duplicate)."""
        if self._state is not ChildState.STARTING:
            return None
        self._state, self._ready_at, self._endpoints = ChildState.RUNNING, now, endpoints
        restart_s = None if self._crash_at is None else now - self._crash_at
        self._crash_at = None
        back_up, self._down = self._down, False
        return ReadyInfo(round(now - self._spawned_at, 4), restart_s, back_up)

    def hang_age(
        self,
        now: float,
        limit_s: float,
        excused: Callable[[Child, float], bool] = lambda _child, _age: False,
    ) -> float | None:
        """The heartbeat age if the child is silent past `limit_s` and its silence is not
        `excused` (reported once per incarnation), else None."""
        if self._state is not ChildState.RUNNING or not self._pid or self._hung:
            return None
        age = now - self._last_heard
        if age <= limit_s or excused(self, age):
            return None
        self._hung = True
        return age

    @property
    def last_heard(self) -> float:
        """When the current incarnation was last heard from, a credited stall of the
        supervisor's added (`postpone`)."""
        return self._last_heard

    def stopping(self) -> None:
        self._state = ChildState.STOPPING

    def stopped(self) -> None:
        """Stopped and reaped during shutdown."""
        self._pid, self._state = None, ChildState.STOPPED

    def hold(self, reason: str) -> bool:
        """An operator stop: no restart until `release`, not a crash, no budget used. True:
        it has a process to stop; False: it is not running (now STOPPED for good)."""
        self._held, self._restart_requested, self._crash_at = reason, False, None
        if self._pid is None:
            self._state = ChildState.STOPPED
            return False
        return True

    def release(self) -> bool:
        """`tradepulse start`: True: spawn it now (with a fresh restart budget); False: its
        stop is still under way and its exit respawns it at once."""
        self._held = None
        return self.restart_requested()

    def restart_requested(self, reason: str = "operator") -> bool:
        """An operator restart (`reason`: its restart-counter label). True: it is not running
        (gave up or between restarts), spawn it now with a fresh restart budget; False: stop
        it, its exit respawns it at once."""
        if self._pid is None:
            t = self._tracker
            self._tracker = RestartTracker(
                t.max_restarts, t.window_s, t.reset_after_s, total=t.total
            )
            self._count_restart(reason)
            return True
        self._restart_requested, self._restart_reason = True, reason
        return False

    def restart_due(self, epoch: int) -> bool:
        """The backoff timer set at the exit of incarnation `epoch` fired: still to restart?"""
        return self._pid is None and self._epoch == epoch and self._held is None

    def spawn_failed(self, now: float) -> ExitDecision:
        """No process could be started for it (the fork refused: the host's pid or memory
        limit; the fork server gone and no other could be started): an incarnation that
        never ran, restarted after the backoff and counted against the budget like a crash
        at start-up, so a limit that lasts ends as DOWN (a critical child: the system stops)
        instead of a supervisor that dies with every actor."""
        self._ready_at, self._hung, self._start_timed_out = 0.0, False, False
        return self.exited(1, now, shutting_down=False, reason="spawn_failed")

    def exited(
        self, exit_code: int, now: float, *, shutting_down: bool, reason: str | None = None
    ) -> ExitDecision:
        """The process ended (`exit_code` < 0: killed by that signal): what next. A restart
        it leads to is counted (`tradepulse_actor_restarts_total{reason}`)."""
        ran_for = now - self._ready_at if self._ready_at else 0.0
        self._pid, self._state = None, ChildState.STOPPED
        self._info = {}  # the dead incarnation's view is no longer true
        if shutting_down or self._held is not None:
            return ExitDecision(ExitAction.STAY_STOPPED)
        if self._restart_requested:
            self._restart_requested = False
            self._crash_at = now
            self._count_restart(self._restart_reason)
            return ExitDecision(ExitAction.RESTART_NOW)
        restart = self.spec.restart
        if restart == "temporary" or (restart == "transient" and exit_code == 0):
            return ExitDecision(ExitAction.STAY_STOPPED)
        if exit_code == EXIT_STATE_CORRUPT:  # a restart meets the same bytes: never restarted
            self._state, why = ChildState.GAVE_UP, "state_corrupt"
            if self.spec.critical:  # the system stops
                return ExitDecision(ExitAction.GIVE_UP, why=why)
            newly_down, self._down = not self._down, True  # its venue DOWN until an operator
            return ExitDecision(ExitAction.STAY_STOPPED, down=True, newly_down=newly_down, why=why)
        if reason is None:
            reason = "hang" if self._hung else "start_timeout" if self._start_timed_out else "crash"
        self._count_restart(reason)
        attempt = self._tracker.record_exit(now, ran_for)
        if self._crash_at is None:
            self._crash_at = now
        p = self._policy
        delay = backoff_delay(
            attempt, initial_s=p.initial_s, factor=p.factor, max_s=p.max_s, jitter=p.jitter
        )
        over = self._tracker.over_budget()
        if not (over or self._down):
            self._state = ChildState.BACKOFF
            return ExitDecision(ExitAction.RESTART_LATER, delay, attempt)
        if self.spec.critical:
            self._state = ChildState.GAVE_UP
            return ExitDecision(ExitAction.GIVE_UP, attempt=attempt)
        newly_down, self._down = not self._down, True
        self._state = ChildState.DOWN if over else ChildState.BACKOFF  # budget recovered: BACKOFF
        return ExitDecision(ExitAction.RESTART_LATER, p.max_s, attempt, True, newly_down)

    def _count_restart(self, reason: str) -> None:
        metrics.ACTOR_RESTARTS.labels(actor=self.id, reason=reason).inc()

    # ------------------------------------------------------------------ observation

    @property
    def restarts(self) -> int:
        return self._tracker.total

    def sample(self, now: float) -> None:
        """Refresh its heartbeat-age and RSS gauges."""
        age = now - self._last_heard if self._pid else 0.0
        metrics.ACTOR_HEARTBEAT_AGE.labels(actor=self.id).set(age)
        rss = self._rss()
        if rss:
            metrics.ACTOR_RSS.labels(actor=self.id).set(rss)

    def status(self, now: float) -> dict[str, Any]:
        """One row of `status`."""
        rss = self._rss()
        cpu = 0.0
        if rss and self._proc is not None:
            try:
                cpu = self._proc.cpu_percent(None)
            except psutil.Error:
                pass
        up = self._pid is not None and self.running and self._ready_at
        return {
            "id": self.id,
            "kind": self.spec.kind,
            "pid": self._pid,
            "state": self._state.value,
            "stopped_by_operator": self._held,  # its reason; None: not stopped by an operator
            "epoch": self._epoch,
            "restarts": self._tracker.total,
            "uptime_s": round(now - self._ready_at, 3) if up else 0.0,
            "heartbeat_age_s": round(now - self._last_heard, 3) if self._pid else None,
            "loop_lag_s": self._loop_lag_s,
            "heartbeat_gap_max_s": round(self._max_gap_s, 3),  # the longest loop stall seen
            "rss_bytes": rss,
            "cpu_percent": cpu,
            "endpoints": self._endpoints,
            "info": self._info,
        }

    def _rss(self) -> int:
        if self._pid is None:
            return 0
        try:
            if self._proc is None or self._proc.pid != self._pid:
                self._proc = psutil.Process(self._pid)
                self._proc.cpu_percent(None)
            return int(self._proc.memory_info().rss)
        except psutil.Error:
            self._proc = None
            return 0
