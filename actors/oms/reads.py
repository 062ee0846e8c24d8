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
