"""Old terminal orders are handed to the archive's writer thread after the journal commit,
never written inside an apply or on the loop, and leave memory only once the thread has
committed them (actors/oms/evictions.py). Before, `apply_record` wrote the evicted order to
the archive: a write that failed (disk full) raised inside the apply of a fill, leaving the
fill in memory but not in the journal, and the evicted order in neither memory nor the
archive."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

import actors.oms.evictions as evictions_mod
from actors.oms.evictions import RETRY_S, Evictions
from actors.oms.journal import Journal
from actors.oms.order_archive import OrderArchive, Retention
from actors.oms.order_book import OrderBook
from actors.oms.orders import Order
from actors.oms.retention import open_book
from protocol.messages import ExecReport, OrderStatus, SubmitOrder
from tests.helpers import eventually
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


class _Killed(Exception):
    """Stands for kill -9 of the OMS while the writer's commit is in flight."""


@contextmanager
def held_commits(evictions: Evictions) -> Iterator[threading.Event]:
    """The writer's COMMITs wait until the returned event is set (a slow disk) or the
    block ends; then each fails (rolled back: as a kill -9 before the fsync would)."""
    go = threading.Event()
    entered = threading.Event()

    def wait() -> None:
        entered.set()
        go.wait(10.0)
        raise _Killed

    evictions.writer.before_commit = wait
    try:
        yield entered
    finally:
        go.set()
        evictions.writer.close()


def test_an_archive_write_failure_leaves_the_fill_applied_and_journalled_and_loses_no_order(
    tmp_path: Path,
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
    evictions.writer.before_commit = _disk_full
    failures = _failures()
    host.journal.clear()
    out = host.exec_applier.apply(_fill(cl1, "F1", "10"), 10)  # o1 FILLED: o0 let go
    assert out is not None and out.applied and [r["kind"] for r in host.journal] == ["fill"]
    evictions.flush()  # after the journal commit: handed to the writer, whose commit fails
    eventually(lambda: evictions.poll() or _failures() == failures + 1)
    replay = OrderBook.from_dict(base)
    for rec in host.journal:
        replay.apply_record(rec)
    mem, again = book.get("o1"), replay.get("o1")
    assert mem is not None and again is not None
    assert (mem.status, mem.cum_qty) == (again.status, again.cum_qty) == (OrderStatus.FILLED, 10)
    assert book.held("o0") is not None and book.find(V, "o0") is not None
    assert "o0" in {o["client_order_id"] for o in book.to_dict()["orders"]}
    assert len(evictions) == 1 and evictions.in_flight == 0
    evictions.writer.before_commit = lambda: None
    evictions.flush()  # too soon: not tried again yet
    assert evictions.in_flight == 0 and book.held("o0") is not None and len(archive) == 0
    clock.now += RETRY_S
    assert evictions.sync()  # written and committed: out of memory
    assert book.held("o0") is None and len(evictions) == 0
    found = book.get("o0")
    assert found is not None and found.status is OrderStatus.CANCELLED
    evictions.close()


def test_an_order_let_go_is_found_until_the_archive_holds_it(tmp_path: Path) -> None:
    """Between its eviction and the writer's confirmed commit an order is still in the
    book: get, find, the duplicate check of a submit and the snapshot have it (the commit
    held back, as a slow disk would); nothing is written inside the apply."""
    book, evictions, archive = _book(tmp_path, _Clock())
    host = _Host(tmp_path, book)
    _cancelled(host, "o0")
    _cancelled(host, "o1")  # o0 let go: nothing written inside the apply
    assert len(archive) == 0 and len(evictions) == 1
    with held_commits(evictions) as committing:
        evictions.flush()  # handed over: the thread's COMMIT waits
        assert committing.wait(5.0)
        assert evictions.in_flight == 1
        assert book.held("o0") is not None and book.held_by_cl(V, "o0") is not None
        assert book.get("o0") is not None and book.find(V, "o0") is not None
        order = book.get("o0")
        assert order is not None
        assert book.submit(_resubmit(order), 50).kind == "duplicate"
        assert "o0" in {o["client_order_id"] for o in book.to_dict()["orders"]}
    evictions.poll()  # that commit failed (as a kill -9 before it): still in memory
    assert book.held("o0") is not None and len(archive) == 0
    evictions.writer = type(evictions.writer)(archive.path)
    assert evictions.sync()
    assert book.held("o0") is None and book.held_by_cl(V, "o0") is None
    assert book.get("o0") is not None  # read back from the archive
    evictions.close()


def test_a_failed_archive_commit_keeps_its_orders_in_memory(tmp_path: Path) -> None:
    """The writer's commit fails (EIO): the transaction is rolled back and its orders stay
    in memory (so a snapshot has them); the next attempt archives them."""
    clock = _Clock()
    book, evictions, archive = _book(tmp_path, clock)
    host = _Host(tmp_path, book)
    for coid in ("o0", "o1", "o2"):
        _cancelled(host, coid)
    evictions.writer.before_commit = _disk_full
    assert not evictions.sync()
    assert book.held("o0") is not None and book.held("o1") is not None
    assert len(archive) == 0 and len(evictions) == 2  # rolled back
    evictions.writer.before_commit = lambda: None
    assert evictions.sync()
    assert book.held("o0") is None and book.held("o1") is None and len(archive) == 2
    evictions.close()


def test_an_order_changed_again_before_it_is_archived_stays(tmp_path: Path) -> None:
    """A late fill on an order handed to the writer but not yet confirmed: the order is
    held again (the newest terminal order) and does not leave with that commit."""
    book, evictions, _ = _book(tmp_path, _Clock())
    host = _Host(tmp_path, book)
    _cancelled(host, "o0")
    _cancelled(host, "o1")  # o0 let go
    go = threading.Event()
    evictions.writer.before_commit = lambda: _wait(go)
    evictions.flush()  # o0 in flight
    order = book.held("o0")
    assert order is not None and evictions.in_flight == 1
    late = _fill(order.cl_ord_id, "L1", "1")
    out = host.exec_applier.apply(late, 20)
    assert out is not None and out.applied  # o0 the newest terminal order: o1 let go
    go.set()
    assert evictions.sync()
    assert book.held("o0") is not None and book.held("o1") is None
    evictions.close()


def test_an_order_let_go_again_while_in_flight_leaves_with_its_newer_copy(
    tmp_path: Path,
) -> None:
    """o0 is in flight, changed by a late fill (held again) and let go again before that
    commit is confirmed: the first confirmation does not drop it (the archive's copy is
    the older one); it leaves once the newer copy is committed, and the archive has it."""
    book, evictions, archive = _book(tmp_path, _Clock())
    host = _Host(tmp_path, book)
    _cancelled(host, "o0")
    _cancelled(host, "o1")  # o0 let go
    go = threading.Event()
    evictions.writer.before_commit = lambda: _wait(go)
    evictions.flush()  # o0 (cum 0) in flight
    order = book.held("o0")
    assert order is not None
    out = host.exec_applier.apply(_fill(order.cl_ord_id, "L1", "1"), 20)
    assert out is not None and out.applied  # o0 held again, o1 let go
    _cancelled(host, "o2")  # o2 the newest: o0 let go again, a newer copy
    go.set()
    eventually(lambda: evictions.poll() or evictions.in_flight == 0)
    assert evictions.sync()
    assert book.held("o0") is None
    archived = archive.get("o0")
    assert archived is not None and archived.cum_qty == 1
    evictions.close()


def test_the_journal_commit_hands_the_evicted_orders_to_the_writer(tmp_path: Path) -> None:
    """With the OMS's book (`open_book`), each journal commit hands the orders let go to
    the writer; they leave memory once it committed them; a reopened OMS finds them."""
    journal, rec = Journal.open(tmp_path, fsync=False)
    book = open_book(journal, rec.snapshot, tmp_path, keep=1)
    host = _Host(tmp_path, book)
    assert book.retention is not None and book.evictions is not None
    archive = book.retention.archive
    for coid in ("o0", "o1", "o2"):
        _cancelled(host, coid)
        for r in host.journal:
            journal.append(r)
        host.journal.clear()
        journal.commit()
    eventually(lambda: book.evictions.poll() or book.held("o1") is None)  # type: ignore[union-attr]
    assert book.held("o0") is None and len(archive) == 2
    journal.write_snapshot(book.to_dict())
    book.evictions.close()
    archive.close()
    journal.close()
    journal, rec = Journal.open(tmp_path, fsync=False)
    again = open_book(journal, rec.snapshot, tmp_path, keep=1)
    found = again.get("o0")
    assert found is not None and found.status is OrderStatus.CANCELLED
    journal.close()
    assert again.retention is not None
    again.retention.archive.close()


def _wait(go: threading.Event) -> None:  # a slow commit, until the test lets it go
    assert go.wait(10.0)


def _resubmit(order: Order) -> SubmitOrder:
    return SubmitOrder(
        client_order_id=order.client_order_id, venue=order.venue, symbol=order.symbol,
        side=order.side, qty=order.qty, order_type=order.order_type, price=order.price,
        tif=order.tif,
    )  # fmt: skip


def test_in_flight_orders_are_bounded_and_the_rest_wait_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer is stuck (a slow disk): each flush returns at once, at most
    `MAX_IN_FLIGHT` orders are handed over, the others stay in the book (found), and all
    go once the writer moves again."""
    monkeypatch.setattr(evictions_mod, "MAX_IN_FLIGHT", 2)
    book, evictions, archive = _book(tmp_path, _Clock())
    host = _Host(tmp_path, book)
    go = threading.Event()
    evictions.writer.before_commit = lambda: _wait(go)
    for i in range(6):
        _cancelled(host, f"o{i}")  # o0..o4 let go
        evictions.flush()
    assert evictions.in_flight == 2 and len(evictions) == 5
    assert all(book.held(f"o{i}") is not None for i in range(5))
    go.set()
    assert evictions.sync()
    assert len(archive) == 5 and all(book.held(f"o{i}") is None for i in range(5))
    evictions.close()


def test_a_stop_waits_for_the_writer_within_its_bound(tmp_path: Path) -> None:
    """`close` hands everything over and waits at most its bound: a writer stuck past it
    leaves its orders in memory (the stop's snapshot holds them); one that finishes in
    time archives them all."""
    book, evictions, archive = _book(tmp_path, _Clock())
    host = _Host(tmp_path, book)
    for i in range(3):
        _cancelled(host, f"o{i}")
    with held_commits(evictions):
        assert not evictions.close(timeout_s=0.3)  # returned with the commit still held:
        assert evictions.in_flight == 2  # not reported (an unbounded wait never returns)
        assert book.held("o0") is not None and book.held("o1") is not None
    assert len(archive) == 0
    book2, evictions2, archive2 = _book(tmp_path / "b", _Clock())
    host2 = _Host(tmp_path / "b", book2)
    for i in range(3):
        _cancelled(host2, f"o{i}")
    assert evictions2.close(timeout_s=5.0)
    assert len(archive2) == 2 and book2.held("o0") is None
