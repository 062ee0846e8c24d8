"""`tradepulse kill-switch engage|reset|status [--reason R]`, executed by risk.

While risk is not running the supervisor answers: the operator can still engage (or
reset) the switch; the state file is the truth and risk acts on it (refusal, mass cancel)
as soon as it is back.
"""

from __future__ import annotations

import argparse
import time

from actors.risk import killswitch
from actors.supervisor.commands.base import ControlCommand, ControlHost, choices
from protocol import commands as wire
from protocol.messages import ControlReply

HISTORY_SHOWN = 10  # newest kill-switch events in a reply (the file keeps more)


class KillSwitch(ControlCommand[wire.KillSwitch]):
    """engage, reset or show the kill-switch"""

    name = "kill-switch"
    model = wire.KillSwitch
    route = "risk"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "action", choices=choices(wire.KillSwitch, "action"), help="what to do with the switch"
        )
        parser.add_argument(
            "--reason", default="", help="why (required for reset; kept in the history)"
        )

    def to_wire(self, ns: argparse.Namespace) -> wire.KillSwitch:
        return wire.KillSwitch(action=ns.action, reason=ns.reason)

    def execute(self, command: wire.KillSwitch, host: ControlHost) -> ControlReply:
        return self.execute_by(command, host, None)

    def execute_by(
        self, command: wire.KillSwitch, host: ControlHost, operator: wire.OperatorId | None
    ) -> ControlReply:
        path, reason = host.kill_switch_path, command.reason
        who = operator.describe() if operator is not None else ""
        try:
            if command.action == "engage":
                state = killswitch.engage(path, reason or "operator", "operator", who=who)
            elif command.action == "reset":
                state = killswitch.reset(path, reason, "operator", who=who)
            else:
                state = killswitch.load(path)
        except killswitch.KillSwitchResetRefused as exc:
            return ControlReply(status="error", reason=str(exc))
        except OSError as exc:  # e.g. a failing disk: said, never a dead control plane
            return ControlReply(status="error", reason=f"kill-switch write failed: {exc}")
        data = {**state.to_message().model_dump(exclude={"type"}), "operator": state.operator}
        data["history"] = [e.model_dump() for e in state.history[-HISTORY_SHOWN:]]
        why = "the system is shutting down" if host.shutting_down else "risk is not running"
        return ControlReply(
            status="ok",
            reason=(
                f"kill-switch {'ENGAGED' if state.engaged else 'off'}"
                f" ({why}: written to the state file)"
            ),
            data=data,
        )

    def format(self, reply: ControlReply) -> str:
        """The state, who and why, then the newest history events as a table."""
        data = reply.data
        head = f"{reply.status}: {reply.reason}" if reply.reason else reply.status
        if not data:
            return head
        lines = [head, f"  engaged: {data.get('engaged')}  reason: {data.get('reason', '')}"]
        lines.append(f"  source: {data.get('source', '')}  operator: {data.get('operator') or '-'}")
        history = data.get("history") or []
        if history:
            lines.append(
                f"  {'TIME (UTC)':<20} {'ACTION':<10} {'SOURCE':<10} {'OPERATOR':<36} REASON"
            )
        for event in history:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(event["ts_ns"] / 1e9))
            lines.append(
                f"  {stamp:<20} {event['action']:<10} {event['source'][:10]:<10} "
                f"{(event.get('operator') or '-')[:36]:<36} {event['reason']}"
            )
        return "\n".join(lines)
