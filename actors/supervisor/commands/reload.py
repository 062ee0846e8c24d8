"""`tradepulse reload [--reason R]`: re-read the config file and apply what can change live.

Handled by the control plane's `actors.supervisor.reload.Reloader` (SIGHUP to the supervisor
does the same): a bad file, or a change to a field that needs a restart, is refused and
nothing changes; otherwise the changed live sections go to the actors that own them. The
reply lists every changed field, `field: old -> new`, and each actor's answer.
"""

from __future__ import annotations

import argparse

from actors.supervisor.commands.base import ControlCommand, ControlHost
from protocol import commands as wire
from protocol.messages import ControlReply


class Reload(ControlCommand[wire.Reload]):
    """re-read the config file and apply live changes (risk limits, heartbeat, windows)"""

    name = "reload"
    model = wire.Reload

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--reason", default="", help="why (logged and audited)")

    def to_wire(self, ns: argparse.Namespace) -> wire.Reload:
        return wire.Reload(reason=ns.reason)

    def execute(self, command: wire.Reload, host: ControlHost) -> ControlReply:
        # never reached: the control plane hands `reload` to its Reloader
        return ControlReply(status="error", reason="reload is handled by the control plane")

    def format(self, reply: ControlReply) -> str:
        lines = [f"{reply.status}: {reply.reason}" if reply.reason else reply.status]
        for change in reply.data.get("changes") or []:
            kind = "live" if change.get("live") else "RESTART"
            lines.append(f"  {change['field']}: {change['old']} -> {change['new']}  [{kind}]")
        for actor, answer in (reply.data.get("actors") or {}).items():
            lines.append(f"  {actor}: {answer}")
        return "\n".join(lines)
