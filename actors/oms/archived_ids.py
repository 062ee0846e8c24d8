"""Which ids the order archive may hold: a Bloom filter, so that a new client order id costs
no SQLite lookup.

Every new `SubmitOrder` asked the archive twice whether its ids were known (`get` of the
client_order_id, `find` of its base ClOrdID at the venue: a duplicate of an archived order
is a duplicate, a reuse is refused): two SQLite queries per order, 4% of the OMS's CPU
under load, both answering "no" in the common case. Here the archive first asks this
filter; only a "maybe" goes to SQLite, so the answers are exactly those of SQLite (a Bloom
filter has no false negatives: at worst a "maybe" costs the query it always cost).

- Keys: each archived order's client_order_id and its (venue, ClOrdID) pairs (every id it
  used: base, cancel and replace ids), hashed with Python's `hash` (per process: the
  filter is never persisted).
- Complete: the filter is rebuilt at start by a thread reading the archive (its own
  connection: warm start does not wait for it); until that read is done every answer is
  "maybe". Every order handed to the archive's writer by this process is added on the loop
  before the hand-over (`add`), and kept aside until the rebuild is adopted. The OMS's
  writer thread is the archive's only writer (`actors.oms.archive_writer`), so each key in
  the archive was either there when the rebuild read it or added here. A rebuild that
  fails (SQLite error, I/O error) or has more than `MAX_EARLY` keys kept aside is given up:
  logged `archived_ids_rebuild_failed` once, nothing kept aside any more, every answer
  "maybe" for the rest of the process (SQLite asked, as before the filter).
- Bounded: `BITS` bits (2 MiB, plus 2 MiB while the rebuild runs), `HASHES` probes.
  False positives: ~0.2% with 1,000,000 keys (~400,000 archived orders), 6.8% measured
  with 3,000,000; past that the filter degrades towards asking SQLite every time (as
  before), never towards a wrong answer.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Hashable, Iterable
from pathlib import Path
from typing import Final

import structlog

BITS: Final = 1 << 24
HASHES: Final = 4
_MASK: Final = BITS - 1
_CHUNK: Final = 1024  # rows the rebuild reads between two yields of the GIL
MAX_EARLY: Final = 100_000  # keys kept aside during the rebuild, at most (~10 MiB)
_log = structlog.get_logger("oms")


class ArchivedIds:
    """A Bloom filter of the keys in one archive; `maybe` is exact on "no"."""

    def __init__(self) -> None:
        self._bits: bytearray | None = None  # None until the rebuild is adopted
        self._early: list[Hashable] | None = []  # added before that
        self._built: bytearray | None = None  # the rebuild thread's result
        self._thread: threading.Thread | None = None
        self._failed: str | None = None  # the rebuild's error (its thread), once it failed

    @property
    def ready(self) -> bool:
        return self._bits is not None or self._adopt()

    def rebuild(self, path: Path) -> None:
        """Start the thread that reads every key of the archive at `path`."""
        self._thread = threading.Thread(
            target=self._read, args=(path,), name="archived-ids", daemon=True
        )
        self._thread.start()

    def wait(self, timeout_s: float) -> bool:
        """Wait for the rebuild (tests, benchmarks); True if it is adopted."""
        if self._thread is not None:
            self._thread.join(timeout_s)
        return self.ready

    def add(self, client_order_id: str, venue: str, cl_ord_ids: Iterable[str]) -> None:
        """An order about to be archived: its keys (before the writer may commit it)."""
        keys: list[Hashable] = [client_order_id, *((venue, cl) for cl in cl_ord_ids)]
        if self._bits is None and not self._adopt() and self._early is not None:
            self._early.extend(keys)
            if len(self._early) > MAX_EARLY:
                self._give_up(f"more than {MAX_EARLY} keys added during the rebuild")
        if self._bits is not None:
            _set(self._bits, keys)

    def maybe_id(self, client_order_id: str) -> bool:
        """False: no archived order has this client_order_id."""
        return self._maybe(client_order_id)

    def maybe_cl(self, venue: str, cl_ord_id: str) -> bool:
        """False: no archived order used `cl_ord_id` at `venue`."""
        return self._maybe((venue, cl_ord_id))

    def _maybe(self, key: Hashable) -> bool:
        bits = self._bits
        if bits is None:
            if not self._adopt():
                return True
            bits = self._bits
            assert bits is not None
        h = hash(key)
        step = (h >> 32) | 1
        for _ in range(HASHES):
            i = h & _MASK
            if not bits[i >> 3] >> (i & 7) & 1:
                return False
            h += step
        return True

    def _adopt(self) -> bool:
        """The rebuild's bits, once done, with every key added meanwhile (on the loop)."""
        built = self._built
        if built is None or self._early is None:
            if self._failed is not None and self._early is not None:
                self._give_up(self._failed)
            if self._early is None:  # given up: a rebuild done after it is dropped (not
                self._built = None  # one not read yet: the thread may be storing it now)
            return False
        _set(built, self._early)
        self._bits, self._early, self._built = built, None, None
        return True

    def _read(self, path: Path) -> None:
        bits = bytearray(BITS >> 3)
        try:
            db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            try:
                db.execute("BEGIN")  # one read snapshot for both tables
                coids = db.execute("SELECT client_order_id FROM orders")
                while rows := coids.fetchmany(_CHUNK):
                    _set(bits, (coid for (coid,) in rows))
                    time.sleep(0)  # the GIL to the loop between chunks
                cls = db.execute("SELECT venue, cl_ord_id FROM cl_ord_ids")
                while pairs := cls.fetchmany(_CHUNK):
                    _set(bits, ((venue, cl) for venue, cl in pairs))
                    time.sleep(0)
            finally:
                db.close()
        except (sqlite3.Error, OSError) as exc:
            self._failed = f"{type(exc).__name__}: {exc}"[:512]  # given up on the loop
            return
        self._built = bits

    def _give_up(self, error: str) -> None:
        """Never ready: nothing kept aside, every answer "maybe" (on the loop)."""
        self._early, self._built = None, None
        _log.error("archived_ids_rebuild_failed", error=error)


def _set(bits: bytearray, keys: Iterable[Hashable]) -> None:
    for key in keys:
        h = hash(key)
        step = (h >> 32) | 1
        for _ in range(HASHES):
            i = h & _MASK
            bits[i >> 3] |= 1 << (i & 7)
            h += step
