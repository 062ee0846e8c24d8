"""The OMS's answers to read requests (an order page, positions, the open-order snapshot).

They are built after the turn's events went out (the actor defers them to after the commit),
so their `event_seq` says exactly which events they already reflect (risk rebuilds its
exposure on that).
"""

from __future__ import annotations

from actors.oms.order_book import OrderBook
from protocol.messages import GetPositions, ListOrders, OrderList, Positions, Snapshot


def order_page(book: OrderBook, req: ListOrders, event_seq: int) -> OrderList:
    """Offsets index the orders in memory, then (all orders, not only open ones) the
    archived ones (`actors.oms.order_archive`), an archived order also in memory skipped."""
    matching = book.orders(req.venue, open_only=req.open_only)
    end = req.offset + req.limit
    page = [o.view() for o in matching[req.offset : end]]
    more = end if end < len(matching) else None
    retention = book.retention
    if req.open_only or retention is None or more is not None:
        return OrderList(orders=page, next_offset=more, event_seq=event_seq)
    start = max(0, req.offset - len(matching))  # archive rows before this page
    want = req.limit - len(page)
    old = retention.archive.page(req.venue, start, want)
    held = {o.client_order_id for o in matching}
    page += [o.view() for o in old if o.client_order_id not in held]
    more = len(matching) + start + len(old) if len(old) == want else None
    return OrderList(orders=page, next_offset=more, event_seq=event_seq)


def positions(book: OrderBook, req: GetPositions, event_seq: int) -> Positions:
    views = [p.view() for p in book.positions(req.venue)]
    return Positions(source="oms", venue=req.venue, positions=views, event_seq=event_seq)


def snapshot(book: OrderBook, event_seq: int) -> Snapshot:
    orders = [o.view() for o in book.orders(open_only=True)]
    return Snapshot(event_seq=event_seq, orders=orders)
