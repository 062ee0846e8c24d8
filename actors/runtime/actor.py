"""The actor runtime: one OS process, one event loop, ZeroMQ sockets, READY, heartbeats, stop.

Every actor binds one ROUTER at `cfg.endpoint(actor_id)` for the requests it serves and keeps
one DEALER to the supervisor (READY, application heartbeats, STOP, forwarded control
commands). It reaches other actors through `Peer`s (a DEALER each) with request/reply
matched by correlation id and a deadline. Subclasses implement `setup`, `on_request` and
optionally `on_control`, `on_peer_message`, `on_stop`.

The heartbeat is sent from the main loop, so a frozen or busy-looping actor stops sending
it and the supervisor replaces it. A malformed frame is counted, logged `bad_message` and
dropped; the actor keeps serving.

Around it: `peer` (Peer, Replier), `protocol.sockets` (socket options), `logs`,
`crashpoints` (fault injection), `process` (the process entry point, `run_actor`).
"""

from __future__ import annotations

import math
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
import zmq

from actors.runtime import crashpoints, metrics
from actors.runtime.batch_serve import serve_batch
from actors.runtime.fdlimit import MIN_HEADROOM, raise_fd_limit
from actors.runtime.heap_trim import TRIM_EVERY_S, HeapTrim
from actors.runtime.live_config import apply_live
from actors.runtime.logs import configure_logging
from actors.runtime.peer import Peer, Replier
from actors.runtime.ratelog import LogBudget
from actors.runtime.senders import refusal
from actors.runtime.tally import TURN
from actors.runtime.timers import Timers
from actors.runtime.turn_budget import TurnBudget
from actors.runtime.zap import ZAP_DOMAIN, PeerCred, ZapGate, admit
from protocol.codec import Envelope, Sender, decode
from protocol.commands import ApplyConfig, Command, OperatorId
from protocol.config import SupervisorCfg, SystemConfig, load_config
from protocol.exceptions import ProtocolError
from protocol.messages import (
    ActorHeartbeat,
    ControlReply,
    ControlRequest,
    ErrorCode,
    Message,
    Ready,
    Requests,
    Stop,
)
from protocol.sockets import bind_router, connect_dealer, drain, new_context, send_nowait

EXIT_SUPERVISOR_GONE = 70  # the parent is no longer the supervisor that spawned us


def beat_interval_s(sup: SupervisorCfg) -> float:
    """How often an actor beats: once per interval (at most 0.2 s), and at least twice inside
    the supervisor's hang limit (interval x hang_missed_intervals)."""
    interval = sup.heartbeat_interval_s
    return min(interval, interval * sup.hang_missed_intervals / 2, 0.2)


@dataclass(frozen=True)
class ActorArgs:
    """What the supervisor tells an actor at spawn."""

    actor_id: str
    kind: str
    epoch: int
    config_path: str
    state_dir: str | None = None
    runtime_dir: str | None = None
    metrics_port: int | None = None
    cold: bool = False
    venue: str | None = None
    supervisor_pid: int | None = None
    host_group: str | None = None  # the supervisor's (`run --host-group`); None: core
    extra: dict[str, Any] = field(default_factory=dict)


class Actor:
    """Base of every actor process. Subclasses override the `on_*` hooks and `setup`."""

    kind = "actor"
    guarded = True  # only the system's own processes connect to its ROUTER (runtime.zap)
    trims_heap = False  # give free C heap pages back while the loop has work (runtime.heap_trim)

    def __init__(self, args: ActorArgs, cfg: SystemConfig | None = None) -> None:
        fd_soft, fd_hard = raise_fd_limit()  # before any socket: connections cost fds
        self.args = args
        self.actor_id = args.actor_id
        self.epoch = args.epoch
        self.cfg = cfg or load_config(
            args.config_path,
            state_dir=args.state_dir,
            runtime_dir=args.runtime_dir,
            metrics_port=args.metrics_port,
        )
        configure_logging(self.cfg.system.log_level, actor=self.actor_id, epoch=self.epoch)
        self.log = structlog.get_logger().bind(actor=self.actor_id, epoch=self.epoch)
        if args.venue:
            self.log = self.log.bind(venue=args.venue)
        if fd_soft < MIN_HEADROOM:
            self.log.warning("fd_limit_low", soft=fd_soft, hard=fd_hard, wanted=MIN_HEADROOM)
        self.sender = Sender(self.actor_id, self.epoch)
        self.ctx: zmq.Context[zmq.Socket[bytes]] = new_context()
        self.poller = zmq.Poller()
        self._handlers: dict[Any, Callable[[], None]] = {}
        self.timers = Timers()
        self._stopping, self._stop_reason = False, ""
        self.control_operator: OperatorId | None = None  # of the control command at hand
        # one beat per interval (the supervisor judges a hang after `hang_missed_intervals`
        # of them), sent up to half of it early when the loop is awake anyway: beats ride on
        # the wake-ups of the actor's own timers instead of adding their own (issue 16, idle)
        self._hb_interval_s = beat_interval_s(self.cfg.supervisor)
        self._hb_early_s = self._hb_interval_s / 2
        self._supervisor_pid = args.supervisor_pid
        self._next_hb = time.monotonic()
        self._bad_messages = metrics.BAD_MESSAGES.labels(actor=self.actor_id)
        self._bad_log, self._failed_log = LogBudget(), LogBudget()  # lines per second
        self._dropped_log, self._refused_log = LogBudget(), LogBudget()
        # the supervisor and its children; run standalone (tests), the parent and itself
        pids = {os.getppid(), os.getpid(), args.supervisor_pid or os.getppid()}
        self._trusted_pids = frozenset(pids)
        # the gate answers for our ROUTER (who connects; never for a socket we connect:
        # protocol.sockets.connect_dealer), bound before it
        self.zap = gate = ZapGate(self.ctx, self.actor_id, self._admit)
        self.add_socket(gate.sock, gate.on_readable)
        zap_domain = ZAP_DOMAIN if self.guarded else None
        self.router = bind_router(self.ctx, self.cfg.endpoint(self.actor_id), zap_domain=zap_domain)
        self.add_socket(self.router, self._on_router_readable)
        self._router_budget = TurnBudget()  # items read a turn (runtime.turn_budget)
        sup = self.cfg.supervisor_endpoint
        self.sup = connect_dealer(self.ctx, sup, self.actor_id)
        self.add_socket(self.sup, self._on_supervisor_readable)
        self._sig_r, self._sig_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.add_fd(self._sig_r, self._on_signal)
        self.busy_turns = 0  # loop turns that had something to read: the heap trim's mark
        self.heap_trim: HeapTrim | None = None
        if self.trims_heap:
            heap = self.heap_trim = HeapTrim(actor=self.actor_id)
            self.call_every(TRIM_EVERY_S, lambda: heap.if_moved(self.busy_turns))

    # ------------------------------------------------------------------ hooks

    def setup(self) -> None:
        """Recover state and open extra sockets; runs before READY is sent."""

    def on_request(self, env: Envelope, reply: Replier) -> None:
        reply.reject(ErrorCode.BAD_REQUEST, f"{self.kind} does not serve {env.type}")

    def on_control(self, command: Command, respond: Callable[[ControlReply], None]) -> None:
        """An operator command forwarded by the supervisor (dispatch on its model type, as
        `on_request` does); `respond` may be called later. Who sent it: `control_operator`."""
        if isinstance(command, ApplyConfig):
            respond(apply_live(self, command))
            return
        name = command.command
        respond(ControlReply(status="error", reason=f"{self.kind}: unknown command {name!r}"))

    def on_config(self, section: str) -> None:
        """`cfg.<section>` was replaced live (`actors.runtime.live_config`): rebuild what
        was made from the old values."""

    def on_peer_message(self, peer: Peer, env: Envelope) -> None:
        self.log.debug("unsolicited_peer_message", peer=peer.target, type=env.type)

    def on_stop(self) -> None:
        """Drain and persist; runs once when the actor is asked to stop."""

    def heartbeat_info(self) -> dict[str, Any]:
        return {}

    # ------------------------------------------------------------------ plumbing for subclasses

    def add_socket(self, sock: Any, handler: Callable[[], None]) -> None:
        self.poller.register(sock, zmq.POLLIN)
        self._handlers[sock] = handler

    def add_fd(self, fd: int, handler: Callable[[], None], events: int = zmq.POLLIN) -> None:
        self.poller.register(fd, events)
        self._handlers[fd] = handler

    def modify_fd(self, fd: int, events: int) -> None:
        self.poller.modify(fd, events)

    def remove(self, sock_or_fd: Any) -> None:
        if sock_or_fd in self._handlers:
            self.poller.unregister(sock_or_fd)
            del self._handlers[sock_or_fd]

    def peer(self, target: str) -> Peer:
        p = Peer(self, target, self.cfg.endpoint(target))
        self.add_socket(p.sock, p.on_readable)
        return p

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> None:
        self.timers.call_later(delay_s, fn)

    def call_every(self, interval_s: float, fn: Callable[[], None]) -> None:
        self.timers.call_every(interval_s, fn)

    def send_router(self, identity: list[bytes], body: Message, corr_id: str = "") -> bool:
        """Reply without blocking: a requester that does not read (its queue is at the
        high-water mark) or is gone loses this reply, counted; the loop never waits."""
        reason = send_nowait(self.router, identity + self.sender.encode(body, corr_id))
        if reason is not None:
            self.send_dropped("reply", reason, identity[0].decode(errors="replace"), body.type)
        return reason is None

    def send_supervisor(self, body: Message, corr_id: str = "") -> None:
        """To the supervisor, without blocking (a stopped supervisor must not freeze us)."""
        reason = send_nowait(self.sup, self.sender.encode(body, corr_id))
        if reason is not None:
            self.send_dropped("request", reason, "supervisor", body.type)

    def send_dropped(self, kind: str, reason: str, peer: str, type_: str) -> None:
        """A send that would have blocked (or had nowhere to go): counted, logged
        rate-limited. `kind` "reply" (to a requester) or "request" (to a peer)."""
        if kind == "reply":
            metrics.REPLIES_DROPPED.labels(actor=self.actor_id, reason=reason).inc()
        else:
            metrics.REQUESTS_UNSENT.labels(actor=self.actor_id, peer=peer, reason=reason).inc()
        if (skipped := self._dropped_log.take()) is not None:
            event = "reply_dropped" if kind == "reply" else "request_unsent"
            self.log.warning(event, peer=peer[:64], type=type_, reason=reason, suppressed=skipped)

    def refuse(self, env: Envelope, reply: Replier, reason: str) -> None:
        """A message its sender may not send (`actors.runtime.senders`): refused, counted,
        logged rate-limited; the actor keeps serving."""
        self.count_refused(env.type, reason)
        reply.reject(ErrorCode.NOT_ALLOWED, reason)

    def count_refused(self, type_: str, reason: str) -> None:
        """A message (or one item of a batch) its sender may not send: counted, logged."""
        metrics.MESSAGES_REFUSED.labels(actor=self.actor_id, type=type_).inc()
        if (skipped := self._refused_log.take()) is not None:
            self.log.warning("message_refused", type=type_, reason=reason, suppressed=skipped)

    def count_failed(self, type_: str) -> None:
        """Inside an `except`: a request (or one item of a batch) broke something in us,
        logged `request_failed` with its traceback, rate-limited; the loop goes on."""
        if (skipped := self._failed_log.take()) is not None:
            self.log.exception("request_failed", type=type_, suppressed=skipped)

    def _admit(self, cred: PeerCred | None) -> str | None:
        return admit(cred, uid=os.getuid(), trusted=self._trusted_pids)

    def decode_or_count(self, frames: list[bytes], source: str) -> Envelope | None:
        try:
            return decode(frames)
        except ProtocolError as exc:
            self.count_bad(source, str(exc))
            return None

    def count_bad(self, source: str, error: str) -> None:
        """A malformed message (or one malformed item of a batch): counted
        (`tradepulse_bad_messages_total`), logged `bad_message` rate-limited."""
        self._bad_messages.inc()
        if (skipped := self._bad_log.take()) is not None:
            self.log.warning("bad_message", source=source, error=error, suppressed=skipped)

    @property
    def crash_points_armed(self) -> bool:
        """True when fault injection asks for crash points (tests, chaos runs)."""
        return crashpoints.armed()

    def crash_point(self, name: str) -> None:
        """Fault injection: SIGKILL here if `TP_FAULT_CRASH_AT` names `<actor_id>:<name>`
        (once; see `actors.runtime.crashpoints`). Unarmed (production), it reads nothing
        else: `cfg.state_path` resolves the path (filesystem calls, 8% of the OMS's CPU)."""
        if crashpoints.armed():
            crashpoints.crash_point(self.cfg.state_path, self.actor_id, name, self.log)

    def keepalive(self) -> None:
        """Send the application heartbeat now if it is due: for long but progressing work
        (a big listing) inside one handler. A frozen loop still stops heartbeating."""
        now = time.monotonic()
        if now >= self._next_hb - self._hb_early_s:
            self.send_supervisor(ActorHeartbeat(loop_lag_s=round(max(now - self._next_hb, 0.0), 6)))
            self._next_hb = now + self._hb_interval_s

    def request_stop(self, reason: str) -> None:
        if not self._stopping:
            self._stopping, self._stop_reason = True, reason

    # ------------------------------------------------------------------ the loop

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._signal_handler)
        signal.signal(signal.SIGINT, self._signal_handler)
        signal.set_wakeup_fd(self._sig_w)
        crashpoints.crash_on_start(self.actor_id, self.log)  # fault injection: before READY
        self.setup()
        self.send_supervisor(
            Ready(actor=self.actor_id, pid=os.getpid(), endpoints=self.endpoints())
        )
        self.log.info("actor_started", pid=os.getpid(), kind=self.kind)
        self._next_hb = time.monotonic()
        try:
            while not self._stopping:
                self._iterate()
            self.log.info("actor_stopping", reason=self._stop_reason)
            self.on_stop()
        finally:
            try:
                TURN.flush()  # the last turn's counts, also when the loop or on_stop raised
            finally:
                self.ctx.destroy(linger=0)
                signal.set_wakeup_fd(-1)  # the pipe may be closed next (`close`)
        self.log.info("actor_stopped", reason=self._stop_reason)
        return 0

    def close(self) -> None:
        """Its sockets and signal pipe released, for a process that goes on (tests)."""
        self.ctx.destroy(linger=0)
        os.close(self._sig_r)
        os.close(self._sig_w)

    def run_until(self, predicate: Callable[[], bool], timeout_s: float) -> bool:
        """Keep serving (e.g. while draining at stop) until `predicate()` or the deadline."""
        deadline = time.monotonic() + timeout_s
        while not predicate():
            if time.monotonic() >= deadline:
                return False
            self._iterate(max_wait_s=deadline - time.monotonic())
        return True

    def _iterate(self, max_wait_s: float = 1.0) -> None:
        """One loop turn: heartbeat if due, poll, handlers, due timers, after_iteration."""
        now = time.monotonic()
        if now >= self._next_hb - self._hb_early_s:
            # lag: how late the loop got round to its heartbeat
            self._check_parent()
            self.send_supervisor(
                ActorHeartbeat(
                    loop_lag_s=round(max(now - self._next_hb, 0.0), 6), info=self.heartbeat_info()
                )
            )
            self._next_hb = now + self._hb_interval_s
        timeout = self.timers.wait_s(min(self._next_hb - now, max_wait_s, TURN.wait_s(now)))
        # rounded up: 0.4 ms to wait is a 1 ms poll, not a spin of zero-timeout polls
        ready = self.poller.poll(math.ceil(timeout * 1000))
        self.busy_turns += 1 if ready else 0
        for sock, _ev in ready:
            handler = self._handlers.get(sock)
            if handler is not None:  # an earlier handler of this round may have removed it
                handler()
        self.timers.run_due()
        self.after_iteration()
        if TURN.pending:  # the metric updates, one write each (runtime.tally), soon
            TURN.flush_due(time.monotonic())

    def after_iteration(self) -> None:
        """Runs once per loop iteration after the handlers: the place for group commit."""

    def endpoints(self) -> dict[str, str]:
        return {"router": self.cfg.endpoint(self.actor_id)}

    def _check_parent(self) -> None:
        if self._supervisor_pid is not None and os.getppid() != self._supervisor_pid:
            self.log.error("supervisor_gone", expected_ppid=self._supervisor_pid)
            os._exit(EXIT_SUPERVISOR_GONE)

    def _signal_handler(self, signum: int, _frame: object) -> None:
        self.request_stop(signal.Signals(signum).name)

    def _on_signal(self) -> None:
        try:
            os.read(self._sig_r, 512)
        except BlockingIOError:
            pass

    def _on_router_readable(self) -> None:
        budget = self._router_budget  # a bounded slice a turn; the rest stays queued
        for frames in budget.read(self.router):
            if len(frames) < 2:
                self.count_bad("router", "no identity frame")
                continue
            identity, payload = frames[:1], frames[1:]
            env = self.decode_or_count(payload, "router")
            if env is None:
                continue
            budget.spend(env)  # a batch's items count, not its one message
            if isinstance(env.body, Requests):  # several requests: each as if alone
                serve_batch(self, identity, env, env.body)
            else:
                self.serve_request(identity, env)

    def serve_request(self, identity: list[bytes], env: Envelope) -> None:
        """One request (alone or a `Requests` item): sender-checked, served under its id."""
        reply = Replier(self, identity, env.msg_id)
        # an unguarded ROUTER (a simulated venue's) has outside callers: no sender check
        why = refusal(identity[0], env.body, env.sender if self.guarded else None)
        if why is not None:
            self.refuse(env, reply, why)
        else:
            self.serve(env, reply)

    def serve(self, env: Envelope, reply: Replier) -> None:
        """`on_request`; an exception in it is answered INTERNAL and logged, never raised."""
        try:
            self.on_request(env, reply)
        except Exception as exc:  # noqa: BLE001 - one bad request must not kill the actor
            self.count_failed(env.type)
            reply.reject(ErrorCode.INTERNAL, f"{type(exc).__name__}: {exc}")

    def answer_later(
        self, answer: Callable[[], None], refuse: Callable[[str], None]
    ) -> Callable[[], None]:
        """`answer` to run later (a read answered after the commit, outside `serve`'s guard):
        an exception in it is logged as in `serve` and `refuse(why)` answers instead; the
        loop goes on."""

        def run() -> None:
            try:
                answer()
            except Exception as exc:  # noqa: BLE001 - one bad read must not kill the actor
                self.count_failed("deferred")
                refuse(f"{type(exc).__name__}: {exc}")

        return run

    def _on_supervisor_readable(self) -> None:
        for frames in self.zap.from_binders(drain(self.sup, 100, frames=True)):
            env = self.decode_or_count(frames, "supervisor")
            if env is None:
                continue
            body = env.body
            if isinstance(body, Stop):
                self.request_stop(body.reason or "stop")
            elif isinstance(body, ControlRequest):
                corr, self.control_operator = env.msg_id, body.operator

                def respond(answer: ControlReply, corr: str = corr) -> None:
                    self.send_supervisor(answer, corr_id=corr)

                try:
                    self.on_control(body.command, respond)
                except Exception as exc:  # noqa: BLE001 - report, keep serving
                    self.log.exception("control_failed", command=body.command.command)
                    respond(ControlReply(status="error", reason=f"{type(exc).__name__}: {exc}"))
            else:
                self.log.warning("unexpected_supervisor_message", type=env.type)
