"""Every message that crosses a process boundary: one frozen pydantic model per `type`.

Quantities and prices are `Decimal` and travel as strings. The envelope (sender, epoch,
sequence, ids, timestamp) lives in `protocol.codec`; these are the bodies.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, TypeAdapter


def _decimal_not_binary(value: Any) -> Any:
    if isinstance(value, float):
        raise ValueError("decimal values travel as strings, never floats")
    return value


# A Decimal that is serialised as a string on the wire and never accepted as a float.
Dec = Annotated[
    Decimal,
    BeforeValidator(_decimal_not_binary),
    PlainSerializer(lambda d: str(d), return_type=str, when_used="always"),
]


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"


class OrdType(StrEnum):
    MARKET = "MARKET"
    LIMIT = "LIMIT"


class TimeInForce(StrEnum):
    DAY = "DAY"
    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"


class OrderStatus(StrEnum):
    PENDING_RISK = "PENDING_RISK"
    PENDING_SUBMIT = "PENDING_SUBMIT"
    ACCEPTED = "ACCEPTED"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    PENDING_CANCEL = "PENDING_CANCEL"
    CANCELLED = "CANCELLED"
    PENDING_REPLACE = "PENDING_REPLACE"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"
    UNKNOWN = "UNKNOWN"


TERMINAL_STATUSES = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.EXPIRED}
)


class VenueConnState(StrEnum):
    CONNECTING = "CONNECTING"
    CONNECTED = "CONNECTED"
    DISCONNECTED = "DISCONNECTED"
    DOWN = "DOWN"


class ErrorCode(StrEnum):
    """Reason codes of a `RequestRejected` reply; the client maps each to an exception."""

    INVALID_ORDER = "INVALID_ORDER"
    RISK_REJECTED = "RISK_REJECTED"
    KILL_SWITCH = "KILL_SWITCH"
    VENUE_DOWN = "VENUE_DOWN"
    NOT_READY = "NOT_READY"
    UNKNOWN_ORDER = "UNKNOWN_ORDER"
    UNKNOWN_VENUE = "UNKNOWN_VENUE"
    INVALID_STATE = "INVALID_STATE"
    TIMEOUT = "TIMEOUT"
    BAD_REQUEST = "BAD_REQUEST"
    INTERNAL = "INTERNAL"


class _Msg(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --------------------------------------------------------------------------- supervision


class Ready(_Msg):
    """An actor can serve: sent once to the supervisor after its sockets are up."""

    type: Literal["ready"] = "ready"
    actor: str
    pid: int
    endpoints: dict[str, str] = Field(default_factory=dict)


class ActorHeartbeat(_Msg):
    """Sent from an actor's main loop; a frozen or busy loop stops sending it."""

    type: Literal["actor_heartbeat"] = "actor_heartbeat"
    loop_lag_s: float
    info: dict[str, Any] = Field(default_factory=dict)


class Stop(_Msg):
    type: Literal["stop"] = "stop"
    reason: str = ""


class Ack(_Msg):
    """A generic positive acknowledgement of the request whose message id is `ref`."""

    type: Literal["ack"] = "ack"
    ref: str = ""
    data: dict[str, Any] = Field(default_factory=dict)


class RequestRejected(_Msg):
    type: Literal["request_rejected"] = "request_rejected"
    code: ErrorCode
    reason: str
    field: str | None = None


class ControlRequest(_Msg):
    """Operator CLI -> supervisor control socket."""

    type: Literal["control_request"] = "control_request"
    command: str
    args: dict[str, Any] = Field(default_factory=dict)


class ControlReply(_Msg):
    """One reply envelope for every control command: `{status, reason, data}`."""

    type: Literal["control_reply"] = "control_reply"
    status: Literal["ok", "error"]
    reason: str = ""
    data: dict[str, Any] = Field(default_factory=dict)


class VenueStateChanged(_Msg):
    type: Literal["venue_state"] = "venue_state"
    venue: str
    state: VenueConnState
    detail: str = ""


# --------------------------------------------------------------------------- orders: client <-> oms


class SubmitOrder(_Msg):
    type: Literal["submit_order"] = "submit_order"
    client_order_id: str = Field(min_length=1, max_length=64)
    venue: str
    symbol: str = Field(min_length=1, max_length=32)
    side: Side
    qty: Dec
    order_type: OrdType
    price: Dec | None = None
    tif: TimeInForce = TimeInForce.DAY


class CancelOrder(_Msg):
    type: Literal["cancel_order"] = "cancel_order"
    client_order_id: str


class ReplaceOrder(_Msg):
    type: Literal["replace_order"] = "replace_order"
    client_order_id: str
    qty: Dec | None = None
    price: Dec | None = None


class OrderView(_Msg):
    """The OMS's view of one order, as clients and operators see it."""

    client_order_id: str
    venue: str
    symbol: str
    side: Side
    qty: Dec
    order_type: OrdType
    price: Dec | None = None
    tif: TimeInForce = TimeInForce.DAY
    status: OrderStatus
    cl_ord_id: str = ""
    venue_order_id: str = ""
    cum_qty: Dec = Decimal(0)
    avg_px: Dec = Decimal(0)
    reason: str = ""
    external: bool = False
    ts_ns: int = 0


class OrderAck(_Msg):
    """Reply to Submit/Cancel/Replace: the request is durable at the OMS."""

    type: Literal["order_ack"] = "order_ack"
    order: OrderView
    duplicate: bool = False


class GetOrder(_Msg):
    type: Literal["get_order"] = "get_order"
    client_order_id: str


class ListOrders(_Msg):
    """One page of orders, in the OMS's stable order; page on with `OrderList.next_offset`."""

    type: Literal["list_orders"] = "list_orders"
    venue: str | None = None
    open_only: bool = False
    offset: int = Field(default=0, ge=0)
    limit: int = Field(default=2000, ge=1, le=10000)


class OrderList(_Msg):
    type: Literal["order_list"] = "order_list"
    orders: list[OrderView]
    next_offset: int | None = None  # None: this was the last page
    event_seq: int | None = None  # the OMS's last published event this page reflects


class PositionView(_Msg):
    venue: str
    symbol: str
    qty: Dec
    avg_px: Dec = Decimal(0)
    realized_pnl: Dec = Decimal(0)


class GetPositions(_Msg):
    type: Literal["get_positions"] = "get_positions"
    venue: str | None = None


class Positions(_Msg):
    type: Literal["positions"] = "positions"
    source: str
    venue: str | None = None
    positions: list[PositionView]
    event_seq: int | None = None  # OMS answers: its last published event they reflect


class OrderEvent(_Msg):
    """Published on the OMS event stream whenever an order changes."""

    type: Literal["order_event"] = "order_event"
    event_seq: int
    order: OrderView
    fill_qty: Dec | None = None
    fill_px: Dec | None = None


class StreamEvent(_Msg):
    """A non-order event on the client event stream (kill_switch, reconnect, venue_state,
    position_snapshot, unmatched_fill, ...)."""

    type: Literal["stream_event"] = "stream_event"
    event_seq: int
    event: str
    data: dict[str, Any] = Field(default_factory=dict)


class SnapshotRequest(_Msg):
    """A subscriber saw a gap in `event_seq`: it asks for the current state."""

    type: Literal["snapshot_request"] = "snapshot_request"


class Snapshot(_Msg):
    """The open orders as of `event_seq` (finished ones: `ListOrders`)."""

    type: Literal["snapshot"] = "snapshot"
    event_seq: int
    orders: list[OrderView]


class IntakeControl(_Msg):
    type: Literal["intake_control"] = "intake_control"
    action: Literal["pause", "resume", "status"]


class ReconcileRequest(_Msg):
    type: Literal["reconcile_request"] = "reconcile_request"
    venue: str
    dry_run: bool = True


# --------------------------------------------------------------------------- oms <-> risk


class RiskCheck(_Msg):
    type: Literal["risk_check"] = "risk_check"
    client_order_id: str
    venue: str
    symbol: str
    side: Side
    qty: Dec
    order_type: OrdType
    price: Dec | None = None


class RiskVerdict(_Msg):
    type: Literal["risk_verdict"] = "risk_verdict"
    client_order_id: str
    approved: bool
    reason_code: str = "ok"
    reason: str = ""


class KillSwitchCommand(_Msg):
    type: Literal["kill_switch_command"] = "kill_switch_command"
    action: Literal["engage", "reset", "status"]
    reason: str = ""
    source: str = "operator"


class KillSwitchState(_Msg):
    type: Literal["kill_switch_state"] = "kill_switch_state"
    engaged: bool
    reason: str = ""
    source: str = ""
    ts_ns: int = 0


# --------------------------------------------------------------------------- oms <-> connector


class PlaceOrder(_Msg):
    type: Literal["place_order"] = "place_order"
    cl_ord_id: str
    symbol: str
    side: Side
    qty: Dec
    order_type: OrdType
    price: Dec | None = None
    tif: TimeInForce = TimeInForce.DAY


class CancelOnVenue(_Msg):
    type: Literal["cancel_on_venue"] = "cancel_on_venue"
    cl_ord_id: str
    orig_cl_ord_id: str
    symbol: str
    side: Side
    qty: Dec


class ReplaceOnVenue(_Msg):
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


class ExecReport(_Msg):
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
    ord_status: str = ""
    text: str = ""
    reject_reason: str = ""  # e.g. DUPLICATE_ORDER (FIX OrdRejReason 6), UNKNOWN_ORDER
    venue_ts_ns: int = 0


class ExecAck(_Msg):
    type: Literal["exec_ack"] = "exec_ack"
    venue: str
    exec_ids: list[str]


class VenueOrder(_Msg):
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


class OpenOrdersRequest(_Msg):
    type: Literal["open_orders_request"] = "open_orders_request"


class OpenOrders(_Msg):
    type: Literal["open_orders"] = "open_orders"
    venue: str
    orders: list[VenueOrder]


class OrderStatusQuery(_Msg):
    type: Literal["order_status_query"] = "order_status_query"
    cl_ord_ids: list[str]


class OrderStatusAnswer(_Msg):
    """`orders[id]` is the venue's view; `unknown` lists ids the venue says it never saw."""

    type: Literal["order_status_answer"] = "order_status_answer"
    venue: str
    orders: list[VenueOrder]
    unknown: list[str]


class MassCancel(_Msg):
    type: Literal["mass_cancel"] = "mass_cancel"
    reason: str = ""


class MassCancelDone(_Msg):
    type: Literal["mass_cancel_done"] = "mass_cancel_done"
    venue: str
    accepted: bool
    detail: str = ""


Message = Annotated[
    (
        Ready
        | ActorHeartbeat
        | Stop
        | Ack
        | RequestRejected
        | ControlRequest
        | ControlReply
        | VenueStateChanged
        | SubmitOrder
        | CancelOrder
        | ReplaceOrder
        | OrderAck
        | GetOrder
        | ListOrders
        | OrderList
        | GetPositions
        | Positions
        | OrderEvent
        | StreamEvent
        | SnapshotRequest
        | Snapshot
        | IntakeControl
        | ReconcileRequest
        | RiskCheck
        | RiskVerdict
        | KillSwitchCommand
        | KillSwitchState
        | PlaceOrder
        | CancelOnVenue
        | ReplaceOnVenue
        | ExecReport
        | ExecAck
        | OpenOrdersRequest
        | OpenOrders
        | OrderStatusQuery
        | OrderStatusAnswer
        | MassCancel
        | MassCancelDone
    ),
    Field(discriminator="type"),
]

MESSAGE_ADAPTER: TypeAdapter[Message] = TypeAdapter(Message)
MESSAGE_TYPES: frozenset[str] = frozenset(
    m.model_fields["type"].default
    for m in Message.__origin__.__args__  # type: ignore[attr-defined]
)
