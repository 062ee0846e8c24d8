"""What the log file, the FIX message log and the post-mortem bundle hold when things go
wrong: a rotation while a bundle reads, a line torn by the last run, a supervisor crash, a
secret in RawData(96) or in a local variable of a failing frame."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from actors.connector.fix import msgview
from actors.connector.fix.msglog import LOG_NAME, MessageLog, redact
from actors.supervisor import postmortem
from actors.supervisor.logfiles import RotatingFile, lines_between, utc_stamp
from protocol import paths
from protocol.config import SystemConfig
from tests.helpers import REPO_ROOT

_SECRET = "S3CRET-RAW-local"


def _line(ts_s: float, event: str) -> bytes:
    return json.dumps({"event": event, "ts": utc_stamp(ts_s)}).encode()


def test_a_rotation_while_the_bundle_reads_loses_no_log_file(tmp_path: Path) -> None:
    """The capture rotates (current -> .1 -> .2, a new current) after the bundle has read
    the oldest file: the lines of the file that was current when it started still come
    (every file is opened at the start), and none twice."""
    (tmp_path / "tradepulse.log.1").write_bytes(_line(100, "old1") + b"\n")
    (tmp_path / "tradepulse.log").write_bytes(_line(101, "cur1") + b"\n" + _line(102, "cur2"))
    lines = lines_between(tmp_path, 0, 1e12)
    first = next(lines)
    os.replace(tmp_path / "tradepulse.log.1", tmp_path / "tradepulse.log.2")
    os.replace(tmp_path / "tradepulse.log", tmp_path / "tradepulse.log.1")
    (tmp_path / "tradepulse.log").write_bytes(_line(103, "new1") + b"\n")
    events = [json.loads(x)["event"] for x in [first, *lines]]
    assert events == ["old1", "cur1", "cur2"]


def test_a_rotation_while_the_fix_log_is_read_loses_no_file(tmp_path: Path) -> None:
    """The same for the FIX message log (`fix log`, the bundle's fix/ part)."""
    one = b"2026-12-04T00:00:01.000000Z IN - 8=FIX.4.4\x0135=0\x0158=one\x01\n"
    two = b"2026-12-04T00:00:02.000000Z IN - 8=FIX.4.4\x0135=0\x0158=two\x01\n"
    (tmp_path / f"{LOG_NAME}.1").write_bytes(one)
    (tmp_path / LOG_NAME).write_bytes(two)
    entries = msgview.entries(tmp_path)
    first = next(entries)
    os.replace(tmp_path / f"{LOG_NAME}.1", tmp_path / f"{LOG_NAME}.2")
    os.replace(tmp_path / LOG_NAME, tmp_path / f"{LOG_NAME}.1")
    (tmp_path / LOG_NAME).write_bytes(b"")
    texts = [e.raw.split(b"\x0158=")[1] for e in [first, *entries]]
    assert texts == [b"one\x01", b"two\x01"]


def test_a_log_file_that_is_a_fifo_is_refused_by_name_not_waited_on(tmp_path: Path) -> None:
    """A FIFO among the FIX message log's files hung `fix log` (and the bundle, among the
    log files) in open() for good: an OSError naming it now, at once."""
    (tmp_path / LOG_NAME).write_bytes(b"")
    os.mkfifo(tmp_path / f"{LOG_NAME}.1")
    with pytest.raises(OSError) as info:
        list(msgview.entries(tmp_path))
    assert info.value.filename == str(tmp_path / f"{LOG_NAME}.1")
    assert info.value.strerror == "not a regular file (a pipe, a FIFO or a device)"


def test_the_first_line_after_a_restart_is_not_glued_to_a_torn_last_line(
    tmp_path: Path,
) -> None:
    """A file whose last line was cut (kill -9, disk full) without its newline: the next
    run's first line starts on a line of its own."""
    path = tmp_path / "tradepulse.log"
    path.write_bytes(_line(100, "a") + b"\n" + b'{"event": "cut", "ts": "2026')
    log = RotatingFile(path, 1 << 20, 3)
    log.write(_line(200, "after_restart") + b"\n")
    log.close()
    lines = path.read_bytes().splitlines()
    assert len(lines) == 3 and json.loads(lines[2])["event"] == "after_restart"
    again = RotatingFile(path, 1 << 20, 3)  # a file ending in a newline gets no blank line
    again.write(_line(300, "third_run") + b"\n")
    again.close()
    assert len(path.read_bytes().splitlines()) == 4


def test_rawdata_is_redacted_in_the_fix_message_log() -> None:
    """RawData(96) (a logon token) joins Username, Password and NewPassword."""
    raw = b"8=FIX.4.4\x0135=A\x0195=10\x0196=" + _SECRET.encode() + b"\x01554=pw\x0110=000\x01"
    assert redact(raw) == b"8=FIX.4.4\x0135=A\x0195=10\x0196=***\x01554=***\x0110=000\x01"


def test_the_bundle_redacts_the_secret_logon_tags_again(tmp_path: Path) -> None:
    """A FIX log written before RawData was redacted (or by another writer): the bundle's
    fix/ part still shows no RawData value (`SECRET_FIX_TAGS` applied again), and a
    MessageLog writes none to the disk. (The venue's Logon, IN: the session's
    conformance scan checks only what we send.)"""
    cfg = SystemConfig.model_validate(
        {
            "system": {"state_dir": str(tmp_path / "s"), "runtime_dir": str(tmp_path / "r")},
            "venues": [{"name": "simA"}],
        }
    )
    directory = paths.fix_message_log_dir(cfg.state_path, "simA")
    directory.mkdir(parents=True)
    log = MessageLog(directory)
    log.record("IN", b"8=FIX.4.4\x019=30\x0135=A\x0196=" + _SECRET.encode() + b"\x0110=000\x01")
    log.flush()
    assert _SECRET.encode() not in (directory / LOG_NAME).read_bytes()
    stamp = utc_stamp(time.time()).replace("Z", ".000000Z")[:26] + "Z"
    old = f"{stamp} IN - 8=FIX.4.4\x019=30\x0135=A\x0196={_SECRET}\x0110=000\x01\n"
    with open(directory / LOG_NAME, "a") as fh:
        fh.write(old)
    out = tmp_path / "b.tar.gz"
    now = time.time()
    postmortem.write_bundle(cfg, out, now - 60, now + 60, 1 << 20, timeout_s=0.2)
    with tarfile.open(out) as tar:
        member = tar.extractfile("fix/simA.log")
        assert member is not None
        fix = member.read()
    assert fix.count(b"96=***") == 2 and _SECRET.encode() not in fix


_EXCEPTION_SCRIPT = textwrap.dedent(
    """
    import structlog
    from actors.runtime.logs import configure_logging

    configure_logging()

    def logon(password):
        raise ValueError("venue refused the logon")

    try:
        logon("%s")
    except ValueError:
        structlog.get_logger().exception("logon_failed")
    """
)


def test_a_logged_exception_shows_its_frames_never_their_locals() -> None:
    """`log.exception` renders the traceback as JSON (frames, the error), without the
    values of the frames' local variables (a password argument)."""
    proc = subprocess.run(
        [sys.executable, "-c", _EXCEPTION_SCRIPT % _SECRET],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    (event,) = [json.loads(line) for line in proc.stdout.splitlines()]
    assert event["event"] == "logon_failed"
    (exc,) = event["exception"]
    assert exc["exc_value"] == "venue refused the logon"
    assert [f["name"] for f in exc["frames"]][-1] == "logon"
    assert _SECRET not in proc.stdout


_CRASH_SCRIPT = textwrap.dedent(
    """
    import sys
    from actors.supervisor.logfiles import capture_logs
    from protocol.config import SystemConfig

    cfg = SystemConfig.model_validate(
        {"system": {"state_dir": sys.argv[1]}, "venues": [{"name": "simA"}]}
    )
    with capture_logs(cfg):
        raise RuntimeError("the supervisor broke")
    """
)


def _captured_run(
    script: str, state: Path
) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]:
    """`script` run with `state` as its state dir; what it printed and its log file's events."""
    proc = subprocess.run(
        [sys.executable, "-c", script, str(state)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    log = paths.logs_dir(state) / paths.LOG_FILE_NAME
    return proc, [json.loads(line) for line in log.read_text().splitlines()]


def test_a_supervisor_crash_puts_its_traceback_in_the_log_file(tmp_path: Path) -> None:
    """An exception out of the captured run: the log file has `supervisor_crashed` with
    the traceback (Python's own print comes after the capture is closed), and the
    process still fails with the traceback on its stderr."""
    proc, events = _captured_run(_CRASH_SCRIPT, tmp_path / "state")
    assert proc.returncode == 1 and "RuntimeError: the supervisor broke" in proc.stderr
    crashed = [e for e in events if e["event"] == "supervisor_crashed"]
    assert len(crashed) == 1, events
    assert "RuntimeError: the supervisor broke" in crashed[0]["traceback"]
    assert crashed[0]["level"] == "critical" and crashed[0]["ts"]


def test_a_config_error_out_of_the_captured_run_is_a_refused_start_not_a_crash(
    tmp_path: Path,
) -> None:
    """The metrics port taken between `run`'s check and the bind (a ConfigError inside the
    capture): `run` says it in one line (exit 2); the log file has `start_refused` with the
    error, not a `supervisor_crashed` traceback (found by review)."""
    script = _CRASH_SCRIPT.replace(
        'raise RuntimeError("the supervisor broke")',
        'raise ConfigError("metrics.port", "cannot listen on 127.0.0.1:9464: taken")',
    ).replace("import sys\n", "import sys\nfrom protocol.exceptions import ConfigError\n")
    proc, events = _captured_run(script, tmp_path / "state")
    assert proc.returncode == 1 and "ConfigError" in proc.stderr  # the script's own exit
    assert not [e for e in events if e["event"] == "supervisor_crashed"], events
    (refused,) = [e for e in events if e["event"] == "start_refused"]
    assert "metrics.port" in refused["error"] and "taken" in refused["error"]


def test_a_rotation_between_listing_and_opening_makes_the_reader_list_again(
    tmp_path: Path,
) -> None:
    """The writer rotates after the files were listed, before they are opened: the
    handles cover every file of the new listing (each once), oldest first."""
    from actors.runtime.rotated import open_consistent

    (tmp_path / "f.1").write_bytes(b"a")
    (tmp_path / "f").write_bytes(b"b")
    calls = 0

    def listing() -> list[Path]:
        nonlocal calls
        calls += 1
        found = [p for p in (tmp_path / "f.2", tmp_path / "f.1", tmp_path / "f") if p.exists()]
        if calls == 1:  # the rotation lands just after the first listing
            os.replace(tmp_path / "f.1", tmp_path / "f.2")
            os.replace(tmp_path / "f", tmp_path / "f.1")
            (tmp_path / "f").write_bytes(b"c")
        return found

    handles = open_consistent(listing)
    try:
        assert [fh.read() for fh in handles] == [b"a", b"b", b"c"]
    finally:
        for fh in handles:
            fh.close()


def test_fix_log_follow_loses_no_file_to_a_rotation_at_its_start(tmp_path: Path) -> None:
    """`fix log --follow`: a rotation right after the first (oldest) entry was shown
    still shows the file that was current, then the new one."""
    line = b"2026-12-04T00:00:0%d.000000Z IN - 8=FIX.4.4\x0135=0\x0158=%s\x01\n"
    (tmp_path / f"{LOG_NAME}.1").write_bytes(line % (1, b"one"))
    (tmp_path / LOG_NAME).write_bytes(line % (2, b"two"))
    texts: list[bytes] = []
    deadline = time.monotonic() + 30.0
    follow = msgview.follow(
        tmp_path, stop=lambda: len(texts) >= 3 or time.monotonic() > deadline, poll_s=0.01
    )
    for entry in follow:
        texts.append(entry.raw.split(b"\x0158=")[1].rstrip(b"\x01"))
        if len(texts) == 1:
            os.replace(tmp_path / f"{LOG_NAME}.1", tmp_path / f"{LOG_NAME}.2")
            os.replace(tmp_path / LOG_NAME, tmp_path / f"{LOG_NAME}.1")
            (tmp_path / LOG_NAME).write_bytes(line % (3, b"three"))
    assert texts == [b"one", b"two", b"three"]
