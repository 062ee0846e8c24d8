"""Pending FIX queries and the answers that complete them. Pure: no socket, no timer.

    book = QueryBook(venue)
    book.add(StatusQuery(...)); the adapter sends the H messages
    each inbound answer: book.feed_status(msg) (8 with ExecType=I), book.feed_position(msg)
    (AP / AO), book.feed_mass_cancel(msg) (r) -> True when a pending query consumed it
    timeouts and disconnects: book.expire(key, err) / book.fail_all(err)
    a venue silent on an empty AF: book.complete_if_silent(key) after the dialect's wait

Each query calls its `done` callback exactly once: with its result when complete, or with
a `RequestFailed`. Answers are matched by the request id the venue echoes:
OrdStatusReqID(790) for H, MassStatusReqID(584) for AF, PosReqID(710) for AN, ClOrdID(11)
for q. A status answer carrying 584 is a mass-status part, never the answer to an H of
the same order; one with neither 790 nor 584 is matched by its ClOrdID (an index, O(1)),
else it goes to the oldest mass-status query. Answers to no pending query (e.g. old
answers replayed by a FIX resend) are not consumed.

A mass status is answered by one report per open order, which may be tens of thousands:
more than `MAX_OPEN_ORDERS_PER_REPLY` (announced by TotNumReports(911) in the first part,
or counted) is refused at once (VENUE_REFUSED: the OMS then asks by order, H) and the
rest of the answer is read and dropped (`draining`). Its timeout is a silence timeout:
`parts` moves with every report (`actors.connector.fix.requests`).

End of a multi-message answer: LastRptRequested(912)=Y (ExecutionReports only: a
PositionReport has no 912), or as many reports as TotNumReports(911) /
TotalNumPosReports(727) announced; 0 announced means none (the single message carrying
the count, ClOrdID "NONE" for AF, PosReqResult 2 for AN, is no row). A position report
with a quantity or price that is no number within the bounds fails its query
(VENUE_REFUSED), counted (``tradepulse_venue_answers_unreadable_total``, source
``position``) and logged (``fix_answer_unreadable``): read as 0 it was a position the
venue never reported. A status answer with such a number is no evidence: its order is not
listed (an H's is neither found nor unknown), counted (source ``status``) and logged
within a budget.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import simplefix
import structlog

from actors.connector.adapter import (
    AnswerTooBig,
    MassCancelDone,
    OrdersDone,
    PositionsDone,
    RequestFailed,
    StatusDone,
    StatusResult,
)
from actors.connector.fix import codec as fc
from actors.connector.fix import mapping as fm
from actors.connector.fix.events import Logger
from actors.runtime.ratelog import LogBudget
from protocol.messages import ErrorCode, PositionView, VenueOrder

_ORDER_NUMBERS = (b"38", b"44", b"14", b"6", b"151")  # OrderQty, Price, CumQty, AvgPx, LeavesQty


def unreadable_number(msg: simplefix.FixMessage) -> str | None:
    """What is wrong with a status answer's numbers (one present that is no number within
    the bounds), or None. Read as 0 (or no price), it was evidence the venue never gave:
    a FILLED order with CumQty 0, a replaced order's quantity 0."""
    f = fc.first_fields(msg)
    for tag in _ORDER_NUMBERS:
        raw = f.get(tag)
        if raw is not None and fm.number(f, tag) is None:
            return f"tag {tag.decode()} is not a number within the bounds: {raw[:32]!r}"
    return None


def _last_report(msg: simplefix.FixMessage, count: int, total_tag: int) -> bool:
    if fc.get_str(msg, 912) == "Y":
        return True
    total = fc.get_int(msg, total_tag)
    return total is not None and count >= total


@dataclass
class StatusQuery:
    """H per ClOrdID: `req_ids` maps each OrdStatusReqID to the ClOrdID it asks about."""

    key: str
    req_ids: dict[str, str]
    done: StatusDone
    orders: list[VenueOrder] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)

    def answer(self, req_id: str, msg: simplefix.FixMessage, unreadable: bool = False) -> bool:
        """Record the answer to `req_id`; True when every id is answered. `unreadable`: a
        number of it is not (see `unreadable_number`), the order is not listed."""
        asked = self.req_ids.pop(req_id)
        order = None if unreadable else fm.to_venue_order(msg)
        if fm.is_unknown_order(msg):
            self.unknown.append(asked)
        elif order is not None:
            self.orders.append(order)
        # an answer we cannot read is no evidence either way: never "unknown" (that would
        # make the OMS send the order again); reconciliation escalates it instead
        return not self.req_ids

    def result(self) -> StatusResult:
        return StatusResult(orders=fm.dedupe_orders(self.orders), unknown=self.unknown)


# One OpenOrders reply to the OMS holds at most this many orders: ~150 bytes and ~12
# msgpack elements each, so 10,000 are ~1.5 MiB (the codec takes 4 MiB, 524,288 elements)
# and 0.16 s of decode in the OMS loop (measured on the loaded VM; the hang limit is 0.6 s).
# A warm start with 10,000 open orders stays on the venue's mass status: asking each by H
# instead goes at the venue's rate limit.
MAX_OPEN_ORDERS_PER_REPLY = 10_000
# and at most this many bytes, estimated per report as the FIX values a VenueOrder carries
# plus its msgpack keys (an over-estimate): a venue's long ids must not push the reply over
# the codec's 4 MiB frame, which the OMS would refuse as malformed, pass after pass
MAX_REPLY_BYTES = 3 << 20
_ORDER_KEYS_BYTES = 128
_ORDER_TAGS = frozenset(str(t).encode() for t in (11, 37, 55, 54, 38, 44, 40, 39, 14, 6, 151))
_ORDER_TAG_LIST = tuple(_ORDER_TAGS)


def _order_bytes(msg: simplefix.FixMessage) -> int:
    """Bytes of every value of `_ORDER_TAGS` in `msg`, a value that is not ASCII twice.
    With no tag repeated (a report as venues send it) its values are read from the
    message's index (11 look-ups, not a pass over every field) and summed at once."""
    pairs = msg.pairs
    first = fc.first_fields(msg)
    if len(first) == len(pairs):  # no tag repeated: the index holds every value
        values = [v for t in _ORDER_TAG_LIST if (v := first.get(t)) is not None]
    else:
        values = [v for t, v in pairs if t in _ORDER_TAGS]
    joined = b"".join(values)
    if joined.isascii():
        return len(joined)
    return len(joined) + sum(len(v) for v in values if not v.isascii())


@dataclass
class MassStatusQuery:
    key: str  # MassStatusReqID
    done: OrdersDone
    orders: list[VenueOrder] = field(default_factory=list)
    count: int = 0
    parts: int = 0  # reports received, readable or not (the silence timeout watches it)
    limit: int = MAX_OPEN_ORDERS_PER_REPLY
    max_bytes: int = MAX_REPLY_BYTES
    size: int = 0  # estimated bytes of the reply so far
    draining: bool = False  # refused as too big: the rest is read and dropped

    def answer(self, msg: simplefix.FixMessage, unreadable: bool = False) -> bool:
        self.parts += 1
        announced = fc.get_int(msg, 911)
        if self.draining:
            return _last_report(msg, self.parts, 911)
        if max(announced or 0, self.count + 1) > self.limit:
            self._refuse(max(announced or 0, self.count + 1), str(self.limit))
            return _last_report(msg, self.parts, 911)
        if unreadable:  # not listed (the OMS asks by H for an open order it lacks)
            return _last_report(msg, self.parts, 911)
        order = fm.to_venue_order(msg)
        if announced == 0 or order is None:
            return _last_report(msg, 0, 911)
        # at least the bytes of each value once re-encoded as UTF-8 (read as latin-1: a
        # byte over 0x7f becomes two, so a value that is not ASCII counts twice)
        self.size += _ORDER_KEYS_BYTES + _order_bytes(msg)
        if self.size > self.max_bytes:
            self._refuse(self.count + 1, f"{self.max_bytes} bytes")
            return _last_report(msg, self.parts, 911)
        self.orders.append(order)
        self.count += 1
        return _last_report(msg, self.count, 911)

    def _refuse(self, orders: int, limit: str) -> None:
        done, self.draining, self.orders = self.done, True, []
        self.done = _ignore
        text = (
            f"mass status of {orders} or more orders is over the {limit} one reply"
            " carries: ask by order"
        )
        done(AnswerTooBig(orders, text))


def _ignore(_result: object) -> None:
    """A refused query's `done`: its caller was answered already."""


@dataclass
class PositionsQuery:
    key: str  # PosReqID
    done: PositionsDone
    venue: str
    positions: list[PositionView] = field(default_factory=list)
    count: int = 0  # reports received (a row we cannot read counts too)

    def answer(self, msg: simplefix.FixMessage) -> bool:
        none = fc.get_int(msg, 727) == 0 or fc.get_int(msg, 728) == fm.POS_NONE_FOUND
        row = None if none else fm.to_position(msg, self.venue)
        if row is not None:
            self.positions.append(row)
        self.count += 1
        return none or _last_report(msg, self.count, 727)


@dataclass
class MassCancelQuery:
    key: str  # the request's ClOrdID
    done: MassCancelDone


Query = StatusQuery | MassStatusQuery | PositionsQuery | MassCancelQuery


class QueryBook:
    def __init__(self, venue: str, log: Logger | None = None) -> None:
        self.venue = venue
        self._log: Logger = log if log is not None else structlog.get_logger("fix_queries")
        self._status_log = LogBudget()  # unreadable status answers: 10 lines a second
        self._queries: dict[str, Query] = {}  # key -> query, oldest first
        self._status_req: dict[str, StatusQuery] = {}  # OrdStatusReqID -> query
        self._status_by_cl: dict[str, dict[str, None]] = {}  # ClOrdID -> its OrdStatusReqIDs

    def __len__(self) -> int:
        return len(self._queries)

    def add(self, query: Query) -> None:
        self._queries[query.key] = query
        if isinstance(query, StatusQuery):
            for req_id, cl_ord_id in query.req_ids.items():
                self._status_req[req_id] = query
                self._status_by_cl.setdefault(cl_ord_id, {})[req_id] = None

    # -- answers ---------------------------------------------------------------------

    def feed_status(self, msg: simplefix.FixMessage) -> bool:
        """An ExecutionReport with ExecType=I."""
        unreadable = self._order_unreadable(msg)
        req_id, mass_id = fc.get_str(msg, 790), fc.get_str(msg, 584)
        if req_id is None and mass_id is None:
            req_id = self._status_req_for(fc.get_str(msg, 11) or "")
        if req_id is not None and req_id in self._status_req:
            query = self._status_req.pop(req_id)
            self._forget_status_req(req_id, query.req_ids.get(req_id, ""))
            if query.answer(req_id, msg, unreadable):
                self._complete(query.key, query.result())
            return True
        if mass_id is None and req_id is None:
            mass_id = next(
                (k for k, q in self._queries.items() if isinstance(q, MassStatusQuery)), None
            )
        mass = self._queries.get(mass_id or "")
        if isinstance(mass, MassStatusQuery):
            if mass.answer(msg, unreadable):
                self._complete(mass.key, mass.orders)
            return True
        return False

    def feed_position(self, msg: simplefix.FixMessage) -> bool:
        """A PositionReport (AP) or RequestForPositionsAck (AO)."""
        query = self._queries.get(fc.get_str(msg, 710) or "")
        if not isinstance(query, PositionsQuery):
            return False
        result = fc.get_int(msg, 728)
        if result not in (None, 0, fm.POS_NONE_FOUND):
            text = fc.get_str(msg, 58) or f"PosReqResult {result}"
            unsupported = result == fm.POS_NOT_SUPPORTED
            err = RequestFailed(
                ErrorCode.VENUE_REFUSED, f"positions refused: {text}", unsupported=unsupported
            )
            self._complete(query.key, err)
        else:
            try:
                complete = query.answer(msg)
            except fm.UnreadableField as exc:
                self._unreadable(query.key, "position", str(exc))
                return True
            if complete:
                self._complete(query.key, query.positions)
        return True

    def feed_mass_cancel(self, msg: simplefix.FixMessage) -> bool:
        """An OrderMassCancelReport (r): accepted unless MassCancelResponse(531) is 0."""
        key = fc.get_str(msg, 11)
        if key is None:  # no echo: the oldest pending mass cancel
            key = next((k for k, q in self._queries.items() if isinstance(q, MassCancelQuery)), "")
        query = self._queries.get(key)
        if not isinstance(query, MassCancelQuery):
            return False
        self._complete(query.key, fc.get_str(msg, 531) not in (None, "0"))
        return True

    # -- failures --------------------------------------------------------------------

    def key_of(self, req_id: str) -> str | None:
        """The pending query a request id of ours names (its key, or an H's
        OrdStatusReqID), or None."""
        if req_id in self._queries:
            return req_id
        query = self._status_req.get(req_id)
        return query.key if query is not None else None

    def expire(self, key: str, error: RequestFailed) -> None:
        """Fail query `key` if it is still pending (a timeout)."""
        if key in self._queries:
            self._complete(key, error)

    def complete_if_silent(self, key: str) -> None:
        """A mass-status query `key` with no report yet is complete: no open orders (a venue
        whose dialect answers an AF matching nothing with silence). One that has reports
        waits for the rest (or its timeout)."""
        query = self._queries.get(key)
        if isinstance(query, MassStatusQuery) and query.count == 0:
            self._complete(key, [])

    def fail_all(self, error: RequestFailed) -> None:
        for key in list(self._queries):
            self._complete(key, error)

    # -- internals -------------------------------------------------------------------

    def _order_unreadable(self, msg: simplefix.FixMessage) -> bool:
        """A status answer with a number that is not one: counted, logged within a budget."""
        error = unreadable_number(msg)
        if error is None:
            return False
        _count_unreadable(self.venue, "status")
        if (suppressed := self._status_log.take()) is not None:
            self._log.warning(
                "fix_answer_unreadable", source="status", error=error, suppressed=suppressed
            )
        return True

    def _unreadable(self, key: str, source: str, error: str) -> None:
        """Query `key` fails on an answer it cannot read: counted, logged, VENUE_REFUSED."""
        _count_unreadable(self.venue, source)
        self._log.warning("fix_answer_unreadable", source=source, error=error)
        text = f"unreadable {source} report: {error}"
        self._complete(key, RequestFailed(ErrorCode.VENUE_REFUSED, text))

    def _status_req_for(self, cl_ord_id: str) -> str | None:
        """The oldest pending OrdStatusReqID asking about `cl_ord_id`."""
        return next(iter(self._status_by_cl.get(cl_ord_id, ())), None)

    def _forget_status_req(self, req_id: str, cl_ord_id: str) -> None:
        ids = self._status_by_cl.get(cl_ord_id)
        if ids is not None:
            ids.pop(req_id, None)
            if not ids:
                del self._status_by_cl[cl_ord_id]

    def _complete(self, key: str, result: object) -> None:
        query = self._queries.pop(key)
        if isinstance(query, StatusQuery):
            for req_id, cl_ord_id in query.req_ids.items():
                self._status_req.pop(req_id, None)
                self._forget_status_req(req_id, cl_ord_id)
        # each query kind has its own result type; `key` pairs the result with its query
        done: Callable[[object], None] = query.done  # type: ignore[assignment]
        done(result)


def _count_unreadable(venue: str, source: str) -> None:
    """`tradepulse_venue_answers_unreadable_total{venue,source}` + 1. The metrics module is
    imported here, not at the top: the fork server loads this module before its setup
    (`forkserver.WARM_BY_KIND`), where prometheus_client must not be imported yet."""
    from actors.runtime import metrics

    metrics.VENUE_ANSWERS_UNREADABLE.labels(venue=venue, source=source).inc()
