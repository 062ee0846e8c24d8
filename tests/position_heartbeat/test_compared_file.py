"""The heartbeat's compared times across its restarts (`actors.position_heartbeat.compared_file`):
what a start reads (no file, a venue added or dropped, a time after now, an unreadable file),
when the file is written (once per lag, not once per beat; a failed write retried a lag
later), a kill -9 mid-write, and the actor's gauges across a restart."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from actors.position_heartbeat.actor import HeartbeatActor
from actors.position_heartbeat.compared_file import ComparedFile, load_times
from protocol.messages import ExecCut
from protocol.paths import heartbeat_compared_path
from tests.actor_stubs import Harness
from tests.helpers import eventually
from tests.position_heartbeat.beating import beating

COMPARED = "tradepulse_position_compared_timestamp_seconds"
INTERVAL_S = 0.05
LOG = structlog.get_logger()


def compared(venue: str) -> float | None:
    return REGISTRY.get_sample_value(COMPARED, {"venue": venue})


def write(path: Path, venues: dict[str, float]) -> None:
    path.write_text(json.dumps({"version": 1, "venues": venues}))


# ------------------------------------------------------------------ what a start reads


def test_without_a_file_every_venue_starts_now(tmp_path: Path) -> None:
    """The first heartbeat of a supervisor run (the supervisor removed the file): now."""
    times, problem = load_times(tmp_path / "c.json", ["simA", "simB"], 1000.0)
    assert times == {"simA": 1000.0, "simB": 1000.0} and problem is None


def test_a_venue_added_starts_now_one_dropped_is_not_read_and_a_future_time_is_now(
    tmp_path: Path,
) -> None:
    """simA keeps its time; simC, new in the config, starts now; `gone`, no longer in the
    config, is not read; simB's time after now (the clock stepped back since) reads now."""
    path = tmp_path / "c.json"
    write(path, {"simA": 400.0, "simB": 1500.0, "gone": 10.0})
    times, problem = load_times(path, ["simA", "simB", "simC"], 1000.0)
    assert times == {"simA": 400.0, "simB": 1000.0, "simC": 1000.0} and problem is None


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b"\xff\xfe\x00garbage",
        b"",
        b'{"version": 1, "venues": []}',
        b'{"version": 2, "venues": {}}',
        b'{"version": 1, "venues": {"simA": -5}}',
        b'{"version": 1, "venues": {"simA": "1000"}}',
        b'{"version": 1, "venues": {"simA": true}}',
        b'{"version": 1, "venues": {"simA": NaN}}',
        b'{"version": 1, "venues": {"simA": 1e400}}',
        b'{"version": 1, "venues": {}, "extra": 1}',
        b"[1, 2]",
    ],
)
def test_an_unreadable_file_starts_every_venue_at_zero(tmp_path: Path, raw: bytes) -> None:
    """Bad JSON, bad UTF-8, an empty file, a wrong shape, a time that is no finite unix
    time: every venue at 0 ("not compared for as long as anyone knows": the alert fires
    unless the venue is compared first), with the problem named; never an exception."""
    path = tmp_path / "c.json"
    path.write_bytes(raw)
    times, problem = load_times(path, ["simA", "simB"], 1000.0)
    assert times == {"simA": 0.0, "simB": 0.0}
    assert problem and "error" in problem


def test_a_file_that_cannot_be_read_starts_every_venue_at_zero(tmp_path: Path) -> None:
    """An I/O error (here: a directory where the file should be) is unreadable too."""
    path = tmp_path / "c.json"
    path.mkdir()
    times, problem = load_times(path, ["simA"], 1000.0)
    assert times == {"simA": 0.0} and problem is not None and "IsADirectoryError" in problem


# ------------------------------------------------------------------ when it is written


def test_written_once_per_lag_not_once_per_beat(tmp_path: Path) -> None:
    """A venue compared every beat (its time moving by a beat each time) is written at the
    start, then once its time is a lag past the file's; a clock stepped back by a lag is
    written too; `flush` writes the exact times, and nothing when the file has them."""
    f = ComparedFile(tmp_path / "c.json", LOG, lag_s=30.0)
    times = {"simA": 1000.0, "simB": 1000.0}
    f.changed(times)
    assert f.writes == 1
    for beat in range(1, 300):  # 29.9 s of beats
        times["simA"] = 1000.0 + beat * 0.1
        f.changed(times)
    assert f.writes == 1
    times["simA"] = 1030.0
    f.changed(times)
    assert f.writes == 2 and load_times(f.path, ["simA"], 2000.0)[0] == {"simA": 1030.0}
    times["simA"] = 990.0  # the wall clock stepped back
    f.changed(times)
    assert f.writes == 3
    times["simA"] = 991.5
    f.changed(times)
    assert f.writes == 3
    f.flush(times)
    f.flush(times)
    assert f.writes == 4 and load_times(f.path, ["simA"], 2000.0)[0] == {"simA": 991.5}


def test_a_failed_write_is_logged_and_tried_again_a_lag_later_not_every_beat(
    tmp_path: Path,
) -> None:
    """The runtime dir not writable (here: gone): one error per attempt, one attempt per
    lag (not per beat); once it can be written, it is."""
    now = [0.0]
    path = tmp_path / "gone" / "c.json"
    times = {"simA": 1000.0}
    with capture_logs() as logs:
        f = ComparedFile(path, structlog.get_logger(), lag_s=30.0, clock=lambda: now[0])
        for beat in range(100):
            now[0] = beat * 0.1
            f.changed(times)
    assert f.writes == 1
    assert [e["event"] for e in logs] == ["position_compared_save_failed"]
    path.parent.mkdir()
    now[0] = 30.0
    f.changed(times)
    assert f.writes == 2 and load_times(path, ["simA"], 2000.0)[0] == times


def test_a_kill_9_mid_write_leaves_a_readable_file(tmp_path: Path) -> None:
    """A process writing the file as fast as it can, killed with SIGKILL: the file reads
    (the old or the new times, never a torn file), and the temp files the kill left are
    removed at the next start."""
    path = tmp_path / "c.json"
    script = (
        "import sys, structlog\n"
        "from pathlib import Path\n"
        "from actors.position_heartbeat.compared_file import ComparedFile\n"
        "f = ComparedFile(Path(sys.argv[1]), structlog.get_logger(), lag_s=0.0)\n"
        "n = int(sys.argv[2])\n"
        "while True:\n"
        "    n += 1\n"
        "    f.changed({'simA': float(n), 'simB': float(n)})\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}

    def written() -> float:  # replaced whole: a reader never sees a torn file
        return float(json.loads(path.read_text())["venues"]["simA"]) if path.exists() else 0.0

    for start in (0, 10**6, 2 * 10**6):  # each round's writes above the last round's
        argv = [sys.executable, "-c", script, str(path), str(start)]
        proc = subprocess.Popen(argv, env=env)
        try:
            eventually(lambda s=start: written() >= s + 100)  # killed amid its writes
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        times, problem = load_times(path, ["simA", "simB"], 1e12)
        assert problem is None and times["simA"] == times["simB"] >= start + 100
        assert [p.name for p in tmp_path.iterdir()] == ["c.json"]


# ------------------------------------------------------------------ the actor across restarts


@pytest.fixture
def h() -> Iterator[Harness]:
    with beating(INTERVAL_S) as harness:
        yield harness


def start(h: Harness) -> HeartbeatActor:
    actor = h.start(HeartbeatActor, "heartbeat")
    assert isinstance(actor, HeartbeatActor)
    return actor


def test_a_stop_and_start_keeps_the_last_compared_time(h: Harness) -> None:
    """An operator's restart (a stop, then a new incarnation): a venue compared every beat
    starts the new incarnation at its last compared time, exactly, not at the restart."""
    actor = start(h)
    started = time.time()
    h.pump(lambda: (compared("simA") or 0) > started, what="simA compared")
    actor.on_stop()
    last = compared("simA")
    start(h)
    assert compared("simA") == last


def test_a_crash_keeps_the_last_compared_time_saved(h: Harness) -> None:
    """A crash (no stop: the file holds what the last write put there): the new incarnation
    starts each venue at the file's time, at most a lag older than its gauge was; with a
    lag of 0 (every compare written), exactly the last compared time."""
    actor = start(h)
    actor.gauges.file.lag_s = 0.0
    started = time.time()
    h.pump(lambda: (compared("simA") or 0) > started, what="simA compared")
    last = compared("simA")
    start(h)  # the old one closed without its on_stop
    assert compared("simA") == last


def test_a_heartbeat_compared_every_beat_writes_the_file_once(h: Harness) -> None:
    """Both venues compared every beat: the file is written at the start, not at each beat."""
    actor = start(h)
    h.pump(lambda: actor.beats >= 10, what="beats")
    assert (compared("simA") or 0) > 0 and actor.gauges.file.writes == 1


def test_a_venue_added_since_starts_at_its_first_watch_and_a_dropped_one_is_forgotten(
    h: Harness,
) -> None:
    """The file of an earlier incarnation names simA (never compared since `then`) and a
    venue the config no longer has: simA keeps `then`, simB (added to the config) starts at
    this start, and the file no longer names the dropped venue."""
    path = heartbeat_compared_path(h.cfg.runtime_path)
    then = time.time() - 120
    write(path, {"simA": then, "dropped": then})
    h.connectors["simA"].cut = ExecCut(connector_epoch=1, exec_seq=3, oms_epoch=None)
    before = time.time()
    actor = start(h)
    assert compared("simA") == then and (compared("simB") or 0) >= before
    h.pump(lambda: actor.beats >= 3, what="beats")
    assert compared("simA") == then  # answered, never compared
    assert set(json.loads(path.read_text())["venues"]) == {"simA", "simB"}


def test_a_corrupt_file_starts_every_venue_at_zero_is_logged_and_replaced(
    h: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    """Garbage in the file: the start logs `position_compared_state_unreadable` (no
    exception), every venue's gauge starts at 0 (the alert fires unless it is compared
    first), the file is rewritten readable, and a healthy venue is compared at its first
    beats; one that is not stays at 0."""
    path = heartbeat_compared_path(h.cfg.runtime_path)
    path.write_bytes(b"\x00\x00 torn")
    h.connectors["simB"].cut = ExecCut(connector_epoch=1, exec_seq=3, oms_epoch=None)
    actor = start(h)  # its logging is configured at its start: read what it printed
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    unreadable = [e for e in lines if e["event"] == "position_compared_state_unreadable"]
    assert len(unreadable) == 1 and unreadable[0]["level"] == "error"
    assert "Invalid JSON" in unreadable[0]["problem"]
    assert compared("simA") == 0 and compared("simB") == 0
    assert load_times(path, ["simA", "simB"], time.time()) == ({"simA": 0, "simB": 0}, None)
    h.pump(lambda: (compared("simA") or 0) > 0, what="simA compared")
    h.pump(lambda: actor.beats >= 3, what="beats")
    assert compared("simB") == 0
