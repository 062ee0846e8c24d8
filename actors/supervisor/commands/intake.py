"""`tradepulse intake pause|resume|status`: close or reopen order intake, executed by the
OMS (nothing is stopped; orders already accepted carry on)."""

from __future__ import annotations

import argparse

from actors.supervisor.commands.base import ControlCommand, choices
from protocol import commands as wire


class Intake(ControlCommand[wire.Intake]):
    """pause or resume order intake"""

    name = "intake"
    model = wire.Intake
    route = "oms"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "action", choices=choices(wire.Intake, "action"), help="close, reopen or show intake"
        )

    def to_wire(self, ns: argparse.Namespace) -> wire.Intake:
        return wire.Intake(action=ns.action)
