"""The OMS's answers to read requests (an order page, positions, the open-order snapshot).

They are built after the turn's events went out (the actor defers them to after the commit),
so their `event_seq` says exactly which events they already reflect (risk rebuilds its
exposure on that).
"""

from __future__ import annotations

from actors.oms.order_book import OrderBook
from protocol.messages import (
    ErrorCode,
    GetPositions,
    ListOrders,
    OrderList,
    Positions,
    RequestRejected,
    Snapshot,
)


def order_page(book: OrderBook, req: ListOrders, event_seq: int) -> OrderList:
    matching = book.orders(req.venue, open_only=req.open_only)
    end = req.offset + req.limit
    page = [o.view() for o in matching[req.offset : end]]
    more = end if end < len(matching) else None
    return OrderList(orders=page, next_offset=more, event_seq=event_seq)


def positions(book: OrderBook, req: GetPositions, event_seq: int) -> Positions:
    views = [p.view() for p in book.positions(req.venue)]
    return Positions(source="oms", venue=req.venue, positions=views, event_seq=event_seq)


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
