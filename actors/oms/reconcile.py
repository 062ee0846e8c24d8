"""Reconciliation: compare the OMS's orders at one venue with the venue's view, plan repairs.

`plan_reconciliation` is a pure function that makes a plan (`actors.oms.plan`);
`apply_plan` carries a plan out on an `OrderBook`.
The actor runs it per venue at warm start and after every connector restart or reconnect::

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
Rules, for each venue open order and each local order that is neither terminal nor
PENDING_RISK (pass ALL local orders of the venue, terminal ones too, so an open venue order
is matched to them rather than adopted):

- venue order matching no local ClOrdID -> Adopt (external; carries the venue's cum_qty,
  which the book applies to the position).
- venue cum_qty > local -> ApplyMissedFill of the difference at the price that makes our
  avg_px equal the venue's, exec id `recon:{cl_ord_id}:{venue_cum}` (a repeat is a no-op);
  the fill itself moves the order (e.g. a PENDING_CANCEL raced by a fill becomes FILLED).
  venue cum_qty < local, or > qty -> Escalate.
- venue status terminal and different -> MarkTerminal (FILLED only ever follows from fills:
  a FILLED venue order whose quantity does not add up is escalated); venue live and local
  PENDING_SUBMIT/UNKNOWN -> Update to ACCEPTED; a venue order whose ClOrdID is our pending
  replace id, or a later replace id we gave up on -> Update (replaced: new ClOrdID, qty,
  price), before any terminal status it has. Pending cancels/replaces with the
  venue still live are left alone (the request is in flight; resend it with the same id).
- local terminal but venue different -> Escalate.
- a live local order whose venue order (same ClOrdID) has another qty or limit price ->
  Escalate (`terms_mismatch`): a replace always takes a new ClOrdID, so nobody of ours
  changed it; an operator decides.
- venue answered "unknown order": PENDING_SUBMIT/UNKNOWN never acknowledged -> Resubmit
  with the same ClOrdID once; again only after `resubmit_grace_s` without confirmation, up to
  `max_resubmits`, then Escalate. The grace runs on the monotonic clock (`now_s`,
  `resubmitted_at_s`: when this process last resubmitted each order), never on journal
  wall-clock stamps: a clock step neither stretches nor skips it. A resubmission this
  process did not make (before a restart) is out of grace. Any other order the venue
  does not know -> Escalate.
- no venue evidence at all for a local open order -> Escalate.
- unmatched fills not explained by an Adopt, and per-symbol positions that differ after the
  plan's fills -> Escalate.
- an order in `skip` (in flight for this pass: `actors.oms.reconcile_pass`) is not judged
  (no action; a venue order naming it is not adopted either), only counted (`skipped`).

Applying a plan and planning again with the same venue view yields no new changes.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from actors.oms.lifecycle import STAY, Event, live_status, transition
from actors.oms.order_book import OrderBook
from actors.oms.orders import Order, Outcome, implied_fill, missed_fill_exec_id
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
from protocol.messages import TERMINAL_STATUSES, OrderStatus, QueriedOrder, Side, VenueOrder

S = OrderStatus
_EVIDENCE = {S.CANCELLED: Event.CANCELLED, S.EXPIRED: Event.EXPIRED, S.REJECTED: Event.REJECTED}
_VENUE_LIVE = (
    S.ACCEPTED,
    S.PARTIALLY_FILLED,
    S.PENDING_CANCEL,
    S.PENDING_REPLACE,
    S.PENDING_SUBMIT,
)
_RESUBMITTABLE = (S.PENDING_SUBMIT, S.UNKNOWN)


@dataclass(frozen=True, slots=True)
class ReconcilePolicy:
    resubmit_grace_s: float = 30.0
    max_resubmits: int = 3


def _signed(side: Side, qty: Decimal) -> Decimal:
    return qty if side == Side.BUY else -qty


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


class _Planner:
    def __init__(
        self,
        venue: str,
        now_s: float,
        resubmitted_at_s: Mapping[str, float],
        policy: ReconcilePolicy,
    ) -> None:
        self.venue = venue
        self.now_s = now_s
        self.resubmitted_at_s = resubmitted_at_s
        self.policy = policy
        self.actions: list[Action] = []
        self.delta: dict[str, Decimal] = defaultdict(Decimal)  # symbol -> qty the plan adds

    def escalate(self, reason: str, detail: str, order: Order | None = None) -> None:
        self.actions.append(
            Escalate(
                reason,
                detail,
                order.client_order_id if order else "",
                order.symbol if order else "",
            )
        )

    def diff(self, order: Order, vo: VenueOrder) -> None:
        """One local order against the venue's view of it."""
        coid, venue_status = order.client_order_id, vo.status
        if venue_status not in TERMINAL_STATUSES and venue_status not in _VENUE_LIVE:
            self.escalate("bad_venue_status", f"{vo.cl_ord_id}: venue says {venue_status}", order)
            return
        if order.is_terminal:
            if vo.cum_qty != order.cum_qty:
                self.fill(order, vo, order.qty, order.status)
            if venue_status != order.status:
                self.escalate(
                    "terminal_mismatch",
                    f"{vo.cl_ord_id}: local {order.status}, venue {venue_status}",
                    order,
                )
            return
        qty, status = order.qty, order.status
        if vo.cl_ord_id == order.cl_ord_id:
            self.terms(order, vo)
        replace = _replace_shown(order, vo)
        if replace and venue_status != S.REJECTED:
            # the replace took effect (also when the order has ended since, or we had given
            # up on the replace)
            if status == S.PENDING_REPLACE:
                status = live_status(order.cum_qty, vo.order_qty)
            qty = vo.order_qty
            self.actions.append(
                Update(
                    coid,
                    status,
                    "venue: replaced",
                    vo.venue_order_id,
                    replace,
                    vo.order_qty,
                    vo.price,
                )
            )
        if vo.cum_qty != order.cum_qty:
            status = self.fill(order, vo, qty, status)
        if venue_status == S.FILLED:
            if status != S.FILLED:
                self.escalate(
                    "venue_filled_qty_mismatch",
                    f"{vo.cl_ord_id}: venue FILLED cum {vo.cum_qty}, qty {qty}",
                    order,
                )
        elif venue_status in TERMINAL_STATUSES:
            if status != venue_status:
                if transition(status, _EVIDENCE[venue_status]) is None:
                    self.escalate(
                        "transition_refused",
                        f"{vo.cl_ord_id}: local {status}, venue {venue_status}",
                        order,
                    )
                else:
                    self.actions.append(MarkTerminal(coid, venue_status, f"venue: {venue_status}"))
        elif status in (S.PENDING_SUBMIT, S.UNKNOWN):
            self.actions.append(
                Update(coid, live_status(order.cum_qty, qty), "venue: live", vo.venue_order_id)
            )

    def terms(self, order: Order, vo: VenueOrder) -> None:
        """Under one ClOrdID both sides must hold the same terms (a replace takes a new id);
        a difference means someone changed the order outside the OMS, or a bug: an operator
        decides, nothing is overwritten."""
        diffs = []
        if vo.order_qty != order.qty:
            diffs.append(f"qty local {order.qty}, venue {vo.order_qty}")
        if order.price is not None and vo.price is not None and vo.price != order.price:
            diffs.append(f"price local {order.price}, venue {vo.price}")
        if diffs:
            self.escalate("terms_mismatch", f"{vo.cl_ord_id}: " + "; ".join(diffs), order)

    def fill(self, order: Order, vo: VenueOrder, qty: Decimal, status: OrderStatus) -> OrderStatus:
        """Plan the missed fill (or escalate); returns the status after it."""
        if vo.cum_qty < order.cum_qty:
            self.escalate(
                "local_cum_exceeds_venue",
                f"{vo.cl_ord_id}: local cum {order.cum_qty}, venue {vo.cum_qty}",
                order,
            )
            return status
        if vo.cum_qty > qty:
            self.escalate(
                "venue_overfill", f"{vo.cl_ord_id}: venue cum {vo.cum_qty} > qty {qty}", order
            )
            return status
        fill_qty, px = implied_fill(order, vo.cum_qty, vo.avg_px)
        event = Event.FULL_FILL if vo.cum_qty >= qty else Event.PARTIAL_FILL
        target = transition(status, event)
        if target is None:
            self.escalate("fill_refused", f"{vo.cl_ord_id}: {fill_qty} missed in {status}", order)
            return status
        self.actions.append(
            ApplyMissedFill(
                order.client_order_id,
                missed_fill_exec_id(vo.cl_ord_id, vo.cum_qty),
                fill_qty,
                px,
                vo.cum_qty,
                vo.avg_px,
            )
        )
        self.delta[order.symbol] += _signed(order.side, fill_qty)
        return status if target == STAY else OrderStatus(target)

    def never_seen(self, order: Order) -> None:
        """The venue answered "unknown order" for the order's live ClOrdID."""
        if order.status not in (S.PENDING_SUBMIT, S.UNKNOWN) or order.ever_acknowledged:
            self.escalate("venue_does_not_know_order", f"{order.cl_ord_id} ({order.status})", order)
            return
        sent_s = self.resubmitted_at_s.get(order.client_order_id)
        if sent_s is not None and self.now_s - sent_s < self.policy.resubmit_grace_s:
            return  # a resubmission is in flight
        if order.resubmits >= self.policy.max_resubmits:
            self.escalate(
                "resubmit_unconfirmed",
                f"{order.cl_ord_id}: venue still does not "
                f"know it after {order.resubmits} resubmit(s)",
                order,
            )
            return
        self.actions.append(Resubmit(order.client_order_id, order.cl_ord_id))


def _replace_shown(order: Order, vo: VenueOrder) -> str:
    """The replace of ours the venue's view shows took effect ("" if none): the venue names
    the order by it, or by a later id of ours (a cancel) with terms other than ours that
    the replace in doubt explains."""
    if order.shows_replace(vo.cl_ord_id):
        return vo.cl_ord_id
    other_terms = vo.order_qty != order.qty or (
        vo.price is not None and order.price is not None and vo.price != order.price
    )
    if vo.cl_ord_id != order.cl_ord_id and other_terms:
        return order.replace_in_doubt()
    return ""


def _status_answer(order: Order, answers: Mapping[str, VenueOrder]) -> VenueOrder | None:
    """The venue's answer about the order. The venue names an order by its own latest
    ClOrdID, which can be a request of ours we since gave up on (a cancel it carried out
    whose confirmation was lost), so every id of the chain counts: the pending request's
    first, then the live one, then older ones."""
    for cl in (order.pending_cl_ord_id, order.cl_ord_id, *reversed(order.cl_ord_ids)):
        if cl and cl in answers:
            return answers[cl]
    return None


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
    still unconfirmed, in `resubmitted_at_s`, which it then changes).
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
        policy: ReconcilePolicy = ReconcilePolicy(),
        skip: Callable[[Order], bool] = lambda _order: False,
        seed_s: float | None = None,
    ) -> None:
        self.venue = venue
        self.resubmitted_at_s = {} if resubmitted_at_s is None else resubmitted_at_s
        self._p = _Planner(venue, now_s, self.resubmitted_at_s, policy)
        self._find, self._skip, self._seed_s = find, skip, seed_s
        self._open, self._local = iter(open_orders), iter(local_orders)
        self._answers, self._unknown = status_answers, unknown_ids
        self._matched: set[str] = set()
        self._adopted: set[str] = set()
        self._skipped: set[str] = set()
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

    def _open_order(self, vo: VenueOrder) -> None:
        p, order = self._p, self._find(vo.cl_ord_id)
        if order is None:
            if vo.cl_ord_id not in self._adopted:
                self._adopted.add(vo.cl_ord_id)
                p.actions.append(Adopt(self.venue, vo))
                p.delta[vo.symbol] += _signed(vo.side, vo.cum_qty)
        elif order.client_order_id not in self._matched:
            self._matched.add(order.client_order_id)
            if self._skip(order):
                self._skipped.add(order.client_order_id)
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
            self._skipped.add(coid)
            return
        p, before = self._p, len(self._p.actions)
        answer = _status_answer(order, self._answers)
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
    ) -> Plan:
        """The plan, once `step` returned True: with the unmatched fills not explained by an
        Adopt and, when both are given, positions compared after the plan's own fills."""
        p, venue = self._p, self.venue
        for fill in unmatched_fills:
            if (
                fill.venue == venue
                and fill.cl_ord_id not in self._adopted
                and self._find(fill.cl_ord_id) is None
            ):
                p.actions.append(
                    Escalate(
                        "unmatched_fill",
                        f"{fill.exec_id}: {fill.qty} {fill.symbol} @ {fill.px} "
                        f"for {fill.cl_ord_id}",
                        symbol=fill.symbol,
                    )
                )
        if local_positions is not None and venue_positions is not None:
            for sym in sorted(set(local_positions) | set(venue_positions) | set(p.delta)):
                mine = local_positions.get(sym, Decimal(0)) + p.delta.get(sym, Decimal(0))
                theirs = venue_positions.get(sym, Decimal(0))
                if mine != theirs:
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
    policy: ReconcilePolicy = ReconcilePolicy(),
    skip: Collection[str] = (),
) -> Plan:
    """The plan that brings the local view of `venue` in line with the venue's (pure).

    status_answers: cl_ord_id -> the venue's answer to a status query; unknown_ids: the
    ids it answered "unknown order" for. Positions (symbol -> signed qty) are compared only
    when both are given, after the plan's own fills and adoptions.
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
    book: OrderBook, actions: Iterable[Action], ts_ns: int
) -> list[tuple[Action, Outcome | None]]:
    """Carry out `actions` (of a plan) on `book`; journal every outcome's records. Escalate
    gets None (log and alert it); for Resubmit the caller sends the order again (same
    ClOrdID)."""
    done: list[tuple[Action, Outcome | None]] = []
    for a in actions:
        out: Outcome | None
        if isinstance(a, Adopt):
            out = book.adopt(a.venue, a.order, ts_ns)
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
            out = book.apply_fill(a.client_order_id, a.exec_id, a.qty, a.px, ts_ns)
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
