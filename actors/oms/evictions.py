"""Old terminal orders leave memory only once the archive holds them durably; the
archive's writes run on a thread (`actors.oms.archive_writer`), never in a loop turn.

The book keeps its live orders and the newest `[oms] recent_terminal_orders` terminal ones
(`actors.oms.order_archive.Retention`); older terminal orders move to the SQLite archive.
That write is I/O that can fail (disk full, EIO, locked) and be slow (a COMMIT's fsync took
>= 0.25 s on a busy disk: in a loop turn the OMS was killed as hung), so it is neither done
inside `OrderBook.apply_record` (a failure there left a change half made) nor on the loop:

- an order the retention lets go is noted (`retained`) and stays in the book: every reader
  (`OrderBook.get` / `find`, the duplicate client_order_id / ClOrdID checks at intake, the
  views, ListOrders, a snapshot) still finds it there. The book is the pending set: an
  order is in memory or committed in the archive at every moment, never in neither;
- after each journal commit (`Journal.after_commit`: `flush`), and on a timer when no
  commit comes (`actors.oms.retention`), up to `FLUSH_EVERY` noted orders are packed on the
  loop (their state as of a durable journal commit: nothing ahead of the journal) and
  handed to the writer thread as one batch (`ArchiveWriter.submit`, never blocking);
- the thread writes and commits (fsync'd: synchronous=FULL) and reports the batch; the loop
  reads the reports (`poll`: each flush, each timer tick) and only then drops each order of
  a committed batch from memory, if it is still the copy written (a later change held it
  again, or it was let go again and written in a later batch: the batch number tells);
- bounded: at most `MAX_IN_FLIGHT` orders are handed over and unconfirmed. When the thread
  falls behind, the rest wait as noted orders in the book (eviction slows, memory holds
  them) and the loop never blocks on the thread;
- a COMMIT that does not return (an fsync hung on a sick device) fails nothing: once the
  oldest unconfirmed batch is `STALL_S` old it is logged `order_archive_commit_stalled`
  (error, once per `STALL_S`); its age is the gauge
  `tradepulse_oms_archive_oldest_unconfirmed_seconds` (alert OrderArchiveStalled);
- a failed batch (disk full, SQLite error, any exception of the thread) is rolled back by
  the thread; its orders stay in memory, go back to the noted ones and are written again
  at a later flush (at most once a `RETRY_S`), logged `order_archive_write_failed` (error,
  at most 10 lines a second) and counted in `tradepulse_oms_archive_write_failures_total`;
  the OMS keeps running;
- an order read back from the archive (`revived`: a late execution, a lookup that admits
  it) is not written to the archive again until a journal snapshot started after it came
  back is durable (`snapshot_written`): it is held in memory, so that snapshot holds it.
  Replay starts from the last durable snapshot: an order in it wins over its archived copy,
  and the archived copy of an order not in it was written before it and not since, so it
  is the order as of that snapshot and the journal's records after it apply once. (Written
  again earlier, a late fill journalled after the snapshot was in the archive's copy and
  replay applied it a second time: review rv_recon2b, finding 1);
- stop: `sync(timeout_s)` hands everything over and waits for the thread, bounded; what it
  did not confirm stays in memory, so the stop's snapshot holds it.

Crash safety (kill -9 at any point loses no order). The journal drops an order's records
only when a snapshot compacts them away, and a snapshot holds every order in memory (the
foreground one: as of its write; a background child: as of its fork). An order leaves
memory only in `poll`, after the thread's COMMIT of a batch holding that very copy
returned, i.e. once it is durable in the archive. So every order is, at every moment, in
the journal (records since the last durable snapshot), in that snapshot, or durable in the
archive: a snapshot started while its batch is in flight still holds it (it is in memory),
and a kill -9 in flight loses only the archive's uncommitted transaction, of orders the
journal or snapshot still has. This is why the snapshot no longer waits for the archive
(`snapshot_started` only counts it): before, the forced COMMIT before each snapshot was a
loop stall too, and what it protected is already gated on the confirmed commit.

Replay gives the same book: eviction is decided by the same records in the same order,
which orders are still waiting for the archive changes only where they are held, and the
archive's copy of an order outside the snapshot is the order as of the snapshot.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from itertools import islice
from types import ModuleType

import msgpack
import structlog

from actors.oms.archive_writer import ArchiveWriter, Result, Row
from actors.oms.order_archive import Retention
from actors.oms.orders import Order
from actors.runtime.ratelog import LogBudget

RETRY_S = 1.0  # after a failed write, the next attempt waits at least this long
FLUSH_EVERY = 512  # orders packed and handed to the writer per `flush`, at most
MAX_IN_FLIGHT = 2048  # orders handed to the writer and not confirmed, at most
POLL_S = 0.1  # the timer that reads the writer's reports when no journal commit comes
STALL_S = 30.0  # the oldest unconfirmed batch this old: logged (once per STALL_S)
STOP_WAIT_S = 1.0  # a stop waits this long for the writer, at most (within the
# supervisor's shutdown_timeout_s of 5 s, after the OMS's drain_timeout_s of 3 s)
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
        self.writer = ArchiveWriter(retention.archive.path)
        self._drop = drop  # the book forgets an archived order
        self._clock = clock
        self._pending: dict[str, Order] = {}  # to hand to the writer
        self._in_flight: dict[str, tuple[int, Order]] = {}  # handed over: (batch, copy of)
        self._batches: dict[int, list[str]] = {}  # unconfirmed batch -> its orders
        self._sent_at: dict[int, float] = {}  # unconfirmed batch -> when handed over
        self._age_shown = -1  # the age gauge's value (whole seconds); -1: the first
        # `_show` writes 0 over what a killed predecessor left in the multiprocess file
        self._stall_logged_at = float("-inf")
        self._batch = 0  # the last batch number given
        self._revived: dict[str, int] = {}  # read back: snapshots started before, until one
        self._held_back: dict[str, Order] = {}  # let go, revived: after the next snapshot
        self._snapshots = 0  # snapshots started (`snapshot_started`)
        self._shown = 0  # the gauge's value
        self._retry_at = 0.0
        self._failures = 0  # batches failed
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
        if coid in self._revived:
            self._held_back[coid] = order
        else:
            self._pending[coid] = order

    def __len__(self) -> int:
        """Orders let go but still in memory (not yet durable in the archive); one let go
        again while an older copy is in flight counts twice until that copy is confirmed."""
        return len(self._pending) + len(self._in_flight) + len(self._held_back)

    pending_orders = __len__

    @property
    def in_flight(self) -> int:
        """Orders handed to the writer and not confirmed yet."""
        return len(self._in_flight)

    def flush(self, *, force: bool = False) -> None:
        """After a journal commit: read the writer's reports, then hand it at most
        `FLUSH_EVERY` orders let go (all if `force`), within `MAX_IN_FLIGHT`. Never blocks
        and never raises (it runs after a durable commit)."""
        try:
            self.poll()
            if self.writer.closed or not self._pending:
                pass  # (stopped: what is left is in the stop's snapshot)
            elif force or self._clock() >= self._retry_at:
                self._hand_over(len(self._pending) if force else FLUSH_EVERY)
        except Exception as exc:  # noqa: BLE001  # after a durable commit: never raise
            self._retry_at = self._clock() + RETRY_S
            self._log_failure(exc)
        self._show()

    def poll(self, timeout_s: float = 0.0) -> None:
        """Apply the writer's reports: a committed batch's orders leave memory, a failed
        one's wait to be written again."""
        for result in self.writer.results(timeout_s):
            self._confirmed(result)
        self._show()

    def snapshot_started(self) -> None:
        """Before a journal snapshot: counted (for the revived orders). Nothing waits: an
        order not confirmed by the writer is in memory, so in the snapshot."""
        self._snapshots += 1
        self.poll()  # (no hand-over: the journal may hold records not committed yet)

    def sync(self, timeout_s: float = 5.0) -> bool:
        """Hand every order let go to the writer and wait, up to `timeout_s`, until each is
        archived (out of memory) or failed (in memory): stop, and tests. True if every
        one was archived."""
        deadline, failures = time.monotonic() + timeout_s, self._failures
        self.flush(force=True)
        while self._in_flight and (left := deadline - time.monotonic()) > 0:
            self.poll(min(left, 0.2))
            if self._failures == failures:  # (after a failure: no second attempt here)
                self.flush(force=True)  # the rest, as room frees up
        return not self._in_flight and not self._pending

    def close(self, timeout_s: float = STOP_WAIT_S) -> bool:
        """Stop: `sync` within `timeout_s`, then end the writer thread."""
        deadline = time.monotonic() + timeout_s
        done = self.sync(timeout_s)
        return self.writer.close(max(deadline - time.monotonic(), 0.0)) and done

    def snapshot_written(self) -> None:
        """The snapshot last started (`snapshot_started`) is durable: the orders revived
        before it started are in it, and may go to the archive again."""
        for coid, started in list(self._revived.items()):
            if started < self._snapshots:
                del self._revived[coid]
                if (order := self._held_back.pop(coid, None)) is not None:
                    self._pending[coid] = order

    def _hand_over(self, budget: int) -> None:
        room = MAX_IN_FLIGHT - len(self._in_flight)
        taken = list(islice(self._pending.items(), max(min(budget, room), 0)))
        going = [(coid, order) for coid, order in taken if self._leaves(order)]
        rows = [_row(order) for _, order in going]  # their state now: the archive's copies
        if rows:  # a raise up to the submit leaves them all pending
            if (ids := self.retention.archive.ids) is not None:
                for coid, order in going:  # their ids may be archived from now on
                    ids.add(coid, order.venue, order.cl_ord_ids)
            self.writer.submit(self._batch + 1, rows)
            self._batch += 1
            for coid, order in going:
                self._in_flight[coid] = (self._batch, order)
            self._batches[self._batch] = [coid for coid, _ in going]
            self._sent_at[self._batch] = self._clock()
        for coid, _ in taken:
            del self._pending[coid]  # (one not going was changed since: held again)

    def _confirmed(self, result: Result) -> None:
        failed: dict[str, Order] = {}
        self._sent_at.pop(result.batch, None)
        for coid in self._batches.pop(result.batch, ()):
            batch, order = self._in_flight.get(coid, (0, None))
            if batch != result.batch or order is None:
                continue  # let go again since: a later batch has the newer copy
            del self._in_flight[coid]
            if result.error is not None:
                failed[coid] = order
            elif self._leaves(order) and coid not in self._pending and coid not in self._held_back:
                self._drop(order)  # durable in the archive: out of memory
        if result.error is not None:
            self._failures += 1
            self._pending = {**failed, **self._pending}  # first in line, after RETRY_S
            self._retry_at = self._clock() + RETRY_S
            self._log_failure(result.error)

    def _show(self) -> None:  # the gauges, set only on a change (every commit comes here)
        if (n := len(self)) != self._shown:
            self._shown = n
            _metrics().ARCHIVE_PENDING_ORDERS.set(n)
        now = self._clock()
        age = now - next(iter(self._sent_at.values()), now)  # (batch numbers rise)
        if int(age) != self._age_shown:
            self._age_shown = int(age)
            _metrics().ARCHIVE_OLDEST_UNCONFIRMED.set(int(age))
        if age >= STALL_S and now - self._stall_logged_at >= STALL_S:
            self._stall_logged_at = now
            _log.error(
                "order_archive_commit_stalled",
                oldest_unconfirmed_s=round(age, 1),
                in_flight=len(self._in_flight),
                held_in_memory=len(self),
            )

    def _leaves(self, order: Order) -> bool:
        return order.is_terminal and not self.retention.holds(order.client_order_id)

    def _log_failure(self, exc: BaseException) -> None:
        _metrics().ARCHIVE_WRITE_FAILURES.inc()
        if (skipped := self._budget.take()) is not None:
            _log.error(
                "order_archive_write_failed",
                error=f"{type(exc).__name__}: {exc}"[:512],
                held_in_memory=len(self),
                suppressed=skipped,
            )


def _row(order: Order) -> Row:
    data = msgpack.packb(order.to_dict(), use_bin_type=True)
    return Row(
        order.client_order_id,
        order.venue,
        order.symbol,
        order.ts_updated_ns,
        data,
        tuple(order.cl_ord_ids),
    )


def _metrics() -> ModuleType:
    """`actors.runtime.metrics`, imported when first used: the book imports this module, and
    the fork server loads the book before its setup gives prometheus_client its metrics dir
    (`actors.supervisor.forkserver.WARM_BY_KIND`)."""
    from actors.runtime import metrics  # noqa: PLC0415 - see above

    return metrics
