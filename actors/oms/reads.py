"""The OMS's answers to read requests (an order page, positions, the open-order snapshot).

They are built after the turn's events went out (the actor defers them to after the commit),
so their `event_seq` says exactly which events they already reflect (risk rebuilds its
exposure on that).
"""

from __future__ import annotations

from typing import Protocol

from actors.oms.exec_cut import ExecLog
from actors.oms.order_book import OrderBook
from actors.runtime.peer import Replier
from protocol.messages import (
    ErrorCode,
    GetPositions,
    ListOrders,
    OrderList,
    OrderView,
    Positions,
    PositionView,
    RequestRejected,
    Snapshot,
)


class PositionsHost(Protocol):
    book: OrderBook
    exec_log: ExecLog
    epoch: int
    event_seq: int


# A ListOrders offset at or above this pages the archive (from its row `offset - ARCHIVE`);
# below it, the orders in memory from that place in the book (`OrderBook.orders_from`).
ARCHIVE = 1 << 48


def order_page(book: OrderBook, req: ListOrders, event_seq: int) -> OrderList:
    """`offset` is a cursor (0, then the last page's `next_offset`), not an index: the
    orders in memory from a place in the book, then (all orders, not only open ones) the
    archived ones (`actors.oms.order_archive`), an archived order also in memory skipped.
    No order held throughout a listing is missed, however many end or leave memory between
    its pages (an index would skip the next page's first order each time one did); an order
    archived after its page went out may come again from the archive."""
    retention = book.retention
    page: list[OrderView] = []
    row = req.offset - ARCHIVE
    if row < 0:
        held, more = book.orders_from(
            req.offset, req.venue, open_only=req.open_only, limit=req.limit
        )
        page = [o.view() for o in held]
        if more is not None or req.open_only:
            return OrderList(orders=page, next_offset=more, event_seq=event_seq)
        row = 0
    if retention is None:
        return OrderList(orders=page, next_offset=None, event_seq=event_seq)
    want = req.limit - len(page)
    old, after = retention.archive.page(req.venue, row, want) if want else ([], row)
    page += [o.view() for o in old if book.held(o.client_order_id) is None]
    more = ARCHIVE + after if after is not None else None
    return OrderList(orders=page, next_offset=more, event_seq=event_seq)


def positions(reply: Replier, oms: PositionsHost, req: GetPositions) -> None:
    """The positions now, or with `as_of` (one venue) as of that cut of its executions
    (`actors.oms.exec_cut`): refused (NOT_READY) when the cut names another OMS incarnation
    or is older than what this one still knows."""
    views = [p.view() for p in oms.book.positions(req.venue)]
    cut = req.as_of
    if cut is not None:
        if req.venue is None or cut.oms_epoch != oms.epoch:
            reply.reject(ErrorCode.NOT_READY, "no consistent cut for this OMS incarnation")
            return
        then = oms.exec_log.positions_as_of(req.venue, cut, {p.symbol: p.qty for p in views})
        if then is None:
            reply.reject(ErrorCode.NOT_READY, "cut older than the executions kept")
            return
        views = [PositionView(venue=req.venue, symbol=s, qty=q) for s, q in sorted(then.items())]
    reply(
        Positions(source="oms", venue=req.venue, positions=views, event_seq=oms.event_seq, cut=cut)
    )


# One Snapshot reply holds at most this many open orders: ~230 bytes each, so ~1.1 MiB
# and ~0.1 s of the OMS loop (20,000 were 4.5 MiB, over the codec's 4 MiB, and 0.8 s: the
# OMS was killed as hung). More: refused, the client pages with ListOrders(open_only).
SNAPSHOT_MAX_ORDERS = 5000


def snapshot(book: OrderBook, event_seq: int) -> Snapshot | RequestRejected:
    open_orders = book.orders(open_only=True)
    if len(open_orders) > SNAPSHOT_MAX_ORDERS:
        reason = (
            f"{len(open_orders)} open orders: more than one snapshot carries"
            f" ({SNAPSHOT_MAX_ORDERS}); page with list_orders(open_only=True)"
        )
        return RequestRejected(code=ErrorCode.BAD_REQUEST, reason=reason)
    return Snapshot(event_seq=event_seq, orders=[o.view() for o in open_orders])
