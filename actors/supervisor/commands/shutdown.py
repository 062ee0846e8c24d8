"""`tradepulse shutdown`: the orderly shutdown of the runbook (the supervisor answers)."""

from __future__ import annotations

import argparse

from actors.supervisor.commands.base import ControlCommand, ControlHost
from protocol import commands as wire
from protocol.messages import ControlReply


class Shutdown(ControlCommand[wire.Shutdown]):
    """orderly shutdown"""

    name = "shutdown"
    model = wire.Shutdown

    def to_wire(self, ns: argparse.Namespace) -> wire.Shutdown:
        return wire.Shutdown()

    def execute(self, command: wire.Shutdown, host: ControlHost) -> ControlReply:
        """Idempotent: a repeated one (while the actors stop) is answered at once, exit 0."""
        if host.shutting_down:
            return ControlReply(status="ok", reason="already shutting down")
        host.request_shutdown()
        return ControlReply(status="ok", reason="shutting down")
