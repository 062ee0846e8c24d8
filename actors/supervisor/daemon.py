"""The supervisor daemon: spawn actors in order, watch them, restart them, shut them down.
Exits are seen at once (SIGCHLD through the loop's wakeup fd; a child subreaper, so fork-server
children are its children too); hangs by missing application heartbeats. Restarts: capped
exponential backoff with jitter, a restart intensity budget. Its own stalls: stall.py."""

from __future__ import annotations

import argparse
import math
import os
import signal
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import structlog
import zmq

from actors.risk import killswitch
from actors.runtime import metrics
from actors.runtime.hardening import make_undumpable
from actors.runtime.logs import configure_logging
from actors.runtime.timers import Timers
from actors.supervisor import host
from actors.supervisor.actor_link import ActorLink
from actors.supervisor.child import Child, ExitAction, ExitDecision
from actors.supervisor.control_plane import ControlPlane
from actors.supervisor.failclosed import engage_critical, prepare_switch
from actors.supervisor.hangs import HangJudge
from actors.supervisor.host import become_child_subreaper, signal_wakeup_fd, start_metrics_server
from actors.supervisor.operator_stop import OperatorStops
from actors.supervisor.process_group import kill_group, wait_escalating
from actors.supervisor.restart_policy import ChildState, StartQueue, child_specs, start_plan
from actors.supervisor.sdnotify import SystemdNotify
from actors.supervisor.spawner import SpawnFailed, Spawning, actor_args, make_spawner
from actors.supervisor.stall import StallWatch
from actors.supervisor.status_data import system_status
from actors.supervisor.venues import VenueBoard
from protocol.codec import Envelope, Sender, encode
from protocol.config import SystemConfig
from protocol.link_config import CORE
from protocol.messages import (
    ActorHeartbeat,
    ControlReply,
    ControlRequest,
    Message,
    Ready,
    Stop,
    VenueStateChanged,
)
from protocol.sockets import bind_router, new_context

AllReadyHook = Callable[[dict[str, Any]], None]


class Supervisor:
    """The daemon; the control plane sees it as a `ControlHost`."""

    def __init__(
        self,
        cfg: SystemConfig,
        *,
        config_path: str,
        cold: bool,
        overrides: dict[str, Any],
        on_all_ready: AllReadyHook | None = None,
    ):
        self.cfg = cfg
        self.state_path = cfg.state_path  # ControlHost
        self.config_path = os.path.abspath(config_path)
        self.cold = cold
        self.overrides = overrides
        self.log = structlog.get_logger().bind(actor="supervisor")
        restart = cfg.supervisor.restart
        group = overrides.get("host_group") or CORE  # what this supervisor runs (`--host-group`)
        self.children = {s.id: Child(s, restart) for s in child_specs(cfg, group)}
        self.order = list(self.children)
        self.venues = VenueBoard([v.name for v in cfg.venues if v.host_group == group])
        self.ctx: zmq.Context[zmq.Socket[bytes]] = new_context()
        self.sender = Sender("supervisor", int(time.time() * 1000))
        self.timers = Timers()
        hang_s = cfg.supervisor.heartbeat_interval_s * cfg.supervisor.hang_missed_intervals
        self.stalls = StallWatch(self.timers, self.children.values(), self.log, loud_s=hang_s)
        self.hangs = HangJudge(self.log)
        self._last_epoch = 0
        self._start_queue = StartQueue([])
        self.shutting_down = False  # ControlHost: what it still answers (control_plane)
        self._exit_code = 0
        self._pid_to_child: dict[int, Child] = {}
        self.spawner: Spawning | None = None
        self.started_at = time.monotonic()
        self.metrics_url = ""
        self.systemd = SystemdNotify.for_loop(self.timers, self.status, self.log)  # sdnotify.py
        self._on_all_ready = self.systemd.when_ready(on_all_ready)
        self._all_ready_fired = False
        self.operator_stops = OperatorStops(  # ControlHost: `tradepulse stop` / `start`
            self.children, cfg.runtime_path, self._stop_child, self._spawn,
            self._leave_start_queue, self.log)  # fmt: skip

    # ------------------------------------------------------------------ setup

    def _open_sockets(self) -> None:
        self.link = ActorLink(self.ctx, self.cfg.supervisor_endpoint)
        ctl_sock = bind_router(self.ctx, self.cfg.control_endpoint)
        self.control = ControlPlane(ctl_sock, self.sender, self, self.timers, self.log)
        self._sig_r = signal_wakeup_fd(signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
        self.poller = zmq.Poller()
        self.poller.register(self.link.sock, zmq.POLLIN)
        self.poller.register(self.link.gate.sock, zmq.POLLIN)
        self.poller.register(ctl_sock, zmq.POLLIN)
        self.poller.register(self._sig_r, zmq.POLLIN)

    # ------------------------------------------------------------------ main loop

    def run(self) -> int:
        make_undumpable()  # before any secret or pipe exists (runtime.hardening)
        become_child_subreaper()
        if self.cold:
            from actors.supervisor.coldstart import cold_start

            cold_start(self.cfg.state_path)
        prepare_switch(self.cfg.state_path, self.log)
        self._open_sockets()
        self.metrics_url = start_metrics_server(self.cfg)
        kinds = {c.spec.kind for c in self.children.values()}
        self.spawner = Spawning(
            lambda: make_spawner(self.cfg, kinds),
            lambda actor, error: self.log.error(
                "spawn_failed", child=actor, error=error, retry="new spawner"
            ),
        )
        host.log_shared_dirs(self.cfg, self.log)  # runtime_dir_shared, state_dir_shared
        self.log.info(
            "supervisor_started",
            pid=os.getpid(),
            state_dir=str(self.cfg.state_path),
            runtime_dir=str(self.cfg.runtime_path),
            metrics_url=self.metrics_url,
        )
        at_once, self._start_queue = start_plan([c.spec for c in self.children.values()])
        for child in (self.children[cid] for cid in at_once):
            if not child.held and child.state is ChildState.STOPPED:
                self._spawn(child)
        self._start_next()
        self.timers.call_every(self.cfg.supervisor.heartbeat_interval_s / 2, self._check_hangs)
        self.timers.call_every(1.0, self._sample_resources)
        self.stalls.mark()  # start-up blocked on spawns is not a stall of the loop
        try:
            while not self.shutting_down:
                timeout_ms = math.ceil(self.timers.wait_s(1.0) * 1000)
                for sock, _ in self.stalls.poll(self.poller, timeout_ms):
                    if sock is self.link.sock:
                        self._read_actors()
                    elif sock is self.link.gate.sock:
                        self.link.gate.on_readable()
                    elif sock is self.control.sock:
                        self.control.on_readable()
                    else:
                        self._on_signals()
                self.timers.run_due()
        finally:
            self._shutdown()
        return self._exit_code

    def _send_actor(self, actor: str, body: Message) -> str:
        """Send to a child over the actor socket; returns the message id (raises ZMQError)."""
        self.link.send(actor, encode(env := self.sender.envelope(body)))
        return env.msg_id

    def _ask_to_stop(self, child: Child, reason: str) -> None:
        try:
            self._send_actor(child.id, Stop(reason=reason))
        except zmq.ZMQError as exc:
            self.log.warning("send_failed", type="stop", error=str(exc))

    # ------------------------------------------------------------------ ControlHost

    @property
    def kill_switch_path(self) -> Path:
        return killswitch.kill_switch_path(self.cfg.state_path)

    def actor_ids(self) -> list[str]:
        return list(self.order)

    def actor_state(self, actor: str) -> ChildState | None:
        return None if (child := self.children.get(actor)) is None else child.state

    def status(self) -> dict[str, Any]:
        return system_status(self)  # actors/supervisor/status_data.py

    def request_restart(self, actor: str, *, force: bool, reason: str = "operator") -> bool:
        child = self.children[actor]
        if child.restart_requested(reason):
            self._spawn(child)
            return True
        if force:  # unresponsive: no polite stop
            child.stopping()
            kill_group(child.pid)
        else:
            self._stop_child(child)
        return False

    def request_shutdown(self) -> None:  # `tradepulse shutdown`; a signal: `_on_signals`
        self.log.info("shutdown_requested", command="shutdown")
        self.shutting_down = True

    def actor_of_pid(self, pid: int) -> str | None:
        return next((c.id for c in self.children.values() if c.pid == pid), None)

    def actor_info(self, actor: str) -> dict[str, Any]:
        return {} if (child := self.children.get(actor)) is None else dict(child.info)

    def forward(self, actor: str, request: ControlRequest) -> str:
        return self._send_actor(actor, request)

    def _sample_resources(self) -> None:
        for child, now in ((c, time.monotonic()) for c in self.children.values()):
            child.sample(now)

    # ------------------------------------------------------------------ spawning

    def _next_epoch(self) -> int:
        self._last_epoch = max(self._last_epoch + 1, time.time_ns() // 1_000_000)
        return self._last_epoch

    def _start_next(self) -> None:
        moved = True
        while moved:  # each chain's head: through (next!), or spawned and awaited
            moved = False
            for child in [self.children[cid] for cid in self._start_queue.heads()]:
                if child.state in (ChildState.RUNNING, ChildState.DOWN) or child.held:
                    moved = self._start_queue.leave(child.id) or moved
                elif child.state is ChildState.STOPPED:
                    self._spawn(child)
        if not self._start_queue.heads() and not self._all_ready_fired:
            self._all_ready_fired = True
            self.log.info("system_ready", actors=len(self.children), metrics_url=self.metrics_url)
            if self._on_all_ready is not None:
                self._on_all_ready(self.status())

    def _leave_start_queue(self, child: Child) -> None:
        """`child` is ready, or DOWN (which must not hold up the rest): start the next one."""
        if self._start_queue.leave(child.id):
            self._start_next()

    def _spawn(self, child: Child) -> None:
        if self.shutting_down:
            return
        spec, cold = child.spec, self.cold and child.epoch == 0
        args = actor_args(spec, self._next_epoch(), self.config_path, cold, self.overrides)
        assert self.spawner is not None, "spawn before run()"
        try:
            pid = self.spawner.spawn(args)
        except SpawnFailed as exc:  # a new spawner failed too: no process, as a crash at start
            self.log.error("spawn_failed", child=spec.id, error=str(exc), retry="backoff")
            self._after_exit(child, child.spawn_failed(time.monotonic()))
            return
        child.spawned(pid, args.epoch, time.monotonic())
        self._pid_to_child[pid] = child
        self.log.info("actor_spawned", child=spec.id, pid=pid, child_epoch=args.epoch)
        timeout = partial(self._check_start_timeout, child, args.epoch)
        self.timers.call_later(spec.start_timeout_s, timeout)

    def _check_start_timeout(self, child: Child, epoch: int) -> None:
        if child.still_starting(epoch):
            self.log.error("actor_start_timeout", child=child.id, pid=child.pid)
            kill_group(child.pid)

    # ------------------------------------------------------------------ actor messages

    def _read_actors(self) -> None:
        for child, env in self.link.receive(self.children):
            self._on_actor_message(child, env)

    def _on_actor_message(self, child: Child, env: Envelope) -> None:
        body = env.body
        now = time.monotonic()
        if isinstance(body, ActorHeartbeat):
            child.heard(now, body.loop_lag_s, body.info)
            self.control.on_heartbeat(child.id, body.info)  # the link's: the edges' stops
            if child.running:  # a give-up's record whose removal failed: again (rare)
                self.operator_stops.revived(child)
            return
        child.heard(now)
        if isinstance(body, Ready):
            self._on_ready(child, body, now)
        elif isinstance(body, VenueStateChanged):
            self.venues.reported(
                body.venue, body.state, body.detail, reporter_running=child.running
            )
        elif isinstance(body, ControlReply):
            self.control.on_actor_reply(env.corr_id, body)

    def _on_ready(self, child: Child, body: Ready, now: float) -> None:
        ready = child.ready(now, body.endpoints)
        if ready is None:
            return
        metrics.ACTOR_UP.labels(actor=child.id).set(1)
        fields: dict[str, Any] = {"startup_s": ready.startup_s}
        if ready.restart_s is not None:
            metrics.ACTOR_RESTART_SECONDS.observe(ready.restart_s)
            fields["restart_s"] = round(ready.restart_s, 4)
        venue = child.spec.venue
        self.operator_stops.revived(child)  # READY: no longer given up on (if it was)
        if ready.back_up and venue and child.spec.kind == "connector":  # within service again
            self.venues.back_up(venue)
        self.log.info(
            "actor_ready", child=child.id, pid=child.pid, child_epoch=child.epoch, **fields
        )
        self._leave_start_queue(child)

    # ------------------------------------------------------------------ exits and restarts

    def _on_signals(self) -> None:
        try:
            data = os.read(self._sig_r, 512)
        except BlockingIOError:
            data = b""
        for signum in data:
            if signum in (signal.SIGTERM, signal.SIGINT):
                self.log.info("shutdown_requested", signal=signal.Signals(signum).name)
                self.shutting_down = True
            elif signum == signal.SIGHUP:  # reload the config (actors.supervisor.reload)
                self.control.reload_by_signal(self.systemd)
        self._reap()

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            child = self._pid_to_child.pop(pid, None)
            if child is not None and child.pid == pid:
                self._on_exit(child, status)

    def _on_exit(self, child: Child, status: int) -> None:
        pid, epoch = child.pid, child.epoch
        code = os.waitstatus_to_exitcode(status)
        how = {"signal": signal.Signals(-code).name} if code < 0 else {"exit_code": code}
        self.log.warning("actor_exited", child=child.id, pid=pid, child_epoch=epoch, **how)
        metrics.ACTOR_UP.labels(actor=child.id).set(0)
        kill_group(pid)  # anything the actor left in its group
        self._after_exit(
            child, child.exited(code, time.monotonic(), shutting_down=self.shutting_down)
        )

    def _after_exit(self, child: Child, decision: ExitDecision) -> None:
        epoch = child.epoch  # of the incarnation that ended (or could not be started)
        if decision.newly_down:  # once per episode, not at every retry
            self.log.error(
                "actor_gave_up", child=child.id, restarts=child.restarts, reason=decision.why
            )
            if (venue := child.spec.venue) and child.spec.kind == "connector":
                self.venues.down(venue, decision.why)
        if decision.down:  # the OMS refuses its venue's orders until it is spawned again
            self.operator_stops.gave_up(child, decision.why)
            self._leave_start_queue(child)
        if decision.action is ExitAction.STAY_STOPPED:
            return
        if decision.action is ExitAction.RESTART_NOW:
            self._spawn(child)
            return
        if decision.action is ExitAction.GIVE_UP:
            self._give_up(child, decision.why)
            return
        delay_s, attempt = decision.delay_s, decision.attempt
        self.log.info(
            "actor_restarting", child=child.id, delay_s=round(delay_s, 4), attempt=attempt
        )
        self.timers.call_later(delay_s, lambda: self._restart_if_due(child, epoch))

    def _restart_if_due(self, child: Child, epoch: int) -> None:
        if child.restart_due(epoch) and not self.shutting_down:
            self._spawn(child)

    def _give_up(self, child: Child, why: str) -> None:
        self.log.error(
            "actor_gave_up", child=child.id, restarts=child.restarts, critical=True, reason=why
        )
        engage_critical(self.cfg.state_path, f"{child.id}_{why}", self.log)
        self._exit_code = 2 if why == "state_corrupt" else 1  # 2: never restart (runbook)
        self.shutting_down = True

    def _check_hangs(self) -> None:
        now = self.stalls.settled_now(self._read_actors)  # what queued read, pauses credited
        self.hangs.check(self.children.values(), now, self.cfg.supervisor)

    def _stop_child(self, child: Child, reason: str = "restart") -> None:
        """Ask politely, then escalate by timer (the exit is seen through SIGCHLD)."""
        if (pid := child.pid) is None:
            return
        child.stopping()
        self._ask_to_stop(child, reason)

        def escalate(sig: int) -> None:
            if child.pid == pid:
                kill_group(pid, sig)

        grace_s = child.spec.shutdown_timeout_s
        self.timers.call_later(grace_s, lambda: escalate(signal.SIGTERM))
        self.timers.call_later(grace_s + 1.0, lambda: escalate(signal.SIGKILL))

    # ------------------------------------------------------------------ shutdown

    def _shutdown(self) -> None:
        """Reverse start order: STOP, grace period, SIGTERM, SIGKILL of the process group."""
        self.shutting_down = True
        self.systemd.stopping()
        for cid in reversed(self.order):
            child = self.children[cid]
            if child.pid is not None:
                self._stop_and_wait(child, child.pid)
        self._reap()
        if self.spawner is not None:
            self.spawner.close()
        self._reap()
        self.ctx.destroy(linger=0)
        self.log.info("loop_shutdown", exit_code=self._exit_code)

    def _stop_and_wait(self, child: Child, pid: int) -> None:
        """Serving the control socket: a second `shutdown` is answered now, not after it."""
        child.stopping()  # `status`: stopping
        self._ask_to_stop(child, "shutdown")
        escalated = lambda sig: self.log.warning(  # noqa: E731
            "actor_stop_escalated", child=child.id, signal=sig.name)  # fmt: skip
        code = wait_escalating(pid, child.spec.shutdown_timeout_s, escalated, self.control.serving)
        self._pid_to_child.pop(pid, None)
        if code is not None:
            self.log.info("actor_stopped", child=child.id, pid=pid, exit_code=code)
        metrics.ACTOR_UP.labels(actor=child.id).set(0)
        child.stopped()


def run_daemon(
    cfg: SystemConfig, ns: argparse.Namespace, *, on_all_ready: AllReadyHook | None = None
) -> int:
    """`run`: the supervisor in the foreground; `on_all_ready` gets the status once every
    actor is READY (the `--demo` flow)."""
    configure_logging(cfg.system.log_level, actor="supervisor")
    keys = ("state_dir", "runtime_dir", "metrics_port", "host_group")
    overrides = {key: getattr(ns, key, None) for key in keys}
    sup = Supervisor(
        cfg, config_path=ns.config, cold=ns.cold, overrides=overrides, on_all_ready=on_all_ready
    )
    return sup.run()
