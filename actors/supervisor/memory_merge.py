"""Kernel samepage merging of the forked actors (`[supervisor] memory_merge`, off by default).

An idle actor's private memory is mostly pages it copied from the fork server only to write
a reference count, many of them back to the value they had: pages identical to the fork
server's, or to another actor's of the same kind (16 venue sims run the same code). Linux's
KSM merges identical pages of processes that opted in (prctl PR_SET_MEMORY_MERGE, Linux >=
6.4; inherited across fork) once the host runs its scanner (`/sys/kernel/mm/ksm/run` = 1).
Measured with 16 idle venues, 40 s after the start with ksmd scanning 2,000 pages per 20 ms
(its default, 100, needs minutes to get there): PSS per venue (connector + sim) 17.0 -> 8.0
MiB, the whole system 348 -> 193 MiB (`TP_BENCH_IDLE_MEMORY_MERGE=1`, tests/bench/idle.py).

Off by default, because it costs the host's scanner CPU (ksmd: not in any of our processes'
figures) and because merged pages make page-deduplication timing side channels possible
between every opted-in process on the host (one that can guess a whole page of ours could
learn whether it exists). An operator enables it on a host of their own.
"""

from __future__ import annotations

import ctypes

PR_SET_MEMORY_MERGE = 67
PR_GET_MEMORY_MERGE = 68


def _prctl(option: int, arg: int = 0) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    return int(libc.prctl(option, arg, 0, 0, 0))


def set_memory_merge(on: bool) -> bool:
    """Opt this process (and every process it forks from now on) in or out of KSM. False
    where the kernel cannot (older than 6.4, not Linux)."""
    try:
        return _prctl(PR_SET_MEMORY_MERGE, int(on)) == 0
    except (OSError, AttributeError):
        return False


def memory_merge() -> bool | None:
    """Whether this process is opted in; None where the kernel cannot tell."""
    try:
        answer = _prctl(PR_GET_MEMORY_MERGE)
    except (OSError, AttributeError):
        return None
    return None if answer < 0 else answer == 1
