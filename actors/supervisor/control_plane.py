"""The supervisor's operator side: the control socket, routing, forwarded commands.

A request's command is looked up in the command table (`actors.supervisor.commands`). One
routed to an actor (kill-switch -> risk; intake, reconcile -> oms; fix-seq -> the venue's
connector) is forwarded to it while it runs, and its ControlReply relayed; any other, or a
routed one while its actor is down, the supervisor answers with the command's `execute`.
Every reply is one envelope `{status, reason, data}`. The control plane owns the control
socket and sees the supervisor only through `ControlHost`.

No operator peer may freeze the supervisor: replies go out without blocking (one that does
not read loses its replies, counted), and a command whose handling raises is answered
`internal error` and logged `handler_failed` (rate-limited); the loop goes on.
"""

from __future__ import annotations

from typing import Any

import msgpack
import structlog
import zmq

from actors.runtime import metrics
from actors.runtime.ratelog import LogBudget
from actors.runtime.timers import Timers
from actors.supervisor.commands import ControlHost, for_request
from actors.supervisor.restart_policy import ChildState
from protocol.codec import MAX_FRAME_BYTES, Sender, decode, encode
from protocol.commands import KillSwitch, Status
from protocol.exceptions import ProtocolError
from protocol.messages import ControlReply, ControlRequest
from protocol.sockets import drain, send_nowait

FORWARD_TIMEOUT_S = 30.0
CONTROL_HWM = 1000  # replies queued for one operator connection; a CLI waits for one


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
        self._pending: dict[str, tuple[list[bytes], str]] = {}  # forwarded id -> operator
        self._bad_log, self._failed_log, self._dropped_log = LogBudget(), LogBudget(), LogBudget()
        sock.setsockopt(zmq.SNDHWM, CONTROL_HWM)  # applies to every connection made from now

    def on_readable(self) -> None:
        for frames in drain(self.sock, 100):
            identity = frames[:1]
            try:
                self._on_request(identity, frames[1:])
            except Exception as exc:  # noqa: BLE001 - one bad command must not stop the system
                if (skipped := self._failed_log.take()) is not None:
                    self._log.exception("handler_failed", source="control", suppressed=skipped)
                msg_id = _control_request_id(frames[1:])
                if msg_id is not None:
                    reason = f"internal error: {type(exc).__name__}"
                    self._send(identity, ControlReply(status="error", reason=reason), msg_id)

    def _on_request(self, identity: list[bytes], frames: list[bytes]) -> None:
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
        reply = self._handle(env.body, identity, env.msg_id)
        if reply is not None:
            self._send(identity, reply, env.msg_id)

    def on_actor_reply(self, corr_id: str, reply: ControlReply) -> None:
        """An actor answered a forwarded command: relay it to the operator."""
        target = self._pending.pop(corr_id, None)
        if target is not None:
            self._send(target[0], reply, target[1])

    def _handle(
        self, req: ControlRequest, identity: list[bytes], msg_id: str
    ) -> ControlReply | None:
        command = req.command
        args = command.model_dump(mode="json", exclude={"command"})
        # `status` changes nothing and is polled (`tradepulse top` every second): debug
        log = self._log.debug if isinstance(command, Status) else self._log.info
        log("control_command", command=command.command, args=args)
        unit = for_request(command)
        if unit is None:
            reason = f"{command.command!r} is not a supervisor command"
            return ControlReply(status="error", reason=reason)
        route = unit.target(command)
        if route is not None and self._host.actor_state(route) is ChildState.RUNNING:
            return self._forward(route, req, identity, msg_id)
        return unit.execute(command, self._host)

    def _forward(
        self, target: str, req: ControlRequest, identity: list[bytes], msg_id: str
    ) -> ControlReply | None:
        """Forward to the running actor; if it cannot be reached (its queue is full: it is
        frozen or not reading), the supervisor does it the way it does while that actor is
        down (e.g. writes the kill-switch file), so an engage is never lost."""
        unit = for_request(req.command)
        try:
            forwarded_id = self._host.forward(target, req)
        except zmq.ZMQError as exc:
            self._log.warning("control_forward_failed", target=target, error=str(exc))
            if unit is None:
                return ControlReply(status="error", reason=f"{target} unreachable: {exc}")
            return unit.execute(req.command, self._host)
        self._pending[forwarded_id] = (identity, msg_id)
        self._timers.call_later(FORWARD_TIMEOUT_S, lambda: self._expire(forwarded_id, target, req))
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
                self._send(pending[0], unit.execute(command, self._host), pending[1])
                return
        reply = ControlReply(status="error", reason=f"{target} did not answer in time")
        self._send(pending[0], reply, pending[1])

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
