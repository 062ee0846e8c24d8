"""`tradepulse keys generate --out DIR [--name NAME]`: a new CurveZMQ key pair for the link
between hosts (`protocol.curve_keys`): `NAME.key` (public, give it to the peers) and
`NAME.key_secret` (0600, stays on this host). NAME is the supervisor's host group (`core`,
`edge-a`, ...): the peers find its public key by that name. An existing file is never
overwritten. Needs no config.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import ClassVar

from actors.supervisor.commands.base import OperatorCommand
from actors.supervisor.ctl import EXIT_FAILURE, EXIT_OK
from protocol.config import SystemConfig
from protocol.curve_keys import generate
from protocol.link_config import GROUP_PATTERN
from protocol.paths import os_error


class Keys(OperatorCommand):
    """generate a CurveZMQ key pair for the link between hosts (keys generate --out DIR)"""

    name = "keys"
    needs_config: ClassVar[bool] = False

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("action", choices=("generate",), help="generate: a new key pair")
        parser.add_argument("--out", required=True, help="the keys dir (made 0700 if absent)")
        parser.add_argument("--name", default="core", help="the host group (default: core)")

    def run(self, cfg: SystemConfig, ns: argparse.Namespace) -> int:
        return self.run_offline(ns)

    def run_offline(self, ns: argparse.Namespace) -> int:
        if not re.fullmatch(GROUP_PATTERN, ns.name):
            print(f"tradepulse keys: --name: not a host group name: {ns.name!r}", file=sys.stderr)
            return EXIT_FAILURE
        try:
            public, secret = generate(Path(ns.out), ns.name)
        except OSError as exc:
            print(f"tradepulse keys: {os_error(exc)}", file=sys.stderr)
            return EXIT_FAILURE
        if ns.json:
            print(json.dumps({"public": str(public), "secret": str(secret)}))
        else:
            print(f"public key: {public}\nsecret key: {secret} (0600)")
        return EXIT_OK
