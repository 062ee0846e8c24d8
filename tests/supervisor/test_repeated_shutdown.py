"""An operator repeating `tradepulse shutdown` while the supervisor stops its actors.

Seen: the supervisor blocked in `wait_escalating` for each actor's stop and read nothing
from its control socket meanwhile, so a second `shutdown` (or a `status`) sent during a
long stop waited out the CLI's 10 s deadline and said "no answer", exit 3. The control
socket is now served during the stop (`daemon._stop_and_wait`)."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

import pytest

from tests.helpers import SystemUnderTest, process_alive

pytestmark = pytest.mark.integration


def test_a_second_shutdown_during_a_long_stop_is_answered_at_once(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """The first actor stopped is frozen (SIGSTOP: it cannot read its STOP), so the stop
    waits out its 60 s grace. Meanwhile a second `supervisor.py shutdown` answers "already
    shutting down", exit 0 (idempotent); `status` shows the frozen actor `stopping`; a
    command that needs a running system is refused, saying why. Once the actor runs again
    it reads its STOP: the supervisor exits 0 and leaves no process behind."""
    sut = start_system(
        overrides={"supervisor": {"shutdown_timeout_s": 60.0, "hang_missed_intervals": 1000}}
    )
    status = sut.status()
    pids = [a["pid"] for a in status["actors"]]
    first_stopped = status["actors"][-1]["id"]  # shutdown stops in reverse start order
    frozen = sut.pid_of(first_stopped)
    os.kill(frozen, signal.SIGSTOP)
    try:
        first = sut.control("shutdown")
        assert (first.status, first.reason) == ("ok", "shutting down"), first
        second = sut.cli("shutdown")
        assert second.returncode == 0, (second.stdout, second.stderr)
        assert "already shutting down" in second.stdout
        assert sut.actor(first_stopped)["state"] == "stopping"
        refused = sut.control("restart", actor=first_stopped)
        assert refused.status == "error"
        assert refused.reason == "the supervisor is shutting down: restart not done"
    finally:
        os.kill(frozen, signal.SIGCONT)
    assert sut.wait_exit(timeout_s=30.0) == 0
    assert not sut.events("actor_stop_escalated")  # it stopped by itself, once it ran
    assert len(sut.events("shutdown_requested")) == 1
    assert not [p for p in pids if process_alive(p)]
