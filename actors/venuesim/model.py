"""What the simulated venue hands out: FIX 4.4 enum values and frozen result types.

Every value the FIX shell needs is here already in FIX terms (ExecType 150, OrdStatus 39,
OrdRejReason 103, CxlRejReason 102, CxlRejResponseTo 434), so the shell only maps field
names to tags. Quantities and prices are `Decimal`, never floats.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import IntEnum, StrEnum

import msgspec

from protocol.messages import OrderStatus, OrdType, Side, TimeInForce

ZERO = Decimal(0)
NO_ORDER_ID = "NONE"  # OrderID (37) of an answer about an order the venue does not know
STATUS_EXEC_ID = "0"  # ExecID (17) of an ExecType=I status answer (FIX: "0" for status)


class ExecType(StrEnum):
    """FIX 4.4 ExecType (150)."""

    NEW = "0"
    CANCELED = "4"
    REPLACED = "5"
    REJECTED = "8"
    EXPIRED = "C"
    TRADE = "F"
    TRADE_CORRECT = "G"  # an operator's correction of a trade (`actors.venuesim.busts`)
    TRADE_CANCEL = "H"  # an operator's bust of a trade
    ORDER_STATUS = "I"


class OrdStatus(StrEnum):
    """FIX 4.4 OrdStatus (39)."""

    NEW = "0"
    PARTIALLY_FILLED = "1"
    FILLED = "2"
    CANCELED = "4"
    REJECTED = "8"
    EXPIRED = "C"

    # NEW or PARTIALLY_FILLED: each member's attribute, not a property (asked ~4 times per
    # order operation, a Python call each as a property)
    is_open: bool

    def __init__(self, value: str) -> None:
        self.is_open = value in ("0", "1")  # NEW, PARTIALLY_FILLED (not members yet here)

    @property
    def order_status(self) -> OrderStatus:
        """The same state in the project's own vocabulary (`protocol.messages.OrderStatus`)."""
        return _TO_ORDER_STATUS[self]


_TO_ORDER_STATUS = {
    OrdStatus.NEW: OrderStatus.ACCEPTED,
    OrdStatus.PARTIALLY_FILLED: OrderStatus.PARTIALLY_FILLED,
    OrdStatus.FILLED: OrderStatus.FILLED,
    OrdStatus.CANCELED: OrderStatus.CANCELLED,
    OrdStatus.REJECTED: OrderStatus.REJECTED,
    OrdStatus.EXPIRED: OrderStatus.EXPIRED,
}


class OrdRejReason(IntEnum):
    """FIX 4.4 OrdRejReason (103), the values this venue uses."""

    UNKNOWN_SYMBOL = 1
    UNKNOWN_ORDER = 5
    DUPLICATE_ORDER = 6
    UNSUPPORTED_ORDER_CHARACTERISTIC = 11
    INCORRECT_QUANTITY = 13
    OTHER = 99


class CxlRejReason(IntEnum):
    """FIX 4.4 CxlRejReason (102), the values this venue uses."""

    TOO_LATE_TO_CANCEL = 0
    UNKNOWN_ORDER = 1
    DUPLICATE_CL_ORD_ID = 6
    OTHER = 99


class CxlRejResponseTo(StrEnum):
    """FIX 4.4 CxlRejResponseTo (434)."""

    ORDER_CANCEL_REQUEST = "1"  # answer to F
    ORDER_CANCEL_REPLACE_REQUEST = "2"  # answer to G


class ExecEvent(msgspec.Struct, frozen=True, gc=False):
    """One execution report (35=8) for one of the client's orders.

    A frozen struct (equal, hashed and shown field by field, as a frozen dataclass is)
    built ~5x faster than one: every order operation makes one or more, in series with
    its answer. Untracked by the cyclic collector (`gc=False`): its values are str,
    ints, Decimals, enums and None, which refer to nothing."""

    exec_id: str
    order_id: str
    cl_ord_id: str
    orig_cl_ord_id: str
    exec_type: ExecType
    ord_status: OrdStatus
    symbol: str
    side: Side | None  # None only on a reject of an order whose side was not valid
    ord_type: OrdType | None
    tif: TimeInForce | None
    order_qty: Decimal
    price: Decimal | None
    last_qty: Decimal
    last_px: Decimal
    cum_qty: Decimal
    avg_px: Decimal
    leaves_qty: Decimal
    text: str
    ord_rej_reason: OrdRejReason | None
    transact_ns: int
    exec_ref_id: str = ""  # ExecRefID (19) of a bust or correction: the trade's ExecID


@dataclass(frozen=True, slots=True)
class CancelReject:
    """An OrderCancelReject (35=9) answering a cancel (F) or cancel/replace (G)."""

    order_id: str  # NO_ORDER_ID when the original order is unknown
    cl_ord_id: str
    orig_cl_ord_id: str
    ord_status: OrdStatus  # the original order's status; REJECTED when unknown
    cxl_rej_reason: CxlRejReason
    cxl_rej_response_to: CxlRejResponseTo
    text: str
    transact_ns: int


Event = ExecEvent | CancelReject


@dataclass(frozen=True, slots=True)
class Fill:
    exec_id: str
    qty: Decimal
    px: Decimal
    ts_ns: int


@dataclass(frozen=True, slots=True)
class Order:
    """A read-only view of one order as the venue knows it."""

    order_id: str
    cl_ord_id: str  # the current ClOrdID (the last accepted request's)
    cl_ord_ids: tuple[str, ...]  # the whole chain, first ClOrdID first
    symbol: str
    side: Side | None
    ord_type: OrdType | None
    tif: TimeInForce | None
    order_qty: Decimal
    price: Decimal | None
    ord_status: OrdStatus
    cum_qty: Decimal
    leaves_qty: Decimal
    avg_px: Decimal
    text: str
    ord_rej_reason: OrdRejReason | None
    received_ns: int
    fills: tuple[Fill, ...]

    @property
    def orig_cl_ord_id(self) -> str:
        return self.cl_ord_ids[-2] if len(self.cl_ord_ids) > 1 else ""

    @property
    def is_open(self) -> bool:
        return self.ord_status.is_open


@dataclass(frozen=True, slots=True)
class Position:
    """The client account's net position in one symbol (average-cost method)."""

    symbol: str
    net_qty: Decimal  # > 0 long, < 0 short
    avg_px: Decimal  # average entry price of the open position; 0 when flat
    bought_qty: Decimal
    sold_qty: Decimal


def order_problem(
    side: Side | None,
    ord_type: OrdType | None,
    tif: TimeInForce | None,
    qty: Decimal | None,
    price: Decimal | None,
) -> tuple[OrdRejReason, str] | None:
    """Why an order (new or replacement) with these fields is not acceptable, if it is not."""
    if side is None:
        return OrdRejReason.OTHER, "invalid side"
    if ord_type is None:
        return OrdRejReason.UNSUPPORTED_ORDER_CHARACTERISTIC, "unsupported order type"
    if tif is None:
        return OrdRejReason.UNSUPPORTED_ORDER_CHARACTERISTIC, "unsupported time in force"
    if qty is None or qty <= ZERO:
        return OrdRejReason.INCORRECT_QUANTITY, "order qty must be > 0"
    if ord_type is OrdType.LIMIT and (price is None or price <= ZERO):
        return OrdRejReason.OTHER, "a limit order needs a price > 0"
    return None


def orderless_event(
    exec_id: str, exec_type: ExecType, cl_ord_id: str, text: str, why: OrdRejReason, ts: int
) -> ExecEvent:
    """A rejection that belongs to no order (duplicate ClOrdID, status of an unknown one)."""
    return ExecEvent(
        exec_id=exec_id,
        order_id=NO_ORDER_ID,
        cl_ord_id=cl_ord_id,
        orig_cl_ord_id="",
        exec_type=exec_type,
        ord_status=OrdStatus.REJECTED,
        symbol="",
        side=None,
        ord_type=None,
        tif=None,
        order_qty=ZERO,
        price=None,
        last_qty=ZERO,
        last_px=ZERO,
        cum_qty=ZERO,
        avg_px=ZERO,
        leaves_qty=ZERO,
        text=text,
        ord_rej_reason=why,
        transact_ns=ts,
    )
