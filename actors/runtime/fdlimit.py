"""The open-file limit of an actor process: raised at start so that peers' connections
cannot exhaust it.

libzmq aborts the whole process (an assertion) when accepting a connection fails with
EMFILE on an ipc listener: under a soft limit of 64, ~31 client connections killed the
OMS. Every actor raises its soft RLIMIT_NOFILE to the hard limit (capped at `TARGET`) before
it opens a socket; a hard limit below `MIN_HEADROOM` is reported (`fd_limit_low`).
"""

from __future__ import annotations

import resource

TARGET = 65_536  # more than any actor needs; beyond it a leak shows before the kernel's cap
MIN_HEADROOM = 1_024  # below it a few hundred connections could still exhaust the table
MIN_TO_RUN = 256  # `run` refuses a limit below it, not started to die at EMFILE (SIGABRT)


def raise_fd_limit() -> tuple[int, int]:
    """Raise the soft open-file limit towards the hard one; returns (soft, hard) after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = TARGET if hard == resource.RLIM_INFINITY else min(hard, TARGET)
    if soft == resource.RLIM_INFINITY or soft >= want:
        return soft, hard
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    except (ValueError, OSError):  # a hard limit the kernel refuses (nr_open): keep ours
        return soft, hard
    return want, hard
