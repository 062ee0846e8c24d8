"""`tradepulse intake pause|resume|status [--venue V] [--reason "..."]`: close or reopen order
intake, globally or for one venue, executed by the OMS (nothing is stopped; orders already
accepted carry on, cancels are always taken). A pause needs a reason; the OMS persists the
pauses (`actors.oms.intake_state`), so they survive its restarts; `status` shows them.
`resume` without `--venue` lifts the global pause only: venue pauses stay until resumed by
name (the reply lists what is still paused)."""

from __future__ import annotations

import argparse

from actors.supervisor.commands.base import ControlCommand, choices
from protocol import commands as wire


class Intake(ControlCommand[wire.Intake]):
    """pause or resume order intake (globally, or one venue with --venue)"""

    name = "intake"
    model = wire.Intake
    route = "oms"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "action", choices=choices(wire.Intake, "action"), help="pause, resume or status"
        )
        parser.add_argument("--venue", help="only this venue (default: all venues, globally)")
        parser.add_argument("--reason", default="", help="why (required to pause): kept, shown")

    def to_wire(self, ns: argparse.Namespace) -> wire.Intake:
        return wire.Intake(action=ns.action, venue=ns.venue, reason=ns.reason)
