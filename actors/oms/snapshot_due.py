"""When the OMS journal takes its next snapshot: after `[oms] snapshot_every` records, and
not before the records since the last snapshot weigh as much as that snapshot.

A snapshot writes the whole book: O(book) (at 50,000 open orders ~0.6 s of CPU in the
forked child, `Journal.write_snapshot_in_background`, and the fork's copy-on-write in the
OMS). Taken every `snapshot_every` records whatever the book, its cost per order grew with
the book (branch `k50c`: at 50,000 open orders one fell in the bench's 4,000-order window,
a hidden x1.2 CPU). Taken only once the journal has grown by the snapshot's own size
(what Redis does for its AOF rewrite), the snapshot's cost per record is bounded at any
size, and a replay after a crash still reads at most about twice the snapshot: O(book),
as loading the snapshot is. Below ~25,000 held orders (a snapshot smaller than
`snapshot_every` records) nothing changes. At `MAX_STRETCH` times `snapshot_every` records
one is due whatever the bytes (found by review: orders read back from the archive, held
until the next snapshot, made each snapshot bigger and so the next one later, a loop a
client's refused cancels of archived orders could drive).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

from actors.oms.journal import SNAPSHOT_NAME

MAX_STRETCH = 4  # a snapshot is due by this many times `snapshot_every` records at the latest


class _Journal(Protocol):
    directory: Path
    records_since_snapshot: int
    bytes_since_snapshot: int


def snapshot_due(journal: _Journal, every: int) -> bool:
    """Is a snapshot due: `every` records since the last one, and as many bytes as it has."""
    if journal.records_since_snapshot < every:
        return False
    if journal.records_since_snapshot >= MAX_STRETCH * every:
        return True
    try:  # one stat, and only once `every` records are in
        last = os.stat(journal.directory / SNAPSHOT_NAME).st_size
    except FileNotFoundError:
        return True
    return journal.bytes_since_snapshot >= last
