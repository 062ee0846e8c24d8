"""`tradepulse journal inspect`: print the OMS journal's records. It reads the state dir
itself, so it works whether the system runs or not."""

from __future__ import annotations

import argparse
import json
import sys

from actors.supervisor.commands.base import OperatorCommand
from actors.supervisor.ctl import EXIT_FAILURE, EXIT_OK
from protocol import paths
from protocol.config import SystemConfig


class Journal(OperatorCommand):
    """inspect the OMS journal"""

    name = "journal"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("action", choices=["inspect"], help="print the records")

    def run(self, cfg: SystemConfig, ns: argparse.Namespace) -> int:
        try:
            from actors.oms.journal import inspect as inspect_journal
        except ImportError:
            print("tradepulse: journal support is not built yet", file=sys.stderr)
            return EXIT_FAILURE
        for record in inspect_journal(paths.oms_dir(cfg.state_path)):
            print(json.dumps(record, default=str) if ns.json else record)
        return EXIT_OK
