"""`tradepulse kill-switch engage|reset|status [--reason R]`, executed by risk.

While risk is not running the supervisor answers: the operator can still engage (or
reset) the switch; the state file is the truth and risk acts on it (refusal, mass cancel)
as soon as it is back.
"""

from __future__ import annotations

import argparse

from actors.risk import killswitch
from actors.supervisor.commands.base import ControlCommand, ControlHost, choices
from protocol import commands as wire
from protocol.messages import ControlReply


class KillSwitch(ControlCommand[wire.KillSwitch]):
    """engage, reset or show the kill-switch"""

    name = "kill-switch"
    model = wire.KillSwitch
    route = "risk"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "action", choices=choices(wire.KillSwitch, "action"), help="what to do with the switch"
        )
        parser.add_argument("--reason", default="", help="why (recorded; required to reset)")

    def to_wire(self, ns: argparse.Namespace) -> wire.KillSwitch:
        return wire.KillSwitch(action=ns.action, reason=ns.reason)

    def execute(self, command: wire.KillSwitch, host: ControlHost) -> ControlReply:
        path, reason = host.kill_switch_path, command.reason
        try:
            if command.action == "engage":
                state = killswitch.engage(path, reason or "operator", source="operator")
            elif command.action == "reset":
                state = killswitch.reset(path, reason, operator="operator")
            else:
                state = killswitch.load(path)
        except killswitch.KillSwitchResetRefused as exc:
            return ControlReply(status="error", reason=str(exc))
        except OSError as exc:  # e.g. a failing disk: said, never a dead control plane
            return ControlReply(status="error", reason=f"kill-switch write failed: {exc}")
        data = state.to_message().model_dump(exclude={"type"})
        return ControlReply(
            status="ok",
            reason=(
                f"kill-switch {'ENGAGED' if state.engaged else 'off'}"
                " (risk is not running: written to the state file)"
            ),
            data=data,
        )
