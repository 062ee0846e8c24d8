"""`tradepulse preflight`: check what `run` needs before a session (runbook cold start
steps 2-3) and print one row per check. Exit 0 if nothing FAILs (WARN and SKIP rows
included), 1 if anything does; an invalid config is exit 2 before any check (one line).
It needs no running system, and starts, locks or changes nothing (the checks:
`actors.supervisor.preflight_checks`)."""

from __future__ import annotations

import argparse
import json
import sys

import structlog

from actors.supervisor.commands.base import OperatorCommand
from actors.supervisor.ctl import EXIT_FAILURE, EXIT_OK
from actors.supervisor.preflight_checks import CONNECT_TIMEOUT_S, Check, run_checks
from protocol.cli_seconds import deadline_s
from protocol.config import SystemConfig


class Preflight(OperatorCommand):
    """check what `run` needs before a session (pass/fail table)"""

    name = "preflight"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--connect-timeout-s",
            type=deadline_s,
            default=CONNECT_TIMEOUT_S,
            help=f"TCP connect deadline per venue (default {CONNECT_TIMEOUT_S:g})",
        )
        parser.add_argument(
            "--host-group",
            default="core",
            help="check what `run --host-group` needs: its venues and its end of the link",
        )

    def run(self, cfg: SystemConfig, ns: argparse.Namespace) -> int:
        # a library warning (an unreadable kill-switch file) must not mix with the table
        structlog.configure(logger_factory=structlog.WriteLoggerFactory(file=sys.stderr))
        checks = [Check("config", "PASS", f"{ns.config}: {len(cfg.venues)} venue(s)")]
        checks += run_checks(cfg, connect_timeout_s=ns.connect_timeout_s, host_group=ns.host_group)
        failed = [c for c in checks if c.status == "FAIL"]
        if ns.json:
            print(json.dumps(envelope(checks)))
        else:
            print(format_checks(checks))
        return EXIT_FAILURE if failed else EXIT_OK


def summary(checks: list[Check]) -> str:
    failed = sum(c.status == "FAIL" for c in checks)
    warned = sum(c.status == "WARN" for c in checks)
    if failed:
        return f"preflight FAILED: {failed} of {len(checks)} checks failed, {warned} warning(s)"
    return f"preflight passed: {len(checks)} checks, {warned} warning(s)"


def envelope(checks: list[Check]) -> dict[str, object]:
    """The `--json` output: the CLI's one envelope `{status, reason, data}`."""
    failed = any(c.status == "FAIL" for c in checks)
    return {
        "status": "error" if failed else "ok",
        "reason": summary(checks),
        "data": {"checks": [c.as_dict() for c in checks]},
    }


def format_checks(checks: list[Check]) -> str:
    """CHECK / RESULT / DETAIL columns, then the summary line."""
    rows = [("CHECK", "RESULT", "DETAIL")] + [(c.name, c.status, c.detail) for c in checks]
    widths = [max(len(r[i]) for r in rows) for i in range(2)]
    lines = [f"{r[0].ljust(widths[0])}  {r[1].ljust(widths[1])}  {r[2]}".rstrip() for r in rows]
    return "\n".join([*lines, "", summary(checks)])
