"""`run` under the host's task limit (actors/supervisor/tasklimit.py): which pids cgroups
are read, and a thread refused at start is one error with the log capture's fds put back.
The real limit, end to end: tests/integration/test_start_task_limit.py."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from actors.supervisor.logfiles import LogCapture, RotatingFile
from actors.supervisor.tasklimit import ThreadsRefused, _pids_dirs, threads_refused_raise

V1 = (
    "34 25 0:29 / /sys/fs/cgroup/pids rw,relatime shared:15 - cgroup cgroup rw,pids\n"
    "35 25 0:30 / /sys/fs/cgroup/memory rw,relatime shared:16 - cgroup cgroup rw,memory\n"
)
V2 = "30 25 0:26 / /sys/fs/cgroup rw,nosuid shared:9 - cgroup2 cgroup2 rw,nsdelegate\n"


def test_the_pids_groups_are_the_processs_own_and_its_ancestors() -> None:
    """v1: the `pids` hierarchy's dirs from the process's group up to the mount; v2: the
    unified one's; other controllers and hierarchies not mounted are left out."""
    v1 = _pids_dirs("9:memory:/a\n8:pids:/system.slice/tp.service\n", V1)
    assert v1 == [
        Path("/sys/fs/cgroup/pids/system.slice/tp.service"),
        Path("/sys/fs/cgroup/pids/system.slice"),
        Path("/sys/fs/cgroup/pids"),
    ]
    assert _pids_dirs("0::/\n", V2) == [Path("/sys/fs/cgroup")]
    assert _pids_dirs("0::/k/pod1\n", V2)[0] == Path("/sys/fs/cgroup/k/pod1")
    assert _pids_dirs("0::/k/pod1\n", V1) == []  # v2 not mounted: nothing to read


def _refuse(self: threading.Thread) -> None:
    raise RuntimeError("can't start new thread")


def test_a_refused_capture_thread_puts_fd_1_and_2_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The log capture's pipes were under fd 1 and 2 when its thread was refused, with no
    reader: the error that ended `run` went into them, unseen (exit 1, nothing printed).
    Now: ThreadsRefused, and fd 1 and 2 are what they were."""
    before = [os.fstat(fd).st_ino for fd in (1, 2)]
    capture = LogCapture(RotatingFile(tmp_path / "t.log", 1 << 20, 2), count_dropped=False)
    monkeypatch.setattr(threading.Thread, "start", _refuse)
    with pytest.raises(ThreadsRefused, match=r"cannot start a thread \(the log file's capture\)"):
        capture.start()
    monkeypatch.undo()
    assert [os.fstat(fd).st_ino for fd in (1, 2)] == before


def test_only_a_refused_thread_is_translated() -> None:
    with pytest.raises(RuntimeError, match="other"), threads_refused_raise("x"):
        raise RuntimeError("other")
