"""A client's cancel or replace request, decided against the order (pure logic, no I/O).

`OrderBook.request_cancel` / `request_replace` hand the request here, which checks it
against the order and, if it stands, applies the request event through the book's own
commands (`RequestBook`) under a new request ClOrdID (``<original>.c<n>`` / ``.r<n>``, see
`actors.oms.orders.request_cl_ord_id`). A repeat of a request already pending (or of a
replace already done: its ack lost) is a duplicate, not a second request.
"""

from __future__ import annotations

from typing import Any, Protocol

from actors.oms.lifecycle import Event
from actors.oms.orders import Order, Outcome, optional_str, request_cl_ord_id
from protocol.messages import OrderStatus, OrdType, ReplaceOrder

S = OrderStatus


class RequestBook(Protocol):
    """The book commands a cancel or replace request is applied through."""

    def get(self, client_order_id: str, *, admit: bool = ...) -> Order | None: ...

    def record_event(
        self, client_order_id: str, event: Event, ts_ns: int, **fields: Any
    ) -> Outcome: ...


def request_cancel(book: RequestBook, client_order_id: str, ts_ns: int) -> Outcome:
    order = book.get(client_order_id, admit=True)
    if order is None:
        return Outcome.refused(None, "unknown order")
    if order.status in (S.PENDING_CANCEL, S.CANCELLED):
        return Outcome("duplicate", order, reason=f"already {order.status}")
    cl = request_cl_ord_id(order.cl_ord_ids[0], "c", order.request_seq + 1)
    return book.record_event(client_order_id, Event.CANCEL_REQUESTED, ts_ns, cl_ord_id=cl)


def request_replace(book: RequestBook, msg: ReplaceOrder, ts_ns: int) -> Outcome:
    order = book.get(msg.client_order_id, admit=True)
    if order is None:
        return Outcome.refused(None, "unknown order")
    qty = order.qty if msg.qty is None else msg.qty
    price = order.price if msg.price is None else msg.price
    if order.status == S.PENDING_REPLACE and (qty, price) == (
        order.pending_qty,
        order.pending_price,
    ):
        return Outcome("duplicate", order, reason="same replace already pending")
    if (qty, price) == (order.qty, order.price):
        if order.cl_ord_id != order.cl_ord_ids[0]:
            # idempotent: a retried replace whose first attempt took effect (ack lost)
            return Outcome("duplicate", order, reason="already replaced to these terms")
        return Outcome.refused(order, "replace changes nothing")
    if qty <= order.cum_qty:
        return Outcome.refused(order, f"new qty {qty} must exceed cum_qty {order.cum_qty}")
    if (
        order.order_type == OrdType.MARKET
        and msg.price is not None
        or (price is not None and price <= 0)
    ):
        return Outcome.refused(order, "invalid price for the order type")
    cl = request_cl_ord_id(order.cl_ord_ids[0], "r", order.request_seq + 1)
    return book.record_event(
        msg.client_order_id,
        Event.REPLACE_REQUESTED,
        ts_ns,
        cl_ord_id=cl,
        qty=str(qty),
        price=optional_str(price),
    )
