"""The book's (venue, ClOrdID) index and the cyclic collector: a new order must not make
the young collections walk an index of every held order (issue 16: cost per order
independent of the number of open orders)."""

from __future__ import annotations

import gc
from pathlib import Path

from actors.oms.order_archive import OrderArchive, Retention
from actors.oms.order_book import OrderBook
from actors.runtime.gcpause import collections_paused
from protocol.messages import OrderStatus
from tests.oms.test_order_gc import V, _open

HELD = 3000


def _young_containers_of_size(n: int) -> list[str]:
    return [
        type(o).__name__
        for gen in (0, 1)
        for o in gc.get_objects(gen)
        if isinstance(o, dict | list | set) and len(o) >= n
    ]


def test_a_new_order_puts_no_book_sized_container_among_the_young_objects() -> None:
    """After a full collection, one more order leaves no container of the book's size in
    the young generations. The index was one dict keyed by (venue, ClOrdID) tuples: a new
    key (a tuple, tracked when made) had the collector track the whole dict again, and the
    next young collections walked all its entries (~65 ms per walk at 50,000 open orders,
    in-process: the OMS's gen-0/1 collections cost 4x more at 50,000 than at 1,000)."""
    book = OrderBook()
    with collections_paused():
        for i in range(HELD):
            _open(book, f"o{i}", filled=i % 2 == 0)
    gc.collect()
    with collections_paused():  # nothing moves between the generations meanwhile
        order = _open(book, "new", filled=True)
        young = _young_containers_of_size(HELD)
    assert young == []
    assert order.pending_cl_ord_id is not None  # a cancel request id: indexed too
    assert book.find(V, "new") is order and book.held_by_cl(V, "new") is order
    assert book.find(V, order.pending_cl_ord_id) is order
    assert book.held_by_cl("otherVenue", "new") is None and book.find("otherVenue", "new") is None


def test_the_index_forgets_an_order_that_leaves_memory(tmp_path: Path) -> None:
    """An order that ends and leaves the book for the archive is no longer found among the
    held ones by any of its ClOrdIDs (and is found again through the archive)."""
    book = OrderBook(Retention(OrderArchive(tmp_path / "orders.sqlite"), keep=1))
    for coid in ("a", "b", "c"):
        _open(book, coid)
        assert book.apply_venue_status(coid, OrderStatus.CANCELLED, 6).applied
    assert book.held("a") is not None  # until the archive holds it (after the commit)
    assert book.evictions is not None
    book.evictions.sync()
    assert book.held("a") is None and book.held_by_cl(V, "a") is None
    found = book.find(V, "a")
    assert found is not None and found.client_order_id == "a"
    assert book.held_by_cl(V, "a") is found  # admitted again: indexed again
