"""`tradepulse journal inspect`: print the OMS journal's records. It reads the state dir
itself, so it works whether the system runs or not."""

from __future__ import annotations

import argparse
import json
import sys

from actors.supervisor.commands.base import OperatorCommand
from protocol.config import SystemConfig

EXIT_OK, EXIT_FAILURE = 0, 1


class Journal(OperatorCommand):
    """inspect the OMS journal"""

    name = "journal"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("action", choices=["inspect"])

    def run(self, cfg: SystemConfig, ns: argparse.Namespace) -> int:
        try:
            from actors.oms.journal import inspect as inspect_journal
        except ImportError:
            print("tradepulse: journal support is not built yet", file=sys.stderr)
            return EXIT_FAILURE
        for record in inspect_journal(cfg.state_path / "oms"):
            print(json.dumps(record, default=str) if ns.json else record)
        return EXIT_OK
