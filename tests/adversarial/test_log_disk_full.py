"""The log file's filesystem fills up (a real 8 MiB tmpfs over `state/logs` only, root):
the lines the file cannot take are dropped and counted, the console output (stdout,
stderr) goes on, the supervisor and its actors keep running, and the file resumes once
space returns (actors/supervisor/logfiles.py)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from protocol import paths
from tests.adversarial.diskfull import fill, small_tmpfs
from tests.helpers import SystemUnderTest, eventually


def _restart_risk(sut: SystemUnderTest) -> int:
    """Some log lines from several processes (risk exits, is spawned, becomes ready)."""
    old = sut.pid_of("risk")
    reply = sut.control("restart", actor="risk")
    assert reply.status == "ok", reply
    eventually(lambda: sut.actor("risk")["state"] == "running" and sut.pid_of("risk") != old)
    return sut.epoch_of("risk")


def _dropped(sut: SystemUnderTest) -> float:
    return sut.metric("tradepulse_log_lines_dropped_total") or 0.0


def test_a_full_disk_under_the_log_file_drops_and_counts_lines_and_nothing_else_stops() -> None:
    """Filled while the system runs: risk's restarts are still on stdout, not in the file
    (once the last page's slack is gone it does not grow), the loss is counted in
    `tradepulse_log_lines_dropped_total` and said on stderr (`log_file_write_failed`),
    nothing else exits; once space returns the next restart is in the file again."""
    root = Path(tempfile.mkdtemp(prefix="tp", dir="/tmp"))
    sut = SystemUnderTest(venues=("simA",), root=root)
    try:
        with small_tmpfs(paths.logs_dir(root / "state")) as logs:
            try:
                _run(sut, logs)
            finally:
                sut.destroy()  # before the unmount
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _run(sut: SystemUnderTest, logs: Path) -> None:
    sut.start()
    log_file = logs / paths.LOG_FILE_NAME
    # the file is written by the supervisor's log capture, which may trail its stdout
    eventually(lambda: b'"system_ready"' in log_file.read_bytes(), 10.0)
    filler = fill(logs)
    since = sut.mark()
    epoch = _restart_risk(sut)
    sut.wait_event("actor_ready", since=since, child="risk", child_epoch=epoch)  # stdout works
    eventually(lambda: _dropped(sut) > 0, 10.0, message="no dropped lines counted")
    eventually(lambda: any("log_file_write_failed" in line for line in sut.stderr_lines), 10.0)
    size, dropped = log_file.stat().st_size, _dropped(sut)  # the last page's slack is used up
    epoch = _restart_risk(sut)
    sut.wait_event("actor_ready", since=since, child="risk", child_epoch=epoch)
    eventually(lambda: _dropped(sut) > dropped, 10.0)
    assert log_file.stat().st_size == size
    assert f'"child_epoch": {epoch}'.encode() not in log_file.read_bytes()
    assert sut.status()["actors"]  # the control plane answers
    assert not sut.events("actor_exited", since=since, child="oms")
    filler.unlink()  # space returns: the file takes lines again
    epoch = _restart_risk(sut)
    eventually(lambda: f'"child_epoch": {epoch}'.encode() in log_file.read_bytes(), 10.0)
