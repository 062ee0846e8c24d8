"""A FIFO in the place of a state file the actors follow (the kill-switch, the intake
pauses, the operator stops, risk's trading day) is read as unreadable, failing closed as
an unreadable file does, never waited on: an open() of a FIFO blocks until a writer comes,
and a look at the kill-switch file before each of risk's turns hung risk for good (found
by the CLI sweep's review: `journal inspect` and the OMS's journal had it; these four did
too). Each look runs in a child so that a hang is a timeout, not a hung suite."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers import run_python

_PROBE = """
import json, sys
from pathlib import Path
from types import SimpleNamespace
from actors.oms.intake_state import load_pauses
from actors.risk.killswitch import KillSwitchWatcher, load
from actors.risk.trading_day import TradingDay
from actors.runtime.operator_stops import StopsWatcher

d = Path(sys.argv[1])
watched = KillSwitchWatcher(d / "kill_switch.json").poll()
pauses, problem = load_pauses(d / "intake.json")
stops = StopsWatcher(d / "stops.json")
stops.venues()

class Log:
    def error(self, event, **kw):
        pass

day = SimpleNamespace(path=d / "trading_day.json", log=Log(), unreadable=None)
TradingDay._load(day)  # its own state only: path, log, unreadable
print(json.dumps({
    "watched_engaged": watched is not None and watched.engaged,
    "loaded_engaged": load(d / "kill_switch.json").engaged,
    "intake_paused": pauses.global_pause is not None and problem is not None,
    "stops_error": stops.error,
    "day_unreadable": day.unreadable,
}))
"""


def test_a_fifo_in_place_of_a_followed_state_file_is_unreadable_not_waited_on(
    tmp_path: Path,
) -> None:
    for name in ("kill_switch.json", "intake.json", "stops.json", "trading_day.json"):
        os.mkfifo(tmp_path / name)
    try:
        done = run_python(["-c", _PROBE, str(tmp_path)], timeout_s=30.0)
    except subprocess.TimeoutExpired:
        pytest.fail("a look at a FIFO state file waited for a writer")
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["watched_engaged"] and got["loaded_engaged"]  # fail closed: ENGAGED
    assert got["intake_paused"]
    assert got["stops_error"] and "regular" in got["stops_error"]
    assert got["day_unreadable"] and "regular" in got["day_unreadable"]
