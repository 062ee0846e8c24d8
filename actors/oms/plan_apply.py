"""Carrying out reconciliation passes in the OMS: applying a venue link's plan a slice at a
time (journalled, counted, escalations logged and published, Resubmits queued; the slices
are the pass's: `actors.oms.reconcile_pass`), a cold start's opening
positions and open-order policy, the `warm_start` / `cold_start` event once every venue is
reconciled, and the safety-net sweep that starts a pass when one is overdue or an order
waits too long for any venue answer. Reaches the OMS through `PlanHost`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from actors.oms.cost_basis import cost_unknown
from actors.oms.order_book import OrderBook
from actors.oms.orders import Order, Outcome
from actors.oms.plan import Action, Adopt, Escalate, Plan, Resubmit
from actors.oms.reconcile import apply_actions
from actors.oms.venue_link import VenueLink
from actors.runtime import metrics
from protocol.config import OmsCfg
from protocol.messages import OPENING_POSITIONS, OrderStatus, Positions

_AWAITING_VENUE = frozenset(
    {
        OrderStatus.PENDING_SUBMIT,
        OrderStatus.UNKNOWN,
        OrderStatus.PENDING_CANCEL,
        OrderStatus.PENDING_REPLACE,
    }
)


class PlanHost(Protocol):
    """What plan application needs of the OMS (`actors.oms.actor.OmsActor` provides it)."""

    @property
    def book(self) -> OrderBook: ...

    def record(self, outcome: Outcome) -> Outcome: ...

    def publish_stream(self, event: str, data: dict[str, Any]) -> None: ...

    def durable_crash_point(self, name: str) -> None:
        """A test crash point, with what is journalled so far made durable first."""
        ...


class PlanApplier:
    """`cold`: this OMS started cold (its marker file exists) and has not yet reconciled
    every venue; the marker is removed once it has."""

    def __init__(
        self,
        host: PlanHost,
        links: Mapping[str, VenueLink],
        cfg: OmsCfg,
        log: Any,
        cold_marker: Path,
    ) -> None:
        self.host = host
        self.links = links
        self.cfg = cfg
        self.log = log
        self.cold_marker = cold_marker
        self.cold = cold_marker.exists()
        self._start_logged = False

    def unready(self, venue: str) -> str | None:
        """Why a new order for `venue` waits for the start (None: it need not): the venue not
        reconciled since the OMS started; or a cold start (`oms.cold_start_intake` =
        "every_venue", the default) still waiting for another venue's opening positions:
        risk's `max_position` counts a symbol at every venue, and one whose position is not
        known yet counts as flat, so an order elsewhere could pass the limit unseen."""
        if not self.links[venue].ever_reconciled:
            return f"{venue} not reconciled yet since the OMS started"
        if self.cold and self.cfg.cold_start_intake == "every_venue":
            waiting = next((v for v, link in self.links.items() if not link.ever_reconciled), None)
            if waiting is not None:
                return (
                    f"cold start: {waiting} has no opening positions yet, and no venue takes "
                    "new orders before every venue's are known (risk limits count them all)"
                )
        return None

    def begin(self, link: VenueLink, plan: Plan) -> None:
        """A pass's plan is made; `apply_steps` carries it out, in slices."""
        self.log.info("reconcile_plan", **plan.summary())

    def apply_steps(self, link: VenueLink, plan: Plan, steps: Sequence[tuple[int, Action]]) -> None:
        """Carry out these actions of `plan` on the book, journalled (each with its index
        in `plan.actions`; an action whose order moved on since the plan is not among
        them: `actors.oms.reconcile_pass`)."""
        book = self.host.book
        cold = self.cold and not link.ever_reconciled
        done = apply_actions(  # whether an unmatched fill came after an Adopt's answer (cut)
            book, (a for _, a in steps), time.time_ns(),
            lambda adopt, exec_id: link.exec_log.after_cut(link.venue, exec_id, adopt.cut),
        )  # fmt: skip
        for (i, _), (action, outcome) in zip(steps, done, strict=True):
            if i == len(plan.actions) // 2 and plan.changes:
                self.host.durable_crash_point("during_reconciliation")
            metrics.RECONCILE_ACTIONS.labels(venue=link.venue, action=action.name).inc()
            if isinstance(action, Escalate):
                if cold and action.reason == "position_mismatch":
                    continue  # a cold start takes the venue's positions as opening positions
                self.log.error(
                    "reconcile_escalation",
                    venue=link.venue,
                    reason=action.reason,
                    detail=action.detail,
                    client_order_id=action.client_order_id,
                )
                self.host.publish_stream("reconcile_escalation", action.to_dict())
                continue
            if outcome is not None:
                self.host.record(outcome)
            if isinstance(action, Resubmit):
                link.enqueue(action.client_order_id)  # sent once the venue is ready
                link.resubmitted_at_s[action.client_order_id] = time.monotonic()
                self.log.warning(
                    "order_resubmitted",
                    venue=link.venue,
                    client_order_id=action.client_order_id,
                    cl_ord_id=action.cl_ord_id,
                )
            if isinstance(action, Adopt) and outcome is not None and outcome.applied:
                link.exec_log.note_placed(link.venue, outcome)  # fills it placed: moved now
                self.log.warning(
                    "order_adopted",
                    venue=link.venue,
                    client_order_id=action.client_order_id,
                    cold=self.cold,
                )
                if self.cold and self.cfg.cold_start_open_orders == "cancel":
                    self.host.record(book.request_cancel(action.client_order_id, time.time_ns()))

    def finish(self, link: VenueLink, venue_positions: Positions | None) -> None:
        """Every step of the plan is carried out: a cold start takes the venue's positions
        as its opening positions (`venue_positions` None: the venue does not serve them),
        only as of a cut it can account for; else the link asks again
        (`actors.oms.opening_ask`: the pass does not end before they are taken)."""
        cold = self.cold and not link.ever_reconciled
        if cold and venue_positions is not None:
            now = {p.symbol: p.qty for p in self.host.book.positions(link.venue)}
            since = _applied_since(link, venue_positions, now)
            if isinstance(since, str):
                link.opening.refuse(since)
            else:
                self._take_opening_positions(link, venue_positions, now, since)
        elif cold:
            self.log.warning("opening_positions_unavailable", venue=link.venue)

    def _take_opening_positions(
        self,
        link: VenueLink,
        venue_positions: Positions,
        now: Mapping[str, Decimal],
        since: Mapping[str, Decimal],
    ) -> None:
        """Cold start: our book starts empty but the venue's positions do not; take them as
        opening positions (journalled), so heartbeats compare like with like. Risk, whose
        exposure no order event tells of them, is told (`OPENING_POSITIONS`): it rebuilds.
        A symbol the book holds (an adopted order's fills) and the answer leaves out is flat
        at the venue (it lists what it holds; the heartbeat reads a missing one as 0). The
        answer is as of its cut: what the book applied after it stays on top."""
        venue, book = link.venue, self.host.book
        at_venue = {p.symbol: p for p in venue_positions.positions}
        taken = False
        for symbol in dict.fromkeys((*at_venue, *now, *since)):  # left out: flat at the cut
            p = at_venue.get(symbol)
            qty = (p.qty if p is not None else Decimal(0)) + since.get(symbol, Decimal(0))
            avg_px = p.avg_px if p is not None else Decimal(0)
            if p is None and qty:  # only what the book applied after the cut: its price
                avg_px = book.position(venue, symbol).avg_px
            if now.get(symbol, Decimal(0)) != qty:
                taken = True
                self.host.record(
                    book.set_opening_position(venue, symbol, qty, avg_px, time.time_ns())
                )
                known = not cost_unknown(qty, avg_px)  # none from the venue: not "0"
                self.log.warning(
                    "opening_position", venue=venue, symbol=symbol, qty=str(qty),
                    avg_px=str(avg_px) if known else None, cost_known=known,
                )  # fmt: skip
        if taken:
            self.host.publish_stream(OPENING_POSITIONS, {"venue": venue})

    def on_reconciled(self, link: VenueLink, plan: Plan, first: bool) -> None:
        """A pass completed; once every venue has had its first, the start is over."""
        if not first:
            return
        pending = [v for v in self.links.values() if not v.ever_reconciled]
        if pending or self._start_logged:
            return
        self._start_logged = True
        book = self.host.book
        counts = {"orders": len(book.orders()), "open_orders": len(book.orders(open_only=True))}
        if self.cold:
            self.log.info(
                "cold_start",
                step="reconciled",
                policy=self.cfg.cold_start_open_orders,
                **counts,
            )
            self.cold_marker.unlink(missing_ok=True)
            self.cold = False
        else:
            self.log.info("warm_start", **counts)
        self.host.publish_stream("intake_open", counts)

    def sweep_stale(self) -> None:
        """Safety nets: every connected venue is reconciled at least every
        `oms.reconcile_interval_s`; an order sent but still without any venue answer after a
        full request timeout (e.g. the venue session-rejected it) triggers a pass at once."""
        horizon = time.time_ns() - int(self.cfg.request_timeout_s * 1e9)
        awaiting: list[Order] | None = None
        for link in self.links.values():
            if not link.ready or link.reconciling:
                continue
            if time.monotonic() - link.last_pass_at >= self.cfg.reconcile_interval_s:
                # a report the venue never delivered (e.g. lost with its own crash) leaves
                # an order open here and finished there: a periodic pass finds it
                link.start_reconcile()
                continue
            if awaiting is None:  # one filter of the book for every venue (a few ms at 50k)
                awaiting = [o for o in self.host.book.held_orders() if o.status in _AWAITING_VENUE]
            for order in awaiting:
                coid = order.client_order_id
                if (
                    order.venue == link.venue
                    and order.ts_updated_ns < horizon
                    and not link.is_waiting(coid)
                ):
                    self.log.info(
                        "stale_order_reconcile",
                        venue=link.venue,
                        client_order_id=coid,
                        status=order.status.value,
                    )
                    link.start_reconcile()
                    break


def _applied_since(
    link: VenueLink, answer: Positions, now: Mapping[str, Decimal]
) -> dict[str, Decimal] | str:
    """Per symbol, what the book applied after the cut of the venue's positions answer
    or why not, if the cut is not one the OMS can account for (none: every connector of
    this build stamps one; the connector's wait for our acks ran out, so the answer may
    hold a fill not applied here yet; another OMS incarnation's; older than the log keeps)."""
    cut = answer.cut
    if cut is None:
        return "no execution cut"
    if cut.oms_epoch != link.oms_epoch:
        return "no consistent execution cut"
    then = link.exec_log.positions_as_of(link.venue, cut, now)
    if then is None:
        return "execution cut older than the OMS's fill log"
    return {s: now.get(s, Decimal(0)) - q for s, q in then.items() if q != now.get(s)}
