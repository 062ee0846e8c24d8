"""The rules of reconciliation: `Planner` judges one local order against the venue's view
of it; the walk over orders, unmatched fills and positions are `actors.oms.reconcile`'s
`PlanBuilder`.

Rules, for each venue open order and each local order that is neither terminal nor
PENDING_RISK (pass ALL local orders of the venue, terminal ones too, so an open venue order
is matched to them rather than adopted):

- venue order matching no local ClOrdID -> Adopt (external; carries the venue's cum_qty,
  which the book applies to the position).
- venue cum_qty > local -> ApplyMissedFill of the difference at the price that makes our
  avg_px equal the venue's, exec id `recon:{cl_ord_id}:{venue_cum}` (a repeat is a no-op);
  the fill itself moves the order (e.g. a PENDING_CANCEL raced by a fill becomes FILLED),
  and carries the listed venue order id onto an order that has none (one caught up from
  PENDING_SUBMIT gets no Update: its later outside replace is then linked by it).
  venue cum_qty < local, or > qty -> Escalate.
- venue status terminal and different -> MarkTerminal (FILLED only ever follows from fills:
  a FILLED venue order whose quantity does not add up is escalated); venue live and local
  PENDING_SUBMIT/UNKNOWN -> Update to ACCEPTED; a venue order whose ClOrdID is our pending
  replace id, or a later replace id we gave up on -> Update (replaced: new ClOrdID, qty,
  price), before any terminal status it has. Pending cancels/replaces with the
  venue still live are left alone (the request is in flight; resend it with the same id).
- local terminal but venue different -> Escalate.
- an open venue order under a ClOrdID we never used whose venue order id, symbol and side
  are one live local order's (not listed under an id of its own nor answered for under
  another id, no less filled, its qty holding its fills): someone replaced that order at
  the venue and its Replaced report never came
  -> Update (replaced externally: new ClOrdID, qty, price, escalated), then its missed
  fills; not an Adopt, which would count its cum twice. A venue order id alone links
  nothing (unique per symbol only at some venues, recycled at others): such an order is
  adopted.
- a live local order whose venue order (same ClOrdID) has another qty or limit price ->
  Escalate (`terms_mismatch`): a replace always takes a new ClOrdID, so nobody of ours
  changed it; an operator decides.
- venue answered "unknown order": PENDING_SUBMIT/UNKNOWN never acknowledged -> Resubmit
  with the same ClOrdID once; again only after `resubmit_grace_s` without confirmation, up to
  `max_resubmits`, then Escalate. The grace runs on the monotonic clock (`now_s`,
  `resubmitted_at_s`: when this process last resubmitted each order), never on journal
  wall-clock stamps: a clock step neither stretches nor skips it. A resubmission this
  process did not make (before a restart) is out of grace. A resubmission the connector
  did not send is taken back from the count, not the grace (`actors.oms.resubmit_unsent`):
  only resends that went out count, at most one resend per grace. Any other order the
  venue does not know -> Escalate.
- no venue evidence at all for a local open order -> Escalate.
- unmatched fills not explained by an Adopt, and per-symbol positions that differ after the
  plan's fills -> Escalate.
- an order in `skip` (in flight for this pass: `actors.oms.reconcile_pass`) is not judged
  (no action; a venue order naming it is not adopted either), only counted (`skipped`).

Applying a plan and planning again with the same venue view yields no new changes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from actors.oms.fill_terms import missed_fill_exec_id
from actors.oms.lifecycle import STAY, Event, live_status, transition
from actors.oms.orders import Order, implied_fill
from actors.oms.plan import Action, ApplyMissedFill, Escalate, MarkTerminal, Resubmit, Update
from protocol.messages import TERMINAL_STATUSES, OrderStatus, Side, VenueOrder

S = OrderStatus
_EVIDENCE = {S.CANCELLED: Event.CANCELLED, S.EXPIRED: Event.EXPIRED, S.REJECTED: Event.REJECTED}
_VENUE_LIVE = (
    S.ACCEPTED,
    S.PARTIALLY_FILLED,
    S.PENDING_CANCEL,
    S.PENDING_REPLACE,
    S.PENDING_SUBMIT,
)


RESUBMIT_GRACE_S: Final = 30.0  # `oms.resubmit_grace_s`'s default


@dataclass(frozen=True, slots=True)
class ReconcilePolicy:
    resubmit_grace_s: float = RESUBMIT_GRACE_S
    max_resubmits: int = 3


def signed(side: Side, qty: Decimal) -> Decimal:
    return qty if side == Side.BUY else -qty


class Planner:
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
        replace = replace_shown(order, vo)
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
                missed_fill_exec_id(vo.cl_ord_id, vo.cum_qty, order.exec_ids),
                fill_qty,
                px,
                vo.cum_qty,
                vo.avg_px,
                "" if order.venue_order_id else vo.venue_order_id,
            )
        )
        self.delta[order.symbol] += signed(order.side, fill_qty)
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


def replace_shown(order: Order, vo: VenueOrder) -> str:
    """The replace of ours the venue's view shows took effect ("" if none): the venue names
    the order by it, or by a later id of ours (a cancel) with terms other than ours that
    the replace in doubt explains; or someone else's replace (an id we never used, the
    order matched by its venue order id: `PlanBuilder`)."""
    if order.shows_replace(vo.cl_ord_id) or order.replaced_outside(vo.cl_ord_id, order.cl_ord_id):
        return vo.cl_ord_id
    other_terms = vo.order_qty != order.qty or (
        vo.price is not None and order.price is not None and vo.price != order.price
    )
    if vo.cl_ord_id != order.cl_ord_id and other_terms:
        return order.replace_in_doubt()
    return ""


def status_answer(order: Order, answers: Mapping[str, VenueOrder]) -> VenueOrder | None:
    """The venue's answer about the order. The venue names an order by its own latest
    ClOrdID, which can be a request of ours we since gave up on (a cancel it carried out
    whose confirmation was lost), so every id of the chain counts: the pending request's
    first, then the live one, then older ones."""
    for cl in (order.pending_cl_ord_id, order.cl_ord_id, *reversed(order.cl_ord_ids)):
        if cl and cl in answers:
            return answers[cl]
    return None
