"""The OMS's answers to read requests (an order page, positions, the open-order snapshot).

They are built after the turn's events went out (the actor defers them to after the commit),
so their `event_seq` says exactly which events they already reflect (risk rebuilds its
exposure on that).
"""

from __future__ import annotations

from typing import Protocol

from actors.oms.exec_cut import ExecLog
from actors.oms.order_book import OrderBook
from actors.oms.views import OmsViews
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

Reply = OrderList | RequestRejected


class PositionsHost(Protocol):
    book: OrderBook
    views: OmsViews
    exec_log: ExecLog
    epoch: int
    event_seq: int


# A ListOrders cursor (`offset`; 0 starts a listing): the OMS incarnation's tag, then a bit
# for the part (0: the orders in memory, from a place in the book, `OrderBook.orders_from`;
# 1: the archive, from a rowid), then the position. Places are this incarnation's own, so a
# cursor of another one (the OMS restarted between two pages) is refused, NOT_READY: the
# listing starts again (risk's rebuild, the client's `list_orders` and paged snapshot do).
_POS_BITS = 41
_ARCHIVE_BIT = 1 << _POS_BITS
_TAG_SHIFT = _POS_BITS + 1
_TAGS = 1 << 20  # so a cursor stays below 2**62 (`ListOrders.offset`'s bound)
STALE_CURSOR = "cursor of another OMS incarnation: list again from offset 0"


def cursor(epoch: int, position: int, *, archive: bool = False) -> int:
    tag = epoch % (_TAGS - 1) + 1  # never 0: offset 0 is the start
    return (tag << _TAG_SHIFT) | (_ARCHIVE_BIT if archive else 0) | position


def order_page(book: OrderBook, req: ListOrders, event_seq: int, epoch: int) -> Reply:
    """A page of a listing, by a cursor (0, then the last page's `next_offset`), not by an
    index: the orders in memory from a place in the book, then (every order, not only open
    ones) the archived ones (`actors.oms.order_archive`). No order held throughout the
    listing is missed, however many end or leave memory between its pages (an index skipped
    the next page's first order each time one did); an order in both parts (read back from
    the archive, or archived after its page went out) may come twice: the client lists it
    once. An archived order also held is given as held (the newer)."""
    at, archive_part = req.offset, False
    if at:
        if at >> _TAG_SHIFT != cursor(epoch, 0) >> _TAG_SHIFT:
            return RequestRejected(code=ErrorCode.NOT_READY, reason=STALE_CURSOR, field="offset")
        at, archive_part = at & (_ARCHIVE_BIT - 1), bool(at & _ARCHIVE_BIT)
    retention = book.retention
    if archive_part and (req.open_only or retention is None):
        return RequestRejected(
            code=ErrorCode.BAD_REQUEST, reason="not a cursor of this listing", field="offset"
        )
    page: list[OrderView] = []
    if not archive_part:
        held, more = book.orders_from(at, req.venue, open_only=req.open_only, limit=req.limit)
        page = [o.view() for o in held]
        if more is not None or req.open_only or retention is None:
            nxt = None if more is None else cursor(epoch, more)
            return OrderList(orders=page, next_offset=nxt, event_seq=event_seq)
        at = 0
    assert retention is not None
    want = req.limit - len(page)
    old, after = retention.archive.page(req.venue, at, want) if want else ([], at)
    page += [(book.held(o.client_order_id) or o).view() for o in old]
    nxt = None if after is None else cursor(epoch, after, archive=True)
    return OrderList(orders=page, next_offset=nxt, event_seq=event_seq)


def positions(reply: Replier, oms: PositionsHost, req: GetPositions) -> None:
    """The positions now, or with `as_of` (one venue) as of that cut of its executions
    (`actors.oms.exec_cut`): refused (NOT_READY) when the cut names another OMS incarnation
    or is older than what this one still knows."""
    views = oms.views.wire_positions(req.venue)  # with their cost known or not
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
