"""Ending an actor process: signal its process group, wait for it with escalation.

Every actor runs in its own session and process group (ExecSpawner's new session, the fork
server's setsid), so one `killpg` reaches whatever it started too.
"""

from __future__ import annotations

import math
import os
import select
import signal
from collections.abc import Callable


def kill_group(pid: int | None, sig: int = signal.SIGKILL) -> None:
    """Signal the process group led by `pid`; a group already gone is fine."""
    if pid is None:
        return
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def wait_escalating(
    pid: int, grace_s: float, on_escalate: Callable[[signal.Signals], None]
) -> int | None:
    """Wait `grace_s` for `pid` (already asked to stop) to exit, then SIGTERM its group and
    wait 1 s, then SIGKILL it and wait 5 s; reap it. Returns its exit code (negative: the
    signal), or None if it was not our child to reap. SIGKILLs the group at the end, for
    anything the actor left in it."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return None
    try:
        # poll, not select: the supervisor may hold more than 1,023 fds (operator
        # connections), and select() refuses a pidfd past that (ValueError)
        exited = select.poll()
        exited.register(pidfd, select.POLLIN)
        for sig, wait_s in ((None, grace_s), (signal.SIGTERM, 1.0), (signal.SIGKILL, 5.0)):
            if sig is not None:
                on_escalate(sig)
                kill_group(pid, sig)
            if exited.poll(math.ceil(wait_s * 1000)):
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
