"""Messages between the OMS and a venue connector (one per venue): orders out, executions
and the venue's view of its orders back. Part of the one message union in `protocol.messages`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from protocol.domain import Dec, Msg, OrderStatus, OrdType, Side, TimeInForce

# --------------------------------------------------------------------------- oms <-> connector


class PlaceOrder(Msg):
    type: Literal["place_order"] = "place_order"
    cl_ord_id: str
    symbol: str
    side: Side
    qty: Dec
    order_type: OrdType
    price: Dec | None = None
    tif: TimeInForce = TimeInForce.DAY


class CancelOnVenue(Msg):
    type: Literal["cancel_on_venue"] = "cancel_on_venue"
    cl_ord_id: str
    orig_cl_ord_id: str
    symbol: str
    side: Side
    qty: Dec


class ReplaceOnVenue(Msg):
    type: Literal["replace_on_venue"] = "replace_on_venue"
    cl_ord_id: str
    orig_cl_ord_id: str
    symbol: str
    side: Side
    qty: Dec
    order_type: OrdType
    price: Dec | None = None
    tif: TimeInForce = TimeInForce.DAY


ExecKind = Literal[
    "accepted", "rejected", "fill", "cancelled", "replaced", "cancel_rejected", "expired", "status"
]


class ExecReport(Msg):
    """An execution from the venue, forwarded by a connector until the OMS acks `exec_id`."""

    type: Literal["exec_report"] = "exec_report"
    venue: str
    exec_id: str
    kind: ExecKind
    cl_ord_id: str
    orig_cl_ord_id: str = ""
    venue_order_id: str = ""
    symbol: str = ""
    side: Side | None = None
    order_qty: Dec | None = None
    price: Dec | None = None
    last_qty: Dec = Decimal(0)
    last_px: Dec = Decimal(0)
    cum_qty: Dec = Decimal(0)
    avg_px: Dec = Decimal(0)
    leaves_qty: Dec = Decimal(0)
    ord_status: OrderStatus | None = None  # the venue's view of the order, if it said
    text: str = ""
    reject_reason: str = ""  # e.g. DUPLICATE_ORDER (FIX OrdRejReason 6), UNKNOWN_ORDER
    venue_ts_ns: int = 0


class ExecAck(Msg):
    type: Literal["exec_ack"] = "exec_ack"
    venue: str
    exec_ids: list[str]


class VenueOrder(Msg):
    """An order as the venue reports it (mass status / status by ClOrdID)."""

    cl_ord_id: str
    venue_order_id: str = ""
    symbol: str
    side: Side
    order_qty: Dec
    price: Dec | None = None
    order_type: OrdType = OrdType.LIMIT
    status: OrderStatus
    cum_qty: Dec = Decimal(0)
    avg_px: Dec = Decimal(0)
    leaves_qty: Dec = Decimal(0)


class OpenOrdersRequest(Msg):
    type: Literal["open_orders_request"] = "open_orders_request"


class OpenOrders(Msg):
    type: Literal["open_orders"] = "open_orders"
    venue: str
    orders: list[VenueOrder]


class QueriedOrder(Msg):
    """One order an OrderStatusQuery asks about: FIX 4.4 OrderStatusRequest (H) requires
    its Instrument (Symbol 55) and Side (54) besides the ClOrdID."""

    cl_ord_id: str
    symbol: str
    side: Side


class OrderStatusQuery(Msg):
    type: Literal["order_status_query"] = "order_status_query"
    orders: list[QueriedOrder]

    @property
    def cl_ord_ids(self) -> list[str]:
        return [o.cl_ord_id for o in self.orders]


class OrderStatusAnswer(Msg):
    """`orders[id]` is the venue's view; `unknown` lists ids the venue says it never saw."""

    type: Literal["order_status_answer"] = "order_status_answer"
    venue: str
    orders: list[VenueOrder]
    unknown: list[str]


class MassCancel(Msg):
    type: Literal["mass_cancel"] = "mass_cancel"
    reason: str = ""


class MassCancelDone(Msg):
    type: Literal["mass_cancel_done"] = "mass_cancel_done"
    venue: str
    accepted: bool
    detail: str = ""
