"""Process hardening against the other processes of the same uid: `make_undumpable`.

Every process of the system (the supervisor, the fork server, every actor, exec-spawned or
forked) calls it first. A non-dumpable process's /proc/<pid>/fd, /proc/<pid>/environ (a
connector's venue password), /proc/<pid>/mem and ptrace are closed to every other non-root
process, same uid included: without it a same-uid process could reopen the fork server's
request pipe through /proc/<forkserver>/fd/N and have it spawn a "child of the supervisor"
with arguments of its choosing (issue 15, section 4). What other processes may still read
of it - /proc/<pid>/status, stat, statm (the supervisor's PPid check, RSS and CPU) - stays
readable. The flag survives fork and is reset by execve, hence a call in every entry point.
"""

from __future__ import annotations

import ctypes
import signal
from collections.abc import Callable
from typing import cast

PR_GET_DUMPABLE = 3
PR_SET_DUMPABLE = 4
PR_SET_PDEATHSIG = 1


def _libc_prctl() -> Callable[..., int] | None:
    """libc's prctl, or None where there is none (not Linux)."""
    try:
        return cast("Callable[..., int]", ctypes.CDLL(None, use_errno=True).prctl)
    except (OSError, AttributeError):
        return None


# looked up once, at import (in the fork server for a forked actor): a `CDLL` made in every
# actor (a new ctypes class and function pointer, and the ctypes code that makes them) was
# ~100 KiB of private memory in each (issue 16, idle memory)
_PRCTL = _libc_prctl()


def _prctl(option: int, arg: int = 0) -> int:
    if _PRCTL is None:
        raise OSError("prctl: not available on this platform")
    return int(_PRCTL(option, arg, 0, 0, 0))


def make_undumpable() -> bool:
    """Set this process non-dumpable (prctl PR_SET_DUMPABLE 0). False where the platform
    has no prctl (not Linux): the uid boundary alone remains."""
    try:
        return _prctl(PR_SET_DUMPABLE, 0) == 0
    except (OSError, AttributeError):
        return False


def is_dumpable() -> bool:
    """This process's dumpable flag (True where it cannot be read)."""
    try:
        return _prctl(PR_GET_DUMPABLE) != 0
    except (OSError, AttributeError):
        return True


def set_parent_death_signal(sig: int = signal.SIGKILL) -> None:
    """Ask the kernel to kill this process when its parent dies (Linux)."""
    try:
        _prctl(PR_SET_PDEATHSIG, int(sig))
    except (OSError, AttributeError):  # not Linux: the parent check in the loop remains
        pass
