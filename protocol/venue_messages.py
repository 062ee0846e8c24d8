"""Messages between the OMS and a venue connector (one per venue): orders out, executions
and the venue's view of its orders back. Part of the one message union in `protocol.messages`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import Field

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


class ExecCut(Msg):
    """A consistent cut of one connector's execution stream: an answer about the venue
    (open orders, order status, positions) reflects exactly the executions the connector
    numbered up to `exec_seq` (`ExecReport.exec_seq`, counted per connector incarnation
    `connector_epoch`). The FIX session delivers in order, so every execution the venue
    sent before its answer has a number <= `exec_seq`, and every later one a greater one.
    `since`: the number when the connector took the request up (an order changed after it
    may differ between the answer and the OMS for reasons in flight). `oms_epoch`: the OMS
    incarnation that had acknowledged every execution up to `exec_seq` when the answer
    left (None: it had not, in time), so that OMS has applied them all."""

    connector_epoch: int
    exec_seq: int
    since: int = 0
    oms_epoch: int | None = None


# "unsent" is the connector's, not the venue's: it did not send the order it was handed
# (a resend whose lookup by ClOrdID was inconclusive, or its session ended first), so the
# OMS does not count that resubmission toward `max_resubmits`. Its exec id names one
# occasion (`<ClOrdID>:unsent:<ns>`): applied once, like any execution.
ExecKind = Literal[
    "accepted",
    "rejected",
    "fill",
    "cancelled",
    "replaced",
    "cancel_rejected",
    "expired",
    "status",
    "unsent",
    "trade_cancel",  # FIX 150=H: the venue busted fill `exec_ref_id` (actors.oms.trade_busts)
    "trade_correct",  # FIX 150=G: it corrected that fill to last_qty at last_px
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
    exec_seq: int = 0  # the connector's number for it (`ExecCut`); 0: not numbered
    # a fill's commission, in `fee_asset` ("": none said); a spot venue charges it in the
    # asset received (BTC of a BTC/USDT buy), which the OMS's position then lacks
    fee: Dec = Decimal(0)
    fee_asset: str = Field(default="", max_length=32)
    # trade_cancel / trade_correct: the ExecID (FIX ExecRefID, 19) of the fill they undo
    exec_ref_id: str = ""


MAX_EXEC_BATCH = 128  # executions in one `ExecReports` (more go as several)


class ExecReports(Msg):
    """The executions a connector forwards in one loop turn (one FIX read), in venue order,
    as one request: `reports[i]` is the wire body of an `ExecReport` (what it would carry
    alone), decoded and validated on its own by the receiver (`protocol.codec.decode_item`),
    so a malformed one is refused alone and the others still apply. Answered by one
    `ExecAck` naming the exec ids applied. Bounded so that a full batch (~22 elements an
    execution) stays inside the fast path's bound on plain maps (`MAX_PLAIN_ITEMS`, 4096;
    a larger one would take the full pydantic path, several times slower), ~50 KiB, and one
    OMS turn's work for it stays short."""

    type: Literal["exec_reports"] = "exec_reports"
    venue: str
    reports: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_EXEC_BATCH)


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
    cut: ExecCut | None = None
    version: int | None = None  # the connector's state version (CONNECTED) it answered at


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
    """`orders[id]` is the venue's view; `unknown` lists ids the venue says it never saw.
    `pending` lists ids the venue does not know yet although a create of them may still
    reach it (a ccxt create whose answer was lost, within its recvWindow): neither seen
    nor proof of never, so the OMS judges those orders at a later pass (in flight).
    Absent from an older connector's answer: empty."""

    type: Literal["order_status_answer"] = "order_status_answer"
    venue: str
    orders: list[VenueOrder]
    unknown: list[str]
    cut: ExecCut | None = None
    pending: list[str] = Field(default_factory=list)


class MassCancel(Msg):
    type: Literal["mass_cancel"] = "mass_cancel"
    reason: str = ""


class MassCancelDone(Msg):
    type: Literal["mass_cancel_done"] = "mass_cancel_done"
    venue: str
    accepted: bool
    detail: str = ""
