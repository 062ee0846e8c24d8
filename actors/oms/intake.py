"""OMS intake: client submits, cancels and replaces, with the risk round trip.

A submit is checked (venue known, terms valid, intake open (no operator pause, global or
of its venue, and its connector not stopped by an operator: else INTAKE_PAUSED, nor given
up on by the supervisor: else VENUE_DOWN, `actors.oms.intake_state`), venue in its trading
session (else OUT_OF_SESSION), venue reconciled, queue not full, journal space reserved
(else JOURNAL_UNAVAILABLE: a full disk, `actors.oms.journal_space`)), journalled
PENDING_RISK and put to risk; the verdict is journalled and, once durable, the client is
answered and an approved order queued on its venue link. A replace (not a repeat of one
pending: `takes_no_risk`) changes what is at risk, so its new terms go to risk before the
request is journalled (and while the journal is low only one that just lowers the quantity
is taken); one that just lowers the quantity takes risk off and is not put to risk
(over max_daily_loss, risk refused a client shrinking a resting order), unless the
kill-switch is engaged. No verdict in time is a refusal (fail closed). Outside the
trading windows or in a blackout (`window`, `actors.oms.trading_gate`) a submit, and a
replace that does more than lower the quantity, is refused with OUTSIDE_TRADING_WINDOW (a
replace is a new order risk-wise); cancels are always taken. An order approved after the
window closed is rejected unsent (DROPPED_OUTSIDE_TRADING_WINDOW), and so is a replace
approved after it closed that does more than lower the quantity. Everything here reaches
the OMS through `IntakeHost` and the venue links.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from decimal import Decimal
from functools import partial
from typing import Protocol

from actors.oms.cancel_replace import replace_refusal, takes_no_risk
from actors.oms.intake_state import IntakeGate
from actors.oms.order_book import OrderBook
from actors.oms.orders import (
    DROPPED_GAVE_UP,
    DROPPED_OUT_OF_SESSION,
    DROPPED_OUTSIDE_TRADING_WINDOW,
    DROPPED_STOPPED,
    DROPPED_UNSENT,
    Order,
    Outcome,
    terms_problem,
)
from actors.oms.venue_link import VenueLink
from actors.runtime import metrics
from actors.runtime.peer import Replier
from protocol.codec import Envelope
from protocol.config import OmsCfg
from protocol.messages import (
    MAX_RISK_BATCH,
    TERMINAL_STATUSES,
    ErrorCode,
    Message,
    OrderAck,
    OrderStatus,
    ReplaceOrder,
    RequestRejected,
    RiskCheck,
    RiskChecks,
    RiskVerdict,
    RiskVerdicts,
    SubmitOrder,
    VenueConnState,
)
from protocol.wire_out import construct

RISK_RETRY_S = 0.5  # a check risk did not answer is asked again after this


class IntakeHost(Protocol):
    """What intake needs of the OMS (`actors.oms.actor.OmsActor` provides it)."""

    @property
    def book(self) -> OrderBook: ...

    @property
    def gate(self) -> IntakeGate:
        """Operator pauses and stopped venues (`actors.oms.intake_state`)."""
        ...

    @property
    def journal_problem(self) -> str | None:
        """Why the journal cannot take new orders now (a full disk), or None."""
        ...

    def record(self, outcome: Outcome) -> Outcome:
        """Journal an outcome's records (durable by the end of the loop turn)."""
        ...

    def unready(self, venue: str) -> str | None:
        """Why new orders for `venue` wait for the start (`PlanApplier.unready`), or None."""
        ...

    def after_commit(self, fn: Callable[[], None], *, first: bool = False) -> None:
        """Run `fn` once this turn's records are durable (replies and sends wait);
        `first`: a venue request, before the turn's events and replies."""
        ...

    @property
    def kill_switch_engaged(self) -> bool: ...

    def drop_unsent(self, client_order_id: str) -> bool:
        """Reject an approved order that must not be sent now (kill-switch, trading
        window closed); True if it was."""
        ...

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> None:
        """Run `fn` after `delay_s` (0: later in this loop turn, after its handlers)."""
        ...


class TradingWindow(Protocol):
    """The trading windows as intake asks them (`actors.oms.trading_gate.TradingGate`)."""

    def refusal(self) -> tuple[str, str] | None:
        """(why, text) while new orders are refused by the calendar, else None."""
        ...


class RiskPeer(Protocol):
    """The risk actor as intake asks it (`actors.runtime.actor.Peer`)."""

    def request(
        self, body: Message, callback: Callable[[Envelope | None], None], timeout_s: float
    ) -> str: ...


class Intake:
    def __init__(
        self,
        host: IntakeHost,
        links: Mapping[str, VenueLink],
        risk: RiskPeer,
        cfg: OmsCfg,
        window: TradingWindow | None = None,
    ) -> None:
        self.host = host
        self.window = window
        self.links = links
        self.risk = risk
        self.cfg = cfg
        self._waiting: dict[str, list[Replier]] = defaultdict(list)  # coid -> submitters
        self._risk_deadline: dict[str, float] = {}
        self._asks: list[RiskCheck] = []  # this turn's, sent together (`_send_asks`)
        self._replacing: set[str] = set()  # orders whose replace is with risk (one each)

    @property
    def awaiting_risk(self) -> int:
        """Submits whose clients wait for a risk verdict."""
        return len(self._waiting)

    def resume(self) -> None:
        """Ask risk again about orders whose verdict was lost with the last incarnation."""
        for order in self.host.book.orders(open_only=True):
            if order.status is OrderStatus.PENDING_RISK:
                self._ask_risk(order)

    # ------------------------------------------------------------------ submit

    def submit(self, msg: SubmitOrder, reply: Replier) -> None:
        book = self.host.book
        known = book.get(msg.client_order_id)  # a new one: a read of the archive (SQLite)
        if known is None:
            problem = self._intake_problem(msg)
            if problem is not None:
                metrics.ORDERS_REFUSED.labels(reason=problem[0].value.lower()).inc()
                reply.reject(*problem)
                return
        outcome = self.host.record(book.submit(msg, time.time_ns(), known=(known,)))
        if outcome.kind == "refused":
            reply.reject(ErrorCode.INVALID_ORDER, outcome.reason, "client_order_id")
            return
        order = outcome.order
        assert order is not None
        if order.status is OrderStatus.PENDING_RISK:
            self._waiting[order.client_order_id].append(reply)
            if outcome.applied:
                self._ask_risk(order)
            return
        self.host.after_commit(partial(_answer_submit, order, reply, duplicate=not outcome.applied))

    def _intake_problem(self, msg: SubmitOrder) -> tuple[ErrorCode, str, str | None] | None:
        link = self.links.get(msg.venue)
        if link is None:
            return ErrorCode.UNKNOWN_VENUE, f"unknown venue {msg.venue!r}", "venue"
        terms = terms_problem(msg)
        if terms is not None:
            return ErrorCode.INVALID_ORDER, *terms
        if (closed := self.host.gate.refusal(msg.venue)) is not None:
            return *closed, None
        if self.window is not None and (shut := self.window.refusal()) is not None:
            return ErrorCode.OUTSIDE_TRADING_WINDOW, shut[1], shut[0]
        if (journal := self.host.journal_problem) is not None:
            return ErrorCode.JOURNAL_UNAVAILABLE, journal, None
        if link.state is VenueConnState.OUT_OF_SESSION:
            return (
                ErrorCode.OUT_OF_SESSION,
                f"{msg.venue} is outside its trading session (planned downtime)",
                None,
            )
        if (unready := self.host.unready(msg.venue)) is not None:
            return ErrorCode.NOT_READY, unready, None
        if link.depth >= self.cfg.venue_queue_bound and not link.ready:
            return (
                ErrorCode.VENUE_DOWN,
                f"{msg.venue} is {link.state.value} and its queue is full",
                None,
            )
        return None

    def _ask_risk(self, order: Order) -> None:
        coid = order.client_order_id
        self._risk_deadline.setdefault(coid, time.monotonic() + self.cfg.request_timeout_s)
        self._asks.append(_risk_check(order, order.qty, order.price))
        if len(self._asks) == 1:  # sent after this turn's handlers (timers run before its commit)
            self.host.call_later(0, self._send_asks)

    def _send_asks(self) -> None:
        """The turn's new orders to risk: one `RiskCheck` alone, several as `RiskChecks`
        (one message each way instead of one per order; answered by one `RiskVerdicts`)."""
        asks, self._asks = self._asks, []
        if len(asks) == 1:
            coid = asks[0].client_order_id
            self.risk.request(asks[0], partial(self._on_verdict, coid), RISK_RETRY_S)
            return
        for i in range(0, len(asks), MAX_RISK_BATCH):
            batch = asks[i : i + MAX_RISK_BATCH]
            self.risk.request(
                RiskChecks(checks=batch), partial(self._on_verdicts, batch), RISK_RETRY_S
            )

    def _on_verdicts(self, checks: list[RiskCheck], reply: Envelope | None) -> None:
        """Each order's verdict from a `RiskVerdicts`; one that does not match its check
        (count or order: never from our risk) is counted and taken as no answer (asked
        again until the deadline); no reply or an error: each order as if alone."""
        body = None if reply is None else reply.body
        coids = [c.client_order_id for c in checks]
        if isinstance(body, RiskVerdict) or (
            isinstance(body, RiskVerdicts) and [v.client_order_id for v in body.verdicts] != coids
        ):
            self._mismatched(coids)
            return
        if not isinstance(body, RiskVerdicts):
            for coid in coids:
                self._on_verdict(coid, reply)
            return
        for coid, verdict in zip(coids, body.verdicts, strict=True):
            self._verdict(coid, verdict)

    def _mismatched(self, coids: list[str]) -> None:
        """A verdict that is not for the orders asked (never from our risk): counted, and
        the orders asked again after `RISK_RETRY_S` (until their deadline), not at once: a
        risk that keeps answering wrongly is not spun on."""
        metrics.BAD_MESSAGES.labels(actor="oms").inc()  # a frame the OMS cannot use
        for coid in coids:
            self.host.call_later(RISK_RETRY_S, partial(self._verdict, coid, None))

    def _on_verdict(self, coid: str, reply: Envelope | None) -> None:
        if reply is not None and isinstance(reply.body, (RiskVerdict, RiskVerdicts)):
            if not isinstance(reply.body, RiskVerdict) or reply.body.client_order_id != coid:
                self._mismatched([coid])
                return
        if reply is None:
            self._verdict(coid, None)
        elif not isinstance(reply.body, RiskVerdict):
            # risk answered, with an error: final (asking again gets the same error, at once)
            self._verdict(coid, RiskVerdict(
                client_order_id=coid, approved=False, reason_code="risk_error",
                reason=f"risk could not check the order: {_reply_reason(reply)}",
            ))  # fmt: skip
        else:
            self._verdict(coid, reply.body)

    def _verdict(self, coid: str, verdict: RiskVerdict | None) -> None:
        book = self.host.book
        order = book.get(coid)
        if order is None or order.status is not OrderStatus.PENDING_RISK:
            return
        if verdict is None:
            if time.monotonic() < self._risk_deadline.get(coid, 0):
                self._ask_risk(order)  # risk may be restarting: ask again
                return
            verdict = RiskVerdict(
                client_order_id=coid, approved=False, reason_code="risk_unavailable",
                reason="no risk verdict in time: fail closed",
            )  # fmt: skip
        self._risk_deadline.pop(coid, None)
        outcome = self.host.record(book.risk_verdict(verdict, time.time_ns()))
        order = outcome.order or order
        if outcome.applied and order.status is OrderStatus.PENDING_SUBMIT:
            if not self.host.drop_unsent(coid):  # e.g. the window closed while risk checked
                self.host.after_commit(partial(self.links[order.venue].push, coid), first=True)
        code = verdict.reason_code
        for r in self._waiting.pop(coid, []):
            if verdict.approved:
                self.host.after_commit(partial(_answer_submit, order, r, duplicate=False))
            else:
                reason = verdict.reason or code
                self.host.after_commit(partial(r.reject, _verdict_error(code), reason, code))

    # ------------------------------------------------------------------ cancel / replace

    def cancel_or_replace(
        self,
        coid: str,
        reply: Replier,
        replace: ReplaceOrder | None,
        *,
        risk_approved: bool = False,
    ) -> None:
        """A cancel (`replace` None) or a replace of a live order; a replace's new terms
        are put to risk first (`risk_approved` once they passed)."""
        book = self.host.book
        order = book.get(coid)
        if order is None:
            reply.reject(ErrorCode.UNKNOWN_ORDER, f"no order {coid!r}")
            return
        if order.status is OrderStatus.CANCELLED and replace is None:
            # idempotent: a client retrying a cancel whose ack was lost (e.g. with a killed
            # OMS) after the venue already cancelled it gets the order, not an error
            self.host.after_commit(partial(_answer, reply, order, duplicate=True))
            return
        if order.status in TERMINAL_STATUSES:
            reply.reject(ErrorCode.INVALID_STATE, f"{coid} is already {order.status.value}")
            return
        if replace is not None and not risk_approved and coid in self._replacing:
            # the book refuses a second request once the first is asked: after risk counted it
            reply.reject(ErrorCode.INVALID_STATE, f"{coid}: its previous replace is with risk")
            return
        if replace is not None and (refused := replace_refusal(order, replace)) is not None:
            reply.reject(ErrorCode.INVALID_STATE, refused)  # (before risk counts it)
            return
        if replace is not None and (closed := self._window_refusal(order, replace)) is not None:
            metrics.ORDERS_REFUSED.labels(reason="outside_trading_window").inc()
            reply.reject(ErrorCode.OUTSIDE_TRADING_WINDOW, closed[1], closed[0])
            return  # checked again once risk approved: the window may have closed meanwhile
        if replace is not None and not risk_approved:
            # a pause, a connector stopped by an operator, the OMS stopping: as for a submit
            paused = self.host.gate.refusal(order.venue)
            if paused is not None and not takes_no_risk(order, replace):
                metrics.ORDERS_REFUSED.labels(reason="intake_paused").inc()
                reply.reject(*paused)
                return
            journal = self.host.journal_problem
            if journal is not None and not takes_no_risk(order, replace):
                metrics.ORDERS_REFUSED.labels(reason="journal_unavailable").inc()
                reply.reject(ErrorCode.JOURNAL_UNAVAILABLE, journal)
                return
            if not takes_no_risk(order, replace) or self.host.kill_switch_engaged:
                self._check_replace_risk(order, replace, reply)
                return  # (one that takes risk off: nothing a limit could refuse it for)
        ts = time.time_ns()
        outcome = self.host.record(
            book.request_replace(replace, ts) if replace else book.request_cancel(coid, ts)
        )
        if outcome.kind == "refused":
            reply.reject(
                ErrorCode.INVALID_STATE if outcome.order else ErrorCode.UNKNOWN_ORDER,
                outcome.reason,
            )
            return
        order = outcome.order or order
        if outcome.applied:
            self.host.after_commit(partial(self.links[order.venue].push, coid), first=True)
        self.host.after_commit(partial(_answer, reply, order, duplicate=not outcome.applied))

    def _window_refusal(self, order: Order, replace: ReplaceOrder) -> tuple[str, str] | None:
        """Why the windows refuse this replace now; a quantity-lowering one never is."""
        if self.window is None or takes_no_risk(order, replace):
            return None
        return self.window.refusal()

    def _check_replace_risk(self, order: Order, msg: ReplaceOrder, reply: Replier) -> None:
        """A replace changes what is at risk: check the new terms first, then re-enter
        `cancel_or_replace` (which re-validates the order's state) on approval."""
        coid = order.client_order_id
        check = _risk_check(
            order,
            msg.qty if msg.qty is not None else order.qty,
            msg.price if msg.price is not None else order.price,
        )

        def verdict(r: Envelope | None) -> None:
            self._replacing.discard(coid)
            if r is None or not isinstance(r.body, RiskVerdict) or r.body.client_order_id != coid:
                reply.reject(
                    ErrorCode.RISK_REJECTED,
                    "no risk verdict in time: fail closed",
                    "risk_unavailable",
                )
            elif not r.body.approved:
                code = r.body.reason_code
                reply.reject(_verdict_error(code), r.body.reason or code, code)
            else:
                self.cancel_or_replace(coid, reply, msg, risk_approved=True)

        self._send_asks()  # the new orders of this turn first: risk sees them in order
        self._replacing.add(coid)
        self.risk.request(check, verdict, self.cfg.request_timeout_s)


def _answer(reply: Replier, order: Order, *, duplicate: bool) -> None:
    reply(construct(OrderAck, order=order.view(), duplicate=duplicate))


# An order dropped unsent during its risk round trip: the submitter is told why with the
# error a submit refused at intake for the same reason gets (not an OrderAck of a REJECTED);
# a retry of it gets the OrderAck (the order is final).
_DROPPED: dict[str, tuple[ErrorCode, str | None]] = {
    DROPPED_OUTSIDE_TRADING_WINDOW: (ErrorCode.OUTSIDE_TRADING_WINDOW, "outside_window"),
    DROPPED_STOPPED: (ErrorCode.INTAKE_PAUSED, None),
    DROPPED_GAVE_UP: (ErrorCode.VENUE_DOWN, None),
    DROPPED_OUT_OF_SESSION: (ErrorCode.OUT_OF_SESSION, None),
    DROPPED_UNSENT: (ErrorCode.KILL_SWITCH, "risk"),
}


def _answer_submit(order: Order, reply: Replier, *, duplicate: bool) -> None:
    # a retry of a dropped order (`duplicate`) learns its final state: an OrderAck of the
    # REJECTED order (an error such as INTAKE_PAUSED would have it wait and retry forever)
    rejected = order.status is OrderStatus.REJECTED and not duplicate
    dropped = _DROPPED.get(order.reason or "") if rejected else None
    if dropped is not None:
        reply.reject(dropped[0], order.reason, dropped[1])
        return
    if order.status is OrderStatus.REJECTED and order.ts_submit_ns == 0:
        code = ErrorCode.KILL_SWITCH if "kill" in order.reason else ErrorCode.RISK_REJECTED
        reply.reject(code, order.reason or "rejected by risk", "risk")
        return
    _answer(reply, order, duplicate=duplicate)


def _risk_check(order: Order, qty: Decimal, price: Decimal | None) -> RiskCheck:
    """The question for risk: this order with these (possibly replaced) terms."""
    return construct(  # of values the order holds validated (protocol.wire_out)
        RiskCheck, client_order_id=order.client_order_id, venue=order.venue, symbol=order.symbol,
        side=order.side, qty=qty, order_type=order.order_type, price=price,
    )  # fmt: skip


def _reply_reason(reply: Envelope) -> str:
    body = reply.body
    return body.reason if isinstance(body, RequestRejected) else f"unexpected {body.type}"


def _verdict_error(reason_code: str) -> ErrorCode:
    """How a client sees a risk refusal: the kill-switch is its own error."""
    return ErrorCode.KILL_SWITCH if reason_code == "kill_switch" else ErrorCode.RISK_REJECTED
