"""`tradepulse exposure [--venue V]`: risk's own position view, what its limits read
(executed by risk; its ROUTER takes no connection from outside the system)."""

from __future__ import annotations

import argparse

from actors.supervisor.commands.base import ControlCommand
from protocol import commands as wire


class Exposure(ControlCommand[wire.Exposure]):
    """risk's positions (what its limits read)"""

    name = "exposure"
    model = wire.Exposure
    route = "risk"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--venue", help="one venue only (default: every venue)")

    def to_wire(self, ns: argparse.Namespace) -> wire.Exposure:
        return wire.Exposure(venue=ns.venue)
