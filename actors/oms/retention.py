"""How the OMS keeps its book small: live orders and the newest `[oms]
recent_terminal_orders` terminal ones in memory, older terminal orders in the durable
archive (`actors.oms.order_archive`), read back on demand by `OrderBook.get` / `find`.
`open_book` builds the OMS's book at start-up with its archive, and makes the journal sync
the archive before every snapshot (which compacts away the records of evicted orders).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from actors.oms.journal import Journal
from actors.oms.order_archive import OrderArchive, Retention
from actors.oms.order_book import OrderBook


def open_book(
    journal: Journal, snapshot: Mapping[str, Any] | None, oms_dir: Path, keep: int
) -> OrderBook:
    """The book of an OMS whose journal is in `oms_dir` (the snapshot's orders loaded;
    the caller replays the journal's records on it)."""
    retention = Retention(OrderArchive.in_dir(oms_dir), keep)
    journal.before_snapshot = retention.archive.sync
    if snapshot is None:
        return OrderBook(retention)
    return OrderBook.from_dict(snapshot, retention)
