"""The book's orders and the cyclic collector: a held open order adds no object the
collector tracks (a full collection used to traverse three per order: ~80 ms at 50,000),
and an order that ends and leaves memory is freed by reference counting alone."""

from __future__ import annotations

import gc
import tracemalloc
from decimal import Decimal
from pathlib import Path

from actors.oms.order_archive import OrderArchive, Retention
from actors.oms.order_book import OrderBook
from actors.oms.orders import Order
from actors.runtime.gcpause import collections_paused
from protocol.messages import OrderStatus, RiskVerdict, SubmitOrder
from protocol.venue_messages import ExecReport

V = "simA"


def _open(book: OrderBook, coid: str, *, filled: bool = False) -> Order:
    """`coid` as the OMS holds a live order: submitted, approved, accepted (and partly
    filled), with a cancel request pending on every other one."""
    msg = SubmitOrder(
        client_order_id=coid, venue=V, symbol="AAPL", side="BUY", qty=Decimal(10),
        order_type="LIMIT", price=Decimal("95.5"),
    )  # fmt: skip
    assert book.submit(msg, 1).applied
    assert book.risk_verdict(RiskVerdict(client_order_id=coid, approved=True), 2).applied
    assert book.apply_venue_status(coid, OrderStatus.ACCEPTED, 3, venue_order_id="v" + coid).applied
    if filled:
        report = ExecReport(
            venue=V, kind="fill", cl_ord_id=coid, exec_id="x" + coid, last_qty=Decimal(2),
            last_px=Decimal("95.5"), cum_qty=Decimal(2), leaves_qty=Decimal(8),
            avg_px=Decimal("95.5"), ord_status="PARTIALLY_FILLED",
        )  # fmt: skip
        assert book.apply_exec(report, 4).applied
        assert book.request_cancel(coid, 5).applied
    order = book.held(coid)
    assert order is not None
    return order


def _tracked() -> int:
    gc.collect()  # the young tuples the collector untracks at their first pass
    return len(gc.get_objects())


def test_a_held_open_order_adds_no_object_the_collector_tracks() -> None:
    """2,000 live orders (accepted, half of them partly filled with a cancel pending) add
    no tracked object: not the Order, nor its ClOrdIDs or exec ids (a list, a set and the
    Order itself were three per order)."""
    book = OrderBook()
    _open(book, "warm", filled=True)
    before = _tracked()
    orders = [_open(book, f"o{i}", filled=i % 2 == 0) for i in range(2000)]
    grown = _tracked() - before
    assert grown < 20, f"{grown} more tracked objects for 2,000 held orders"
    filled = orders[0]
    assert filled.exec_ids and filled.pending_cl_ord_id and len(filled.cl_ord_ids) == 2
    for value in (filled, filled.exec_ids, filled.cl_ord_ids):
        assert not gc.is_tracked(value), value


def test_an_order_that_ends_and_leaves_memory_is_freed(tmp_path: Path) -> None:
    """3,000 orders that end (cancelled at the venue) and leave the book for the archive
    (the book keeps 50 terminal ones): with the cyclic collector off, the memory they took
    is given back (reference counting alone frees them: an untracked order in a cycle would
    never be freed). A leak of an order and its values is ~1 KiB each: 3 MiB here."""
    archive = OrderArchive(tmp_path / "orders.sqlite")
    book = OrderBook(Retention(archive, keep=50))
    evictions = book.evictions
    assert evictions is not None

    def run(first: int, n: int) -> None:
        for i in range(first, first + n):
            coid = f"e{i}"
            _open(book, coid, filled=i % 2 == 0)
            assert book.apply_venue_status(coid, OrderStatus.CANCELLED, 6).applied
            evictions.flush()  # as after each journal commit
            if i % 100 == 99:  # the archive's writer thread kept within 100 orders, so the
                assert evictions.sync()  # book's tables do not grow with how far it lags
        assert evictions.sync()

    try:
        with collections_paused():
            run(0, 500)  # the book at its 50 terminal orders, caches warm
            tracemalloc.start()
            try:
                held = tracemalloc.get_traced_memory()[0]
                run(500, 3000)
                grown = tracemalloc.get_traced_memory()[0] - held
            finally:
                tracemalloc.stop()
        assert grown < 256 * 1024, f"{grown} bytes kept by 3,000 ended orders"
        assert len(book.held_orders()) == 50 and book.get("e17") is not None  # archived
    finally:
        archive.close()
