"""How the OMS keeps its book small: live orders and the newest `[oms]
recent_terminal_orders` terminal ones in memory, older terminal orders in the durable
archive (`actors.oms.order_archive`), read back on demand by `OrderBook.get` / `find`.
`open_book` builds the OMS's book at start-up with its archive, makes the journal write the
evicted orders to the archive after every commit (`actors.oms.evictions`: never inside an
apply) and commit the archive before every snapshot (which compacts away the records of
evicted orders), then
give the C heap's free pages back (`actors.runtime.heap_trim`: what a backlog left resident),
as it does every `TRIM_EVERY_S` while the journal moves (with the actor's `timers`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from actors.oms.evictions import RETRY_S
from actors.oms.journal import Journal
from actors.oms.order_archive import OrderArchive, Retention
from actors.oms.order_book import OrderBook
from actors.runtime.heap_trim import TRIM_EVERY_S, HeapTrim


class Timers(Protocol):
    def call_every(self, interval_s: float, fn: Callable[[], None]) -> None: ...


def open_book(
    journal: Journal,
    snapshot: Mapping[str, Any] | None,
    oms_dir: Path,
    keep: int,
    timers: Timers | None = None,
    trim: HeapTrim | None = None,
) -> OrderBook:
    """The book of an OMS whose journal is in `oms_dir` (the snapshot's orders loaded;
    the caller replays the journal's records on it)."""
    retention = Retention(OrderArchive.in_dir(oms_dir), keep)
    heap = trim if trim is not None else HeapTrim(actor="oms")

    book = OrderBook(retention) if snapshot is None else OrderBook.from_dict(snapshot, retention)
    evictions = book.evictions
    assert evictions is not None  # a book with a retention

    def before_snapshot() -> None:
        evictions.sync()  # first: durable before the snapshot leaves its orders out
        heap.run()

    journal.before_snapshot = before_snapshot
    journal.after_commit = evictions.flush
    journal.after_snapshot = evictions.snapshot_written
    if timers is not None:
        timers.call_every(
            TRIM_EVERY_S, lambda: heap.if_moved((journal.segment, journal.records_since_snapshot))
        )
        # the rest of a large batch of orders let go (`FLUSH_EVERY` a commit) when no
        # commit comes; never with records uncommitted (nothing ahead of the journal)
        timers.call_every(RETRY_S, lambda: None if journal.pending else evictions.flush())
    return book
