"""Old terminal orders are written to the archive after the journal commit, never inside an
apply, and leave memory only once the archive holds them (actors/oms/evictions.py). Before,
`apply_record` wrote the evicted order to the archive: a write that failed (disk full)
raised inside the apply of a fill, leaving the fill in memory but not in the journal, and
the evicted order in neither memory nor the archive."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from actors.oms.evictions import RETRY_S, Evictions
from actors.oms.journal import Journal
from actors.oms.order_archive import OrderArchive, Retention
from actors.oms.order_book import OrderBook
from actors.oms.retention import open_book
from protocol.messages import ExecReport, OrderStatus
from tests.oms.test_exec_quarantine import V, _fill, _Host, _live

D = Decimal


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _book(tmp_path: Path, clock: _Clock) -> tuple[OrderBook, Evictions, OrderArchive]:
    archive = OrderArchive(tmp_path / "orders.sqlite")
    book = OrderBook(Retention(archive, keep=1))
    assert book.evictions is not None
    book.evictions = Evictions(book.evictions.retention, book._drop, clock)  # noqa: SLF001
    return book, book.evictions, archive


def _cancelled(host: _Host, coid: str) -> None:
    cl = _live(host.book, coid)
    rep = ExecReport(venue=V, exec_id=f"X-{coid}", kind="cancelled", cl_ord_id=cl)
    out = host.exec_applier.apply(rep, 5)
    assert out is not None and out.applied


def _failures() -> float:
    return REGISTRY.get_sample_value("tradepulse_oms_archive_write_failures_total") or 0.0


def _disk_full(*args: Any) -> None:
    raise sqlite3.OperationalError("database or disk is full")


def test_an_archive_write_failure_leaves_the_fill_applied_and_journalled_and_loses_no_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fill finishes o1 while the archive is full: o0 (the older terminal order) must
    leave memory, but its write fails. The fill is applied and journalled (memory equals
    the replay of the journal), o0 stays in memory (found, in a snapshot), the failure is
    counted and logged; once the archive takes writes again o0 is archived and leaves."""
    clock = _Clock()
    book, evictions, archive = _book(tmp_path, clock)
    host = _Host(tmp_path, book)
    _cancelled(host, "o0")  # terminal, kept (keep=1)
    cl1 = _live(book, "o1")
    base = book.to_dict()
    monkeypatch.setattr(archive, "put", _disk_full)
    failures = _failures()
    host.journal.clear()
    out = host.exec_applier.apply(_fill(cl1, "F1", "10"), 10)  # o1 FILLED: o0 let go
    assert out is not None and out.applied and [r["kind"] for r in host.journal] == ["fill"]
    evictions.flush()  # after the journal commit: the write fails
    assert _failures() == failures + 1
    replay = OrderBook.from_dict(base)
    for rec in host.journal:
        replay.apply_record(rec)
    mem, again = book.get("o1"), replay.get("o1")
    assert mem is not None and again is not None
    assert (mem.status, mem.cum_qty) == (again.status, again.cum_qty) == (OrderStatus.FILLED, 10)
    assert book.held("o0") is not None and book.find(V, "o0") is not None
    assert "o0" in {o["client_order_id"] for o in book.to_dict()["orders"]}
    assert len(evictions) == 1
    monkeypatch.undo()
    evictions.flush()  # too soon: not tried again yet
    assert book.held("o0") is not None and len(archive) == 0
    clock.now += RETRY_S
    evictions.sync()  # written and committed: out of memory
    assert book.held("o0") is None and len(evictions) == 0
    found = book.get("o0")
    assert found is not None and found.status is OrderStatus.CANCELLED


def test_an_order_let_go_is_found_until_the_archive_holds_it(tmp_path: Path) -> None:
    """Between its eviction and its archive commit an order is still in the book: get, find
    and the snapshot have it; the archive write only happens after the commit."""
    book, evictions, archive = _book(tmp_path, _Clock())
    host = _Host(tmp_path, book)
    _cancelled(host, "o0")
    _cancelled(host, "o1")  # o0 let go: nothing written inside the apply
    assert len(archive) == 0 and len(evictions) == 1
    assert book.held("o0") is not None and book.held_by_cl(V, "o0") is not None
    evictions.flush()  # written in the archive's open transaction: not yet durable
    assert len(archive) == 1 and book.held("o0") is not None
    evictions.sync()
    assert book.held("o0") is None and book.held_by_cl(V, "o0") is None


def test_a_failed_archive_commit_keeps_its_orders_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The commit before a snapshot fails (EIO): the transaction is rolled back and its
    orders stay in memory (so the snapshot has them); the next sync archives them."""
    clock = _Clock()
    book, evictions, archive = _book(tmp_path, clock)
    host = _Host(tmp_path, book)
    for coid in ("o0", "o1", "o2"):
        _cancelled(host, coid)
    real_sync = archive.sync
    monkeypatch.setattr(archive, "sync", _disk_full)
    evictions.sync()
    assert book.held("o0") is not None and book.held("o1") is not None
    assert len(archive) == 0 and len(evictions) == 2  # rolled back
    monkeypatch.setattr(archive, "sync", real_sync)
    evictions.sync()
    assert book.held("o0") is None and book.held("o1") is None and len(archive) == 2


def test_an_order_changed_again_before_it_is_archived_stays(tmp_path: Path) -> None:
    """A late fill on an order let go but not yet archived: the order is held again (the
    newest terminal one) and does not leave with the archive's commit."""
    book, evictions, _ = _book(tmp_path, _Clock())
    host = _Host(tmp_path, book)
    _cancelled(host, "o0")
    _cancelled(host, "o1")  # o0 let go
    order = book.held("o0")
    assert order is not None
    late = _fill(order.cl_ord_id, "L1", "1")
    out = host.exec_applier.apply(late, 20)
    assert out is not None and out.applied  # o0 the newest terminal order: o1 let go
    evictions.sync()
    assert book.held("o0") is not None and book.held("o1") is None


def test_the_journal_commit_writes_the_evicted_orders(tmp_path: Path) -> None:
    """With the OMS's book (`open_book`), each journal commit writes the orders let go to
    the archive; the snapshot commits it and they leave memory; a reopened OMS finds them."""
    journal, rec = Journal.open(tmp_path, fsync=False)
    book = open_book(journal, rec.snapshot, tmp_path, keep=1)
    host = _Host(tmp_path, book)
    assert book.retention is not None
    archive = book.retention.archive
    for coid in ("o0", "o1", "o2"):
        _cancelled(host, coid)
        for r in host.journal:
            journal.append(r)
        host.journal.clear()
        journal.commit()
    assert len(archive) == 2 and book.held("o0") is not None  # written, not committed
    journal.write_snapshot(book.to_dict())
    assert book.held("o0") is None and book.held("o1") is None
    archive.close()
    journal.close()
    journal, rec = Journal.open(tmp_path, fsync=False)
    again = open_book(journal, rec.snapshot, tmp_path, keep=1)
    found = again.get("o0")
    assert found is not None and found.status is OrderStatus.CANCELLED
    journal.close()
    assert again.retention is not None
    again.retention.archive.close()
