"""The operator side of the control socket: send one command, print the reply.

Every reply is one envelope `{status: ok|error, reason, data}`; `--json` prints it as is,
otherwise the command's own format (`actors.supervisor.commands`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

from actors.link.remote_control import UNREACHABLE
from actors.supervisor.exit_codes import (  # the CLI's exit codes, importable from here too
    EXIT_CONFIG as EXIT_CONFIG,
)
from actors.supervisor.exit_codes import EXIT_FAILURE as EXIT_FAILURE
from actors.supervisor.exit_codes import EXIT_NOT_SUPERVISOR as EXIT_NOT_SUPERVISOR
from actors.supervisor.exit_codes import EXIT_OK as EXIT_OK
from actors.supervisor.exit_codes import EXIT_UNAVAILABLE as EXIT_UNAVAILABLE
from protocol.commands import Command
from protocol.config import SystemConfig
from protocol.control import ControlUnavailable, NotTheSupervisor, control_request
from protocol.messages import ControlReply


def control_command(
    cfg: SystemConfig,
    command: Command,
    format_reply: Callable[[ControlReply], str],
    *,
    as_json: bool,
    timeout_s: float,
) -> int:
    """The CLI side of a control command: send it, print the reply (`--json`: the envelope
    as is), and return the exit code. An answer from a process that is not the supervisor
    is never printed as the command's: one line saying who answered, exit 4."""
    try:
        reply = control_request(cfg, command, timeout_s=timeout_s)
    except ControlUnavailable as exc:
        return print_failure(exc, EXIT_UNAVAILABLE, as_json=as_json)
    except NotTheSupervisor as exc:
        return print_failure(exc, EXIT_NOT_SUPERVISOR, as_json=as_json)
    return print_reply(reply, format_reply, as_json=as_json)


def print_failure(exc: Exception, code: int, *, as_json: bool) -> int:
    """No reply to print: one line (`--json`: an error envelope) and `code`."""
    if as_json:
        print(json.dumps({"status": "error", "reason": str(exc), "data": {}}))
    else:
        print(f"tradepulse: {exc}", file=sys.stderr)
    return code


def print_reply(
    reply: ControlReply, format_reply: Callable[[ControlReply], str], *, as_json: bool
) -> int:
    """Print a reply (`--json`: the envelope as is) and return the exit code: 0 ok; 3 the
    supervisor that runs the actor cannot be reached (another host group's, the link to it
    down: one line on stderr); 1 any other error."""
    unreachable = reply.status == "error" and UNREACHABLE in reply.data
    if as_json:
        print(json.dumps(reply.model_dump(exclude={"type"}), default=str))
    elif unreachable:
        print(f"tradepulse: {reply.reason}", file=sys.stderr)
    else:
        print(format_reply(reply))
    if unreachable:
        return EXIT_UNAVAILABLE
    return EXIT_OK if reply.status == "ok" else EXIT_FAILURE
