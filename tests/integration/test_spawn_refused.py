"""A host that refuses forks for a while (its pid limit reached): the supervisor cannot
start an actor's next incarnation, and must not die of it. Before, the restart's spawn
failed, the replacement fork server could not be started either (`BlockingIOError`), and
the exception ended the supervisor's loop: a traceback, every actor stopped, the whole
system down for one transient limit. The supervisor and its fork server are put in a
cgroup v1 `pids` group of their own whose limit is what they have; the other actors keep
running outside it."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest

from tests.helpers import SystemUnderTest, eventually

pytestmark = pytest.mark.integration

PIDS = Path("/sys/fs/cgroup/pids")


@contextmanager
def _fork_limited(pids: list[int]) -> Iterator[Path]:
    """`pids` in a new pids group; yields the group (write `max` to its `pids.max` to lift
    the limit, which starts at what they hold now). Afterwards they are moved back."""
    group = PIDS / f"tp-spawn-{os.getpid()}"
    group.mkdir()
    try:
        for pid in pids:
            (group / "cgroup.procs").write_text(str(pid))
        (group / "pids.max").write_text((group / "pids.current").read_text().strip())
        yield group
    finally:
        for pid in (group / "cgroup.procs").read_text().split():
            try:
                (PIDS / "cgroup.procs").write_text(pid)
            except OSError:  # gone meanwhile
                pass
        group.rmdir()


def _fork_servers(sut: SystemUnderTest) -> list[psutil.Process]:
    assert sut.proc is not None
    actors = {pid for pid in sut.pids().values() if pid}
    return [c for c in psutil.Process(sut.proc.pid).children() if c.pid not in actors]


@pytest.mark.skipif(not os.access(PIDS, os.W_OK), reason="no writable cgroup v1 pids controller")
def test_a_restart_the_host_refuses_is_retried_and_the_supervisor_lives(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """kill -9 of the heartbeat while forks are refused: `spawn_failed` (the fork server's
    error, then `retry: backoff` when no new fork server can be started either), a restart
    counted as `spawn_failed`, the supervisor and every other actor still running, no fork
    server left over from the failures; once the limit is lifted the heartbeat is READY
    again on the backoff's next attempt, with one fork server."""
    sut = start_system()
    assert sut.proc is not None
    [server] = _fork_servers(sut)
    others = {k: v for k, v in sut.pids().items() if k != "heartbeat"}
    old_epoch = sut.epoch_of("heartbeat")
    with _fork_limited([sut.proc.pid, server.pid]) as group:
        since = sut.mark()
        os.kill(sut.pid_of("heartbeat"), signal.SIGKILL)
        failed = sut.wait_event(
            "spawn_failed", since=since, child="heartbeat", retry="backoff", timeout_s=10.0
        )
        assert "Resource temporarily unavailable" in failed["error"]
        assert sut.events("spawn_failed", since=since, retry="new spawner")
        assert sut.proc.poll() is None, sut.describe()
        assert {k: v for k, v in sut.pids().items() if k != "heartbeat"} == others
        assert _fork_servers(sut) == []  # the failed one discarded, none could start
        (group / "pids.max").write_text("max")  # (the metrics server needs a thread)
        ready = sut.wait_event("actor_ready", since=since, child="heartbeat", timeout_s=20.0)
    assert ready["child_epoch"] > old_epoch
    restarts = sut.metric(
        "tradepulse_actor_restarts_total", actor="heartbeat", reason="spawn_failed"
    )
    assert restarts is not None and restarts >= 1
    eventually(lambda: len(_fork_servers(sut)) == 1, 5.0)
    assert sut.stop() == 0
