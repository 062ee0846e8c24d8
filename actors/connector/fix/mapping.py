"""Pure mapping between our messages and FIX 4.4 application messages. No I/O, no state.

Outbound (field lists for `FixSession.send`): PlaceOrder -> D, CancelOnVenue -> F, ReplaceOnVenue
-> G, and the query requests H (status by ClOrdID), AF (mass status), AN (positions), q (mass
cancel). Inbound: an ExecutionReport (8) or OrderCancelReject (9) -> `ExecReport` for the
OMS (`EXEC_KINDS`); ExecType=I (status answers) -> `VenueOrder`; PositionReport (AP) ->
`PositionView`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from decimal import Decimal

import simplefix

from actors.connector.construct import trusted
from actors.connector.fix import codec as fc
from actors.connector.fix.events import SessionRejectReceived
from protocol.domain import MAX_DECIMAL_TEXT, check_decimal, parse_decimal
from protocol.messages import (
    CancelOnVenue,
    ExecKind,
    ExecReport,
    OrderStatus,
    OrdType,
    PlaceOrder,
    PositionView,
    QueriedOrder,
    ReplaceOnVenue,
    Side,
    TimeInForce,
    VenueOrder,
)

Fields = list[tuple[int, fc.Value]]

SIDE_TO_FIX = {Side.BUY: "1", Side.SELL: "2"}
SIDE_FROM_FIX = {"1": Side.BUY, "2": Side.SELL}
ORD_TYPE_TO_FIX = {OrdType.MARKET: "1", OrdType.LIMIT: "2"}
ORD_TYPE_FROM_FIX = {"1": OrdType.MARKET, "2": OrdType.LIMIT}
TIF_TO_FIX = {
    TimeInForce.DAY: "0",
    TimeInForce.GTC: "1",
    TimeInForce.IOC: "3",
    TimeInForce.FOK: "4",
}
# ExecType (150) -> the ExecReport kind forwarded to the OMS.
EXEC_KINDS: dict[str, ExecKind] = {
    "0": "accepted",
    "8": "rejected",
    "F": "fill",
    "4": "cancelled",
    "5": "replaced",
    "C": "expired",
    "D": "status",  # Restated: the order's new state, applied as venue evidence
    "H": "trade_cancel",  # a bust and a correction of fill ExecRefID(19): the reports
    "G": "trade_correct",  # are complete only with it (`actors.connector.fix.trade_busts`)
}
# OrdStatus (39) -> our OrderStatus; a code not listed (e.g. 3 done for day, 9 suspended)
# says nothing we act on: None.
ORD_STATUS_FROM_FIX = {
    "0": OrderStatus.ACCEPTED,
    "1": OrderStatus.PARTIALLY_FILLED,
    "2": OrderStatus.FILLED,
    "4": OrderStatus.CANCELLED,
    "6": OrderStatus.PENDING_CANCEL,
    "8": OrderStatus.REJECTED,
    "A": OrderStatus.PENDING_SUBMIT,
    "C": OrderStatus.EXPIRED,
    "E": OrderStatus.PENDING_REPLACE,
}
EXEC_TYPE_STATUS = "I"  # an answer to H / AF: consumed by the pending query
EXEC_TYPES_IGNORED = frozenset({"6", "A", "E"})  # pending states: nothing to apply
ORD_REJ_DUPLICATE = 6
ORD_REJ_UNKNOWN_ORDER = 5
NO_ORDER = "NONE"  # ClOrdID / OrderID of an answer that is about no order
MASS_STATUS_ALL = 7  # MassStatusReqType: status for all orders
MASS_CANCEL_ALL = 7  # MassCancelRequestType / MassCancelResponse: all orders
POS_NONE_FOUND = 2  # PosReqResult: no positions found
POS_NOT_SUPPORTED = 4  # PosReqResult: request for position not supported
UNSUPPORTED_MESSAGE_TYPE = 3  # BusinessRejectReason(380)
INVALID_MSG_TYPE = 11  # SessionRejectReason(373)


def transact_time(now_s: float) -> str:
    return fc.sending_time(now_s)


# ----------------------------------------------------------------------------- outbound


def place_fields(order: PlaceOrder, now_s: float) -> Fields:
    """NewOrderSingle (D) body."""
    fields: Fields = [
        (11, order.cl_ord_id),
        (55, order.symbol),
        (54, SIDE_TO_FIX[order.side]),
        (38, order.qty),
        (40, ORD_TYPE_TO_FIX[order.order_type]),
    ]
    if order.order_type is OrdType.LIMIT and order.price is not None:
        fields.append((44, order.price))
    fields += [(59, TIF_TO_FIX[order.tif]), (60, transact_time(now_s))]
    return fields


def cancel_fields(request: CancelOnVenue, now_s: float) -> Fields:
    """OrderCancelRequest (F) body."""
    return [
        (11, request.cl_ord_id),
        (41, request.orig_cl_ord_id),
        (55, request.symbol),
        (54, SIDE_TO_FIX[request.side]),
        (38, request.qty),
        (60, transact_time(now_s)),
    ]


def replace_fields(request: ReplaceOnVenue, now_s: float) -> Fields:
    """OrderCancelReplaceRequest (G) body."""
    fields: Fields = [
        (11, request.cl_ord_id),
        (41, request.orig_cl_ord_id),
        (55, request.symbol),
        (54, SIDE_TO_FIX[request.side]),
        (38, request.qty),
        (40, ORD_TYPE_TO_FIX[request.order_type]),
    ]
    if request.order_type is OrdType.LIMIT and request.price is not None:
        fields.append((44, request.price))
    fields += [(59, TIF_TO_FIX[request.tif]), (60, transact_time(now_s))]
    return fields


def status_request_fields(order: QueriedOrder, req_id: str, *, instrument: bool = True) -> Fields:
    """OrderStatusRequest (H): ClOrdID, Symbol (the Instrument block) and Side, all three
    required by FIX 4.4 (`instrument` false: without 55/54, for a venue whose dialect says
    so); OrdStatusReqID(790) is echoed on the answer, which names the venue's *current*
    ClOrdID."""
    fields: Fields = [(11, order.cl_ord_id), (790, req_id)]
    if instrument:
        fields += [(55, order.symbol), (54, SIDE_TO_FIX[order.side])]
    return fields


def mass_status_fields(req_id: str) -> Fields:
    """OrderMassStatusRequest (AF) for all orders."""
    return [(584, req_id), (585, MASS_STATUS_ALL)]


def positions_request_fields(req_id: str, account: str, now_s: float) -> Fields:
    """RequestForPositions (AN): positions (724=0) of our account."""
    business_date = fc.sending_time(now_s)[:8]
    return [
        (710, req_id),
        (724, 0),
        (1, account),
        (581, 1),
        (715, business_date),
        (60, transact_time(now_s)),
    ]


def mass_cancel_fields(req_id: str, now_s: float) -> Fields:
    """OrderMassCancelRequest (q) for all orders."""
    return [(11, req_id), (530, MASS_CANCEL_ALL), (60, transact_time(now_s))]


# ----------------------------------------------------------------------------- inbound


def get_decimal(msg: simplefix.FixMessage, tag: int) -> Decimal | None:
    """Field `tag` as a Decimal within the bounds of every quantity and price
    (`protocol.domain.check_decimal`: finite, no 9E+999999), or None when absent or not
    such a number (a fill without a valid price is then refused by the OMS, escalated)."""
    return _decimal(fc.get_str(msg, tag))


def _decimal(text: str | None) -> Decimal | None:
    """`parse_decimal(text)`, None for None or what it refuses. Cached (a Decimal is
    immutable): an execution report carries ~7 numbers, most of them repeated ("0", its
    quantities and price); a text longer than any number is refused before the cache, so
    a venue's hostile field (up to a frame's 1 MiB) is never kept as a key."""
    if text is None or len(text) > MAX_DECIMAL_TEXT:
        return None
    return _parsed(text)


@functools.lru_cache(maxsize=4096)
def _parsed(text: str) -> Decimal | None:
    try:
        return parse_decimal(text)
    except ValueError:
        return None


def _dec0(text: str | None) -> Decimal:
    return _decimal(text) or Decimal(0)


def number(fields: dict[bytes, bytes], tag: bytes) -> Decimal | None:
    """`_decimal(fc.text(fields, tag))` in one call (an execution report reads 7 numbers)."""
    raw = fields.get(tag)
    if raw is None or len(raw) > MAX_DECIMAL_TEXT:  # latin-1: a character a byte
        return None
    return _parsed(raw.decode("latin-1"))


def _number0(fields: dict[bytes, bytes], tag: bytes) -> Decimal:
    return number(fields, tag) or _ZERO


_ZERO = Decimal(0)


def _ts_ns(text: str | None) -> int:
    """TransactTime as epoch ns; 0 (not known) when none or outside the wire's int64 (1970
    to 2262: a year 9999 or 0001 made the report to the OMS fail to encode)."""
    seconds = fc.parse_sending_time(text) if text else None
    ns = 0 if seconds is None else int(round(seconds * 1000)) * 1_000_000
    return ns if 0 <= ns < 1 << 63 else 0


def _ord_status(text: str | None) -> OrderStatus | None:
    return ORD_STATUS_FROM_FIX.get((text or "").strip().upper())


def ord_status(msg: simplefix.FixMessage) -> OrderStatus | None:
    """OrdStatus (39) as our OrderStatus; None when absent or not one we map."""
    return _ord_status(fc.get_str(msg, 39))


def exec_type(msg: simplefix.FixMessage) -> str:  # ExecType (150), "" when absent
    return fc.get_str(msg, 150) or ""


def is_unknown_order(msg: simplefix.FixMessage) -> bool:
    """A status answer saying the venue never saw the ClOrdID: OrdStatus=8 with
    OrdRejReason=5 (or Text UNKNOWN_ORDER)."""
    if fc.get_str(msg, 39) != "8":
        return False
    text = (fc.get_str(msg, 58) or "").upper().replace(" ", "_")
    return fc.get_int(msg, 103) == ORD_REJ_UNKNOWN_ORDER or "UNKNOWN_ORDER" in text


# Every value of these two is made here by the conversions above (text, `parse_decimal`'s
# bounded Decimals, the enums, ints), each what the model's validation yields for it: built
# without validating again (`actors.connector.construct`; ~10 us a report, 10,000 in a mass status).
_exec_report = trusted(ExecReport)
_venue_order = trusted(VenueOrder)


def to_exec_report(msg: simplefix.FixMessage, venue: str) -> ExecReport | None:
    """An ExecutionReport (8) for the OMS; None for ExecTypes that are not forwarded
    (status answers, pending states, unsupported ones: the caller logs those)."""
    f = fc.first_fields(msg)
    exec_type, exec_id, cl_ord_id, text, order_id, orig, symbol, side, status, sent = [
        None if (v := f.get(k)) is None else v.decode("latin-1") for k in _EXEC_TEXTS
    ]
    kind = EXEC_KINDS.get(exec_type or "")
    if kind is None or not exec_id or cl_ord_id is None:
        return None
    text = text or ""
    reject_reason = ""
    if kind == "rejected" and fc.get_int(msg, 103) == ORD_REJ_DUPLICATE:
        reject_reason = "DUPLICATE_ORDER"
        if "duplicate" not in text.lower():
            text = f"duplicate order: {text}" if text else "duplicate order"
    # `fc.text` / `number` of each field, in one comprehension each (on the order path)
    order_qty, price, last_qty, last_px, cum_qty, avg_px, leaves_qty = [
        None if (raw := f.get(k)) is None or len(raw) > MAX_DECIMAL_TEXT
        else _parsed(raw.decode("latin-1"))
        for k in _EXEC_NUMBERS
    ]  # fmt: skip
    order_id = order_id or ""
    return _exec_report(
        venue=venue,
        exec_id=exec_id,
        kind=kind,
        cl_ord_id=cl_ord_id,
        orig_cl_ord_id=orig or "",
        venue_order_id="" if order_id == NO_ORDER else order_id,
        symbol=symbol or "",
        side=SIDE_FROM_FIX.get(side or ""),
        order_qty=order_qty,
        price=price,
        last_qty=last_qty or _ZERO,
        last_px=last_px or _ZERO,
        cum_qty=cum_qty or _ZERO,
        avg_px=avg_px or _ZERO,
        leaves_qty=leaves_qty or _ZERO,
        # a code as sent is its own look-up; else `_ord_status` (stripped, upper case)
        ord_status=ORD_STATUS_FROM_FIX.get(status or "") or _ord_status(status),
        text=text,
        reject_reason=reject_reason,
        venue_ts_ns=_ts_ns(sent),
    )


# read as text: ExecType, ExecID, ClOrdID, Text, OrderID, OrigClOrdID, Symbol, Side, OrdStatus,
# TransactTime; as numbers: OrderQty, Price; LastQty, LastPx, CumQty, AvgPx, LeavesQty (or 0)
_EXEC_TEXTS = (b"150", b"17", b"11", b"58", b"37", b"41", b"55", b"54", b"39", b"60")
_EXEC_NUMBERS = (b"38", b"44", b"32", b"31", b"14", b"6", b"151")


def cancel_reject_report(msg: simplefix.FixMessage, venue: str) -> ExecReport | None:
    """An OrderCancelReject (9): kind cancel_rejected, exec_id ``cxlrej:<ClOrdID>``."""
    f = fc.first_fields(msg)
    s = fc.text
    cl_ord_id = s(f, b"11")
    if not cl_ord_id:
        return None
    order_id = s(f, b"37") or ""
    return _exec_report(
        venue=venue,
        exec_id=f"cxlrej:{cl_ord_id}",
        kind="cancel_rejected",
        cl_ord_id=cl_ord_id,
        orig_cl_ord_id=s(f, b"41") or "",
        venue_order_id="" if order_id == NO_ORDER else order_id,
        ord_status=_ord_status(s(f, b"39")),
        text=s(f, b"58") or "",
        venue_ts_ns=_ts_ns(s(f, b"60")),
    )


def to_venue_order(msg: simplefix.FixMessage) -> VenueOrder | None:
    """A status answer (8, ExecType=I) about a known order; None when it names no order."""
    f = fc.first_fields(msg)
    s = fc.text
    cl_ord_id = s(f, b"11")
    side = SIDE_FROM_FIX.get(s(f, b"54") or "")
    symbol = s(f, b"55")
    if not cl_ord_id or cl_ord_id == NO_ORDER or side is None or not symbol:
        return None
    order_id = s(f, b"37") or ""
    return _venue_order(
        cl_ord_id=cl_ord_id,
        venue_order_id="" if order_id == NO_ORDER else order_id,
        symbol=symbol,
        side=side,
        order_qty=_dec0(s(f, b"38")),
        price=_decimal(s(f, b"44")),
        order_type=ORD_TYPE_FROM_FIX.get(s(f, b"40") or "", OrdType.LIMIT),
        status=_ord_status(s(f, b"39")) or OrderStatus.UNKNOWN,
        cum_qty=_dec0(s(f, b"14")),
        avg_px=_dec0(s(f, b"6")),
        leaves_qty=_dec0(s(f, b"151")),
    )


class UnreadableField(ValueError):
    """A field present with a value that is no number within the bounds."""


def to_position(msg: simplefix.FixMessage, venue: str) -> PositionView | None:
    """A PositionReport (AP) row: net = LongQty(704) - ShortQty(705), avg px = SettlPrice(730);
    None without a Symbol. UnreadableField for one of the three present but unreadable, or
    a net out of bounds: read as 0, it was a position the venue never reported."""
    symbol = fc.get_str(msg, 55)
    if not symbol:
        return None
    long_qty, short_qty, avg_px = [_present(msg, tag) for tag in (704, 705, 730)]
    try:  # each within the bounds, their difference may not be (9s less -9s)
        net = check_decimal(long_qty - short_qty)
    except ValueError:
        raise UnreadableField(f"{symbol}: LongQty(704) - ShortQty(705) out of bounds") from None
    return PositionView(venue=venue, symbol=symbol, qty=net, avg_px=avg_px)


def _present(msg: simplefix.FixMessage, tag: int) -> Decimal:
    """Field `tag` as a number; 0 when absent, UnreadableField when unreadable."""
    text = fc.get_str(msg, tag)
    if text is None:
        return _ZERO
    value = _decimal(text)
    if value is None:
        raise UnreadableField(f"tag {tag} is not a number within the bounds: {text[:32]!r}")
    return value


# SessionRejectReason (373): the names a Reject's text is read with
_SESSION_REJECT_REASONS = {
    0: "Invalid tag number", 1: "Required tag missing", 2: "Tag not defined for this message type",
    3: "Undefined tag", 4: "Tag specified without a value", 5: "Value is incorrect for this tag",
    6: "Incorrect data format for value", 9: "CompID problem", 10: "SendingTime accuracy problem",
    11: "Invalid MsgType", 13: "Tag appears more than once", 99: "Other",
}  # fmt: skip
REFUSED_EXEC_PREFIX = "refused:"  # exec id of an order message the venue rejected unread


def session_reject_text(event: SessionRejectReceived) -> str:
    """A venue's session Reject (35=3) of one of our messages in one line, e.g.
    ``session Reject of H: 373=1 Required tag missing, 371=54``."""
    reason = event.reason
    name = "" if reason is None else f"373={reason} {_SESSION_REJECT_REASONS.get(reason, '')}"
    tag = "" if event.ref_tag is None else f"371={event.ref_tag}"
    return _reject_text("session Reject", event.ref_msg_type, name.rstrip(), tag, event.text)


def business_reject_text(msg: simplefix.FixMessage) -> str:
    """A BusinessMessageReject (35=j) of one of our messages in one line."""
    reason = fc.get_str(msg, 380)
    return _reject_text(
        "BusinessMessageReject", fc.get_str(msg, 372), f"380={reason}" if reason else "", "",
        fc.get_str(msg, 58) or "",
    )  # fmt: skip


def _reject_text(kind: str, ref_msg_type: str | None, *parts: str) -> str:
    said = ", ".join(p for p in parts if p)
    what = f"{kind} of {ref_msg_type or 'our message'}"
    return f"{what}: {said}" if said else what


def refused_order_report(venue: str, cl_ord_id: str, text: str) -> ExecReport:
    """A NewOrderSingle the venue rejected at session level (or with a
    BusinessMessageReject): it never read it as an order, so the order was never live.
    Told to the OMS as a rejection with a deterministic exec id (a replay is a no-op)."""
    return ExecReport(
        venue=venue,
        exec_id=f"{REFUSED_EXEC_PREFIX}{cl_ord_id}",
        kind="rejected",
        cl_ord_id=cl_ord_id,
        ord_status=OrderStatus.REJECTED,
        text=text,
    )


def refused_request_report(venue: str, cl_ord_id: str, text: str) -> ExecReport:
    """An OrderCancelRequest / OrderCancelReplaceRequest (request id `cl_ord_id`) the
    venue rejected unread: told to the OMS as the OrderCancelReject it stands for (the
    order as it was), with the exec id a real 35=9 for it would have (a repeat is a no-op)."""
    return ExecReport(
        venue=venue,
        exec_id=f"cxlrej:{cl_ord_id}",
        kind="cancel_rejected",
        cl_ord_id=cl_ord_id,
        text=text,
    )


def dedupe_orders(orders: Sequence[VenueOrder]) -> list[VenueOrder]:
    """One VenueOrder per ClOrdID (the last answer wins), first-seen order kept."""
    by_id: dict[str, VenueOrder] = {}
    for o in orders:
        by_id[o.cl_ord_id] = o
    return list(by_id.values())
