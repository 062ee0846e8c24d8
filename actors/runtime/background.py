"""A forked helper child (the OMS journal's background snapshot) yields the CPU to its actors.

Such a child does O(book) work: with 50,000 open orders the OMS's snapshot child spends
~0.6 s of CPU building and writing the snapshot, in the middle of the order path (one every
`[oms] snapshot_every` records). At the actor's own priority it took that CPU from the order
path on a busy machine (two cores shared by every actor), so at the same CPU per order the
OMS acknowledged fewer orders a second with a large book (branch `k50c`). At the lowest
priority (nice 19: Linux CFS weight 15 against 1024) it runs on what the actors leave idle
and still progresses on a saturated host; its durability is the same (the same write and
fsync, only later). While it runs no other snapshot starts and the journal keeps every
record, so a slow child costs disk space, never a record.
"""

from __future__ import annotations

import os

LOWEST_NICE = 19


def yield_cpu() -> None:
    """Lower the calling process to the lowest CPU priority (in a forked child only)."""
    try:
        os.nice(LOWEST_NICE - os.nice(0))
    except OSError:  # not permitted or not supported: the work is the same, only sooner
        pass
