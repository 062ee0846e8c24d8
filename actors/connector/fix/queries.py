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
for q. A status answer without 790 is matched by its ClOrdID; one without 790 or 584 that
matches no status query goes to the oldest mass-status query. Answers to no pending query
(e.g. old answers replayed by a FIX resend) are not consumed.

End of a multi-message answer: LastRptRequested(912)=Y (ExecutionReports only: a
PositionReport has no 912), or as many reports as TotNumReports(911) /
TotalNumPosReports(727) announced; 0 announced means none (the single message carrying
the count, ClOrdID "NONE" for AF, PosReqResult 2 for AN, is no row).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import simplefix

from actors.connector.adapter import (
    MassCancelDone,
    OrdersDone,
    PositionsDone,
    RequestFailed,
    StatusDone,
    StatusResult,
)
from actors.connector.fix import codec as fc
from actors.connector.fix import mapping as fm
from protocol.messages import ErrorCode, PositionView, VenueOrder


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

    def answer(self, req_id: str, msg: simplefix.FixMessage) -> bool:
        """Record the answer to `req_id`; True when every id is answered."""
        asked = self.req_ids.pop(req_id)
        order = fm.to_venue_order(msg)
        if fm.is_unknown_order(msg):
            self.unknown.append(asked)
        elif order is not None:
            self.orders.append(order)
        # an answer we cannot read is no evidence either way: never "unknown" (that would
        # make the OMS send the order again); reconciliation escalates it instead
        return not self.req_ids

    def result(self) -> StatusResult:
        return StatusResult(orders=fm.dedupe_orders(self.orders), unknown=self.unknown)


@dataclass
class MassStatusQuery:
    key: str  # MassStatusReqID
    done: OrdersDone
    orders: list[VenueOrder] = field(default_factory=list)
    count: int = 0

    def answer(self, msg: simplefix.FixMessage) -> bool:
        order = fm.to_venue_order(msg)
        if fc.get_int(msg, 911) == 0 or order is None:
            return _last_report(msg, 0, 911)
        self.orders.append(order)
        self.count += 1
        return _last_report(msg, self.count, 911)


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
    def __init__(self, venue: str) -> None:
        self.venue = venue
        self._queries: dict[str, Query] = {}  # key -> query, oldest first
        self._status_req: dict[str, StatusQuery] = {}  # OrdStatusReqID -> query

    def __len__(self) -> int:
        return len(self._queries)

    def add(self, query: Query) -> None:
        self._queries[query.key] = query
        if isinstance(query, StatusQuery):
            for req_id in query.req_ids:
                self._status_req[req_id] = query

    # -- answers ---------------------------------------------------------------------

    def feed_status(self, msg: simplefix.FixMessage) -> bool:
        """An ExecutionReport with ExecType=I."""
        req_id = fc.get_str(msg, 790)
        if req_id is None:
            req_id = self._status_req_for(fc.get_str(msg, 11) or "")
        if req_id is not None and req_id in self._status_req:
            query = self._status_req.pop(req_id)
            if query.answer(req_id, msg):
                self._complete(query.key, query.result())
            return True
        mass_id = fc.get_str(msg, 584)
        if mass_id is None and fc.get_str(msg, 790) is None:
            mass_id = next(
                (k for k, q in self._queries.items() if isinstance(q, MassStatusQuery)), None
            )
        mass = self._queries.get(mass_id or "")
        if isinstance(mass, MassStatusQuery):
            if mass.answer(msg):
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
        elif query.answer(msg):
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

    def _status_req_for(self, cl_ord_id: str) -> str | None:
        for req_id, query in self._status_req.items():
            if query.req_ids.get(req_id) == cl_ord_id:
                return req_id
        return None

    def _complete(self, key: str, result: object) -> None:
        query = self._queries.pop(key)
        if isinstance(query, StatusQuery):
            for req_id in query.req_ids:
                self._status_req.pop(req_id, None)
        # each query kind has its own result type; `key` pairs the result with its query
        done: Callable[[object], None] = query.done  # type: ignore[assignment]
        done(result)
