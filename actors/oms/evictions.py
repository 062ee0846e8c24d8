"""Old terminal orders leave memory only once the archive holds them durably.

The book keeps its live orders and the newest `[oms] recent_terminal_orders` terminal ones
(`actors.oms.order_archive.Retention`); older terminal orders move to the SQLite archive.
That write is I/O that can fail (disk full, EIO, locked), so it is never done inside
`OrderBook.apply_record` (the apply of an execution, a verdict, a replay): a failure there
left the change half made, in memory but not in the journal, and the evicted order in
neither memory nor the archive. Here instead:

- an order the retention lets go is noted (`retained`) and stays in the book: every reader
  (`OrderBook.get` / `find`, the views, a snapshot) still finds it;
- after each journal commit (`Journal.after_commit`: `flush`), the noted orders are written
  to the archive; each leaves memory once the archive's transaction holding it has
  committed (fsync'd: every `COMMIT_EVERY` writes, and before every snapshot: `sync`);
- a write or commit that fails rolls the archive's open transaction back and keeps every
  order of it in memory, to be written again at a later commit (at most once a
  `RETRY_S`), logged `order_archive_write_failed` (error, at most 10 lines a second) and
  counted in `tradepulse_oms_archive_write_failures_total`. A snapshot taken meanwhile
  includes those orders (it writes every order in memory), so none is ever lost;
- an order changed again before it left (a late execution) is kept (the retention holds it
  again) and is let go again later, written as it is then;
- an order read back from the archive (`revived`: a late execution, a lookup that admits
  it) is not written to the archive again until a journal snapshot taken after it came
  back is durable (`snapshot_written`): it is held in memory, so that snapshot holds it.
  Replay starts from the last durable snapshot: an order in it wins over its archived copy,
  and the archived copy of an order not in it was written before it and not since, so it
  is the order as of that snapshot and the journal's records after it apply once. (Written
  again earlier, a late fill journalled after the snapshot was in the archive's copy and
  replay applied it a second time: review rv_recon2b, finding 1);
- each commit writes at most `FLUSH_EVERY` orders (no loop turn does O(n) archive work,
  e.g. the first commit after a replay that let many orders go); the rest go at the next
  commits, and at the `flush` timer (`actors.oms.retention`) when no commit comes;
- nothing raises out of `flush` (it runs after a durable journal commit): any failure is
  handled as a failed write. `pending_orders` is exported as the gauge
  `tradepulse_oms_archive_pending_orders`.

Replay gives the same book: eviction is decided by the same records in the same order,
which orders are still waiting for the archive changes only where they are held, and the
archive's copy of an order outside the snapshot is the order as of the snapshot.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from types import ModuleType

import structlog

from actors.oms.order_archive import Retention
from actors.oms.orders import Order
from actors.runtime.ratelog import LogBudget

RETRY_S = 1.0  # after a failed write, the next attempt waits at least this long
FLUSH_EVERY = 512  # orders written per `flush` (after a journal commit), at most
_log = structlog.get_logger("oms")


class Evictions:
    """The orders the retention let go that are still in memory, until archived."""

    def __init__(
        self,
        retention: Retention,
        drop: Callable[[Order], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.retention = retention
        self._drop = drop  # the book forgets an archived order
        self._clock = clock
        self._pending: dict[str, Order] = {}  # to write
        self._written: dict[str, Order] = {}  # written in the archive's open transaction
        self._revived: dict[str, int] = {}  # read back: snapshots started before, until one
        self._held_back: dict[str, Order] = {}  # let go, revived: after the next snapshot
        self._snapshots = 0  # snapshots started (`sync`)
        self._shown = 0  # the gauge's value
        self._retry_at = 0.0
        self._budget = LogBudget()

    def retained(self, order: Order, held: Mapping[str, Order], *, revived: bool = False) -> None:
        """After a change of `order` in the book (`held`), or its read back from the
        archive (`revived`): the oldest terminal orders beyond the retention's `keep` are
        let go."""
        if revived:
            self._revived[order.client_order_id] = self._snapshots
        self.retention.note(order)
        for coid in self.retention.overflow():
            self.add(held[coid])

    def add(self, order: Order) -> None:
        """`order` may leave memory once archived (the retention let it go)."""
        coid = order.client_order_id
        self._written.pop(coid, None)  # an older copy may be in the open transaction
        if coid in self._revived:
            self._held_back[coid] = order
        else:
            self._pending[coid] = order

    def __len__(self) -> int:
        """Orders let go but still in memory (not yet durable in the archive)."""
        return len(self._pending) + len(self._written) + len(self._held_back)

    pending_orders = __len__

    def flush(self, *, force: bool = False) -> None:
        """Write the orders let go to the archive (after a journal commit): at most
        `FLUSH_EVERY`, or all if `force`."""
        if not self._pending or (not force and self._clock() < self._retry_at):
            self._show()
            return
        archive = self.retention.archive
        commits = archive.commits
        budget = len(self._pending) if force else FLUSH_EVERY
        try:
            while self._pending and budget > 0:
                budget -= 1
                coid, order = next(iter(self._pending.items()))
                if not self._leaves(order):
                    del self._pending[coid]  # changed since: held again
                    continue
                archive.put(order)  # may commit (every COMMIT_EVERY writes)
                del self._pending[coid]
                self._written[coid] = order
                if archive.commits != commits:
                    self._release()
                    commits = archive.commits
        except Exception as exc:  # noqa: BLE001  # after a durable commit: never raise
            self._failed(exc)
        self._show()

    def sync(self) -> None:
        """Write and commit every order let go (before a snapshot). A failure keeps them
        in memory, so the snapshot has them (and every revived order: held back)."""
        self._snapshots += 1
        self.flush(force=True)
        if self._pending:
            return  # the write failed: rolled back, all in memory
        try:
            self.retention.archive.sync()
        except Exception as exc:  # noqa: BLE001  # as in `flush`
            self._failed(exc)
            return
        self._release()
        self._show()

    def snapshot_written(self) -> None:
        """The snapshot last started (`sync`) is durable: the orders revived before it
        started are in it, and may go to the archive again."""
        for coid, started in list(self._revived.items()):
            if started < self._snapshots:
                del self._revived[coid]
                if (order := self._held_back.pop(coid, None)) is not None:
                    self._pending[coid] = order

    def _show(self) -> None:  # the gauge, set only on a change (every commit comes here)
        if (n := len(self)) != self._shown:
            self._shown = n
            _metrics().ARCHIVE_PENDING_ORDERS.set(n)

    def _leaves(self, order: Order) -> bool:
        return order.is_terminal and not self.retention.holds(order.client_order_id)

    def _release(self) -> None:
        """The written orders are durable in the archive: out of memory."""
        written, self._written = self._written, {}
        for order in written.values():
            if self._leaves(order):
                self._drop(order)

    def _failed(self, exc: BaseException) -> None:
        self.retention.archive.rollback()
        self._pending = {**self._written, **self._pending}  # all written again later
        self._written = {}
        self._retry_at = self._clock() + RETRY_S
        _metrics().ARCHIVE_WRITE_FAILURES.inc()
        if (skipped := self._budget.take()) is not None:
            _log.error(
                "order_archive_write_failed",
                error=f"{type(exc).__name__}: {exc}"[:512],
                held_in_memory=len(self._pending),
                suppressed=skipped,
            )


def _metrics() -> ModuleType:
    """`actors.runtime.metrics`, imported when first used: the book imports this module, and
    the fork server loads the book before its setup gives prometheus_client its metrics dir
    (`actors.supervisor.forkserver.WARM_BY_KIND`)."""
    from actors.runtime import metrics  # noqa: PLC0415 - see above

    return metrics
