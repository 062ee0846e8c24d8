"""The operator side of the control socket: send one command, print the reply.

Every reply is one envelope `{status: ok|error, reason, data}`; `--json` prints it as is,
otherwise the command's own format (`actors.supervisor.commands`).
"""

from __future__ import annotations

import json
import socket
import sys
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import zmq

from protocol.codec import Sender, decode, encode
from protocol.commands import Command, parse_command
from protocol.config import SystemConfig
from protocol.exceptions import ProtocolError, TradePulseError
from protocol.messages import ControlReply, ControlRequest

EXIT_OK, EXIT_FAILURE, EXIT_UNAVAILABLE = 0, 1, 3


class ControlUnavailable(TradePulseError):
    """No supervisor answered on the control socket in time."""


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
    a model of `protocol.commands`, or its name with `args` (a ProtocolError if invalid)."""
    if isinstance(command, str):
        command = parse_command(command, args)
    path = cfg.runtime_path / f"{target}.sock"
    if not path.exists() or _nobody_listening(path):
        who = "supervisor" if target == "control" else target
        raise ControlUnavailable(f"no {who} running for state dir {cfg.state_path}")
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(cfg.endpoint(target))
        sender = Sender(f"ctl-{uuid.uuid4().hex[:8]}", 0)
        sock.send_multipart(encode(sender.envelope(ControlRequest(command=command))))
        if not sock.poll(int(timeout_s * 1000)):
            raise ControlUnavailable(f"no answer to {command.command!r} within {timeout_s} s")
        try:
            reply = decode(sock.recv_multipart()).body
        except ProtocolError as exc:
            raise ControlUnavailable(f"bad reply: {exc}") from exc
        if not isinstance(reply, ControlReply):
            raise ControlUnavailable(f"unexpected reply type {reply.type}")
        return reply
    finally:
        sock.close(0)
        ctx.term()


def control_command(
    cfg: SystemConfig,
    command: Command,
    format_reply: Callable[[ControlReply], str],
    *,
    as_json: bool,
    timeout_s: float,
) -> int:
    """The CLI side of a control command: send it, print the reply (`--json`: the envelope
    as is), and return the exit code."""
    try:
        reply = control_request(cfg, command, timeout_s=timeout_s)
    except ControlUnavailable as exc:
        if as_json:
            print(json.dumps({"status": "error", "reason": str(exc), "data": {}}))
        else:
            print(f"tradepulse: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    if as_json:
        print(json.dumps(reply.model_dump(exclude={"type"}), default=str))
    else:
        print(format_reply(reply))
    return EXIT_OK if reply.status == "ok" else EXIT_FAILURE
