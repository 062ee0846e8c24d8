"""Ending an actor process: signal its process group, wait for it with escalation.

Every actor runs in its own session and process group (ExecSpawner's new session, the fork
server's setsid), so one `killpg` reaches whatever it started too.
"""

from __future__ import annotations

import math
import os
import signal
import time
from collections.abc import Callable

import zmq

# a socket to keep serving while waiting, and what reads it (the control socket: an
# operator's second `shutdown` during a long stop is answered, not left to time out)
Serving = tuple[zmq.Socket[bytes], Callable[[], None]]


def kill_group(pid: int | None, sig: int = signal.SIGKILL) -> None:
    """Signal the process group led by `pid`; a group already gone is fine."""
    if pid is None:
        return
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def wait_escalating(
    pid: int,
    grace_s: float,
    on_escalate: Callable[[signal.Signals], None],
    serve: Serving | None = None,
) -> int | None:
    """Wait `grace_s` for `pid` (already asked to stop) to exit, then SIGTERM its group and
    wait 1 s, then SIGKILL it and wait 5 s; reap it. Returns its exit code (negative: the
    signal), or None if it was not our child to reap. SIGKILLs the group at the end, for
    anything the actor left in it. `serve`: a socket read whenever it is readable meanwhile."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return None
    try:
        # zmq_poll (poll(2) beneath), not select: the supervisor may hold more than 1,023
        # fds (operator connections), and select() refuses a pidfd past that (ValueError)
        poller = zmq.Poller()
        poller.register(pidfd, zmq.POLLIN)
        if serve is not None:
            poller.register(serve[0], zmq.POLLIN)
        for sig, wait_s in ((None, grace_s), (signal.SIGTERM, 1.0), (signal.SIGKILL, 5.0)):
            if sig is not None:
                on_escalate(sig)
                kill_group(pid, sig)
            if _exited_within(poller, pidfd, wait_s, serve):
                break
    finally:
        os.close(pidfd)
    code = None
    try:
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
    except ChildProcessError:
        pass
    kill_group(pid)
    return code


def _exited_within(poller: zmq.Poller, pidfd: int, wait_s: float, serve: Serving | None) -> bool:
    """Poll until the pidfd is readable (True) or `wait_s` is over (False), serving meanwhile."""
    deadline = time.monotonic() + wait_s
    while True:
        left_ms = max(0, math.ceil((deadline - time.monotonic()) * 1000))
        ready = dict(poller.poll(left_ms))
        if pidfd in ready:
            return True
        if serve is not None and serve[0] in ready:
            serve[1]()
        if left_ms == 0:  # polled once at least, even for a zero wait
            return False
