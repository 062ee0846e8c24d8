"""A forked helper child (the OMS journal's background snapshot) yields the CPU to its actors.

Such a child does O(book) work: with 50,000 open orders the OMS's snapshot child spends
~0.6 s of CPU building and writing the snapshot, in the middle of the order path (one every
`[oms] snapshot_every` records). At the actor's own priority it took that CPU from the order
path on a busy machine (two cores shared by every actor), so at the same CPU per order the
OMS acknowledged fewer orders a second with a large book (branch `k50c`). At nice 10 (Linux
CFS weight 110 against 1024) it runs mostly on what the actors leave idle and still gets
~10 % of a core beside a busy one: ~6 s for 0.6 s of CPU. Not nice 19 (weight 15): found by
review, ~70x its CPU time beside one busy process, ~40 s at 50,000 open orders, holding the
compaction and the fork's copy-on-write memory for that long. Its durability is the same
(the same write and fsync, only later). While it runs no other snapshot starts and the
journal keeps every record, so a slow child costs disk space, never a record; the stop's
own snapshot does not wait for it (`Journal.write_snapshot` kills it: it covers it).
"""

from __future__ import annotations

import os

BACKGROUND_NICE = 10


def yield_cpu() -> None:
    """Lower the calling process to `BACKGROUND_NICE` (in a forked child only)."""
    try:
        os.nice(max(0, BACKGROUND_NICE - os.nice(0)))
    except OSError:  # not permitted or not supported: the work is the same, only sooner
        pass
