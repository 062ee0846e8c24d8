"""What the venue must be sent for an order now: built from the order's journalled state,
so a resend carries the same ClOrdIDs (idempotent at the venue)."""

from __future__ import annotations

from actors.oms.orders import Order
from protocol.codec import Envelope
from protocol.messages import (
    CancelOnVenue,
    ErrorCode,
    OrderStatus,
    PlaceOrder,
    ReplaceOnVenue,
    RequestRejected,
)
from protocol.wire_out import construct


def venue_request(order: Order) -> PlaceOrder | CancelOnVenue | ReplaceOnVenue | None:
    """What the venue must be sent for the order now: its placement (PENDING_SUBMIT), its
    pending cancel or replace, with the ClOrdIDs journalled (idempotent at the venue); None
    if nothing (resolved meanwhile, e.g. by reconciliation)."""
    if order.status is OrderStatus.PENDING_SUBMIT:
        return construct(  # of values the order holds validated (protocol.wire_out)
            PlaceOrder, cl_ord_id=order.cl_ord_id, symbol=order.symbol, side=order.side,
            qty=order.qty, order_type=order.order_type, price=order.price, tif=order.tif,
        )  # fmt: skip
    if order.status is OrderStatus.PENDING_CANCEL:
        return construct(
            CancelOnVenue, cl_ord_id=order.pending_cl_ord_id, orig_cl_ord_id=order.cl_ord_id,
            symbol=order.symbol, side=order.side, qty=order.qty,
        )  # fmt: skip
    if order.status is OrderStatus.PENDING_REPLACE:
        return ReplaceOnVenue(
            cl_ord_id=order.pending_cl_ord_id, orig_cl_ord_id=order.cl_ord_id,
            symbol=order.symbol, side=order.side,
            qty=order.pending_qty if order.pending_qty is not None else order.qty,
            order_type=order.order_type, price=order.pending_price, tif=order.tif,
        )  # fmt: skip
    return None


def refused_as_invalid(reply: Envelope | None) -> str | None:
    """The connector's reason when it refused a request as one FIX cannot carry (nothing
    was sent, nothing ever will be), else None."""
    body = None if reply is None else reply.body
    if isinstance(body, RequestRejected) and body.code is ErrorCode.INVALID_ORDER:
        return body.reason
    return None
