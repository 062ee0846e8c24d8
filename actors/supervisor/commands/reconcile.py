"""`tradepulse reconcile --venue V [--dry-run]`, executed by the OMS: the reconciliation
plan of one venue, printed (`--dry-run`) or applied."""

from __future__ import annotations

import argparse

from actors.supervisor.commands.base import ControlCommand
from protocol import commands as wire


class Reconcile(ControlCommand[wire.Reconcile]):
    """reconcile one venue (dry run prints the plan)"""

    name = "reconcile"
    model = wire.Reconcile
    route = "oms"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--venue", required=True, help="the venue to reconcile")
        parser.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")

    def to_wire(self, ns: argparse.Namespace) -> wire.Reconcile:
        return wire.Reconcile(venue=ns.venue, dry_run=ns.dry_run)
