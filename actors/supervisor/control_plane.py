"""The supervisor's operator side: the control socket, routing, forwarded commands.

A request's command is looked up in the command table (`actors.supervisor.commands`). One
routed to an actor (kill-switch -> risk; intake, reconcile -> oms; fix-seq -> the venue's
connector) is forwarded to it while it runs, and its ControlReply relayed; any other, or a
routed one while its actor is down, the supervisor answers with the command's `execute`.
One for a venue's actor placed on another host group (`protocol.commands.acted_on`:
restart, stop, start, fix-seq) goes to the link actor, which has that group's supervisor
do it (`actors.link.remote_control`), or is answered `link_down` (the CLI exits 3).
Every reply is one envelope `{status, reason, data}`. The control plane owns the control
socket and sees the supervisor only through `ControlHost`.

No operator peer may freeze the supervisor: replies go out without blocking (one that does
not read loses its replies, counted), and a command whose handling raises is answered
`internal error` and logged `handler_failed` (rate-limited); the loop goes on.

Who: each request is stamped with the connecting process's uid / user / pid from the
kernel (`audit.operator_from_peer`), forwarded with it (`ControlRequest.operator`, whatever
the client put there is replaced) and logged and audited with its result (`audit`). A
request from a supervised actor's own process (its pid is a child's: risk restarting a
connector for the kill-switch's mass cancel) is stamped `via="actor:<id>"`.
`reload` (and SIGHUP, `reload_by_signal`) is the `reload.Reloader`'s.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import msgpack
import structlog
import zmq

from actors.link.remote_control import link_down
from actors.runtime import metrics
from actors.runtime.operator_stops import stops_from_data
from actors.runtime.ratelog import LogBudget
from actors.runtime.timers import Timers
from actors.supervisor.audit import AuditLog, operator_from_peer
from actors.supervisor.commands import ControlCommand, ControlHost, for_request
from actors.supervisor.reload import Reloader
from actors.supervisor.restart_policy import LINK, ChildState, placed_elsewhere
from actors.supervisor.sdnotify import SystemdNotify
from protocol.codec import MAX_FRAME_BYTES, Sender, decode, encode
from protocol.commands import Command, KillSwitch, OperatorId, Reload, acted_on
from protocol.config import SystemConfig
from protocol.exceptions import ProtocolError
from protocol.link_config import CORE
from protocol.messages import ControlReply, ControlRequest
from protocol.paths import audit_log_path
from protocol.sockets import drain, send_nowait

FORWARD_TIMEOUT_S = 30.0
# a command across the link: inside the CLI's 10 s, outside the link's own wait
# (`actors.link.remote_control.ANSWER_TIMEOUT_S`), so each side gives up after the one it waits for
ACROSS_TIMEOUT_S = 8.0
CONTROL_HWM = 1000  # replies queued for one operator connection; a CLI waits for one
# while the supervisor stops its actors it reads this socket only, never theirs
# (`daemon._stop_and_wait`): it answers what it answers itself, refuses the rest at once
ANSWERED_WHILE_SHUTTING_DOWN = frozenset({"shutdown", "status", "kill-switch"})


class ControlPlane:
    def __init__(
        self,
        sock: zmq.Socket[bytes],
        sender: Sender,
        host: ControlHost,
        timers: Timers,
        log: structlog.typing.FilteringBoundLogger,
    ) -> None:
        self.sock = sock
        self._sender = sender
        self._host = host
        self._timers = timers
        self._log = log
        self._pending: dict[str, _Pending] = {}  # forwarded id -> who asked
        self._crossing: dict[str, int] = {}  # an edge's actor -> its commands on their way
        self._bad_log, self._failed_log, self._dropped_log = LogBudget(), LogBudget(), LogBudget()
        self.audit = AuditLog(audit_log_path(host.state_path), log)
        self.reloader = Reloader(host, timers, log)
        sock.setsockopt(zmq.SNDHWM, CONTROL_HWM)  # applies to every connection made from now

    @property
    def serving(self) -> tuple[zmq.Socket[bytes], Callable[[], None]]:
        """The socket and its reader, for a wait that keeps answering (`wait_escalating`)."""
        return self.sock, self.on_readable

    def on_readable(self) -> None:
        for message in drain(self.sock, 100, frames=True):
            frames = [f.bytes for f in message]
            identity = frames[:1]
            operator = self._identify(operator_from_peer(_peer_address(message[-1])))
            try:
                self._on_request(identity, frames[1:], operator)
            except Exception as exc:  # noqa: BLE001 - one bad command must not stop the system
                if (skipped := self._failed_log.take()) is not None:
                    self._log.exception("handler_failed", source="control", suppressed=skipped)
                msg_id = _control_request_id(frames[1:])
                if msg_id is not None:
                    reason = f"internal error: {type(exc).__name__}"
                    self._send(identity, ControlReply(status="error", reason=reason), msg_id)

    def _identify(self, operator: OperatorId) -> OperatorId:
        """A request from a supervised actor's process (risk restarting a connector) is
        recorded as that actor (`via="actor:<id>"`), not as an operator."""
        actor = self._host.actor_of_pid(operator.pid) if operator.pid is not None else None
        return operator if actor is None else operator.model_copy(update={"via": f"actor:{actor}"})

    def reload_by_signal(self, systemd: SystemdNotify) -> None:
        """SIGHUP (`systemctl reload`): what `tradepulse reload` does, between RELOADING=1
        and READY=1 to systemd; the result goes to the log and the audit."""
        operator = OperatorId(via="sighup")
        command = Reload(reason="SIGHUP")

        def done(reply: ControlReply) -> None:
            self._audit(command, operator, reply)
            systemd.reloaded(self._host.status())

        try:
            systemd.reloading()
            self.reloader.reload(operator, "SIGHUP", done)
        except Exception:  # noqa: BLE001 - a reload that raises must not stop the system
            if (skipped := self._failed_log.take()) is not None:
                self._log.exception("handler_failed", source="sighup", suppressed=skipped)
            with contextlib.suppress(Exception):  # systemd waits for the end of the reload
                systemd.reloaded(self._host.status())

    def _on_request(self, identity: list[bytes], frames: list[bytes], operator: OperatorId) -> None:
        try:
            env = decode(frames)
        except ProtocolError as exc:
            metrics.BAD_MESSAGES.labels(actor="supervisor").inc()
            if (skipped := self._bad_log.take()) is not None:
                self._log.warning(
                    "bad_message", source="control", error=str(exc), suppressed=skipped
                )
            msg_id = _control_request_id(frames)
            if msg_id is not None:  # a command it does not know, or a bad argument
                self._send(identity, ControlReply(status="error", reason=str(exc)), msg_id)
            return
        if not isinstance(env.body, ControlRequest):
            reason = f"not a control request: {env.type}"
            self._send(identity, ControlReply(status="error", reason=reason), env.msg_id)
            return
        # the identity is the kernel's, never the client's
        req = ControlRequest(command=env.body.command, operator=operator)
        reply = self._handle(req, identity, env.msg_id)
        if reply is not None:
            self._reply(req, identity, reply, env.msg_id)

    def on_actor_reply(self, corr_id: str, reply: ControlReply) -> None:
        """An actor answered a forwarded command: relay it to the operator."""
        if self.reloader.on_reply(corr_id, reply):
            return
        target = self._pending.pop(corr_id, None)
        if target is not None:
            if target.after is not None:
                target.after(reply)
            self._reply(target.request, target.identity, reply, target.msg_id)

    def _reply(
        self, req: ControlRequest, identity: list[bytes], reply: ControlReply, msg_id: str
    ) -> None:
        self._audit(req.command, req.operator, reply)
        self._send(identity, reply, msg_id)

    def _audit(self, command: Command, operator: OperatorId | None, reply: ControlReply) -> None:
        extra = {"changes": reply.data.get("changes")} if isinstance(command, Reload) else {}
        self.audit.command(command, operator, reply.status, reply.reason, **extra)

    def _handle(
        self, req: ControlRequest, identity: list[bytes], msg_id: str
    ) -> ControlReply | None:
        command = req.command
        if self._host.shutting_down:
            return self._while_shutting_down(req)
        if isinstance(command, Reload):
            operator = req.operator or OperatorId()
            done = lambda r: self._reply(req, identity, r, msg_id)  # noqa: E731
            self.reloader.reload(operator, command.reason, done)
            return None
        unit = for_request(command)
        if unit is None:
            reason = f"{command.command!r} is not a supervisor command"
            return ControlReply(status="error", reason=reason)
        if (refused := unit.refusal(command, self._host)) is not None:
            return ControlReply(status="error", reason=refused)
        actor = acted_on(command)
        here = self._host.overrides.get("host_group") or CORE
        group = None if actor is None else placed_elsewhere(self._host.cfg, here, actor)
        if actor is not None and group is not None:
            if here != CORE:  # only the core's link sends commands across
                reason = f"{actor} runs on host group {group}: give the command to its supervisor"
                return ControlReply(status="error", reason=reason)
            return self._across(unit, actor, group, req, identity, msg_id)
        route = unit.target(command)
        if route is not None and self._host.actor_state(route) is ChildState.RUNNING:
            return self._forward(route, req, identity, msg_id)
        return unit.execute_by(command, self._host, req.operator)

    def _while_shutting_down(self, req: ControlRequest) -> ControlReply:
        """Answered by the supervisor itself, never forwarded: the actors' replies are not
        read while it stops them. A kill-switch engage is written to the state file, as
        while risk is down (risk, still running, acts on the file): kept for the next start."""
        command, unit = req.command, for_request(req.command)
        if unit is None or command.command not in ANSWERED_WHILE_SHUTTING_DOWN:
            reason = f"the supervisor is shutting down: {command.command} not done"
            return ControlReply(status="error", reason=reason)
        return unit.execute_by(command, self._host, req.operator)

    def _across(
        self,
        unit: ControlCommand[Any],
        actor: str,
        group: str,
        req: ControlRequest,
        identity: list[bytes],
        msg_id: str,
    ) -> ControlReply | None:
        """A command for `actor`, run by host group `group`'s supervisor: to this host's
        link actor, which sends it across or answers that the link is down
        (`actors.link.remote_control`). The unit prepares this host's side first
        (`before_across`: `stop` checks the venue's open orders and records the stop for
        the OMS and the heartbeat here) and sees the answer (`after_across`)."""
        state = self._host.actor_state(LINK)
        if state is not ChildState.RUNNING:
            why = f"the link actor is not running ({state.value if state else 'missing'})"
            return link_down(actor, group, why)
        command = unit.before_across(req.command, self._host, req.operator)
        if isinstance(command, ControlReply):
            return command  # refused here

        self._crossing[actor] = self._crossing.get(actor, 0) + 1

        def after(reply: ControlReply) -> None:
            if (left := self._crossing.pop(actor, 1) - 1) > 0:
                self._crossing[actor] = left
            unit.after_across(command, self._host, reply)

        sent = ControlRequest(command=command, operator=req.operator)
        return self._forward(
            LINK, req, identity, msg_id, send=sent, after=after, timeout_s=ACROSS_TIMEOUT_S,
            fallback=lambda exc: link_down(actor, group, f"the link actor is unreachable ({exc})"),
        )  # fmt: skip

    def on_heartbeat(self, actor: str, info: Mapping[str, Any]) -> None:
        """An actor's heartbeat info: the link's, on the core, aligns the stops (below)."""
        if actor == LINK and (self._host.overrides.get("host_group") or CORE) == CORE:
            self.on_link_info(info)

    def on_link_info(self, info: Mapping[str, Any]) -> None:
        """The core: each edge's operator stops of its own actors, as the link reports them
        while that edge's link is up (`heartbeat_info`). The edge is the source of truth for
        its actors: this host's records follow (after a restart of either side, a `start`
        given on the edge), except for an actor a command is on its way for."""
        links = info.get("link")
        if not isinstance(links, dict):
            return
        for group, peer in links.items():
            if not isinstance(peer, dict) or peer.get("state") != "up":
                continue
            if (data := peer.get("stopped")) is None:
                continue  # not known now: the records stay as they are
            try:
                reported = stops_from_data(data)
            except (ValueError, TypeError):
                continue
            there = partial(_placed_on, self._host.cfg, str(group))
            self._host.operator_stops.align_elsewhere(
                str(group), reported, there, busy=self._crossing.keys()
            )

    def _forward(
        self,
        target: str,
        req: ControlRequest,
        identity: list[bytes],
        msg_id: str,
        *,
        send: ControlRequest | None = None,
        after: Callable[[ControlReply], None] | None = None,
        fallback: Callable[[zmq.ZMQError], ControlReply] | None = None,
        timeout_s: float | None = None,
    ) -> ControlReply | None:
        """Forward to the running actor; if it cannot be reached (its queue is full: it is
        frozen or not reading), the supervisor does it the way it does while that actor is
        down (e.g. writes the kill-switch file), so an engage is never lost; `fallback`:
        what to answer instead. `send`: what goes to the actor, if not `req` (audited as
        the operator gave it); `after` sees the reply (or the timeout) before the operator."""
        unit = for_request(req.command)
        try:
            forwarded_id = self._host.forward(target, send or req)
        except zmq.ZMQError as exc:
            self._log.warning("control_forward_failed", target=target, error=str(exc))
            if fallback is not None:
                reply = fallback(exc)
            elif unit is None:
                reply = ControlReply(status="error", reason=f"{target} unreachable: {exc}")
            else:
                reply = unit.execute_by(req.command, self._host, req.operator)
            if after is not None:
                after(reply)
            return reply
        self._pending[forwarded_id] = _Pending(req, identity, msg_id, after)
        wait_s = FORWARD_TIMEOUT_S if timeout_s is None else timeout_s
        self._timers.call_later(wait_s, lambda: self._expire(forwarded_id, target, req))
        return None

    def _expire(self, forwarded_id: str, target: str, req: ControlRequest) -> None:
        pending = self._pending.pop(forwarded_id, None)
        if pending is None:
            return
        command = req.command
        if isinstance(command, KillSwitch) and command.action == "engage":
            # risk did not answer: engage through the file it watches (idempotent)
            unit = for_request(command)
            if unit is not None:
                reply = unit.execute_by(command, self._host, req.operator)
                self._reply(req, pending.identity, reply, pending.msg_id)
                return
        reply = ControlReply(status="error", reason=f"{target} did not answer in time")
        if pending.after is not None:
            pending.after(reply)
        self._reply(req, pending.identity, reply, pending.msg_id)

    def _send(self, identity: list[bytes], reply: ControlReply, corr_id: str) -> None:
        """Without blocking: an operator that does not read (or is gone) loses the reply.
        A reply that cannot be encoded (an actor's data nested too deep) becomes an error."""
        try:
            frames = encode(self._sender.envelope(reply, corr_id))
        except Exception as exc:  # noqa: BLE001 - msgpack: ValueError, TypeError, ...
            if (skipped := self._failed_log.take()) is not None:
                self._log.warning("handler_failed", source="encode", error=repr(exc)[:200],
                                  suppressed=skipped)  # fmt: skip
            bad = ControlReply(status="error", reason=f"internal error: {type(exc).__name__}")
            frames = encode(self._sender.envelope(bad, corr_id))
        try:
            reason = send_nowait(self.sock, identity + frames)
        except zmq.ZMQError:
            reason = "error"
        if reason is not None:
            metrics.REPLIES_DROPPED.labels(actor="supervisor", reason=reason).inc()
            if (skipped := self._dropped_log.take()) is not None:
                self._log.warning(
                    "reply_dropped", type=reply.type, reason=reason, suppressed=skipped
                )


@dataclass(frozen=True, slots=True)
class _Pending:
    """A forwarded command waiting for its actor's reply."""

    request: ControlRequest
    identity: list[bytes]
    msg_id: str
    after: Callable[[ControlReply], None] | None = None  # sees the reply first


def _placed_on(cfg: SystemConfig, group: str, actor: str) -> bool:
    return placed_elsewhere(cfg, CORE, actor) == group


def _peer_address(frame: zmq.Frame) -> str | None:
    """libzmq's peer address of the connection `frame` came on (`localhost:uid:gid:pid` on
    ipc, from SO_PEERCRED); None if there is none."""
    try:
        return str(frame.get("Peer-Address"))
    except zmq.ZMQError:
        return None


def _control_request_id(frames: list[bytes]) -> str | None:
    """The message id of an undecodable frame that is a control request nonetheless (an
    unknown command, a bad argument), so that it gets an answer; None for other garbage,
    which is only counted."""
    if len(frames) != 1 or len(frames[0]) > MAX_FRAME_BYTES:
        return None
    try:
        obj: Any = msgpack.unpackb(frames[0], raw=False)
    except Exception:  # noqa: BLE001 - garbage: msgpack raises several unrelated types
        return None
    if isinstance(obj, dict) and obj.get("type") == "control_request":
        msg_id = obj.get("id")
        return msg_id if isinstance(msg_id, str) else None
    return None
