"""One reconciliation pass of a `VenueLink` (actors/oms/venue_link.py): gathering the
venue's view (OpenOrders, OrderStatusQuery chunk by chunk, Positions) and deciding which
orders this pass may judge at all.

A pass runs while orders flow. Each connector answer carries an `ExecCut`: the executions
it reflects, every one of them already applied here (actors/connector/exec_cut.py). What
is still in flight when the venue answers is not evidence of anything, so these orders are
not judged by this pass, only counted (`Plan.skipped`) and left to the next:

- an order an execution changed after the pass began (our book and the venue's answer may
  each hold an execution the other lacks: `actors.oms.exec_cut.ExecLog.touched_since`);
- an order whose request (D, F, G) was handed to the connector but not confirmed sent
  when one of the pass's queries left, or handed after the pass began: the venue may read
  it after the query, so "unknown order" or its absence proves nothing (resubmitting it
  would rely on the venue refusing a duplicate ClOrdID);
- an open order neither listed by the venue nor asked about (it was PENDING_RISK, or
  did not exist, when the queries were made).

Positions are compared as of the cut of the positions answer (`ExecLog.positions_as_of`);
when that cut is not consistent (the connector's wait for our acks ran out, or it names
another OMS incarnation) or is older than what the log keeps, the pass compares no
positions (the heartbeat does, every beat). Open-order and status answers whose cut is
not consistent fail the pass (retried): without it a fill in flight reads as missed.
An answer without a cut (a connector that does not stamp) is taken as before.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any, Protocol

from actors.oms.exec_cut import ExecLog
from actors.oms.order_book import OrderBook
from actors.oms.plan import Plan
from actors.oms.reconcile import status_query_orders
from actors.oms.reconcile_retry import venue_refused, why
from protocol.codec import Envelope
from protocol.messages import (
    ExecCut,
    GetPositions,
    Message,
    OpenOrders,
    OpenOrdersRequest,
    OrderStatus,
    OrderStatusAnswer,
    OrderStatusQuery,
    Positions,
    VenueConnState,
    VenueOrder,
)

STATUS_CHUNK = 2000


class PassLink(Protocol):
    """What a pass needs of its `VenueLink`."""

    venue: str
    state: VenueConnState
    connector_epoch: int | None
    request_timeout_s: float
    status_rate_per_s: float
    log: Any

    @property
    def book(self) -> OrderBook: ...

    @property
    def exec_log(self) -> ExecLog: ...

    @property
    def oms_epoch(self) -> int: ...

    def in_flight_ids(self) -> set[str]: ...

    def request(
        self, body: Message, callback: Callable[[Envelope | None], None], timeout_s: float
    ) -> None: ...

    def is_current(self, p: ReconcilePass) -> bool: ...

    def pass_failed(self, p: ReconcilePass, reason: str) -> None: ...

    def pass_superseded(self, p: ReconcilePass, reason: str) -> None: ...

    def pass_gathered(self, p: ReconcilePass, positions: Positions | None) -> None: ...

    def log_once(self, what: str, event: str, reason: str) -> None: ...


class ReconcilePass:
    def __init__(
        self, link: PassLink, on_plan: Callable[[Plan], None] | None, dry_run: bool
    ) -> None:
        self.link = link
        self.on_plan = on_plan
        self.dry_run = dry_run
        self.exec_mark = link.exec_log.mark(link.venue)
        self.unsure: set[str] = set()  # requests in flight at a query, or handed since
        self.asked: set[str] = set()  # cl_ord_ids asked by status query
        self.open: list[VenueOrder] = []
        self.status: dict[str, VenueOrder] = {}
        self.unknown: set[str] = set()
        self._todo: list[list[Any]] = []
        self.ended = False
        self.open_answered = False  # the connector answered its OpenOrdersRequest

    # ------------------------------------------------------------------ gathering

    def start(self) -> None:
        self._ask(OpenOrdersRequest(), self._got_open, self.link.request_timeout_s)

    def handed(self, client_order_id: str) -> None:
        """The link handed a request of this order to the connector during the pass."""
        self.unsure.add(client_order_id)

    def _ask(self, body: Message, cb: Callable[[Envelope | None], None], timeout: float) -> None:
        self.unsure |= self.link.in_flight_ids()
        self.link.request(body, cb, timeout)

    def _gone(self, reply: Envelope | None) -> bool:
        """An answer to a pass given up since (its connector restarted): it ends there."""
        if self.ended or self.link.is_current(self):
            return self.ended
        self.link.pass_superseded(self, why(reply))
        return True

    def _inconsistent(self, cut: ExecCut | None) -> bool:
        return cut is not None and cut.oms_epoch != self.link.oms_epoch

    def _got_open(self, reply: Envelope | None) -> None:
        self.open_answered = True
        if self._gone(reply):
            return
        link = self.link
        if reply is None:
            return link.pass_failed(self, why(reply))
        if venue_refused(reply):  # no AF at this venue: every open local order by H
            link.log_once("open", "venue_open_orders_unavailable", why(reply))
        elif not isinstance(reply.body, OpenOrders):
            return link.pass_failed(self, why(reply))
        elif self._inconsistent(reply.body.cut):
            return link.pass_failed(self, "open orders without a consistent execution cut")
        else:
            self.open = reply.body.orders
        if link.state is not VenueConnState.CONNECTED and not self.dry_run:
            # it answered, so it is logged on: no need to wait for its state message
            link.state, link.connector_epoch = VenueConnState.CONNECTED, reply.epoch
        asks = status_query_orders(link.book.orders(link.venue), self.open)
        self.asked = {q.cl_ord_id for q in asks}
        self._todo = [asks[i : i + STATUS_CHUNK] for i in range(0, len(asks), STATUS_CHUNK)]
        self._next_status()

    def _next_status(self) -> None:
        link, timeout = self.link, self.link.request_timeout_s
        if not self._todo:
            self._ask(GetPositions(venue=link.venue), self._got_positions, timeout)
            return
        chunk = self._todo.pop(0)  # one chunk in flight; the connector paces its H
        paced_s = timeout + len(chunk) / link.status_rate_per_s
        self._ask(OrderStatusQuery(orders=chunk), self._got_status, paced_s)

    def _got_status(self, reply: Envelope | None) -> None:
        if self._gone(reply):
            return
        if reply is None or not isinstance(reply.body, OrderStatusAnswer):
            return self.link.pass_failed(self, why(reply))
        if self._inconsistent(reply.body.cut):
            return self.link.pass_failed(self, "status answer without a consistent cut")
        self.status.update({o.cl_ord_id: o for o in reply.body.orders})
        self.unknown.update(reply.body.unknown)
        self._next_status()

    def _got_positions(self, reply: Envelope | None) -> None:
        if self._gone(reply):
            return
        body = reply.body if reply is not None else None
        if isinstance(body, Positions) and body.source == "venue":
            return self.link.pass_gathered(self, body)
        if isinstance(body, Positions):  # the connector's fill ledger: not the venue's
            reason = f"positions from the connector's {body.source}"
        elif venue_refused(reply):
            reason = why(reply)
        else:
            return self.link.pass_failed(self, why(reply))
        self.link.log_once("positions", "venue_positions_unavailable", reason)
        self.link.pass_gathered(self, None)

    # ------------------------------------------------------------------ judging

    def skip(self) -> set[str] | None:
        """The orders this pass must not judge (module docstring); None when the pass can
        no longer tell (more orders changed meanwhile than the execution log remembers)."""
        link = self.link
        orders = link.book.orders(link.venue)
        live = [o for o in orders if not o.is_terminal and o.status != OrderStatus.PENDING_RISK]
        touched = link.exec_log.touched_since(
            link.venue, self.exec_mark, (o.client_order_id for o in orders)
        )
        if touched is None:
            return None
        listed = {vo.cl_ord_id for vo in self.open}
        for o in live:
            ids = {o.cl_ord_id, o.pending_cl_ord_id} - {""}
            if not ids & listed and not ids & self.asked:
                touched.add(o.client_order_id)  # neither listed nor asked
        return touched | self.unsure

    def local_positions(self, positions: Positions | None) -> dict[str, Decimal] | None:
        """Ours, as of the cut of the venue's positions answer (None: not comparable)."""
        if positions is None:
            return None
        link = self.link
        now = {p.symbol: p.qty for p in link.book.positions(link.venue)}
        cut = positions.cut
        if cut is None:
            return now
        if cut.oms_epoch != link.oms_epoch:
            link.log.info("reconcile_positions_skipped", reason="no consistent cut")
            return None
        then = link.exec_log.positions_as_of(link.venue, cut, now)
        if then is None:
            link.log.info("reconcile_positions_skipped", reason="cut older than the log")
        return then
