"""An actor built in a process that goes on (the tests' harness, a tool) gives back what
it holds when closed: its sockets and its signal pipe (`Actor.close`). Before it, each
in-process actor left its two pipe fds open for the rest of the process: a pytest worker
running the risk actor's tests held ~60 more fds at their end."""

from __future__ import annotations

import os

from actors.position_heartbeat.actor import HeartbeatActor
from tests.actor_stubs import Harness

ACTORS = 10


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_closed_actors_leave_no_fd_open() -> None:
    h = Harness()
    try:
        h.start(HeartbeatActor, "heartbeat")  # the harness's own fds, opened once
        before = _open_fds()
        for _ in range(ACTORS):  # each start closes the actor it replaces
            h.start(HeartbeatActor, "heartbeat")
        # without `close`: 2 fds more an actor (20); a stray fd of another thread: 1 or 2
        assert _open_fds() - before < ACTORS
    finally:
        h.close()
