"""`python -m actors.venuesim run --venue simA` alone, simB's simulator running in simA's
process (`[venues.sim] runs_in`): it runs both venues, and with simB's state held by
another process it refuses before it listens anywhere (no port of simA's published)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from actors.venuesim.store import SimStore
from protocol.paths import sim_port_file, venue_state_dir
from tests.helpers import REPO_ROOT, eventually, to_toml

SIM = {"reference_prices": {"AAPL": "100.00"}}


def _config(root: Path) -> list[str]:
    venues: list[dict[str, Any]] = [
        {"name": "simA", "target_comp_id": "SIMA", "sim": SIM},
        {"name": "simB", "target_comp_id": "SIMB", "sim": {**SIM, "runs_in": "simA"}},
    ]
    path = root / "config.toml"
    path.write_text(to_toml({"system": {"name": "t"}, "venues": venues}))
    return ["--config", str(path), "--state-dir", str(root / "state"),
            "--runtime-dir", str(root / "rt"), "--venue", "simA"]  # fmt: skip


def _run(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "actors.venuesim", "run", *args], cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_a_host_run_alone_runs_its_guests(short_tmp: Path) -> None:
    proc = _run(_config(short_tmp))
    try:
        ports = [sim_port_file(short_tmp / "rt", v) for v in ("simA", "simB")]
        eventually(lambda: all(p.exists() for p in ports), 15.0, message="both ports")
        assert ports[0].read_text() != ports[1].read_text()
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err


def test_a_guest_held_elsewhere_is_refused_before_the_host_listens(short_tmp: Path) -> None:
    args = _config(short_tmp)
    held = SimStore.open(venue_state_dir(short_tmp / "state", "simB"))  # another "process"
    try:
        proc = _run(args)
        _, err = proc.communicate(timeout=30)
    finally:
        held.close()
    assert proc.returncode == 1, err
    assert len(err.strip().splitlines()) == 1 and "simB" in err and "already running" in err, err
    assert not sim_port_file(short_tmp / "rt", "simA").exists()
