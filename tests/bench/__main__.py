"""`python -m tests.bench [--only NAME ...] [--out FILE] [--list]` (what `make bench` runs).

Every module in tests/bench/ (except those starting with `_`) that defines `run() -> dict`
is a benchmark section named after the module. The results are merged into
var/bench/results.json as `{section: result}` (sections not run this time are kept), and a
readable summary is printed: the module's `summary(result) -> list[str]` if it has one,
otherwise the result's top-level keys.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import tests.bench as package
from protocol.paths import os_error
from tests.bench._stats import precompile

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO_ROOT / "var" / "bench" / "results.json"


def discover() -> dict[str, ModuleType]:
    """Section name -> module, for every bench module with a `run()`."""
    sections = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        if callable(getattr(module, "run", None)):
            sections[info.name] = module
    return sections


def merge_results(path: Path, new: dict[str, Any]) -> dict[str, Any]:
    """Read the existing results (if any), replace the sections in `new`, write atomically."""
    try:
        existing = json.loads(path.read_text())
        if not isinstance(existing, dict):
            existing = {}
    except (FileNotFoundError, ValueError):
        existing = {}
    merged = {**existing, **new}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(merged, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, path)
    return merged


def unwritable(path: Path) -> str | None:
    """Why the results could not be written to `path`, checked before any section runs:
    a directory, a parent that cannot be made, a file system that takes no file. Found
    at the end instead, the run's results (minutes of it) were lost in a traceback."""
    if path.is_dir():
        return f"{path} is a directory"
    tmp = path.with_suffix(".json.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.touch()
        tmp.unlink()
    except OSError as exc:
        return f"cannot write {path}: {os_error(exc)}"
    return None


def _default_summary(result: dict[str, Any]) -> list[str]:
    return [f"{k}: {json.dumps(v, default=str)}" for k, v in result.items()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--only", action="append", metavar="NAME", help="run only this section (repeatable)"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results file (merged)")
    parser.add_argument("--list", action="store_true", help="list the sections and exit")
    ns = parser.parse_args(argv)
    sections = discover()
    if ns.list:
        print("\n".join(sections))
        return 0
    wanted = ns.only or list(sections)
    unknown = [n for n in wanted if n not in sections]
    if unknown:
        print(f"unknown section(s) {unknown}; sections: {', '.join(sections)}", file=sys.stderr)
        return 2
    if (why := unwritable(ns.out)) is not None:
        print(f"--out: {why}", file=sys.stderr)
        return 2
    precompile()
    results: dict[str, Any] = {}
    failed = []
    for name in wanted:
        module = sections[name]
        print(f"== {name}", flush=True)
        started = time.monotonic()
        try:
            result = module.run()
        except Exception as exc:  # noqa: BLE001 - report the section, run the others
            print(f"   FAILED: {type(exc).__name__}: {exc}", flush=True)
            failed.append(name)
            continue
        result.setdefault("bench_wall_s", round(time.monotonic() - started, 2))
        results[name] = result
        summary: Callable[[dict[str, Any]], list[str]] = getattr(
            module, "summary", _default_summary
        )
        for line in summary(result):
            print(f"   {line}", flush=True)
    if results:
        merge_results(ns.out, results)
        print(f"results: {ns.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
