"""One reconciliation pass of a `VenueLink` (actors/oms/venue_link.py): gathering the
venue's view (OpenOrders, OrderStatusQuery chunk by chunk, Positions), deciding which
orders this pass may judge at all, then planning and applying, in slices over loop turns.

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
- an order one of whose ids (live or pending request) the venue answered `pending`: not
  known there yet, but a create of it may still arrive (a ccxt create whose answer was
  lost, within its recvWindow): neither resubmitted, nor rejected, nor escalated;
- an open order neither listed by the venue nor asked about (it was PENDING_RISK, or
  did not exist, when the queries were made).

Positions are compared as of the cut of the positions answer (`ExecLog.positions_as_of`);
when that cut is not consistent (the connector's wait for our acks ran out, or it names
another OMS incarnation) or is older than what the log keeps, the pass compares no
positions (the heartbeat does, every beat). Open-order and status answers whose cut is
not consistent fail the pass (retried): without it a fill in flight reads as missed.
An answer without a cut (a connector that does not stamp) is taken as before.

A venue that refuses the positions request (e.g. BusinessMessageReject 380=3 to AN) does
not stop reconciliation: the pass goes on without venue positions (logged once per
connector incarnation: `venue_positions_unavailable`); positions are then not compared and
a cold start takes no opening positions from the venue. Positions the connector answers
from its own fill ledger (`source` "ledger") are treated the same: they come from the same
executions the OMS applies, so the pass does not compare them (the position heartbeat
does). A venue without OrderMassStatusRequest (OpenOrdersRequest answered VENUE_REFUSED)
is reconciled with no open-orders list: every open local order is asked by H, and no
unknown venue order is adopted (`venue_open_orders_unavailable`, once per incarnation).
Status queries go one chunk at a time, each given the time the venue's rate limit needs.

The O(n) work of a pass is spread over loop turns, so that no turn of the OMS is O(open
orders) and requests, executions and liveness beats are served between slices:

1. the status queries are made from a walk of the book, `SLICE` orders a turn;
2. once the venue's view is gathered, the plan is made `SLICE` orders a turn
   (`actors.oms.reconcile.PlanBuilder`), each order judged as it is when its slice runs
   (one that changed since the pass began is skipped by the rules above, evaluated then);
3. the plan is logged (`reconcile_plan`) and applied `APPLY_SLICE` actions a turn (an
   order's actions never split), each slice's records committed by that turn's group
   commit as before;
4. last, the walk for cancels/replaces to send again (`VenueLink.requeue_walk`), `SLICE`
   orders a turn.

An order that moved on between the slice that judged it and the slice that applies its
actions (any change of its state: `actors.oms.reconcile.judged_state`; or a request of it
handed to the connector since) is skipped like an order in flight: none of its actions is
applied (nor its escalation raised); the next pass judges it. Such orders are counted
(`reconcile_skipped_moved`).

A pass in its slices is abandoned when it is no longer current (its connector restarted: a
newer pass owns the venue) or, unless a dry run, when the venue is no longer CONNECTED;
what its earlier slices applied stays (each step is journalled and idempotent) and the
next pass plans from a new view.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from typing import Any, Protocol

from actors.oms.exec_cut import ExecLog
from actors.oms.order_book import OrderBook
from actors.oms.orders import Order
from actors.oms.plan import Action, Adopt, Plan
from actors.oms.reconcile import PlanBuilder, judged_state, status_queries_of
from actors.oms.reconcile_retry import venue_refused, why
from actors.oms.reconcile_rules import ReconcilePolicy
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
    QueriedOrder,
    VenueConnState,
    VenueOrder,
)

STATUS_CHUNK = 2000  # status queries per OrderStatusQuery
SLICE = 2000  # orders walked per loop turn (status queries, plan)
APPLY_SLICE = 500  # plan actions carried out per loop turn


class PassLink(Protocol):
    """What a pass needs of its `VenueLink`."""

    venue: str
    state: VenueConnState
    request_timeout_s: float
    status_rate_per_s: float
    policy: ReconcilePolicy  # the resubmission grace (`oms.resubmit_grace_s`)
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

    def connected_by_answer(self, epoch: int, version: int | None) -> None: ...

    def pass_failed(self, p: ReconcilePass, reason: str) -> None: ...

    def pass_superseded(self, p: ReconcilePass, reason: str) -> None: ...

    def pass_gathered(self, p: ReconcilePass, positions: Positions | None) -> None: ...

    def pass_planned(self, p: ReconcilePass, plan: Plan) -> bool:
        """The plan is made; True if it is to be applied (not a dry run)."""
        ...

    def apply_steps(self, plan: Plan, steps: Sequence[tuple[int, Action]]) -> None:
        """Carry out these actions of `plan` (each with its index in `plan.actions`)."""
        ...

    def requeue_walk(self, found: list[str]) -> Iterator[None]:
        """The walk of the book after a plan, one step per order (cancels/replaces to
        send again go to `found`)."""
        ...

    def pass_applied(self, p: ReconcilePass, plan: Plan, positions: Positions | None) -> None: ...

    def next_turn(self, fn: Callable[[], None]) -> None:
        """Run `fn` in a later loop turn."""
        ...

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
        self.open_cut: ExecCut | None = None  # the open-orders answer's (its Adopts carry it)
        self.status: dict[str, VenueOrder] = {}
        self.unknown: set[str] = set()
        self.pending: set[str] = set()  # ids not at the venue yet but maybe on their way
        self.ended = False
        self.open_answered = False  # the connector answered its OpenOrdersRequest
        self.seeding = False  # this pass gives earlier resubmissions their grace
        self.moved = 0  # orders whose actions were not applied: they moved on (docstring)
        self._listed: set[str] = set()  # the cl_ord_ids the venue listed open
        self._asks: Iterator[QueriedOrder | None] = iter(())
        self._chunk: list[QueriedOrder] = []
        self._venue_positions: Positions | None = None
        self._builder: PlanBuilder | None = None
        self.plan = Plan(link.venue, ())
        self._applied = 0  # plan actions gone through
        self._holds: dict[str, bool] = {}  # client_order_id -> its actions are applied
        self.to_requeue: list[str] = []  # cancels/replaces found pending after the plan
        self._walk: Iterator[None] = iter(())

    # ------------------------------------------------------------------ gathering

    def start(self) -> None:
        self._ask(OpenOrdersRequest(), self._got_open, self.link.request_timeout_s)

    def handed(self, client_order_id: str) -> None:
        """The link handed a request of this order to the connector during the pass."""
        self.unsure.add(client_order_id)

    def _ask(self, body: Message, cb: Callable[[Envelope | None], None], timeout: float) -> None:
        self.unsure |= self.link.in_flight_ids()
        self.link.request(body, cb, timeout)

    def gone(self, reply: Envelope | None) -> bool:
        """An answer to a pass given up since (its connector restarted): it ends there."""
        if self.ended or self.link.is_current(self):
            return self.ended
        self.link.pass_superseded(self, why(reply))
        return True

    def _inconsistent(self, cut: ExecCut | None) -> bool:
        return cut is not None and cut.oms_epoch != self.link.oms_epoch

    def _got_open(self, reply: Envelope | None) -> None:
        self.open_answered = True
        if self.gone(reply):
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
            self.open, self.open_cut = reply.body.orders, reply.body.cut
        if not self.dry_run:  # it answered, so it is logged on: no need to wait for its state
            body = reply.body
            link.connected_by_answer(
                reply.epoch, body.version if isinstance(body, OpenOrders) else None
            )
        self._listed = {vo.cl_ord_id for vo in self.open}
        self._asks = self._status_queries(link.book.held_orders())
        self._next_status()

    def _status_queries(self, orders: list[Order]) -> Iterator[QueriedOrder | None]:
        """The status queries of the venue's orders (`status_queries_of`), each order
        looked at when the walk reaches it; None after each order walked (for `SLICE`)."""
        venue = self.link.venue
        for order in orders:
            if order.venue == venue:
                for query in status_queries_of(order, self._listed):
                    self.asked.add(query.cl_ord_id)
                    yield query
            yield None

    def _next_status(self) -> None:
        """The next chunk of status queries (one in flight; the connector paces its H), made
        from `SLICE` orders a turn; positions once every order is asked about."""
        link, timeout = self.link, self.link.request_timeout_s
        walked = 0
        for query in self._asks:
            if query is not None:
                self._chunk.append(query)
                if len(self._chunk) >= STATUS_CHUNK:
                    break
                continue
            walked += 1
            if walked >= SLICE:
                return link.next_turn(self.resume(self._next_status))
        if not self._chunk:
            self._ask(GetPositions(venue=link.venue), self._got_positions, timeout)
            return
        chunk, self._chunk = self._chunk, []
        paced_s = timeout + len(chunk) / link.status_rate_per_s
        self._ask(OrderStatusQuery(orders=chunk), self._got_status, paced_s)

    def _got_status(self, reply: Envelope | None) -> None:
        if self.gone(reply):
            return
        if reply is None or not isinstance(reply.body, OrderStatusAnswer):
            return self.link.pass_failed(self, why(reply))
        if self._inconsistent(reply.body.cut):
            return self.link.pass_failed(self, "status answer without a consistent cut")
        self.status.update({o.cl_ord_id: o for o in reply.body.orders})
        self.unknown.update(reply.body.unknown)
        self.pending.update(reply.body.pending)
        self._next_status()

    def _got_positions(self, reply: Envelope | None) -> None:
        if self.gone(reply):
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

    def in_flight(self, order: Order) -> bool:
        """The order is not judged by this pass (module docstring), as it is now."""
        link, coid = self.link, order.client_order_id
        if coid in self.unsure or link.exec_log.touched_after(link.venue, self.exec_mark, coid):
            return True
        if order.is_terminal or order.status is OrderStatus.PENDING_RISK:
            return False
        if order.cl_ord_id in self.pending or order.pending_cl_ord_id in self.pending:
            return True  # a create of it may still reach the venue: the next pass asks
        listed, asked, pending = self._listed, self.asked, order.pending_cl_ord_id
        if order.cl_ord_id in listed or order.cl_ord_id in asked:
            return False
        return not (pending and (pending in listed or pending in asked))

    def judge(
        self,
        venue_positions: Positions | None,
        *,
        now_s: float,
        resubmitted_at_s: dict[str, float],
        seed_s: float | None,
    ) -> None:
        """The venue's view is gathered: plan, then (unless a dry run) apply, in slices."""
        link = self.link
        self._venue_positions, self.seeding = venue_positions, seed_s is not None
        self._builder = PlanBuilder(
            link.venue,
            lambda cl: link.book.held_by_cl(link.venue, cl),
            link.book.held_orders(),
            self.open,
            self.status,
            self.unknown,
            now_s=now_s,
            resubmitted_at_s=resubmitted_at_s,
            policy=link.policy,
            skip=self.in_flight,
            seed_s=seed_s,
            open_cut=self.open_cut,
        )
        self._plan_slice()

    def resume(self, step: Callable[[], None]) -> Callable[[], None]:
        """`step` in a later turn, unless the pass was abandoned meanwhile."""

        def resume() -> None:
            if not self._abandoned():
                step()

        return resume

    def _abandoned(self) -> bool:
        link = self.link
        if self.ended:
            return True
        if not link.is_current(self):
            link.pass_superseded(self, "a newer pass began (the connector restarted)")
            return True
        if not self.dry_run and link.state is not VenueConnState.CONNECTED:
            link.pass_failed(self, f"venue {link.state.value} during the pass")
            return True
        return False

    def _plan_slice(self) -> None:
        link, builder = self.link, self._builder
        assert builder is not None
        if not link.exec_log.remembers(link.venue, self.exec_mark):
            return link.pass_failed(self, "more orders changed during the pass than remembered")
        if not builder.step(SLICE):
            return link.next_turn(self.resume(self._plan_slice))
        positions = self._venue_positions
        local = self.local_positions(positions)
        self.plan = builder.finish(
            local_positions=local,
            venue_positions=None
            if positions is None or local is None
            else {v.symbol: v.qty for v in positions.positions},
            unmatched_fills=link.book.unmatched_fills(link.venue),
            after_cut=lambda exec_id: link.exec_log.after_cut(link.venue, exec_id, self.open_cut),
        )
        if link.pass_planned(self, self.plan):
            self._apply_slice()

    def _apply_slice(self) -> None:
        """Up to `APPLY_SLICE` more actions (all of the last order's), those whose order
        has not moved on since it was judged."""
        actions, i = self.plan.actions, self._applied
        end = min(i + APPLY_SLICE, len(actions))
        steps: list[tuple[int, Action]] = []
        while i < len(actions) and (i < end or _same_order(actions[i - 1], actions[i])):
            if self._still_holds(actions[i]):
                steps.append((i, actions[i]))
            i += 1
        self._applied = i
        if steps:
            self.link.apply_steps(self.plan, steps)
        if i < len(actions):
            return self.link.next_turn(self.resume(self._apply_slice))
        self._walk = self.link.requeue_walk(self.to_requeue)
        self._walk_slice()

    def _walk_slice(self) -> None:
        """The link's walk after the plan (`requeue_walk`), `SLICE` steps a turn."""
        walked = 0
        for _ in self._walk:
            walked += 1
            if walked >= SLICE:
                return self.link.next_turn(self.resume(self._walk_slice))
        self.link.pass_applied(self, self.plan, self._venue_positions)

    def _still_holds(self, action: Action) -> bool:
        """The order of `action` is as it was judged and not in flight (decided once per
        order, before any of its actions is applied). An Adopt, or an escalation about no
        order, always holds."""
        coid = "" if isinstance(action, Adopt) else action.client_order_id
        if not coid:
            return True
        holds = self._holds.get(coid)
        if holds is None:
            builder, order = self._builder, self.link.book.get(coid)
            holds = (
                builder is not None
                and order is not None
                and builder.states.get(coid) == judged_state(order)
                and not self.in_flight(order)
            )
            self._holds[coid] = holds
            self.moved += not holds
        return holds

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


def _same_order(a: Action, b: Action) -> bool:
    """Two actions about the same local order (consecutive in a plan: applied together)."""
    return (
        not isinstance(a, Adopt)
        and not isinstance(b, Adopt)
        and bool(a.client_order_id)
        and a.client_order_id == b.client_order_id
    )
