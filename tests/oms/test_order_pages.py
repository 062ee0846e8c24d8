"""ListOrders pages by a cursor, not by an index: an order that ends (open-only pages) or
leaves memory for the archive between two pages hides no other order from the next page.
Risk rebuilds its exposure from these pages; with an index, each order that ended in
between hid the first order of the next page from it. A cursor is its OMS incarnation's:
after a restart it is refused (NOT_READY) and the listing starts again."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from actors.oms import reads
from actors.oms.order_archive import OrderArchive, Retention
from actors.oms.order_book import OrderBook
from protocol.client import ExecutionClient
from protocol.event_stream import take_snapshot
from protocol.messages import (
    ErrorCode,
    ExecReport,
    ListOrders,
    OrderList,
    OrderStatus,
    OrdType,
    RequestRejected,
    RiskVerdict,
    Side,
    Snapshot,
    SnapshotRequest,
    SubmitOrder,
)

V = "sim"
EPOCH = 7


def _open(book: OrderBook, coid: str) -> None:
    """A resting limit order, approved: open until it fills."""
    order = SubmitOrder(
        client_order_id=coid, venue=V, symbol="S", side=Side.BUY, qty=Decimal(1),
        order_type=OrdType.LIMIT, price=Decimal(100),
    )  # fmt: skip
    assert book.submit(order, 1).applied
    assert book.risk_verdict(RiskVerdict(client_order_id=coid, approved=True), 2).applied


def _report(coid: str) -> ExecReport:
    return ExecReport(
        venue=V, exec_id=f"X-{coid}", kind="fill", cl_ord_id=coid, last_qty=Decimal(1),
        last_px=Decimal(100), cum_qty=Decimal(1), ord_status=OrderStatus.FILLED,
    )  # fmt: skip


def _fill(book: OrderBook, coid: str) -> None:
    assert book.apply_exec(_report(coid), 3).applied
    if book.evictions is not None:
        book.evictions.sync()  # as the journal commit and the archive's would


def _reply(
    book: OrderBook, offset: int, *, open_only: bool, limit: int = 2, epoch: int = EPOCH
) -> OrderList | RequestRejected:
    req = ListOrders(open_only=open_only, offset=offset, limit=limit)
    return reads.order_page(book, req, 0, epoch)


def _page(book: OrderBook, offset: int, *, open_only: bool) -> tuple[list[str], int | None]:
    page = _reply(book, offset, open_only=open_only)
    assert isinstance(page, OrderList), page
    return [o.client_order_id for o in page.orders], page.next_offset


def test_an_order_filled_between_two_open_pages_hides_none_of_the_next() -> None:
    book = OrderBook()
    for i in range(6):
        _open(book, f"o{i}")
    first, cursor = _page(book, 0, open_only=True)
    assert first == ["o0", "o1"] and cursor is not None
    _fill(book, "o0")  # ends between the pages (an index would now skip o2)
    _fill(book, "o3")  # and one not yet listed: it is no longer open, so not listed
    _open(book, "o6")  # a new one comes at the end
    rest: list[str] = []
    while cursor is not None:
        names, cursor = _page(book, cursor, open_only=True)
        rest += names
    assert rest == ["o2", "o4", "o5", "o6"]


def test_an_order_archived_between_two_pages_of_every_order_hides_none(tmp_path: Path) -> None:
    """Every order: those in memory, then the archive's. `o0` listed on the first page
    leaves memory before the second (keep=1 terminal order in memory): `o2` is still
    listed, and every order comes at least once."""
    book = OrderBook(Retention(OrderArchive.in_dir(tmp_path), keep=1))
    for i in range(5):
        _open(book, f"o{i}")
    seen, cursor = _page(book, 0, open_only=False)
    assert seen == ["o0", "o1"] and cursor is not None
    _fill(book, "o0")
    _fill(book, "o4")  # o0, the older terminal one, goes to the archive
    assert book.held("o0") is None
    while cursor is not None:
        names, cursor = _page(book, cursor, open_only=False)
        seen += names
    assert seen[:5] == ["o0", "o1", "o2", "o3", "o4"]  # memory (o2 not skipped) ...
    assert set(seen) == {f"o{i}" for i in range(5)}  # ... then the archive (o0 again)


def test_an_archived_order_read_back_during_the_archive_pages_is_listed(tmp_path: Path) -> None:
    """A venue repeats an archived order's fill after the memory pages: the order is read
    back (held again, at the end of the book, past those pages); the archive pages give it
    (as held) instead of skipping it for being held."""
    book = OrderBook(Retention(OrderArchive.in_dir(tmp_path), keep=1))
    _open(book, "live")
    for i in range(4):
        _open(book, f"o{i}")
        _fill(book, f"o{i}")  # o0..o2 archived, o3 the terminal order kept
    assert book.held("o1") is None
    seen, cursor = _page(book, 0, open_only=False)
    assert seen == ["live", "o3"] and cursor is not None
    assert book.apply_exec(_report("o1"), 4).kind == "duplicate"
    assert book.held("o1") is not None  # read back
    while cursor is not None:
        names, cursor = _page(book, cursor, open_only=False)
        seen += names
    assert set(seen) == {"live", "o0", "o1", "o2", "o3"}


def test_a_cursor_of_another_oms_incarnation_is_refused_not_followed(tmp_path: Path) -> None:
    """The book restarts (snapshot load: places numbered again from 0, those of archived
    orders gone): the old incarnation's cursor would point past most orders and end the
    listing early; it is refused NOT_READY, and a listing from 0 gives them all."""
    archive = OrderArchive.in_dir(tmp_path)
    book = OrderBook(Retention(archive, keep=1))
    for i in range(5):  # places taken by orders that ended and were archived
        _open(book, f"f{i}")
        _fill(book, f"f{i}")
    for i in range(5):
        _open(book, f"o{i}")
    _names, cursor = _page(book, 0, open_only=True)
    assert cursor is not None
    again = OrderBook.from_dict(book.to_dict(), Retention(archive, keep=1))
    refused = _reply(again, cursor, open_only=True, epoch=EPOCH + 1)
    assert isinstance(refused, RequestRejected) and refused.code is ErrorCode.NOT_READY
    assert refused.field == "offset"
    listed: list[str] = []
    offset: int | None = 0
    while offset is not None:
        page = _reply(again, offset, open_only=True, epoch=EPOCH + 1)
        assert isinstance(page, OrderList)
        listed += [o.client_order_id for o in page.orders]
        offset = page.next_offset
    assert listed == [f"o{i}" for i in range(5)]


def test_cursors_that_the_oms_never_gave_are_refused(tmp_path: Path) -> None:
    """An every-order listing's archive cursor in an open-only request (it would answer
    terminal orders as open), one past the bound (it crashed the OMS in SQLite)."""
    book = OrderBook(Retention(OrderArchive.in_dir(tmp_path), keep=1))
    for i in range(3):
        _open(book, f"o{i}")
        _fill(book, f"o{i}")
    archive_cursor = reads.cursor(EPOCH, 0, archive=True)
    assert isinstance(_reply(book, archive_cursor, open_only=False), OrderList)
    bad = _reply(book, archive_cursor, open_only=True)
    assert isinstance(bad, RequestRejected) and bad.code is ErrorCode.BAD_REQUEST
    with pytest.raises(ValidationError):
        ListOrders(offset=2**63 + 2**48)


def _client(request: Callable[[ListOrders | SnapshotRequest], object]) -> ExecutionClient:
    client = ExecutionClient.__new__(ExecutionClient)  # no sockets: its replies are `request`'s
    client._request = request  # type: ignore[method-assign,assignment]
    return client


def test_the_client_lists_an_order_a_later_page_has_again_once(tmp_path: Path) -> None:
    """`ExecutionClient.list_orders` over the pages of the listing above: `o0` came twice
    (memory, then the archive); the client lists it once, as the later page has it."""
    book = OrderBook(Retention(OrderArchive.in_dir(tmp_path), keep=1))
    for i in range(5):
        _open(book, f"o{i}")
    pages = []

    def request(body: ListOrders | SnapshotRequest) -> OrderList | RequestRejected:
        assert isinstance(body, ListOrders)
        pages.append(body.offset)
        if len(pages) == 2:  # between the first page and the second, as above
            _fill(book, "o0")
            _fill(book, "o4")
        return reads.order_page(book, body.model_copy(update={"limit": 2}), 0, EPOCH)

    listed = _client(request).list_orders()
    assert len(pages) > 2
    assert sorted(o.client_order_id for o in listed) == [f"o{i}" for i in range(5)]
    assert {o.client_order_id: o.status for o in listed}["o0"] is OrderStatus.FILLED


class _RestartingOms:
    """Pages of a book whose OMS restarts after the first page (snapshot load, next epoch)."""

    def __init__(self, book: OrderBook, archive: OrderArchive) -> None:
        self.book, self.archive, self.epoch, self.pages = book, archive, EPOCH, 0

    def __call__(self, body: ListOrders | SnapshotRequest) -> OrderList | RequestRejected:
        if isinstance(body, SnapshotRequest):  # too many open orders for one: paged
            return RequestRejected(code=ErrorCode.BAD_REQUEST, reason="page it")
        self.pages += 1
        if self.pages == 2:
            self.book = OrderBook.from_dict(self.book.to_dict(), Retention(self.archive, keep=1))
            self.epoch += 1
        return reads.order_page(self.book, body.model_copy(update={"limit": 2}), 0, self.epoch)


@pytest.mark.parametrize("how", ["list_orders", "snapshot"])
def test_the_client_lists_again_when_the_oms_restarted_between_pages(
    tmp_path: Path, how: str
) -> None:
    """`list_orders` and the paged snapshot: the OMS restarts after the first page (its next
    incarnation refuses the cursor); each starts again and gets every open order once."""
    archive = OrderArchive.in_dir(tmp_path)
    book = OrderBook(Retention(archive, keep=1))
    for i in range(5):
        _open(book, f"o{i}")
    oms = _RestartingOms(book, archive)
    client = _client(oms)
    if how == "list_orders":
        got = [o.client_order_id for o in client.list_orders(open_only=True)]
    else:
        _, snap = take_snapshot(lambda body: (1, client._request(body)))  # what events() does
        assert isinstance(snap, Snapshot)
        got = [o.client_order_id for o in snap.orders]
    assert got == [f"o{i}" for i in range(5)]
    assert oms.pages == 5  # the first page, the refused cursor, then three pages from 0
