"""`tradepulse postmortem --out FILE.tar.gz [--since T] [--until T] [--max-bytes N]`: the
post-mortem bundle of a time range (actors/supervisor/postmortem.py). It reads the state
dir itself, so it works whether the system runs or not (then status and metrics are listed
as missing). `--out` a directory: the bundle is written in it under the default name.
Exit codes: 0 written; 1 it could not be written; 2 usage (a bad time, an `--out` whose
directory does not exist, or that exists: a bundle never replaces a file)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from actors.supervisor import postmortem
from actors.supervisor.commands.base import OperatorCommand
from actors.supervisor.ctl import EXIT_CONFIG, EXIT_FAILURE, EXIT_OK
from protocol.config import SystemConfig
from protocol.paths import os_error


class Postmortem(OperatorCommand):
    """bundle logs, metrics, status, kill-switch, journal and FIX logs of a time range"""

    name = "postmortem"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--out",
            default="",
            help="the bundle to write (.tar.gz, 0600), or a directory to write it in; default "
            "tradepulse-postmortem-<time>.tar.gz",
        )
        parser.add_argument(
            "--since", default="1h", help="start of the range: ISO time or an age (30m, 2h, 1d)"
        )
        parser.add_argument("--until", default="now", help="end of the range: ISO time or age")
        parser.add_argument(
            "--max-bytes",
            type=int,
            default=postmortem.DEFAULT_MAX_BYTES,
            help="bound on the bundle's content (newest lines kept); default 200 MiB",
        )

    def run(self, cfg: SystemConfig, ns: argparse.Namespace) -> int:
        now = time.time()
        try:
            since_s = postmortem.parse_time(ns.since, now)
            until_s = postmortem.parse_time(ns.until, now)
        except ValueError as exc:
            return _fail(f"--since/--until: {exc}", EXIT_CONFIG)
        if until_s < since_s:
            return _fail("--until is before --since", EXIT_CONFIG)
        if ns.max_bytes < 1 << 20:
            return _fail("--max-bytes must be at least 1048576 (1 MiB)", EXIT_CONFIG)
        if not cfg.state_path.is_dir():
            return _fail(f"no state dir {cfg.state_path}: nothing to bundle")
        name = time.strftime("tradepulse-postmortem-%Y%m%dT%H%M%SZ.tar.gz", time.gmtime(now))
        out = Path(ns.out or name)
        if out.is_dir():  # `--out /var/tmp`: the bundle goes in it, under the default name
            out = out / name
        elif not out.parent.is_dir():
            return _fail(f"--out {ns.out}: {out.parent} is not a directory", EXIT_CONFIG)
        if os.path.lexists(out):  # a config or a FIFO was replaced by the bundle, unasked
            return _fail(f"--out {out} exists: not overwritten (name a new file)", EXIT_CONFIG)
        try:
            manifest = postmortem.write_bundle(
                cfg, out, since_s, until_s, ns.max_bytes, timeout_s=ns.timeout_s
            )
        except OSError as exc:
            return _fail(f"cannot write {out}: {os_error(exc)}")
        print(
            json.dumps({"out": str(out.resolve()), **manifest})
            if ns.json
            else _describe(out, manifest)
        )
        return EXIT_OK


def _describe(out: Path, manifest: dict[str, Any]) -> str:
    rng = manifest["range"]
    lines = [f"wrote {out} ({rng['since']} .. {rng['until']})", ""]
    cut = {t["name"] for t in manifest["truncated"]}
    rows = [("FILE", "BYTES", "NOTE")]
    rows += [
        (f["name"], str(f["bytes"]), "truncated" if f["name"] in cut else "")
        for f in manifest["files"]
    ]
    lines += _table(rows)
    if manifest["missing"]:
        lines += ["", "missing:"] + [f"  {m['item']}: {m['why']}" for m in manifest["missing"]]
    return "\n".join(lines)


def _table(rows: list[tuple[str, str, str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def _fail(text: str, code: int = EXIT_FAILURE) -> int:
    print(f"tradepulse postmortem: {text}", file=sys.stderr)
    return code
