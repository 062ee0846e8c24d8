"""The order archive's writes, off the OMS's loop: one thread, its own SQLite connection.

A SQLite COMMIT (synchronous=FULL: the WAL's fsync) took >= 0.25 s on a busy disk, and
inside a loop turn the OMS was killed as hung (flood test: its stack in the archive's
COMMIT). Here the loop only packs each order (msgpack, as before) and hands a batch to
this thread (`submit`, never blocks); the thread writes and commits it and reports the
batch back (`results`, read by the loop, never blocks). Which orders wait, how many, and
when one may leave memory is decided on the loop (`actors.oms.evictions`), which drops an
order only after this thread confirmed the commit that holds it.

The thread takes every batch queued when it wakes and writes them in one transaction (a
disk that falls behind costs fewer fsyncs, not more); a failure (disk full, SQLite error,
any exception) rolls that transaction back and reports each of its batches as failed: the
loop keeps the orders in memory and submits them again later. The thread keeps running.
A thread that cannot start raises in `submit` (nothing queued: the loop retries later); a
thread that died anyway (an exception escaping the rollback) is noticed on the loop
(`results`, `submit`): logged `order_archive_writer_died`, the batches it held reported as
failed, and a new thread takes the queued ones.

Fault injection (tests; unset in production): `TP_FAULT_ARCHIVE_COMMIT_DELAY_S=<s>` sleeps
that long before each COMMIT (a slow disk's fsync); `before_commit` is the same seam for
in-process tests (it may raise: a failed commit).
"""

from __future__ import annotations

import contextlib
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final, NamedTuple

import structlog

COMMIT_DELAY_ENV: Final = "TP_FAULT_ARCHIVE_COMMIT_DELAY_S"
_STOP: Final = None
_log = structlog.get_logger("oms")


class Row(NamedTuple):
    """One order as the archive stores it (packed on the loop: the thread reads no Order)."""

    client_order_id: str
    venue: str
    symbol: str
    ts_updated_ns: int
    data: bytes
    cl_ord_ids: tuple[str, ...]


class Result(NamedTuple):
    batch: int
    error: BaseException | None  # None: committed (durable)


def write_rows(db: sqlite3.Connection, rows: Sequence[Row]) -> None:
    """INSERT OR REPLACE `rows` in the open transaction of `db`."""
    db.executemany(
        "INSERT OR REPLACE INTO orders VALUES (?, ?, ?, ?, ?)",
        [(r.client_order_id, r.venue, r.symbol, r.ts_updated_ns, r.data) for r in rows],
    )
    db.executemany(
        "INSERT OR REPLACE INTO cl_ord_ids VALUES (?, ?, ?)",
        [(r.venue, cl, r.client_order_id) for r in rows for cl in r.cl_ord_ids],
    )


def connect(path: Path) -> sqlite3.Connection:
    """A connection that writes the archive (WAL, synchronous=FULL: a commit is fsync'd)."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")  # per connection: this one commits
    db.execute("PRAGMA cache_size=-1024")
    return db


class ArchiveWriter:
    """The writer thread of one archive file; started at the first `submit`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.before_commit: Callable[[], None] = _commit_delay()
        self._todo: queue.SimpleQueue[tuple[int, list[Row]] | None] = queue.SimpleQueue()
        self._done: queue.SimpleQueue[Result] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None  # set once started
        self._taken: list[int] = []  # the batches the thread holds, not reported yet
        self._death: BaseException | None = None  # what ended the thread, if it died
        self._db: sqlite3.Connection | None = None  # the thread's last connection
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def submit(self, batch: int, rows: list[Row]) -> None:
        """Queue `rows` (batch number `batch`) to be written and committed; never blocks."""
        if self._closed:
            raise RuntimeError("archive writer closed")
        self._recover()
        if self._thread is None:
            self._thread = self._started()  # a raise: nothing queued, nothing changed
        self._todo.put((batch, rows))

    def results(self, timeout_s: float = 0.0) -> list[Result]:
        """The batches finished since the last call (waits up to `timeout_s` for one)."""
        self._recover()
        out: list[Result] = []
        try:
            if timeout_s > 0:
                out.append(self._done.get(timeout=timeout_s))
            while True:
                out.append(self._done.get_nowait())
        except queue.Empty:
            return out

    def close(self, timeout_s: float = 5.0) -> bool:
        """Stop the thread after what is queued (waits up to `timeout_s`); True if it ended."""
        self._closed = True
        if self._thread is None or not self._thread.is_alive():
            return True
        self._todo.put(_STOP)
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def _started(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, name="order-archive", daemon=True)
        thread.start()
        return thread

    def _recover(self) -> None:
        """A thread that died (on the loop): the batches it held reported failed, the
        queued ones handed to a new thread (or reported failed if it cannot start)."""
        thread = self._thread
        if thread is None or thread.is_alive() or self._closed:
            return
        self._thread, lost, self._taken = None, self._taken, []
        error: BaseException = RuntimeError(f"order archive writer died: {self._death!r}")
        _log.error("order_archive_writer_died", error=repr(self._death)[:512], batches=len(lost))
        if not self._todo.empty():
            try:
                self._thread = self._started()
            except Exception as exc:  # noqa: BLE001  # reported: the loop keeps them
                error = exc
                while (item := _next(self._todo)) is not None:
                    lost.append(item[0])
        for number in lost:
            self._done.put(Result(number, error))

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # noqa: BLE001  # noticed and reported on the loop
            self._death = exc
            if (db := self._db) is not None:  # its transaction rolled back, its lock freed
                with contextlib.suppress(Exception):
                    db.close()

    def _loop(self) -> None:
        db: sqlite3.Connection | None = None
        while True:
            item = self._todo.get()
            batches = [item]
            while item is not _STOP:  # every batch queued now: one transaction
                self._taken.append(item[0])  # named as soon as taken: a death reports it
                try:
                    item = self._todo.get_nowait()
                except queue.Empty:
                    break
                batches.append(item)
            work = [b for b in batches if b is not _STOP]
            if work:
                db = self._commit(db, work)
                self._taken = []
            if len(work) != len(batches):
                if db is not None:
                    db.close()
                return
            del item, batches, work  # the rows freed now, not kept until the next wake

    def _commit(
        self, db: sqlite3.Connection | None, work: list[tuple[int, list[Row]]]
    ) -> sqlite3.Connection | None:
        """Write and commit `work` in one transaction; report each batch. The connection
        to use next (None: reopen)."""
        error: BaseException | None = None
        try:
            db = self._db = db or connect(self.path)
            db.execute("BEGIN")
            for _, rows in work:
                write_rows(db, rows)
            self.before_commit()
            db.execute("COMMIT")
        except BaseException as exc:  # noqa: BLE001  # reported: the loop keeps them
            error = exc
            db = _rolled_back(db)
        for number, _ in work:
            self._done.put(Result(number, error))
        return db


def _next(todo: queue.SimpleQueue[tuple[int, list[Row]] | None]) -> tuple[int, list[Row]] | None:
    try:
        return todo.get_nowait()
    except queue.Empty:
        return None


def _rolled_back(db: sqlite3.Connection | None) -> sqlite3.Connection | None:
    """After a failure: the transaction rolled back, or the connection dropped (reopened
    at the next batch) when even that fails."""
    if db is None:
        return None
    try:
        if db.in_transaction:
            db.execute("ROLLBACK")
        return db
    except sqlite3.Error:
        db.close()
        return None


def _commit_delay() -> Callable[[], None]:
    delay_s = float(os.environ.get(COMMIT_DELAY_ENV) or 0)
    if delay_s <= 0:
        return lambda: None
    return lambda: time.sleep(delay_s)
