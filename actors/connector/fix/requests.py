"""The FIX adapter's queries to the venue (a mixin of `FixAdapter`, fix/adapter.py): each
request becomes a pending query in the `QueryBook` (fix/queries.py) and its FIX messages
go through the outbound queue (token bucket), like orders.

- order_status -> one OrderStatusRequest (H) per order; with the venue's dialect
  `status_request_instrument = false` the H carries no Symbol(55)/Side(54).
- open_orders -> OrderMassStatusRequest (AF), answered by one report per open order: its
  timeout is a silence timeout (`request_timeout_s` with no new report; at most twice
  that after the last one), so a long answer is not cut by a total; one over
  `MAX_OPEN_ORDERS_PER_REPLY` is refused at its first report (queries.py). With
  `empty_mass_status = "silent"` (a venue that answers an AF matching no orders with
  nothing) an AF with no report at all within `empty_mass_status_wait_s` is complete: no
  open orders. A venue that starts reporting has until `request_timeout_s`, as with
  "report".
- positions -> RequestForPositions (AN); mass_cancel -> OrderMassCancelRequest (q).
Timeouts complete a query with TIMEOUT; a Reject / BusinessMessageReject of its message
with VENUE_REFUSED (the adapter's `_on_rejected`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

from actors.connector.adapter import (
    Loop,
    MassCancelDone,
    OrdersDone,
    PositionsDone,
    RequestFailed,
    StatusDone,
)
from actors.connector.fix import mapping as fm
from actors.connector.fix.outbound import Outbound, OutboundQueue
from actors.connector.fix.queries import (
    MassCancelQuery,
    MassStatusQuery,
    PositionsQuery,
    QueryBook,
    StatusQuery,
)
from protocol.config import VenueCfg
from protocol.messages import ErrorCode, QueriedOrder


class QueryRequests:
    """Needs of the host class: the attributes and the two methods below."""

    venue: str
    _cfg: VenueCfg
    _loop: Loop
    _queries: QueryBook
    _ids: itertools.count[int]
    _id_prefix: str
    _clock: Callable[[], float]
    _out: OutboundQueue

    def _check_active(self, done: Callable[[Any], None]) -> bool:
        raise NotImplementedError

    def _enqueue(self, item: Outbound) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ requests

    def order_status(self, orders: Sequence[QueriedOrder], done: StatusDone) -> None:
        if not self._check_active(done):
            return
        key = self._new_id("S")
        asks = {f"{key}.{i}": order for i, order in enumerate(orders)}
        req_ids = {req_id: order.cl_ord_id for req_id, order in asks.items()}
        if not req_ids:
            done(StatusQuery(key, {}, done).result())
            return
        self._queries.add(StatusQuery(key, req_ids, done))
        instrument = self._cfg.dialect.status_request_instrument
        for req_id, order in asks.items():
            fields = fm.status_request_fields(order, req_id, instrument=instrument)
            self._enqueue(Outbound("H", fields, None, key))
        self._expire_later(
            key, self._cfg.request_timeout_s + len(req_ids) / self._cfg.rate_limit_per_s
        )

    def open_orders(self, done: OrdersDone) -> None:
        if self._check_active(done):
            key = self._new_id("M")
            query = MassStatusQuery(key, done)
            self._queries.add(query)
            self._enqueue(Outbound("AF", fm.mass_status_fields(key), None, key))
            self._expire_when_silent(query, self._cfg.request_timeout_s)
            dialect = self._cfg.dialect
            if dialect.empty_mass_status == "silent":
                # counted from when the AF can leave: behind the queue the rate limit paces
                queued_s = len(self._out) / self._cfg.rate_limit_per_s
                wait_s = dialect.empty_mass_status_wait_s + queued_s
                self._loop.call_later(wait_s, lambda: self._queries.complete_if_silent(key))

    def positions(self, done: PositionsDone) -> None:
        if self._check_active(done):
            key = self._new_id("P")
            self._queries.add(PositionsQuery(key, done, self.venue))
            fields = fm.positions_request_fields(key, self._cfg.sender_comp_id, self._clock())
            self._enqueue(Outbound("AN", fields, None, key))
            self._expire_later(key, self._cfg.request_timeout_s)

    def mass_cancel(self, done: MassCancelDone) -> None:
        if self._check_active(done):
            key = self._new_id("MC")
            self._queries.add(MassCancelQuery(key, done))
            self._enqueue(Outbound("q", fm.mass_cancel_fields(key, self._clock()), None, key))
            self._expire_later(key, self._cfg.request_timeout_s)

    # ------------------------------------------------------------------ helpers

    def _new_id(self, kind: str) -> str:
        return f"{kind}-{self._id_prefix}-{next(self._ids)}"

    def _expire_when_silent(self, query: MassStatusQuery, timeout_s: float) -> None:
        """Fail `query` once `timeout_s` passed without a new report (checked every
        `timeout_s`: a report came since the last check, so wait again)."""
        seen = query.parts

        def check() -> None:
            if self._queries.key_of(query.key) is None:
                return  # complete
            if query.parts != seen:
                self._expire_when_silent(query, timeout_s)
                return
            why = f"no report from the venue for {timeout_s:.1f} s"
            self._queries.expire(query.key, RequestFailed(ErrorCode.TIMEOUT, why))

        self._loop.call_later(timeout_s, check)

    def _expire_later(self, key: str, timeout_s: float) -> None:
        err = RequestFailed(ErrorCode.TIMEOUT, f"no answer from the venue within {timeout_s:.1f} s")
        self._loop.call_later(timeout_s, lambda: self._queries.expire(key, err))
