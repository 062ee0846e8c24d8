"""How the OMS keeps its book small: live orders and the newest `[oms]
recent_terminal_orders` terminal ones in memory, older terminal orders in the durable
archive (`actors.oms.order_archive`), read back on demand by `OrderBook.get` / `find`.
`open_book` builds the OMS's book at start-up with its archive, makes the journal hand the
evicted orders to the archive's writer thread after every commit (`actors.oms.evictions`:
never inside an apply, never a SQLite write in a loop turn; an order leaves memory once the
thread confirmed its commit, so a snapshot, which compacts away the records of evicted
orders, holds every order not yet durable in the archive), and before every snapshot
give the C heap's free pages back (`actors.runtime.heap_trim`: what a backlog left resident),
as it does every `TRIM_EVERY_S` while the journal moves (with the actor's `timers`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from actors.oms.archived_ids import ArchivedIds
from actors.oms.evictions import POLL_S, RETRY_S
from actors.oms.journal import Journal
from actors.oms.order_archive import OrderArchive, Retention
from actors.oms.order_book import OrderBook
from actors.runtime.heap_trim import TRIM_EVERY_S, HeapTrim


class Timers(Protocol):
    def call_every(self, interval_s: float, fn: Callable[[], None]) -> None: ...
    def call_later(self, delay_s: float, fn: Callable[[], None]) -> None: ...


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
    ids = ArchivedIds()  # read back by a thread: no wait here (warm start)
    retention = Retention(OrderArchive.in_dir(oms_dir, ids), keep)
    ids.rebuild(retention.archive.path)
    heap = trim if trim is not None else HeapTrim(actor="oms")

    book = OrderBook(retention) if snapshot is None else OrderBook.from_dict(snapshot, retention)
    evictions = book.evictions
    assert evictions is not None  # a book with a retention

    def before_snapshot() -> None:
        evictions.snapshot_started()  # counted; orders not archived are in memory: in it
        heap.run()

    journal.before_snapshot = before_snapshot
    polling = False  # a `POLL_S` timer is set: while the writer has orders in flight

    def flush() -> None:  # hand over only with every record committed: nothing ahead
        nonlocal polling
        if journal.pending:
            evictions.poll()
        else:
            evictions.flush()
        if evictions.in_flight and timers is not None and not polling:
            polling = True  # the writer's reports are read when no commit comes
            timers.call_later(POLL_S, tick)

    def tick() -> None:
        nonlocal polling
        polling = False
        flush()

    journal.after_commit = flush
    journal.after_snapshot = evictions.snapshot_written
    if timers is not None:
        timers.call_every(
            TRIM_EVERY_S, lambda: heap.if_moved((journal.segment, journal.records_since_snapshot))
        )
        # the rest of a large batch of orders let go (`FLUSH_EVERY` a commit), or of a
        # failed one, when no commit comes
        timers.call_every(RETRY_S, flush)
    return book
