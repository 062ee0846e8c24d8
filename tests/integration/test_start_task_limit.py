"""`run` under a task limit too low for the system (a cgroup v1 `pids` group of its own,
as systemd's `TasksMax=` or a container's pids limit): one line naming the limit, exit 2,
nothing left running. Before, the first thread the host refused ended the start: at the
log capture (pids.max 4) a traceback with exit 1, at the metrics server (8)
`supervisor_crashed` in the log file and exit 1, and between them libzmq aborted the
supervisor (SIGABRT) on its I/O thread (actors/supervisor/tasklimit.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from actors.supervisor.restart_policy import child_specs
from protocol import paths
from tests.helpers import SystemUnderTest, eventually, kill_and_reap

pytestmark = pytest.mark.integration

PIDS = Path("/sys/fs/cgroup/pids")


@contextmanager
def _pids_group(limit: int) -> Iterator[Path]:
    """A new pids group with `pids.max` = `limit`; whatever is left in it is killed at the
    end, and the group removed."""
    group = PIDS / f"tp-tasks-{os.getpid()}-{limit}"
    group.mkdir()
    try:
        (group / "pids.max").write_text(str(limit))
        yield group
    finally:
        kill_and_reap(int(p) for p in (group / "cgroup.procs").read_text().split())
        eventually(lambda: (group / "cgroup.procs").read_text() == "", 10.0)
        group.rmdir()


@pytest.mark.skipif(not os.access(PIDS, os.W_OK), reason="no writable cgroup v1 pids controller")
@pytest.mark.parametrize("limit", [4, 8])
def test_run_under_a_task_limit_too_low_exits_2_in_one_line(limit: int) -> None:
    """pids.max 4 and 8 (where the log capture's thread and the metrics server's were
    refused): exit 2, one stderr line naming the cgroup, the limit and what run needs, no
    traceback, no `supervisor_crashed` in the log file, and no process of it left in the
    group (the fork server forked before the check is gone with it)."""
    sut = SystemUnderTest(venues=("simA",), sim=False)  # no FIX logs expected of it
    try:
        with _pids_group(limit) as group:
            sut.launcher = ["sh", "-c", f'echo $$ > {group}/cgroup.procs && exec "$@"', "sh"]
            sut.start(wait_ready=False)
            assert sut.wait_exit(30.0) == 2, sut.describe()
            [line] = sut.stderr_lines
            assert line.startswith(
                f"tradepulse: environment error: the task limit of cgroup {group} is {limit}"
            ), line
            n = len(child_specs(sut.cfg))
            assert f"run needs {9 + 3 * n} (the supervisor 9, 3 for each of its {n} actors)" in line
            eventually(lambda: (group / "cgroup.procs").read_text() == "", 10.0)
        log = paths.logs_dir(sut.state_dir) / paths.LOG_FILE_NAME
        assert not log.exists() or "supervisor_crashed" not in log.read_text()
    finally:
        sut.destroy()
