"""The supervisor daemon: spawn actors in order, watch them, restart them, shut them down.

Exits are seen at once (SIGCHLD through the loop's wakeup fd; the supervisor is a child
subreaper, so fork-server children are its children too). Hangs are seen by missing
application heartbeats. Restarts use capped exponential backoff with jitter and a restart
intensity budget. One control socket serves the operator CLI.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import select
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psutil
import structlog
import zmq

from actors.runtime import metrics
from actors.runtime.actor import ActorArgs
from actors.runtime.logs import configure_logging
from actors.runtime.timers import Timers
from actors.supervisor.control_plane import ControlPlane
from actors.supervisor.restart_policy import (
    ChildSpec,
    ChildState,
    RestartTracker,
    backoff_delay,
    child_specs,
)
from actors.supervisor.spawner import ExecSpawner, ForkServerSpawner, Spawner
from protocol.codec import Envelope, Sender, decode, encode
from protocol.config import SystemConfig
from protocol.exceptions import ProtocolError
from protocol.messages import (
    ActorHeartbeat,
    ControlReply,
    Message,
    Ready,
    Stop,
    VenueConnState,
    VenueStateChanged,
)
from protocol.sockets import bind_router

_PR_SET_CHILD_SUBREAPER = 36


@dataclass
class Child:
    spec: ChildSpec
    tracker: RestartTracker
    state: ChildState = ChildState.STOPPED
    pid: int | None = None
    epoch: int = 0
    spawned_at: float = 0.0
    ready_at: float = 0.0
    last_hb: float = 0.0
    loop_lag_s: float = 0.0
    crash_at: float | None = None
    restart_requested: bool = False
    hung: bool = False
    down: bool = False  # over its restart budget (gave up once), retried at the max delay
    endpoints: dict[str, str] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    proc: psutil.Process | None = None


class Supervisor:
    def __init__(
        self, cfg: SystemConfig, *, config_path: str, cold: bool, overrides: dict[str, Any]
    ):
        self.cfg = cfg
        self.config_path = os.path.abspath(config_path)
        self.cold = cold
        self.overrides = overrides
        self.log = structlog.get_logger().bind(actor="supervisor")
        r = cfg.supervisor.restart
        self.children = {
            s.id: Child(s, RestartTracker(r.max_restarts, r.window_s, r.reset_after_s))
            for s in child_specs(cfg)
        }
        self.order = list(self.children)
        self.venues: dict[str, dict[str, Any]] = {
            v.name: {"state": VenueConnState.DISCONNECTED.value, "detail": ""} for v in cfg.venues
        }
        self.ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.sender = Sender("supervisor", int(time.time() * 1000))
        self.timers = Timers()
        self.control = ControlPlane(self)
        self._last_epoch = 0
        self._start_queue: list[str] = []
        self._shutdown_requested = False
        self._exit_code = 0
        self._pid_to_child: dict[int, Child] = {}
        self.started_at = time.monotonic()
        self.metrics_url = ""
        self.on_all_ready: Callable[[], None] | None = None
        self._all_ready_fired = False

    # ------------------------------------------------------------------ setup

    def _start_metrics(self) -> None:
        from prometheus_client import CollectorRegistry, start_http_server
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        httpd, _ = start_http_server(
            self.cfg.metrics.port, addr=self.cfg.metrics.host, registry=registry
        )
        self.metrics_port = httpd.server_port
        self.metrics_url = f"http://{self.cfg.metrics.host}:{self.metrics_port}/metrics"

    def _spawner(self) -> Spawner:
        env = dict(os.environ)
        if self.cfg.supervisor.spawn == "forkserver":
            return ForkServerSpawner(env)
        return ExecSpawner(env)

    def _open_sockets(self) -> None:
        self.sup_sock = bind_router(self.ctx, self.cfg.supervisor_endpoint)
        self.ctl_sock = bind_router(self.ctx, self.cfg.control_endpoint)
        self._sig_r, sig_w = os.pipe()
        os.set_blocking(self._sig_r, False)
        os.set_blocking(sig_w, False)
        signal.set_wakeup_fd(sig_w)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, lambda *_: None)
        self.poller = zmq.Poller()
        self.poller.register(self.sup_sock, zmq.POLLIN)
        self.poller.register(self.ctl_sock, zmq.POLLIN)
        self.poller.register(self._sig_r, zmq.POLLIN)

    # ------------------------------------------------------------------ main loop

    def run(self) -> int:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        if self.cold:
            from actors.supervisor.coldstart import cold_start

            cold_start(self.cfg.state_path)
        self._open_sockets()
        self._start_metrics()
        self.spawner = self._spawner()
        self.log.info(
            "supervisor_started",
            pid=os.getpid(),
            state_dir=str(self.cfg.state_path),
            runtime_dir=str(self.cfg.runtime_path),
            metrics_url=self.metrics_url,
        )
        self._start_queue = list(self.order)
        self._start_next()
        self.timers.call_every(self.cfg.supervisor.heartbeat_interval_s / 2, self._check_hangs)
        self.timers.call_every(1.0, self.control.sample_resources)
        try:
            while not self._shutdown_requested:
                for sock, _ in self.poller.poll(self.timers.wait_s(1.0) * 1000):
                    if sock is self.sup_sock:
                        self._on_actor_messages()
                    elif sock is self.ctl_sock:
                        self.control.on_readable()
                    else:
                        self._on_signals()
                self.timers.run_due()
        finally:
            self._shutdown()
        return self._exit_code

    def send(
        self, sock: zmq.Socket[bytes], identity: list[bytes], body: Message, corr: str = ""
    ) -> bool:
        try:
            sock.send_multipart(identity + encode(self.sender.envelope(body, corr)), copy=False)
            return True
        except zmq.ZMQError as exc:
            self.log.warning("send_failed", type=body.type, error=str(exc))
            return False

    # ------------------------------------------------------------------ spawning

    def _next_epoch(self) -> int:
        self._last_epoch = max(self._last_epoch + 1, time.time_ns() // 1_000_000)
        return self._last_epoch

    def _start_next(self) -> None:
        while self._start_queue:
            child = self.children[self._start_queue[0]]
            if child.state in (ChildState.RUNNING, ChildState.DOWN):
                self._start_queue.pop(0)
                continue
            if child.state is ChildState.STOPPED:
                self.spawn(child)
            return
        if not self._all_ready_fired:
            self._all_ready_fired = True
            self.log.info("system_ready", actors=len(self.children), metrics_url=self.metrics_url)
            if self.on_all_ready is not None:
                self.on_all_ready()

    def spawn(self, child: Child) -> None:
        if self._shutdown_requested:
            return
        spec = child.spec
        args = ActorArgs(
            actor_id=spec.id,
            kind=spec.kind,
            epoch=self._next_epoch(),
            config_path=self.config_path,
            cold=self.cold and child.epoch == 0,
            venue=spec.venue,
            supervisor_pid=os.getpid(),
            **self.overrides,
        )
        try:
            pid = self.spawner.spawn(args)
        except (OSError, RuntimeError) as exc:
            self.log.error("spawn_failed", child=spec.id, error=str(exc))
            self.spawner = self._spawner()
            pid = self.spawner.spawn(args)
        child.pid, child.epoch, child.state = pid, args.epoch, ChildState.STARTING
        child.spawned_at = child.last_hb = time.monotonic()
        child.hung = False
        child.proc = None
        self._pid_to_child[pid] = child
        self.log.info("actor_spawned", child=spec.id, pid=pid, child_epoch=args.epoch)
        epoch = args.epoch
        self.timers.call_later(
            spec.start_timeout_s, lambda: self._check_start_timeout(child, epoch)
        )

    def request_shutdown(self) -> None:
        self._shutdown_requested = True

    def _check_start_timeout(self, child: Child, epoch: int) -> None:
        if child.state is ChildState.STARTING and child.epoch == epoch and child.pid:
            self.log.error("actor_start_timeout", child=child.spec.id, pid=child.pid)
            self.kill_group(child.pid)

    # ------------------------------------------------------------------ actor messages

    def _on_actor_messages(self) -> None:
        for _ in range(1000):
            try:
                frames = self.sup_sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                env = decode(frames[1:])
            except ProtocolError as exc:
                metrics.BAD_MESSAGES.labels(actor="supervisor").inc()
                self.log.warning("bad_message", source="actors", error=str(exc))
                continue
            child = self.children.get(env.sender)
            if child is None or env.epoch != child.epoch:
                continue  # a stale incarnation or a stranger
            self._on_actor_message(child, env)

    def _on_actor_message(self, child: Child, env: Envelope) -> None:
        body = env.body
        now = time.monotonic()
        child.last_hb = now
        if isinstance(body, ActorHeartbeat):
            child.loop_lag_s = body.loop_lag_s
            if body.info:
                child.info = body.info
        elif isinstance(body, Ready):
            self._on_ready(child, body, now)
        elif isinstance(body, VenueStateChanged):
            if self.venues.get(body.venue, {}).get("state") != VenueConnState.DOWN.value or (
                child.state is ChildState.RUNNING and body.state is not VenueConnState.DISCONNECTED
            ):
                self.venues[body.venue] = {"state": body.state.value, "detail": body.detail}
        elif isinstance(body, ControlReply):
            self.control.on_actor_reply(env.corr_id, body)

    def _on_ready(self, child: Child, body: Ready, now: float) -> None:
        if child.state is not ChildState.STARTING:
            return
        child.state = ChildState.RUNNING
        child.ready_at = now
        child.endpoints = body.endpoints
        metrics.ACTOR_UP.labels(actor=child.spec.id).set(1)
        fields: dict[str, Any] = {"startup_s": round(now - child.spawned_at, 4)}
        if child.crash_at is not None:
            restart_s = now - child.crash_at
            metrics.ACTOR_RESTART_SECONDS.observe(restart_s)
            fields["restart_s"] = round(restart_s, 4)
            child.crash_at = None
        if child.down:  # back within service: no longer DOWN
            child.down = False
            if child.spec.venue and child.spec.kind == "connector":
                if self.venues[child.spec.venue]["state"] == VenueConnState.DOWN.value:
                    self.venues[child.spec.venue] = {
                        "state": VenueConnState.DISCONNECTED.value,
                        "detail": "",
                    }
                metrics.VENUE_DOWN.labels(venue=child.spec.venue).set(0)
        self.log.info(
            "actor_ready", child=child.spec.id, pid=child.pid, child_epoch=child.epoch, **fields
        )
        if self._start_queue and self._start_queue[0] == child.spec.id:
            self._start_queue.pop(0)
            self._start_next()

    # ------------------------------------------------------------------ exits and restarts

    def _on_signals(self) -> None:
        try:
            data = os.read(self._sig_r, 512)
        except BlockingIOError:
            data = b""
        for signum in data:
            if signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                self.log.info("shutdown_requested", signal=signal.Signals(signum).name)
                self._shutdown_requested = True
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
        now = time.monotonic()
        code = os.waitstatus_to_exitcode(status)
        how = {"signal": signal.Signals(-code).name} if code < 0 else {"exit_code": code}
        self.log.warning(
            "actor_exited", child=child.spec.id, pid=child.pid, child_epoch=child.epoch, **how
        )
        metrics.ACTOR_UP.labels(actor=child.spec.id).set(0)
        self.kill_group(child.pid)  # anything the actor left in its group
        child.pid = None
        ran_for = now - child.ready_at if child.ready_at else 0.0
        child.state = ChildState.STOPPED
        if self._shutdown_requested:
            return
        if child.restart_requested:
            child.restart_requested = False
            child.crash_at = now
            self.spawn(child)
            return
        if child.spec.restart == "temporary" or (child.spec.restart == "transient" and code == 0):
            return
        attempt = child.tracker.record_exit(now, ran_for)
        metrics.ACTOR_RESTARTS.labels(actor=child.spec.id).inc()
        if child.crash_at is None:
            child.crash_at = now
        delay = backoff_delay(attempt, **self._backoff_params())
        if child.tracker.over_budget() or child.down:
            if child.spec.critical:
                self._give_up(child)
                return
            if not child.down:  # once per episode, not at every retry
                child.down = True
                self.log.error("actor_gave_up", child=child.spec.id, restarts=child.tracker.total)
                if child.spec.venue and child.spec.kind == "connector":
                    self.venues[child.spec.venue] = {
                        "state": VenueConnState.DOWN.value,
                        "detail": "restart budget exceeded",
                    }
                    metrics.VENUE_DOWN.labels(venue=child.spec.venue).set(1)
            child.state = ChildState.DOWN
            delay = self.cfg.supervisor.restart.max_s
            if not child.tracker.over_budget():
                child.state = ChildState.BACKOFF  # budget recovered: back to normal
            if self._start_queue and self._start_queue[0] == child.spec.id:
                self._start_queue.pop(0)  # a DOWN venue does not hold up the rest
                self._start_next()
        else:
            child.state = ChildState.BACKOFF
        self.log.info(
            "actor_restarting", child=child.spec.id, delay_s=round(delay, 4), attempt=attempt
        )
        epoch = child.epoch
        self.timers.call_later(delay, lambda: self._restart_if_due(child, epoch))

    def _restart_if_due(self, child: Child, epoch: int) -> None:
        if child.pid is None and child.epoch == epoch and not self._shutdown_requested:
            state = child.state
            self.spawn(child)
            if state is ChildState.DOWN:
                child.state = ChildState.STARTING

    def _backoff_params(self) -> dict[str, float]:
        r = self.cfg.supervisor.restart
        return {"initial_s": r.initial_s, "factor": r.factor, "max_s": r.max_s, "jitter": r.jitter}

    def _give_up(self, child: Child) -> None:
        self.log.error(
            "actor_gave_up", child=child.spec.id, restarts=child.tracker.total, critical=True
        )
        child.state = ChildState.GAVE_UP
        try:
            from actors.risk import killswitch

            killswitch.engage(
                killswitch.kill_switch_path(self.cfg.state_path),
                reason=f"{child.spec.id}_restart_intensity",
                source="supervisor",
            )
        except ImportError:
            pass
        self._exit_code = 1
        self._shutdown_requested = True

    def _check_hangs(self) -> None:
        limit = self.cfg.supervisor.heartbeat_interval_s * self.cfg.supervisor.hang_missed_intervals
        now = time.monotonic()
        for child in self.children.values():
            if child.state is ChildState.RUNNING and child.pid and not child.hung:
                age = now - child.last_hb
                if age > limit:
                    child.hung = True
                    self.log.error(
                        "actor_hung",
                        child=child.spec.id,
                        pid=child.pid,
                        heartbeat_age_s=round(age, 3),
                    )
                    self.kill_group(child.pid)

    def kill_group(self, pid: int | None, sig: int = signal.SIGKILL) -> None:
        if pid is None:
            return
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def stop_child(self, child: Child) -> None:
        """Ask politely, then escalate by timer (the exit is seen through SIGCHLD)."""
        if child.pid is None:
            return
        child.state = ChildState.STOPPING
        self.send(self.sup_sock, [child.spec.id.encode()], Stop(reason="restart"))
        pid = child.pid

        def escalate(sig: int) -> None:
            if child.pid == pid:
                self.kill_group(pid, sig)

        self.timers.call_later(child.spec.shutdown_timeout_s, lambda: escalate(signal.SIGTERM))
        self.timers.call_later(
            child.spec.shutdown_timeout_s + 1.0, lambda: escalate(signal.SIGKILL)
        )

    # ------------------------------------------------------------------ shutdown

    def _shutdown(self) -> None:
        """Reverse start order: STOP, grace period, SIGTERM, SIGKILL of the process group."""
        self._shutdown_requested = True
        for cid in reversed(self.order):
            child = self.children[cid]
            if child.pid is not None:
                self._stop_and_wait(child)
        self._reap()
        try:
            self.spawner.close()
        except AttributeError:
            pass
        self._reap()
        self.ctx.destroy(linger=0)
        self.log.info("loop_shutdown", exit_code=self._exit_code)

    def _stop_and_wait(self, child: Child) -> None:
        pid = child.pid
        assert pid is not None
        self.send(self.sup_sock, [child.spec.id.encode()], Stop(reason="shutdown"))
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            return
        try:
            for sig, wait_s in (
                (None, child.spec.shutdown_timeout_s),
                (signal.SIGTERM, 1.0),
                (signal.SIGKILL, 5.0),
            ):
                if sig is not None:
                    self.log.warning(
                        "actor_stop_escalated", child=child.spec.id, signal=signal.Signals(sig).name
                    )
                    self.kill_group(pid, sig)
                if select.select([pidfd], [], [], wait_s)[0]:
                    break
        finally:
            os.close(pidfd)
        try:
            _, status = os.waitpid(pid, 0)
            self._pid_to_child.pop(pid, None)
            code = os.waitstatus_to_exitcode(status)
            self.log.info("actor_stopped", child=child.spec.id, pid=pid, exit_code=code)
        except ChildProcessError:
            pass
        self.kill_group(pid)
        metrics.ACTOR_UP.labels(actor=child.spec.id).set(0)
        child.pid = None
        child.state = ChildState.STOPPED


def run_daemon(cfg: SystemConfig, ns: argparse.Namespace) -> int:
    configure_logging(cfg.system.log_level)
    overrides = {
        "state_dir": ns.state_dir,
        "runtime_dir": ns.runtime_dir,
        "metrics_port": ns.metrics_port,
    }
    sup = Supervisor(cfg, config_path=ns.config, cold=ns.cold, overrides=overrides)
    if getattr(ns, "demo", False):
        from actors.supervisor.demo import attach_demo

        attach_demo(sup)
    return sup.run()
