"""`run` under a task limit too low for the system (a cgroup v1 `pids` group of its own,
as systemd's `TasksMax=` or a container's pids limit): one line naming the limit, exit 2,
nothing left running. Before, the first thread the host refused ended the start: at the
log capture (pids.max 4) a traceback with exit 1, at the metrics server (8)
`supervisor_crashed` in the log file and exit 1, and between them libzmq aborted the
supervisor (SIGABRT) on its I/O thread (actors/supervisor/tasklimit.py)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from actors.oms.order_archive import ARCHIVE_NAME, OrderArchive
from actors.supervisor.restart_policy import child_specs
from protocol import paths
from protocol.messages import OrderStatus
from tests.helpers import SystemUnderTest, eventually, kill_and_reap
from tests.integration.oms_support import overrides
from tests.system_ops import VENUE, client, submit_when_open

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
            need = 9 + 3 * n + 2
            assert (
                f"run needs {need} (the supervisor 9, 3 for each of its {n} actors, 2 more for"
                " the oms)"
            ) in line
            eventually(lambda: (group / "cgroup.procs").read_text() == "", 10.0)
        log = paths.logs_dir(sut.state_dir) / paths.LOG_FILE_NAME
        assert not log.exists() or "supervisor_crashed" not in log.read_text()
    finally:
        sut.destroy()


def _in_group(sut: SystemUnderTest, group: Path) -> None:
    sut.launcher = ["sh", "-c", f'echo $$ > {group}/cgroup.procs && exec "$@"', "sh"]


def _archived(state_dir: Path, coid: str) -> bool:
    archive = OrderArchive(paths.oms_dir(state_dir) / ARCHIVE_NAME)
    try:
        return archive.get(coid) is not None
    finally:
        archive.close()


@pytest.mark.skipif(not os.access(PIDS, os.W_OK), reason="no writable cgroup v1 pids controller")
def test_the_task_limit_run_says_it_needs_is_enough_to_archive_orders() -> None:
    """Under exactly the task limit `run`'s line says it needs, the system starts and the
    OMS archives terminal orders. The count left out the OMS's archive threads: at that
    limit its writer was refused at the first order to archive
    (`order_archive_write_failed: can't start new thread`, every retry, the orders held in
    memory), on a host the check had passed."""
    sut = SystemUnderTest(venues=("simA",), overrides=overrides(oms={"recent_terminal_orders": 1}))
    try:
        with _pids_group(4) as group:  # the check's own word on what run needs
            _in_group(sut, group)
            sut.start(wait_ready=False)
            assert sut.wait_exit(30.0) == 2, sut.describe()
            found = re.search(r"run needs (\d+)", sut.stderr_lines[0])
            assert found is not None, sut.stderr_lines
        sut.proc = None
        with _pids_group(int(found[1])) as group:
            _in_group(sut, group)
            sut.start(timeout_s=40.0)
            with client(sut) as c:
                for i in range(3):
                    submit_when_open(c, VENUE, qty="1", price=None, client_order_id=f"t-{i}")
                for i in range(3):
                    c.wait_for_status(f"t-{i}", {OrderStatus.FILLED})
            eventually(lambda: _archived(sut.state_dir, "t-0"), 20.0, message=sut.describe)
            failed = [ln for ln in sut.lines if ln.get("event") == "order_archive_write_failed"]
            assert failed == [], failed
    finally:
        sut.destroy()
