"""The client side of a control socket: send one typed command (`protocol.commands`) to the
running supervisor's control socket, or straight to an actor's ROUTER, and wait for the
one reply envelope `{status, reason, data}`. Used by the operator CLI
(`actors.supervisor.ctl`), the venue simulator's CLI and the tests. A reply on the control
socket is taken only from the supervisor of the runtime dir (`protocol.control_binder`)."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import zmq

from protocol import paths
from protocol.codec import Sender, decode, encode
from protocol.commands import Command, parse_command
from protocol.config import SystemConfig
from protocol.control_binder import read_identity, refusal
from protocol.exceptions import ProtocolError, TradePulseError
from protocol.messages import ControlReply, ControlRequest
from protocol.sockets import MAX_MSG_BYTES


class ControlUnavailable(TradePulseError):
    """No supervisor answered on the control socket in time."""


class NotTheSupervisor(TradePulseError):
    """The control socket answered, but not from the supervisor of the runtime dir (another
    process bound it): the answer is not taken, and the message says who bound it."""


def _nobody_listening(path: Path) -> bool:
    """A socket file left by a stopped or killed supervisor refuses connections at once;
    without this check the request would wait its whole timeout for an answer."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except ConnectionRefusedError:
        return True
    except OSError:
        return False  # let the real request try and report
    finally:
        probe.close()
    return False


def control_request(
    cfg: SystemConfig,
    command: Command | str,
    args: Mapping[str, Any] | None = None,
    timeout_s: float = 10.0,
    *,
    target: str = "control",
) -> ControlReply:
    """Send one control command and wait for its reply: to the running supervisor's control
    socket, or (`target`) straight to an actor's ROUTER, e.g. "venuesim.simA". `command` is
    a model of `protocol.commands`, or its name with `args` (a ProtocolError if invalid).
    NotTheSupervisor if the control socket's answer came from another process than the
    supervisor that recorded itself in the runtime dir."""
    if isinstance(command, str):
        command = parse_command(command, args)
    path = paths.socket_file(cfg.runtime_path, target)
    if not path.exists() or _nobody_listening(path):
        who = "supervisor" if target == "control" else target
        raise ControlUnavailable(f"no {who} running for state dir {cfg.state_path}")
    supervisor = read_identity(cfg.runtime_path) if target == "control" else None  # before
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.MAXMSGSIZE, MAX_MSG_BYTES)
    try:
        sock.connect(cfg.endpoint(target))
        sender = Sender(f"ctl-{uuid.uuid4().hex[:8]}", 0)
        sock.send_multipart(encode(sender.envelope(ControlRequest(command=command))))
        if not sock.poll(int(timeout_s * 1000)):
            raise ControlUnavailable(f"no answer to {command.command!r} within {timeout_s} s")
        frames = sock.recv_multipart(copy=False)
        if target == "control":  # who bound the connection this reply came on
            binder = _peer_address(frames[0])
            why = refusal(supervisor, binder, cfg.runtime_path)
            if why is not None and (now := read_identity(cfg.runtime_path)) != supervisor:
                why = refusal(now, binder, cfg.runtime_path)  # a supervisor restarted since
            if why is not None:
                raise NotTheSupervisor(why)
        try:
            reply = decode(
                [frame.bytes for frame in frames], tolerant=True
            ).body  # a newer daemon's too
        except ProtocolError as exc:
            raise ControlUnavailable(f"bad reply: {exc}") from exc
        if not isinstance(reply, ControlReply):
            raise ControlUnavailable(f"unexpected reply type {reply.type}")
        return reply
    finally:
        sock.close(0)
        ctx.term()


def _peer_address(frame: zmq.Frame) -> str:
    try:
        return str(frame.get("Peer-Address"))
    except zmq.ZMQError:  # no such property: a connection without credentials
        return ""
