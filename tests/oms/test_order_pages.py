"""ListOrders pages by a cursor, not by an index: an order that ends (open-only pages) or
leaves memory for the archive between two pages hides no other order from the next page.
Risk rebuilds its exposure from these pages; with an index, each order that ended in
between hid the first order of the next page from it."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from actors.oms import reads
from actors.oms.order_archive import OrderArchive, Retention
from actors.oms.order_book import OrderBook
from protocol.client import ExecutionClient
from protocol.messages import (
    ExecReport,
    ListOrders,
    OrderList,
    OrderStatus,
    OrdType,
    RiskVerdict,
    Side,
    SubmitOrder,
)

V = "sim"


def _open(book: OrderBook, coid: str) -> None:
    """A resting limit order, approved: open until it fills."""
    order = SubmitOrder(
        client_order_id=coid, venue=V, symbol="S", side=Side.BUY, qty=Decimal(1),
        order_type=OrdType.LIMIT, price=Decimal(100),
    )  # fmt: skip
    assert book.submit(order, 1).applied
    assert book.risk_verdict(RiskVerdict(client_order_id=coid, approved=True), 2).applied


def _fill(book: OrderBook, coid: str) -> None:
    report = ExecReport(
        venue=V, exec_id=f"X-{coid}", kind="fill", cl_ord_id=coid, last_qty=Decimal(1),
        last_px=Decimal(100), cum_qty=Decimal(1), ord_status=OrderStatus.FILLED,
    )  # fmt: skip
    assert book.apply_exec(report, 3).applied


def _page(
    book: OrderBook, offset: int, *, open_only: bool, limit: int = 2
) -> tuple[list[str], int | None]:
    page = reads.order_page(book, ListOrders(open_only=open_only, offset=offset, limit=limit), 0)
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


def test_the_client_lists_an_order_a_later_page_has_again_once(tmp_path: Path) -> None:
    """`ExecutionClient.list_orders` over the pages of the listing above: `o0` came twice
    (memory, then the archive); the client lists it once, as the later page has it."""
    book = OrderBook(Retention(OrderArchive.in_dir(tmp_path), keep=1))
    for i in range(5):
        _open(book, f"o{i}")
    pages = []

    def request(body: ListOrders) -> OrderList:
        pages.append(body.offset)
        if len(pages) == 2:  # between the first page and the second, as above
            _fill(book, "o0")
            _fill(book, "o4")
        return reads.order_page(book, body.model_copy(update={"limit": 2}), 0)

    client = ExecutionClient.__new__(ExecutionClient)  # no sockets: its pages are `request`'s
    client._request = request  # type: ignore[method-assign,assignment]
    listed = client.list_orders()
    assert len(pages) > 2
    assert sorted(o.client_order_id for o in listed) == [f"o{i}" for i in range(5)]
    assert {o.client_order_id: o.status for o in listed}["o0"] is OrderStatus.FILLED
