"""Who answered on the control socket (`protocol.control_binder`): the decision, on this
process and on processes that have exited."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from protocol.control_binder import (
    Identity,
    binder_pid,
    identity_path,
    read_identity,
    refusal,
    start_ticks,
    write_identity,
)

ME = f"localhost:{os.getuid()}:{os.getgid()}:{os.getpid()}"


def _exited() -> Identity:
    proc = subprocess.Popen(["sleep", "60"])
    ticks = start_ticks(proc.pid)
    assert ticks is not None
    proc.kill()
    proc.wait(5)
    return Identity(proc.pid, ticks)


def test_the_recorded_supervisor_is_taken_and_the_record_round_trips(tmp_path: Path) -> None:
    """What `write_identity` records is read back and names this process, whose answer
    is taken; the file is replaced whole (no temporary left beside it)."""
    write_identity(tmp_path)
    me = read_identity(tmp_path)
    assert me == Identity(os.getpid(), start_ticks(os.getpid()) or -1)
    assert refusal(me, ME, tmp_path) is None
    assert [p.name for p in tmp_path.iterdir()] == [identity_path(tmp_path).name]


def test_a_pid_that_came_round_is_not_the_supervisor(tmp_path: Path) -> None:
    """The binder has the recorded pid but started at another time (the supervisor died,
    its pid given to another process): refused."""
    me = Identity(os.getpid(), (start_ticks(os.getpid()) or 0) + 1)
    why = refusal(me, ME, tmp_path)
    assert why == (
        f"the control socket is bound by pid {os.getpid()}, not the supervisor that had that"
        " pid (it has exited): refusing its answer"
    )


def test_another_binder_is_named_with_the_supervisor_alive_or_exited(tmp_path: Path) -> None:
    alive = Identity(1, start_ticks(1) or 0)
    assert refusal(alive, ME, tmp_path) == (
        f"the control socket is bound by pid {os.getpid()}, not the supervisor (pid 1):"
        " refusing its answer"
    )
    gone = _exited()
    assert f"(pid {gone.pid}, which has exited)" in (refusal(gone, ME, tmp_path) or "")


def test_no_record_or_no_credentials_is_refused(tmp_path: Path) -> None:
    assert "no supervisor recorded itself in" in (refusal(None, ME, tmp_path) or "")
    me = Identity(os.getpid(), start_ticks(os.getpid()) or 0)
    for address in ("", "127.0.0.1", "localhost:0:0:x"):
        assert "has no peer credentials" in (refusal(me, address, tmp_path) or "")
        assert binder_pid(address) is None
    # pid 0: the kernel's word for a binder outside the reader's pid namespace
    assert "outside this CLI's pid namespace" in (refusal(me, "localhost:0:0:0", tmp_path) or "")
    assert binder_pid("localhost:0:0:0") is None


def test_a_record_that_is_not_one_reads_as_none(tmp_path: Path) -> None:
    for text in (
        "",
        "123\n",
        "[]",
        '{"pid": "1", "start_ticks": 2}',
        '{"pid": 0, "start_ticks": 2}',
    ):
        identity_path(tmp_path).write_text(text)
        assert read_identity(tmp_path) is None, text
