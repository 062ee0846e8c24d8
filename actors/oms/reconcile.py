"""Reconciliation: compare the OMS's orders at one venue with the venue's view, plan repairs.

`plan_reconciliation` is a pure function that makes a plan (`actors.oms.plan`);
`apply_plan` carries a plan out on an `OrderBook`. `PlanBuilder` is the same in steps of a
bounded number of orders, which is how the OMS runs it (`actors.oms.reconcile_pass`: a
pass spread over loop turns, `apply_actions` a slice at a time), per venue at warm start,
after every connector restart or reconnect and periodically; in one go it reads::

    open_ = OpenOrders from the connector
    asks = status_query_orders(book.orders(venue), open_.orders)   # OrderStatusQuery(orders=asks)
    plan = plan_reconciliation(
        venue, book.orders(venue), open_.orders,
        {o.cl_ord_id: o for o in answer.orders}, set(answer.unknown),
        local_positions={p.symbol: p.qty for p in book.positions(venue)},
        venue_positions={p.symbol: p.qty for p in venue_positions.positions},
        unmatched_fills=book.unmatched_fills(venue),
        now_s=time.monotonic(), resubmitted_at_s=link.resubmitted_at_s)
    log.info("reconcile_plan", **plan.summary())                   # or print(plan.format_dry_run())
    for action, outcome in apply_plan(book, plan, ts_ns):          # journal outcome.records,
        ...                                                        # send the order again for
                                                                   # Resubmit, alert on Escalate

The rules a plan follows are in `actors.oms.reconcile_rules` (`ReconcilePolicy` is
importable from here too).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Collection, Iterable, Mapping
from decimal import Decimal
from functools import partial

from actors.oms import adoption
from actors.oms.order_book import OrderBook
from actors.oms.orders import Order, Outcome
from actors.oms.plan import (
    Action,
    Adopt,
    ApplyMissedFill,
    Escalate,
    MarkTerminal,
    Plan,
    Resubmit,
    Update,
)
from actors.oms.positions import UnmatchedFill
from actors.oms.reconcile_rules import Planner, ReconcilePolicy, signed, status_answer
from protocol.messages import ExecCut, OrderStatus, QueriedOrder, Side, VenueOrder

S = OrderStatus
_RESUBMITTABLE = (S.PENDING_SUBMIT, S.UNKNOWN)
_DEFAULT_POLICY = ReconcilePolicy()


def status_queries_of(order: Order, listed: Collection[str]) -> list[QueriedOrder]:
    """The status queries for one local order (`status_query_orders`): none if it is
    terminal, PENDING_RISK or `listed` open by the venue (its live id or its pending
    request id)."""
    if order.is_terminal or order.status == S.PENDING_RISK:
        return []
    if order.cl_ord_id in listed or (order.pending_cl_ord_id and order.pending_cl_ord_id in listed):
        return []
    return [
        QueriedOrder(cl_ord_id=cl, symbol=order.symbol, side=order.side)
        for cl in (order.cl_ord_id, order.pending_cl_ord_id)
        if cl
    ]


def status_query_orders(
    local_orders: Iterable[Order], open_orders: Iterable[VenueOrder]
) -> list[QueriedOrder]:
    """The orders to ask the venue about: every local order that is not terminal, not
    PENDING_RISK and not in the open-orders list (its live id, plus a pending request id),
    each with its Symbol and Side (an OrderStatusRequest needs both)."""
    listed = {vo.cl_ord_id for vo in open_orders}
    return [q for o in local_orders for q in status_queries_of(o, listed)]


def judged_state(order: Order) -> tuple[object, ...]:
    """What a plan's actions for `order` were decided on. Every change of an order is a
    journal record that moves one of these (its `ts_updated_ns` at least): when they differ
    at the time an action is applied, the order moved on since it was judged."""
    return (
        order.status,
        order.cum_qty,
        order.notional,
        order.qty,
        order.price,
        order.cl_ord_id,
        len(order.cl_ord_ids),
        order.pending_cl_ord_id,
        order.request_seq,
        order.resubmits,
        order.ts_ack_ns,
        order.ts_updated_ns,
    )


class PlanBuilder:
    """`plan_reconciliation` in steps, so that a pass over many orders can be spread over
    loop turns (`actors.oms.reconcile_pass`): `step(n)` judges up to n more orders, the
    venue's open orders first, then the local ones, each as it is at that moment; `finish`
    adds the unmatched fills and the positions and returns the plan.

    find: a venue ClOrdID -> the local order of this venue that uses it (None: not ours);
    skip(order): the order is in flight for this pass, asked when it is judged; states:
    client_order_id -> `judged_state` of each order that got actions, when it got them.
    seed_s: the grace of resubmissions an earlier process made runs from then (the first
    pass of a process sets it for every order it walks that has been resubmitted and is
    still unconfirmed, in `resubmitted_at_s`, which it then changes). open_cut: the
    open-orders answer's cut (`OpenOrders.cut`), carried by its Adopts.
    """

    def __init__(
        self,
        venue: str,
        find: Callable[[str], Order | None],
        local_orders: Iterable[Order],
        open_orders: Iterable[VenueOrder],
        status_answers: Mapping[str, VenueOrder],
        unknown_ids: Collection[str],
        *,
        now_s: float = 0.0,
        resubmitted_at_s: dict[str, float] | None = None,
        policy: ReconcilePolicy = _DEFAULT_POLICY,
        skip: Callable[[Order], bool] = lambda _order: False,
        seed_s: float | None = None,
        open_cut: ExecCut | None = None,
    ) -> None:
        self.venue = venue
        self._open_cut = open_cut
        self.resubmitted_at_s = {} if resubmitted_at_s is None else resubmitted_at_s
        self._p = Planner(venue, now_s, self.resubmitted_at_s, policy)
        self._find, self._skip, self._seed_s = find, skip, seed_s
        self._all = list(local_orders)  # each judged as it is when its turn comes
        self._venue_open = list(open_orders)
        self._open, self._local = iter(self._venue_open), iter(self._all)
        # (venue order id, symbol, side) -> the live local order; built on first need
        self._by_vid: dict[tuple[str, str, Side], Order | None] | None = None
        self._listed: set[str] = set()  # the ClOrdIDs the venue lists open
        self._answers, self._unknown = status_answers, unknown_ids
        self._matched: set[str] = set()
        self._adopted: dict[str, VenueOrder] = {}  # ClOrdID -> the venue order adopted
        self._skipped: dict[str, str] = {}  # client_order_id -> symbol, not judged (in flight)
        self.states: dict[str, tuple[object, ...]] = {}

    def step(self, budget: int) -> bool:
        """Judge up to `budget` more orders; True once every order is judged."""
        n = 0
        for vo in self._open:
            self._open_order(vo)
            n += 1
            if n >= budget:
                return False
        for order in self._local:
            self._local_order(order)
            n += 1
            if n >= budget:
                return False
        return True

    def _judged(self, order: Order, actions_before: int) -> None:
        if len(self._p.actions) > actions_before:
            self.states[order.client_order_id] = judged_state(order)

    def _replaced_outside(self, vo: VenueOrder) -> Order | None:
        """The live local order the venue lists under its venue order id but a ClOrdID we
        never used: someone replaced it at the venue and we never saw the Replaced report
        (None: no such order; an Adopt would count its fills a second time). A venue order
        id alone links nothing (unique per symbol only at some venues, recycled at others):
        the order must be the one replaced - same symbol and side (a replace changes
        neither), no less filled than ours, its qty holding its fills, the only live order
        of ours that fits, and not answered for otherwise (`_answered`): the venue then says
        what became of it (that answer gets its own treatment), and the order listed under
        its venue order id is someone else's (recycled ids): adopted."""
        if not vo.venue_order_id:
            return None
        if self._by_vid is None:
            self._by_vid, self._listed = {}, {v.cl_ord_id for v in self._venue_open}
            for o in self._all:
                if o.venue == self.venue and not o.is_terminal and o.venue_order_id:
                    key = (o.venue_order_id, o.symbol, o.side)
                    self._by_vid[key] = None if key in self._by_vid else o  # None: ambiguous
        order = self._by_vid.get((vo.venue_order_id, vo.symbol, vo.side))
        if order is None or order.client_order_id in self._matched:
            return None
        if not order.cum_qty <= vo.cum_qty <= vo.order_qty or self._answered(order, vo):
            return None
        return order if order.replaced_outside(vo.cl_ord_id, order.cl_ord_id) else None

    def _answered(self, order: Order, vo: VenueOrder) -> bool:
        """The venue answered for `order` other than as `vo`: listed open under one of its
        own ClOrdIDs, or a status answer (`status_answer`) under another id than `vo`'s."""
        if any(cl in self._listed for cl in order.cl_ord_ids):
            return True
        answer = status_answer(order, self._answers)
        return answer is not None and answer.cl_ord_id != vo.cl_ord_id

    def _open_order(self, vo: VenueOrder) -> None:
        p, order = self._p, self._find(vo.cl_ord_id) or self._replaced_outside(vo)
        if order is None:
            if vo.cl_ord_id not in self._adopted:
                self._adopted[vo.cl_ord_id] = vo
                p.actions.append(Adopt(self.venue, vo, self._open_cut))
                p.delta[vo.symbol] += signed(vo.side, vo.cum_qty)
        elif order.client_order_id not in self._matched:
            self._matched.add(order.client_order_id)
            if self._skip(order):
                self._skipped[order.client_order_id] = order.symbol
            else:
                before = len(p.actions)
                p.diff(order, vo)
                self._judged(order, before)

    def _local_order(self, order: Order) -> None:
        if order.venue != self.venue:
            return
        coid = order.client_order_id
        if self._seed_s is not None and order.resubmits and order.status in _RESUBMITTABLE:
            self.resubmitted_at_s.setdefault(coid, self._seed_s)
        if coid in self._matched or order.is_terminal or order.status == S.PENDING_RISK:
            return
        if self._skip(order):
            self._skipped[coid] = order.symbol
            return
        p, before = self._p, len(self._p.actions)
        answer = status_answer(order, self._answers)
        if answer is not None:
            p.diff(order, answer)
        elif order.cl_ord_id in self._unknown:
            p.never_seen(order)
        else:
            p.escalate(
                "no_venue_evidence",
                f"{order.cl_ord_id} ({order.status}): neither "
                "listed open nor answered by the venue",
                order,
            )
        self._judged(order, before)

    def finish(
        self,
        *,
        local_positions: Mapping[str, Decimal] | None = None,
        venue_positions: Mapping[str, Decimal] | None = None,
        unmatched_fills: Iterable[UnmatchedFill] = (),
        after_cut: adoption.AfterCut = adoption.never,
    ) -> Plan:
        """The plan, once `step` returned True: with the unmatched fills not explained by an
        Adopt of this plan (one whose order is ours already: an adoption could not place
        it, `actors.oms.adoption`) and, when both are given, positions compared after the
        plan's own fills (an Adopt's: the adopted cum_qty and the unmatched fills the
        adoption places on top of it, `adoption.booked`; `after_cut(exec_id)`: that unmatched
        fill is numbered after the open-orders answer's cut), but not a symbol of an order
        this pass skipped: its fills may be in the venue's positions before their reports
        reach us (a missed fill a judged order's venue state would show), so a difference
        there is not evidence; the next pass and the heartbeat's beats at a cut compare it."""
        p, venue = self._p, self.venue
        fills = [f for f in unmatched_fills if f.venue == venue]
        for fill in fills:
            if fill.cl_ord_id not in self._adopted:
                p.actions.append(
                    Escalate(
                        "unmatched_fill",
                        f"{fill.exec_id}: {fill.qty} {fill.symbol} @ {fill.px} "
                        f"for {fill.cl_ord_id}",
                        symbol=fill.symbol,
                    )
                )
        if local_positions is not None and venue_positions is not None:
            for vo in self._adopted.values() if fills else ():
                for fill in adoption.booked(vo, fills, after_cut):
                    p.delta[vo.symbol] += signed(vo.side, fill.qty)
            in_flight = set(self._skipped.values())  # their fills may be in either view
            for sym in sorted(set(local_positions) | set(venue_positions) | set(p.delta)):
                mine = local_positions.get(sym, Decimal(0)) + p.delta.get(sym, Decimal(0))
                theirs = venue_positions.get(sym, Decimal(0))
                if mine != theirs and sym not in in_flight:
                    p.actions.append(
                        Escalate(
                            "position_mismatch",
                            f"{sym}: local {mine} (after plan), venue {theirs}",
                            symbol=sym,
                        )
                    )
        return Plan(venue, tuple(p.actions), len(self._skipped))


def plan_reconciliation(
    venue: str,
    local_orders: Iterable[Order],
    open_orders: Iterable[VenueOrder],
    status_answers: Mapping[str, VenueOrder],
    unknown_ids: Collection[str],
    *,
    local_positions: Mapping[str, Decimal] | None = None,
    venue_positions: Mapping[str, Decimal] | None = None,
    unmatched_fills: Iterable[UnmatchedFill] = (),
    now_s: float = 0.0,
    resubmitted_at_s: Mapping[str, float] | None = None,
    policy: ReconcilePolicy = _DEFAULT_POLICY,
    skip: Collection[str] = (),
) -> Plan:
    """The plan that brings the local view of `venue` in line with the venue's (pure).

    status_answers: cl_ord_id -> the venue's answer to a status query; unknown_ids: the
    ids it answered "unknown order" for. Positions (symbol -> signed qty) are compared only
    when both are given, after the plan's own fills and adoptions, for the symbols of no
    order in `skip`.
    """
    orders = [o for o in local_orders if o.venue == venue]
    by_cl = {cl: o for o in orders for cl in o.cl_ord_ids}
    builder = PlanBuilder(
        venue,
        by_cl.get,
        orders,
        open_orders,
        status_answers,
        unknown_ids,
        now_s=now_s,
        resubmitted_at_s=dict(resubmitted_at_s or {}),
        policy=policy,
        skip=lambda order: order.client_order_id in skip,
    )
    while not builder.step(sys.maxsize):
        pass
    return builder.finish(
        local_positions=local_positions,
        venue_positions=venue_positions,
        unmatched_fills=unmatched_fills,
    )


def apply_actions(
    book: OrderBook,
    actions: Iterable[Action],
    ts_ns: int,
    after_cut: Callable[[Adopt, str], bool] = lambda _adopt, _exec_id: False,
) -> list[tuple[Action, Outcome | None]]:
    """Carry out `actions` (of a plan) on `book`; journal every outcome's records. Escalate
    gets None (log and alert it); for Resubmit the caller sends the order again (same
    ClOrdID). after_cut(adopt, exec_id): that unmatched fill is numbered after the cut of
    the answer the Adopt is of (`OrderBook.adopt`; the caller knows the numbers)."""
    done: list[tuple[Action, Outcome | None]] = []
    for a in actions:
        out: Outcome | None
        if isinstance(a, Adopt):
            out = book.adopt(a.venue, a.order, ts_ns, partial(after_cut, a))
        elif isinstance(a, Update):
            out = book.apply_venue_status(
                a.client_order_id,
                a.status,
                ts_ns,
                reason=a.reason,
                venue_order_id=a.venue_order_id,
                cl_ord_id=a.cl_ord_id,
                qty=a.qty,
                price=a.price,
            )
        elif isinstance(a, ApplyMissedFill):
            out = book.apply_fill(a.client_order_id, a.exec_id, a.qty, a.px, ts_ns,
                                  venue_order_id=a.venue_order_id)  # fmt: skip
        elif isinstance(a, MarkTerminal):
            out = book.apply_venue_status(a.client_order_id, a.status, ts_ns, reason=a.reason)
        elif isinstance(a, Resubmit):
            out = book.mark_resubmitted(a.client_order_id, ts_ns)
        else:
            out = None
        done.append((a, out))
    return done


def apply_plan(book: OrderBook, plan: Plan, ts_ns: int) -> list[tuple[Action, Outcome | None]]:
    """Carry out the whole of `plan` on `book` (`apply_actions`)."""
    return apply_actions(book, plan.actions, ts_ns)
