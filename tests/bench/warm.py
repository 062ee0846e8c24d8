"""Warm starts of one state, repeated (`python -m tests.bench.warm`; not a `make bench`
section): the `oms` section's warm start after kill -9, many times from a copy of the same
journal and venue, so two trees can be compared in the same minutes.

The first run builds the state (`--state`, default /tmp/tpwarm: `oms`'s 10,000 resting
orders, then kill -9 of everything) and keeps it; each run copies it, starts the system
on the copy, waits for the OMS's `warm_start`, prints one JSON line (seconds from the
start to it, its milestones and the stages of its critical path) and destroys the system.
For an A/B, alternate the trees (`PYTHONPATH=<tree>`) on one state: the state is data,
the same for both. `--venue-up`: the venue runs alone, up before the clock (the target's
measurement, tests/bench/venue_up.py).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from tests.bench import oms
from tests.bench._stats import precompile
from tests.bench.venue_up import start_venue, warm_start
from tests.helpers import CREATED
from tests.integration.oms_support import OmsSystem
from tests.venuesim.rig import SimProcess

BUILT = "built"  # marker file: the state is complete


def build(state: Path) -> None:
    """`oms`'s throughput step into `state`, then kill -9 of every process."""
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir(parents=True)
    sut = OmsSystem(root=state, overrides=oms._config())
    try:
        oms.throughput(sut.start(), oms.THR_ORDERS)
    finally:
        sut.destroy()
    (state / BUILT).write_text("ok\n")


def once(state: Path, *, venue_up: bool = False) -> dict[str, object]:
    """One warm start on a copy of `state` (sockets left out: the copy gets its own);
    `venue_up`: the venue run alone, started before the clock (tests/bench/venue_up.py)."""
    root = Path(tempfile.mkdtemp(prefix="tpw", dir="/tmp"))
    shutil.rmtree(root)
    shutil.copytree(state, root, symlinks=True, ignore=shutil.ignore_patterns("*.sock", BUILT))
    earlier = list(CREATED)
    venue: SimProcess | None = None
    try:
        if venue_up:
            venue, port = start_venue(root, root / "state")
            result, _sut = warm_start(root, "kill -9", port)
        else:
            result, _sut = oms.warm_start(root, "kill -9")
        keys = ("start_to_warm_start_s", "milestones_s", "stages_s")
        return {k: result[k] for k in keys}
    finally:  # the system started, also when its warm start failed
        for sut in [s for s in CREATED if s not in earlier]:
            sut.destroy()
        if venue is not None:
            venue.destroy()
        shutil.rmtree(root, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--state", type=Path, default=Path("/tmp/tpwarm"))
    parser.add_argument("--venue-up", action="store_true", help="the venue run alone, up")
    args = parser.parse_args(argv)
    precompile()  # as `make bench` does: a start measures the start, not the compiler
    if not (args.state / BUILT).exists():
        build(args.state)
    for _ in range(args.runs):
        print(json.dumps(once(args.state, venue_up=args.venue_up)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
