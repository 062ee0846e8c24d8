"""Every message that crosses a process boundary: one frozen pydantic model per `type`.

Quantities and prices are `Decimal` and travel as strings. The envelope (sender, epoch,
sequence, ids, timestamp) lives in `protocol.codec`; these are the bodies.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter

from protocol.batch_messages import OrderEvents, Replies, SubmitOrders
from protocol.commands import Command, OperatorId
from protocol.domain import (
    TERMINAL_STATUSES,
    ClientId,
    Dec,
    ErrorCode,
    Msg,
    OrderStatus,
    OrdType,
    Side,
    Symbol,
    TimeInForce,
    VenueConnState,
)
from protocol.risk_messages import (
    MAX_RISK_BATCH,
    KillSwitchCommand,
    KillSwitchState,
    RiskCheck,
    RiskChecks,
    RiskVerdict,
    RiskVerdicts,
)
from protocol.venue_messages import (
    CancelOnVenue,
    ExecAck,
    ExecCut,
    ExecKind,
    ExecReport,
    ExecReports,
    MassCancel,
    MassCancelDone,
    OpenOrders,
    OpenOrdersRequest,
    OrderStatusAnswer,
    OrderStatusQuery,
    PlaceOrder,
    QueriedOrder,
    ReplaceOnVenue,
    VenueOrder,
)

# --------------------------------------------------------------------------- supervision


class Ready(Msg):
    """An actor can serve: sent once to the supervisor after its sockets are up."""

    type: Literal["ready"] = "ready"
    actor: str
    pid: int
    endpoints: dict[str, str] = Field(default_factory=dict)


class ActorHeartbeat(Msg):
    """Sent from an actor's main loop; a frozen or busy loop stops sending it."""

    type: Literal["actor_heartbeat"] = "actor_heartbeat"
    loop_lag_s: float
    info: dict[str, Any] = Field(default_factory=dict)


class Stop(Msg):
    type: Literal["stop"] = "stop"
    reason: str = ""


class Ack(Msg):
    """A generic positive acknowledgement of the request whose message id is `ref`."""

    type: Literal["ack"] = "ack"
    ref: str = ""
    data: dict[str, Any] = Field(default_factory=dict)


MAX_ACK_BATCH = 256  # refs in one `Acks` (a connector's sends of one turn: at most 256)


class Acks(Msg):
    """Several `Ack`s of one turn to one requester in one message: `refs[i]` is the message
    id of a request acknowledged, as a lone `Ack(ref=...)` with that correlation id says; the
    requester's `Peer` hands each to its own request (callback, deadline). No correlation id."""

    type: Literal["acks"] = "acks"
    refs: list[str] = Field(min_length=1, max_length=MAX_ACK_BATCH)


class Requests(Msg):
    """Several requests to one actor in one message (the OMS's venue requests of one turn to
    one connector), in order: `requests[i]` is `{"id": its own message id, "type": its type,
    "body": the wire body it would carry alone}`, served as that lone request with that id
    (checked, answered on its own): the requester's `Peer` matches each answer to its own."""

    type: Literal["requests"] = "requests"
    requests: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_ACK_BATCH)


class RequestRejected(Msg):
    type: Literal["request_rejected"] = "request_rejected"
    code: ErrorCode
    reason: str
    field: str | None = None


class ControlRequest(Msg):
    """An operator command (`protocol.commands`): CLI -> supervisor control socket,
    supervisor -> the actor that executes it, or a tool -> an actor's ROUTER."""

    type: Literal["control_request"] = "control_request"
    command: Command
    operator: OperatorId | None = None  # set by the supervisor only (control_plane)
    deadline_ns: int | None = None  # across the link only: time.time_ns the edge refuses after


class ControlReply(Msg):
    """One reply envelope for every control command: `{status, reason, data}`."""

    type: Literal["control_reply"] = "control_reply"
    status: Literal["ok", "error"]
    reason: str = ""
    data: dict[str, Any] = Field(default_factory=dict)


class VenueStateChanged(Msg):
    type: Literal["venue_state"] = "venue_state"
    venue: str
    state: VenueConnState
    detail: str = ""
    version: int = 0  # its count of state changes: CONNECTED at a later one, a new connection


# --------------------------------------------------------------------------- orders: client <-> oms


class SubmitOrder(Msg):
    type: Literal["submit_order"] = "submit_order"
    client_order_id: ClientId
    venue: Symbol
    symbol: Symbol  # reaches FIX (55): printable ASCII, no space, no "=", never an SOH
    side: Side
    qty: Dec
    order_type: OrdType
    price: Dec | None = None
    tif: TimeInForce = TimeInForce.DAY


class CancelOrder(Msg):
    type: Literal["cancel_order"] = "cancel_order"
    client_order_id: str


class ReplaceOrder(Msg):
    type: Literal["replace_order"] = "replace_order"
    client_order_id: str
    qty: Dec | None = None
    price: Dec | None = None


class OrderView(Msg):
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
    pending_qty: Dec | None = None  # PENDING_REPLACE: the qty asked (risk counts the larger)


class OrderAck(Msg):
    """Reply to Submit/Cancel/Replace: the request is durable at the OMS."""

    type: Literal["order_ack"] = "order_ack"
    order: OrderView
    duplicate: bool = False


class GetOrder(Msg):
    type: Literal["get_order"] = "get_order"
    client_order_id: str


class ListOrders(Msg):
    """One page of orders, in the OMS's stable order; page on with `OrderList.next_offset`
    (`offset` is a cursor, 0 to start: not an index, so no order is skipped when others end
    or leave the OMS's memory between two pages; a cursor of an OMS incarnation that has
    since restarted is refused NOT_READY: list again from 0)."""

    type: Literal["list_orders"] = "list_orders"
    venue: str | None = None
    open_only: bool = False
    offset: int = Field(default=0, ge=0, lt=1 << 62)
    limit: int = Field(default=2000, ge=1, le=10000)


class OrderList(Msg):
    type: Literal["order_list"] = "order_list"
    orders: list[OrderView]
    next_offset: int | None = None  # None: this was the last page
    event_seq: int | None = None  # the OMS's last published event this page reflects


class PositionView(Msg):
    venue: str
    symbol: str
    qty: Dec
    avg_px: Dec = Decimal(0)  # 0 with a qty: no cost (runbook "Orders, fills, positions")
    realized_pnl: Dec = Decimal(0)  # the book's: a cost unknown counts as 0 until flat
    cost_known: bool = True  # False: a cold start's venue gave none (adds keep it so) until flat
    unknown_cost_pnl: Dec = Decimal(0)  # of realized_pnl, against no cost: no view/limit counts it
    unknown_qty: Dec | None = None  # of qty, the part of no cost (None: all, if cost_known false)
    last_fill_ns: int = 0  # OMS: its last fill's journal time (0: none known)
    day_start_ns: int = 0  # OMS: start of that fill's day (risk.day_start)
    day_start_pnl: Dec = Decimal(0)  # OMS: realized_pnl then (risk splits a day it slept through)
    last_px: Dec | None = None  # OMS: its last execution price there (risk's reference, rebuilt)


# How long a connector's answer waits for the OMS's acks (connector exec_cut; None: its WAIT_S)
AckWait = Annotated[float, Field(gt=0, le=5.0, allow_inf_nan=False)]


class GetPositions(Msg):
    type: Literal["get_positions"] = "get_positions"
    venue: str | None = None
    as_of: ExecCut | None = None  # to the OMS: its positions at the venue as of that cut
    wait_s: AckWait | None = None  # to a connector: its answer's wait for the OMS's acks


class Positions(Msg):
    type: Literal["positions"] = "positions"
    source: str
    venue: str | None = None
    positions: list[PositionView]
    event_seq: int | None = None  # OMS answers: its last published event they reflect
    cut: ExecCut | None = None  # the executions they reflect (connector: `ExecCut`)


class OrderEvent(Msg):
    """Published on the OMS event stream whenever an order changes. `fill_qty` is every
    fill of the order since its previous event (None: none), `fill_px` their average; an
    adopted order's fills before its adoption count as one (its first event's, at the
    venue's average price). Their fees as the OMS booked them (`protocol.fees.fee_parts`,
    None: none): `fill_fee_base` left the position (base-asset units), `fill_fee_quote`
    was realised (quote asset); a fee in a third asset (BNB) moved neither, not here."""

    type: Literal["order_event"] = "order_event"
    event_seq: int
    order: OrderView
    fill_qty: Dec | None = None
    fill_px: Dec | None = None
    fill_fee_base: Dec | None = None
    fill_fee_quote: Dec | None = None


class StreamEvent(Msg):
    """A non-order event on the event stream (kill_switch, venue_state, unmatched_fill...)."""

    type: Literal["stream_event"] = "stream_event"
    event_seq: int
    event: str
    data: dict[str, Any] = Field(default_factory=dict)


# A cold start's opening positions (per venue): no order event has them, risk rebuilds (sync)
OPENING_POSITIONS = "opening_positions"


class SnapshotRequest(Msg):
    """A subscriber saw a gap in `event_seq`: it asks for the current state."""

    type: Literal["snapshot_request"] = "snapshot_request"


class Snapshot(Msg):
    """The open orders as of `event_seq` (finished ones: `ListOrders`)."""

    type: Literal["snapshot"] = "snapshot"
    event_seq: int
    orders: list[OrderView]


Message = Annotated[
    (
        Ready
        | ActorHeartbeat
        | Stop
        | Ack
        | Acks
        | Requests
        | RequestRejected
        | ControlRequest
        | ControlReply
        | VenueStateChanged
        | SubmitOrder
        | SubmitOrders
        | Replies
        | CancelOrder
        | ReplaceOrder
        | OrderAck
        | GetOrder
        | ListOrders
        | OrderList
        | GetPositions
        | Positions
        | OrderEvent
        | OrderEvents
        | StreamEvent
        | SnapshotRequest
        | Snapshot
        | RiskCheck
        | RiskVerdict
        | RiskChecks
        | RiskVerdicts
        | KillSwitchCommand
        | KillSwitchState
        | PlaceOrder
        | CancelOnVenue
        | ReplaceOnVenue
        | ExecReport
        | ExecReports
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

# Re-exported: `protocol.messages` is the one place to import any message from.
__all__ = [
    "Dec",
    "Side",
    "OrdType",
    "TimeInForce",
    "OrderStatus",
    "TERMINAL_STATUSES",
    "OPENING_POSITIONS",
    "VenueConnState",
    "ErrorCode",
    "Msg",
    "SubmitOrders",
    "Replies",
    "OrderEvents",
    "MAX_RISK_BATCH",
    "RiskCheck",
    "RiskVerdict",
    "RiskChecks",
    "RiskVerdicts",
    "KillSwitchCommand",
    "KillSwitchState",
    "PlaceOrder",
    "CancelOnVenue",
    "ReplaceOnVenue",
    "ExecKind",
    "ExecCut",
    "ExecReport",
    "ExecReports",
    "ExecAck",
    "VenueOrder",
    "OpenOrdersRequest",
    "OpenOrders",
    "OrderStatusQuery",
    "QueriedOrder",
    "OrderStatusAnswer",
    "MassCancel",
    "MassCancelDone",
]
