"""FIX 4.4 application messages <-> the matching engine: pure, no sockets, no session.

`handle(venue, msg_type, msg, seq, now_ns, reject_order)` runs one inbound application
message against the engine and returns what to send back, in order, as `Out`s. Execution
reports produced by order operations carry their ExecType (`Out.exec_type`), so the shell
can put them through the fault pipeline; answers to queries have none.

Inbound -> outbound (tags):
- D  -> 8 per engine event: ExecType 0 New, then F trades, then 4 for an IOC/market
        remainder; or 8 Rejected (103=6 + "duplicate" for a ClOrdID seen before).
- F  -> 8 ExecType 4 (11 = the cancel's ClOrdID, 41 = the order's), or 9 with 434=1.
- G  -> 8 ExecType 5 (then trades if it became marketable), or 9 with 434=2.
- H  -> one 8 ExecType I (790 echoed); unknown: 39=8, 103=5, 58=UNKNOWN_ORDER, 37=NONE,
        the H's 55 and 54 echoed.
- AF -> one 8 ExecType I per open order (585=7 all, 585=1 one Symbol), 584 echoed,
        911 = count, 912=Y on the last; none: one report with 11=NONE, 911=0, 912=Y.
- AN -> one AP per symbol ever traded (710 echo, 721, 728=0, 727 = count, 1, 581=1, 715,
        55, 702=1 703=TQ 704 long 705 short, 730 = avg px, 731=1, 734=0); none: one AP
        with 728=2, 727=0. PosReqType(724) other than 0: 728=4. (AP has no 912.)
- q  -> r (37, 11 echo, 530 echo, 531 = 7 or 1, 533 = count) then 8 ExecType 4 per order,
        each order cancelled as its report is made (one finished meanwhile is skipped);
        530 other than 1/7: r with 531=0, 532=0.
- D or H without a tag FIX 4.4 requires of it (D: 11 40 54 55 60; H: 11 54 55), or with
  a Side(54) that is no FIX 4.4 Side -> a session Reject 3 (45, 371 = the tag, 372,
  373 = 1 missing / 5 bad value, 58) and nothing else, as a FIX engine validating against
  the FIX 4.4 dictionary answers (the lowest missing tag first).
- another required tag missing (F G AF AN q), or any other application MsgType -> j (45,
  372, 380, 58).
The venue's dialect (`[venues.sim.dialect]`, `Venue.dialect`): serves_positions = false ->
AN gets j 380=3; serves_mass_status = false -> AF gets j 380=3; empty_mass_status =
"silent" -> an AF matching no orders gets no answer at all; status_request_instrument =
false -> an H without 55/54 is served (an unknown order's answer then carries 55 "[N/A]"
and 54=1, the placeholders of the empty mass-status answer).
AF and q answers are `Stream`s (`answer()`): their parts are made as the shell sends them
(`actors.venuesim.pump`), the statuses as of the request (`actors.venuesim.snapshot`).
Every 8 has 37 17 150 39 55 54 38 40 151 14 6 11 60, and 44 (limit), 59, 32/31
(trades), 41 (cancel/replace), 103 (rejects), 58 (when there is a text).
"""

from __future__ import annotations

import itertools
import operator
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

import simplefix

from actors.connector.fix import codec as fc
from actors.venuesim.engine import Venue
from actors.venuesim.faults import REJECT_TEXT
from actors.venuesim.model import (
    NO_ORDER_ID,
    STATUS_EXEC_ID,
    CancelReject,
    Event,
    ExecEvent,
    ExecType,
    OrdRejReason,
)
from actors.venuesim.snapshot import StatusSnapshot
from actors.venuesim.status_wire import ReportWriter, written_tail
from protocol.messages import OrdType, Side, TimeInForce

Field = tuple[int, fc.Value]


@dataclass(frozen=True, slots=True)
class Out:
    """One application message to send."""

    msg_type: str
    fields: tuple[Field, ...] | fc.Written  # Written: an order's report (status_wire)
    exec_type: str = ""  # an execution report of an order operation (faults apply)
    exec_id: str = ""

    def pairs(self) -> Sequence[Field]:
        """The fields as (tag, value) pairs; a written body's values are bytes."""
        fields = self.fields
        return fields.pairs() if isinstance(fields, fc.Written) else fields


@dataclass(frozen=True, slots=True)
class Stream:
    """An answer of one message per order, its parts made as they are read; with
    `answers_only` it holds no execution report (an answer nobody can receive is dropped)."""

    parts: Iterator[Out]
    answers_only: bool

    def __iter__(self) -> Iterator[Out]:
        return self.parts


Answer = list[Out] | Stream

SIDE_FIX = {Side.BUY: "1", Side.SELL: "2"}
ORD_TYPE_FIX = {OrdType.MARKET: "1", OrdType.LIMIT: "2"}
TIF_FIX = {TimeInForce.DAY: "0", TimeInForce.GTC: "1", TimeInForce.IOC: "3", TimeInForce.FOK: "4"}
_SIDE = {v: k for k, v in SIDE_FIX.items()}
_ORD_TYPE = {v: k for k, v in ORD_TYPE_FIX.items()}
_TIF = {v: k for k, v in TIF_FIX.items()}
_INVALID = "?"  # stands for a FIX value the engine does not take: it rejects it

_WRITER = ReportWriter(SIDE_FIX, ORD_TYPE_FIX, TIF_FIX)
UNKNOWN_ORDER_TEXT = "UNKNOWN_ORDER"
NONE_ID = "NONE"
NO_SYMBOL = "[N/A]"
ACCOUNT = "SIM"
# BusinessRejectReason (380)
BR_OTHER, BR_UNSUPPORTED_MSG_TYPE, BR_FIELD_MISSING = 0, 3, 5

# required by FIX 4.4 and checked the way a FIX engine does: a session Reject
_SESSION_REQUIRED = {"D": (11, 40, 54, 55, 60), "H": (11, 54, 55)}
_FIX_SIDES = frozenset("123456789ABCDEFG")  # Side(54) values FIX 4.4 defines
# checked by the application: a BusinessMessageReject
_REQUIRED = {"F": (11, 41), "G": (11, 41), "AF": (584,), "AN": (710,), "q": (11, 530)}
SESSION_REJECT = "3"
# SessionRejectReason (373)
SR_REQUIRED_TAG_MISSING, SR_VALUE_INCORRECT = 1, 5
_ECHO_TAGS = (55, 54, 38, 40, 44, 59)
_NEW_ORDER_TAGS = (11, *_ECHO_TAGS, 60)  # ClOrdID, what an answer echoes, TransactTime
# the first-fields keys (b"11", ...) of the tag tuples read with `_Req.texts`
_KEYS = {t: tuple(b"%d" % tag for tag in t) for t in (*_SESSION_REQUIRED.values(), (11,), ())}
# a D is read once (`_NEW_ORDER_KEYS`); its session-required values are picked from that
_NEW_ORDER_KEYS = tuple(b"%d" % tag for tag in _NEW_ORDER_TAGS)
_D_REQUIRED = operator.itemgetter(*map(_NEW_ORDER_TAGS.index, _SESSION_REQUIRED["D"]))


@dataclass(slots=True)  # not frozen: one per request, made in series with its answer
class _Req:
    venue: Venue
    msg: simplefix.FixMessage
    seq: int
    now_ns: int
    reject_order: Callable[[], bool]
    fields: dict[bytes, bytes]  # fc.first_fields(msg): one index for every read
    poss_dup: bool = False  # a copy sent again on our ResendRequest (PossDupFlag=Y)
    order: list[str | None] | None = None  # a D's fields (_NEW_ORDER_KEYS), once read

    def s(self, tag: int) -> str | None:
        value = self.fields.get(fc.TAG_BYTES.get(tag) or b"%d" % tag)
        return None if value is None else value.decode("latin-1")

    def texts(self, keys: tuple[bytes, ...]) -> list[str | None]:
        """`s(tag)` of each tag of `keys` (b"11", ...: `_keys(tags)`), in one call."""
        get = self.fields.get
        return [None if (v := get(k)) is None else v.decode("latin-1") for k in keys]

    def echo(self) -> dict[int, str]:
        return {t: v for t in _ECHO_TAGS if (v := self.s(t))}


def handle(
    venue: Venue,
    msg_type: str,
    msg: simplefix.FixMessage,
    seq: int,
    now_ns: int,
    reject_order: Callable[[], bool] = lambda: False,
) -> list[Out]:
    """The answer to one inbound application message. `reject_order()` is asked once per
    NewOrderSingle: True rejects it (fault injection)."""
    return list(answer(venue, msg_type, msg, seq, now_ns, reject_order))


def answer(
    venue: Venue,
    msg_type: str,
    msg: simplefix.FixMessage,
    seq: int,
    now_ns: int,
    reject_order: Callable[[], bool] = lambda: False,
    *,
    poss_dup: bool = False,
) -> Answer:
    """As `handle`, but an answer of one message per order (AF, q) is a `Stream`: its parts
    are made as they are read (the shell sends them across loop turns), the statuses as
    of now (`actors.venuesim.snapshot`); the engine's work of a q is done now."""
    handler = _HANDLERS.get(msg_type)
    dialect = venue.dialect
    if (msg_type == "AN" and not dialect.serves_positions) or (
        msg_type == "AF" and not dialect.serves_mass_status
    ):
        handler = None
    if handler is None:
        text = f"unsupported MsgType {msg_type}"
        return [business_reject(seq, msg_type, BR_UNSUPPORTED_MSG_TYPE, text)]
    req = _Req(venue, msg, seq, now_ns, reject_order, fc.first_fields(msg), poss_dup)
    invalid = _session_problem(msg_type, req, strict_h=dialect.status_request_instrument)
    if invalid is not None:
        return [session_reject(seq, msg_type, *invalid)]
    for tag in _REQUIRED.get(msg_type, ()):
        if not req.s(tag):
            text = f"required tag {tag} missing"
            return [business_reject(seq, msg_type, BR_FIELD_MISSING, text, req.s(11))]
    return handler(req)


def _session_problem(
    msg_type: str, req: _Req, *, strict_h: bool = True
) -> tuple[int, int, str] | None:
    """(RefTagID, SessionRejectReason, Text) when a FIX engine would reject the request
    itself (`strict_h` false: an H needs only its ClOrdID; a Side it carries must be valid)."""
    required = (11,) if msg_type == "H" and not strict_h else _SESSION_REQUIRED.get(msg_type, ())
    if msg_type == "D":  # read once, for these checks and the order (`_new_order`)
        req.order = order = req.texts(_NEW_ORDER_KEYS)
        values: Sequence[str | None] = _D_REQUIRED(order)
    else:
        values = req.texts(_KEYS[required])
    for tag, value in zip(required, values, strict=True):
        if not value:
            return tag, SR_REQUIRED_TAG_MISSING, "Required tag missing"
    side = values[required.index(54)] if 54 in required else req.s(54)
    if msg_type in _SESSION_REQUIRED and (54 in required or side) and side not in _FIX_SIDES:
        return 54, SR_VALUE_INCORRECT, "Value is incorrect (out of range) for this tag"
    return None


# ---------------------------------------------------------------------- handlers


def _new_order(r: _Req) -> list[Out]:
    force = REJECT_TEXT if r.reject_order() else ""
    cl, symbol, side, qty, ord_type, price, tif, _ = r.order or r.texts(_NEW_ORDER_KEYS)
    events = r.venue.new_order(
        cl or "",
        symbol or "",
        _SIDE.get(side or "", _INVALID),
        qty,
        _ORD_TYPE.get(ord_type or "", _INVALID),
        price,
        _TIF.get(tif or "0", _INVALID),
        r.now_ns,
        force_reject=force,
        poss_dup=r.poss_dup,
    )
    # `r.echo()` from the values read above (_ECHO_TAGS: 55, 54, 38, 40, 44, 59)
    echo: dict[int, str] = {}
    for tag, value in zip(_ECHO_TAGS, (symbol, side, qty, ord_type, price, tif), strict=True):
        if value:
            echo[tag] = value
    return [event_out(ev, echo) for ev in events]


def _cancel(r: _Req) -> list[Out]:
    events = r.venue.cancel(
        r.s(11) or "", r.s(41) or "", r.now_ns, symbol=r.s(55), side=_optional(r.s(54), _SIDE)
    )
    return [event_out(ev, r.echo()) for ev in events]


def _replace(r: _Req) -> list[Out]:
    events = r.venue.replace(
        r.s(11) or "",
        r.s(41) or "",
        r.s(38),
        r.s(44),
        _optional(r.s(40), _ORD_TYPE),
        _optional(r.s(59), _TIF),
        r.now_ns,
        symbol=r.s(55),
        side=_optional(r.s(54), _SIDE),
    )
    return [event_out(ev, r.echo()) for ev in events]


def _status(r: _Req) -> list[Out]:
    ev = r.venue.status_report(r.s(11) or "", r.now_ns)
    echo = {55: NO_SYMBOL, 54: "1"} | r.echo()  # an H without them (a lenient venue)
    req_id = r.s(790)  # OrdStatusReqID, echoed
    return [event_out(ev, echo, extra=((790, req_id),) if req_id else ())]


def _mass_status(r: _Req) -> Answer:
    req_id, req_type, symbol = r.s(584) or "", r.s(585) or "7", r.s(55)
    if req_type not in ("1", "7") or (req_type == "1" and not symbol):
        text = f"MassStatusReqType {req_type} not supported (7, or 1 with Symbol)"
        return [business_reject(r.seq, "AF", BR_OTHER, text, req_id)]
    snap = r.venue.status_snapshot(r.now_ns, symbol if req_type == "1" else None)
    head = ((584, req_id),)
    if not snap.total and r.venue.dialect.empty_mass_status == "silent":
        return []  # FIX 4.4 defines no answer for "no orders": this venue sends none
    if not snap.total:
        # about no order, yet an 8 requires Symbol and Side: the request's if it named
        # them, else placeholders (Symbol "[N/A]" as FIX 4.4 has it for no symbol, Side 1)
        fields = (
            (37, NONE_ID), (11, NONE_ID), (17, STATUS_EXEC_ID), (150, ExecType.ORDER_STATUS.value),
            (39, "8"), (55, symbol or NO_SYMBOL), (54, r.s(54) or "1"), (151, 0), (14, 0),
            (6, 0), (60, _utc(r.now_ns)), *head, (911, 0), (912, "Y"), (58, "no open orders"),
        )  # fmt: skip
        return [Out("8", fields)]
    return Stream(_status_parts(snap, head), answers_only=True)


def _status_parts(snap: StatusSnapshot, head: tuple[Field, ...]) -> Iterator[Out]:
    """One 8 per order, written by `status_wire` (the general path for any other event)."""
    total = snap.total
    extra: tuple[Field, ...] = (*head, (911, total))
    tail = written_tail(extra)
    try:
        for i, ev in enumerate(snap, 1):
            if i == total:
                extra, tail = (*extra, (912, "Y")), tail + b"912=Y\x01"
            body = _WRITER.body(ev, tail)
            yield event_out(ev, {}, extra) if body is None else Out("8", body, exec_id=ev.exec_id)
    finally:  # read to the end or dropped (the session went): the engine forgets it
        snap.close()


def _positions(r: _Req) -> list[Out]:
    req_id = r.s(710) or ""
    common: tuple[Field, ...] = (
        (710, req_id), (1, r.s(1) or ACCOUNT), (581, "1"),
        (715, time.strftime("%Y%m%d", time.gmtime(r.now_ns / 1e9))),
    )  # fmt: skip
    positions = list(r.venue.positions().values())
    if (r.s(724) or "0") != "0" or not positions:
        result = "2" if (r.s(724) or "0") == "0" else "4"
        fields = (
            (721, f"PR-{req_id}-0"), *common, (728, result), (727, 0),
            (730, 0), (731, "1"), (734, 0),
        )  # fmt: skip
        return [Out("AP", fields)]
    outs = []
    total = len(positions)
    for i, p in enumerate(positions, 1):
        long_qty = p.net_qty if p.net_qty > 0 else Decimal(0)
        short_qty = -p.net_qty if p.net_qty < 0 else Decimal(0)
        fields = (
            (721, f"PR-{req_id}-{i}"), *common, (728, "0"), (727, total), (55, p.symbol),
            (702, 1), (703, "TQ"), (704, long_qty), (705, short_qty),
            (730, p.avg_px), (731, "1"), (734, 0),
        )  # fmt: skip
        outs.append(Out("AP", fields))
    return outs


def _mass_cancel(r: _Req) -> Answer:
    cl, req_type, symbol = r.s(11) or "", r.s(530) or "", r.s(55)
    head: tuple[Field, ...] = ((37, f"MC-{cl}"), (11, cl), (530, req_type))
    if req_type not in ("1", "7") or (req_type == "1" and not symbol):
        fields = (*head, (531, "0"), (532, "0"), (60, _utc(r.now_ns)),
                  (58, "MassCancelRequestType must be 7, or 1 with Symbol"))  # fmt: skip
        return [Out("r", fields)]
    total, cancels = r.venue.mass_cancel_stream(r.now_ns, symbol if req_type == "1" else None)
    report = Out("r", (*head, (531, req_type), (533, total), (60, _utc(r.now_ns))))
    parts = itertools.chain((report,), (event_out(ev, {}) for ev in cancels))
    return Stream(parts, answers_only=False)


_HANDLERS: dict[str, Callable[[_Req], Answer]] = {
    "D": _new_order, "F": _cancel, "G": _replace, "H": _status, "AF": _mass_status,
    "AN": _positions, "q": _mass_cancel,
}  # fmt: skip


# ---------------------------------------------------------------------- outbound


def event_out(ev: Event, echo: dict[int, str], extra: tuple[Field, ...] = ()) -> Out:
    """The FIX message of one engine event; `echo` (request tags) fills what an event about
    no order lacks (symbol, side, qty, ...)."""
    if isinstance(ev, CancelReject):
        fields: list[Field] = [
            (37, ev.order_id), (11, ev.cl_ord_id), (41, ev.orig_cl_ord_id),
            (39, ev.ord_status.value), (434, ev.cxl_rej_response_to.value),
            (102, int(ev.cxl_rej_reason)), (60, _utc(ev.transact_ns)), (58, ev.text),
        ]  # fmt: skip
        return Out("9", _clean(fields))
    exec_type = "" if ev.exec_type is ExecType.ORDER_STATUS else ev.exec_type._value_
    # written ahead (status_wire) unless the request's echo fills a Price the event lacks
    if not extra and (ev.price is not None or not echo.get(44)):
        body = _WRITER.body(ev)
        if body is not None:
            return Out("8", body, exec_type, ev.exec_id)
    return Out("8", _clean(exec_fields(ev, echo) + list(extra)), exec_type, ev.exec_id)


def exec_fields(ev: ExecEvent, echo: dict[int, str]) -> list[Field]:
    orderless = ev.order_id == NO_ORDER_ID
    unknown = orderless and ev.ord_rej_reason is OrdRejReason.UNKNOWN_ORDER
    own: dict[int, fc.Value | None] = {
        55: ev.symbol or None,
        54: SIDE_FIX.get(ev.side) if ev.side else None,
        38: None if orderless else ev.order_qty,
        40: ORD_TYPE_FIX.get(ev.ord_type) if ev.ord_type else None,
        44: ev.price,
        59: TIF_FIX.get(ev.tif) if ev.tif else None,
    }
    instrument: list[tuple[int, fc.Value | None]] = [
        (t, own[t] if own[t] is not None else echo.get(t)) for t in _ECHO_TAGS
    ]
    if orderless and 38 not in echo:
        instrument[2] = (38, ev.order_qty)
    fields: list[tuple[int, fc.Value | None]] = [
        (37, ev.order_id), (11, ev.cl_ord_id), (41, ev.orig_cl_ord_id), (17, ev.exec_id),
        # `_value_`: what `.value` returns, without the enum property's two Python calls
        (150, ev.exec_type._value_), (39, ev.ord_status._value_),
        (103, None if ev.ord_rej_reason is None else int(ev.ord_rej_reason)),
        *instrument,
    ]  # fmt: skip
    if ev.exec_type is ExecType.TRADE or ev.exec_ref_id:  # a trade, its bust or correction
        fields += [(32, ev.last_qty), (31, ev.last_px), (19, ev.exec_ref_id or None)]
    fields += [
        (151, ev.leaves_qty), (14, ev.cum_qty), (6, ev.avg_px), (60, _utc(ev.transact_ns)),
        (58, UNKNOWN_ORDER_TEXT if unknown else ev.text),
    ]  # fmt: skip
    return [(t, v) for t, v in fields if v is not None]


def business_reject(
    seq: int, ref_msg_type: str, reason: int, text: str, ref_id: str | None = None
) -> Out:
    """A BusinessMessageReject (j) of the inbound message `seq`."""
    fields: list[Field] = [(45, seq), (372, ref_msg_type or "?")]
    if ref_id:
        fields.append((379, ref_id))
    fields += [(380, reason), (58, text)]
    return Out("j", _clean(fields))


def session_reject(seq: int, ref_msg_type: str, ref_tag: int, reason: int, text: str) -> Out:
    """A session-level Reject (3) of the inbound message `seq` (sent by the session)."""
    fields: list[Field] = [(45, seq), (371, ref_tag), (372, ref_msg_type), (373, reason)]
    return Out(SESSION_REJECT, _clean([*fields, (58, text)]))


def _clean(fields: list[Field]) -> tuple[Field, ...]:
    """Drop empty values (FIX has no empty fields); SOH in a text becomes a space (a text
    without one is kept as it is, not copied: a str subclass still becomes a str)."""
    return tuple([
        (t, v.replace("\x01", " ") if isinstance(v, str) and (type(v) is not str or "\x01" in v)
            else v)
        for t, v in fields if v or not isinstance(v, str)  # an empty str is dropped
    ])  # fmt: skip


def _optional(value: str | None, table: Mapping[str, object]) -> str | None:
    """None when the tag is absent; the engine's value, or an invalid marker."""
    if value is None:
        return None
    found = table.get(value)
    return _INVALID if found is None else str(found)


def _utc(ts_ns: int) -> str:
    return fc.sending_time(ts_ns / 1e9)
