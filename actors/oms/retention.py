"""How the OMS keeps its book small: live orders and the newest `[oms]
recent_terminal_orders` terminal ones in memory, older terminal orders in the durable
archive (`actors.oms.order_archive`), read back on demand by `OrderBook.get` / `find`.
`open_book` builds the OMS's book at start-up with its archive, and makes the journal sync
the archive before every snapshot (which compacts away the records of evicted orders), then
give the C heap's free pages back (`actors.oms.heap_trim`: what a backlog since the last
snapshot left resident; every `[oms] snapshot_every` records, ~10,000 orders, and never
while nothing happens).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from actors.oms.heap_trim import HeapTrim
from actors.oms.journal import Journal
from actors.oms.order_archive import OrderArchive, Retention
from actors.oms.order_book import OrderBook


def open_book(
    journal: Journal,
    snapshot: Mapping[str, Any] | None,
    oms_dir: Path,
    keep: int,
    trim: HeapTrim | None = None,
) -> OrderBook:
    """The book of an OMS whose journal is in `oms_dir` (the snapshot's orders loaded;
    the caller replays the journal's records on it)."""
    retention = Retention(OrderArchive.in_dir(oms_dir), keep)
    heap = trim if trim is not None else HeapTrim()

    def before_snapshot() -> None:
        retention.archive.sync()  # first: durable before the snapshot leaves its orders out
        heap.run()

    journal.before_snapshot = before_snapshot
    if snapshot is None:
        return OrderBook(retention)
    return OrderBook.from_dict(snapshot, retention)
