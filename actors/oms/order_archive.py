"""Terminal orders out of memory: the OMS keeps its live orders and the newest
`[oms] recent_terminal_orders` terminal ones in its book; older terminal orders move to this
durable archive (SQLite, stdlib, `<state>/oms/orders.sqlite`) and are read back from it by
every lookup that can ask for one (`OrderBook.get` / `find`: a client's GetOrder, a
duplicate client_order_id or ClOrdID at intake, a late execution report, the operator's
`tradepulse orders` view). An order read back is admitted to the book again (as the newest
terminal order) and leaves it again like any other.

Durability: an order leaves memory only once the archive holds it durably
(`actors.oms.evictions`: handed, after the journal commit, to a writer thread with its own
connection, `actors.oms.archive_writer`, never written on the loop or inside an apply; out
of memory when the thread's transaction holding it has committed, fsync'd,
synchronous=FULL); a write that fails keeps it in memory and is tried again. Every record
of an evicted order is in the journal too, until the journal's next snapshot compacts those
records away (that snapshot holds every order still in memory, so every order not yet
durable here): kill -9 at any point loses nothing. An order in the book always wins over
its archived copy (which may be older). An order read back from here is not archived again
until a journal snapshot holding it is durable (`actors.oms.evictions`), so the copy of an
order that replay reads from here is never newer than the snapshot replay starts from.
This connection only reads (`query_only`): the loop never holds the archive's write lock.
A file SQLite refuses when it is opened (not a database, a malformed schema page) is
`StateCorrupt`: the OMS refuses to start (a page damaged elsewhere shows only when read).

Retention of the archive itself is not managed here: it grows by ~0.5 KiB per order on
disk (a cold start moves it away with the rest of the OMS state).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Final

import msgpack

from actors.oms.archived_ids import ArchivedIds
from actors.oms.orders import Order
from protocol.exceptions import StateCorrupt

ARCHIVE_NAME: Final = "orders.sqlite"
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS orders (client_order_id TEXT PRIMARY KEY, venue TEXT NOT NULL,"
    " symbol TEXT NOT NULL, ts_updated_ns INTEGER NOT NULL, data BLOB NOT NULL)",
    "CREATE INDEX IF NOT EXISTS orders_by_ts ON orders (ts_updated_ns)",
    "CREATE TABLE IF NOT EXISTS cl_ord_ids (venue TEXT NOT NULL, cl_ord_id TEXT NOT NULL,"
    " client_order_id TEXT NOT NULL, PRIMARY KEY (venue, cl_ord_id)) WITHOUT ROWID",
)


class OrderArchive:
    """The terminal orders no longer in the book, by client_order_id and (venue, ClOrdID)."""

    def __init__(self, path: Path, ids: ArchivedIds | None = None) -> None:
        self.path = path
        self.ids = ids  # the OMS's: no SQLite query for an id it rules out
        path.parent.mkdir(parents=True, exist_ok=True)
        for file in (path, path.with_name(f"{path.name}-wal"), path.with_name(f"{path.name}-shm")):
            if file.exists() and not (file.is_file() and os.access(file, os.R_OK | os.W_OK)):
                detail = "not a file this user can read and write"  # SQLite: "unable to open"
                raise StateCorrupt(str(file), None, detail, what="order archive", how="unreadable")
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA cache_size=-1024")  # KiB: 1 MiB of page cache, not 2
            for statement in _SCHEMA:
                self._db.execute(statement)
            self._db.execute("PRAGMA query_only=ON")  # writes: `actors.oms.archive_writer`
        except sqlite3.DatabaseError as exc:  # "file is not a database", "... malformed"
            self._db.close()
            if isinstance(exc, sqlite3.OperationalError):  # locked, I/O error: may pass
                raise
            # a restart meets the same file: the OMS refuses to start
            raise StateCorrupt(str(path), None, f"SQLite: {exc}", what="order archive") from exc

    @classmethod
    def in_dir(cls, oms_dir: Path, ids: ArchivedIds | None = None) -> OrderArchive:
        return cls(oms_dir / ARCHIVE_NAME, ids)

    def get(self, client_order_id: str) -> Order | None:
        if self.ids is not None and not self.ids.maybe_id(client_order_id):
            return None  # (a new id: the common case)
        row = self._db.execute(
            "SELECT data FROM orders WHERE client_order_id = ?", (client_order_id,)
        ).fetchone()
        return None if row is None else _order(row[0])

    def find(self, venue: str, cl_ord_id: str) -> Order | None:
        """The archived order that used `cl_ord_id` (any of its ids) at `venue`."""
        if self.ids is not None and not self.ids.maybe_cl(venue, cl_ord_id):
            return None
        row = self._db.execute(
            "SELECT o.data FROM cl_ord_ids c JOIN orders o USING (client_order_id)"
            " WHERE c.venue = ? AND c.cl_ord_id = ?",
            (venue, cl_ord_id),
        ).fetchone()
        return None if row is None else _order(row[0])

    def newest(
        self,
        *,
        venue: str | None = None,
        symbol: str | None = None,
        since_ns: int | None = None,
        limit: int = 200,
    ) -> tuple[list[Order], int]:
        """(up to `limit` archived orders matching, newest change first; how many match)."""
        where = "(?1 IS NULL OR venue = ?1) AND (?2 IS NULL OR symbol = ?2) AND ts_updated_ns >= ?3"
        args = (venue, symbol, since_ns or 0)
        (total,) = self._db.execute(f"SELECT COUNT(*) FROM orders WHERE {where}", args).fetchone()
        rows = self._db.execute(
            f"SELECT data FROM orders WHERE {where} ORDER BY ts_updated_ns DESC LIMIT ?4",
            (*args, limit),
        )
        return [_order(r[0]) for r in rows], int(total)

    def page(self, venue: str | None, row: int, limit: int) -> tuple[list[Order], int | None]:
        """Up to `limit` archived orders (of `venue`, or all) from `row` on, in archiving
        order (rowid: an order archived again moves to the end), and the row to go on from
        (None: no more)."""
        rows = self._db.execute(
            "SELECT rowid, data FROM orders WHERE (?1 IS NULL OR venue = ?1) AND rowid >= ?2"
            " ORDER BY rowid LIMIT ?3",
            (venue, row, limit + 1),
        ).fetchall()
        more = int(rows[limit][0]) if len(rows) > limit else None
        return [_order(data) for _, data in rows[:limit]], more

    def held(self, client_order_ids: Iterable[str]) -> int:
        """How many of `client_order_ids` are archived (too)."""
        ids, n = list(client_order_ids), 0
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT COUNT(*) FROM orders WHERE client_order_id IN ({marks})"
            n += int(self._db.execute(sql, chunk).fetchone()[0])
        return n

    def __len__(self) -> int:
        (n,) = self._db.execute("SELECT COUNT(*) FROM orders").fetchone()
        return int(n)

    def __iter__(self) -> Iterator[Order]:
        for (data,) in self._db.execute("SELECT data FROM orders"):
            yield _order(data)

    def close(self) -> None:
        self._db.close()


def _order(data: bytes) -> Order:
    return Order.from_dict(msgpack.unpackb(data, raw=False))


class Retention:
    """Which terminal orders the book keeps: the `keep` that became terminal (or were
    read back from the archive) last; `overflow()` names the ones to move to `archive`."""

    def __init__(self, archive: OrderArchive, keep: int) -> None:
        if keep < 1:
            raise ValueError("keep at least one terminal order (the one being changed)")
        self.archive = archive
        self.keep = keep
        self._terminal: dict[str, None] = {}  # client_order_ids, oldest first

    def note(self, order: Order) -> None:
        """After every change of `order` in the book."""
        coid = order.client_order_id
        self._terminal.pop(coid, None)
        if order.is_terminal:
            self._terminal[coid] = None  # the newest

    def forget(self, client_order_id: str) -> None:
        self._terminal.pop(client_order_id, None)

    def holds(self, client_order_id: str) -> bool:
        """Whether `client_order_id` is among the terminal orders kept in memory."""
        return client_order_id in self._terminal

    def overflow(self) -> list[str]:
        """The oldest terminal orders beyond `keep` (forgotten here: the book evicts them)."""
        extra = len(self._terminal) - self.keep
        if extra <= 0:
            return []
        out = []
        for coid in self._terminal:
            out.append(coid)
            if len(out) == extra:
                break
        for coid in out:
            del self._terminal[coid]
        return out

    def __len__(self) -> int:
        return len(self._terminal)
