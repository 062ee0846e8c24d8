"""The OMS actor: order intake, the durable journal, routing to venues, executions.

Order path: SubmitOrder -> journal `new` -> RiskCheck -> verdict journalled -> commit ->
ack the client -> queue for the venue -> PlaceOrder to the connector. Executions from a
connector are applied once per exec id, journalled, committed, then acked (ExecAck) and
published. Nothing leaves this process before the records behind it are durable: every
reply, send and event waits in `_after_commit` for the loop's one group commit.

State lives in `actors.oms.order_book.OrderBook` (pure, event-sourced); reconciliation per venue in
`actors.oms.venue_link.VenueLink`.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import zmq

from actors.oms.journal import Journal
from actors.oms.order_book import OrderBook, terms_problem
from actors.oms.orders import DROPPED_UNSENT, Order, Outcome, parse_ord_status
from actors.oms.reconcile import Adopt, Escalate, Plan, Resubmit, apply_plan
from actors.oms.venue_link import VenueLink
from actors.risk import killswitch
from actors.runtime import metrics
from actors.runtime.actor import Actor, Replier, tune_socket
from actors.supervisor.coldstart import COLD_MARKER, oms_dir
from protocol.codec import Envelope
from protocol.commands import Command, Intake, Reconcile
from protocol.messages import (
    TERMINAL_STATUSES,
    Ack,
    CancelOrder,
    ControlReply,
    ErrorCode,
    ExecAck,
    ExecReport,
    GetOrder,
    GetPositions,
    KillSwitchCommand,
    ListOrders,
    Message,
    OrderAck,
    OrderEvent,
    OrderList,
    OrderStatus,
    Positions,
    ReplaceOrder,
    RiskCheck,
    RiskVerdict,
    Snapshot,
    SnapshotRequest,
    StreamEvent,
    SubmitOrder,
    VenueStateChanged,
)

_RISK_RETRY_S = 0.5
_KILL_SWITCH_POLL_S = 0.1  # one stat of the kill-switch file (see _poll_kill_switch)


class OmsActor(Actor):
    kind = "oms"

    def setup(self) -> None:
        self.book = OrderBook()
        self.journal, recovery = Journal.open(oms_dir(self.cfg.state_path))
        if recovery.snapshot is not None:
            self.book = OrderBook.from_dict(recovery.snapshot)
        for record in recovery.records:
            self.book.apply_record(record)
        self.cold_marker = oms_dir(self.cfg.state_path) / COLD_MARKER
        self.cold = self.cold_marker.exists()
        self.log.info(
            "journal_replayed",
            records=len(recovery.records),
            snapshot=recovery.snapshot is not None,
            orders=len(self.book.orders()),
            torn_tail=bool(recovery.torn_tail),
        )
        self._after_commit: list[Callable[[], None]] = []
        self._changed: dict[str, tuple[Decimal | None, Decimal | None]] = {}
        self._waiting: dict[str, list[Replier]] = defaultdict(list)
        self._risk_deadline: dict[str, float] = {}
        self.intake_paused = False
        self._ks_path = killswitch.kill_switch_path(self.cfg.state_path)
        self._ks_stamp = killswitch.file_stamp(self._ks_path)
        self.kill_switch_engaged = killswitch.load(self._ks_path).engaged
        self.event_seq = 0
        self.pub = self.ctx.socket(zmq.PUB)
        tune_socket(self.pub)
        events = self.cfg.events_endpoint
        Path(events.removeprefix("ipc://")).unlink(missing_ok=True)
        self.pub.bind(events)
        self.risk = self.peer("risk")
        self.venues = {v.name: VenueLink(self, v.name) for v in self.cfg.venues}
        for order in self.book.orders(open_only=True):
            if order.status is OrderStatus.PENDING_RISK:
                self._ask_risk(order)  # the verdict was lost with the last incarnation
        for link in self.venues.values():
            link.start_reconcile()  # a connected connector answers; else we wait for CONNECTED
        self._warm_logged = False
        self.call_every(self.cfg.oms.request_timeout_s, self._sweep_stale)
        self.call_every(_KILL_SWITCH_POLL_S, self._poll_kill_switch)

    # ------------------------------------------------------------------ durability

    def record(self, outcome: Outcome, venue: str = "") -> Outcome:
        """Journal an outcome's records and remember the order for publishing. `venue`
        names the venue of an escalation that matches no order (an unmatched fill)."""
        for rec in outcome.records:
            self.journal.append(rec)
        if outcome.applied and outcome.order is not None:
            coid = outcome.order.client_order_id
            self._changed[coid] = (outcome.fill_qty, outcome.fill_px)
            self._count(outcome)
        for esc in outcome.escalations:
            self._escalate(esc.kind, esc.detail, esc.client_order_id, outcome.order, venue)
        return outcome

    def after_commit(self, fn: Callable[[], None]) -> None:
        self._after_commit.append(fn)

    def after_iteration(self) -> None:
        if self.journal.pending:
            start = time.perf_counter()
            self.journal.commit()
            metrics.JOURNAL_FSYNC_SECONDS.observe(time.perf_counter() - start)
            if self.journal.records_since_snapshot >= self.cfg.oms.snapshot_every:
                self.journal.write_snapshot_in_background(self.book.to_dict)
        self.journal.poll_background()
        changed, self._changed = self._changed, {}
        for coid, (fq, fpx) in changed.items():
            order = self.book.get(coid)
            if order is not None:
                self.event_seq += 1
                self._publish(
                    OrderEvent(
                        event_seq=self.event_seq, order=order.view(), fill_qty=fq, fill_px=fpx
                    )
                )
        actions, self._after_commit = self._after_commit, []
        if actions:
            self.crash_point("after_journal_before_send")
        for fn in actions:
            fn()

    def _publish(self, body: Message) -> None:
        self.pub.send_multipart(self.sender.encode(body), copy=False)

    def publish_stream(self, event: str, data: dict[str, Any]) -> None:
        self.event_seq += 1
        self._publish(StreamEvent(event_seq=self.event_seq, event=event, data=data))

    def _count(self, outcome: Outcome) -> None:
        order = outcome.order
        assert order is not None
        metrics.ORDERS.labels(venue=order.venue, status=order.status.value).inc()
        if outcome.fill_qty:
            metrics.FILLS.labels(venue=order.venue).inc()
        if order.status is OrderStatus.ACCEPTED and order.ts_ack_ns and order.ts_created_ns:
            if order.ts_ack_ns >= order.ts_created_ns and not order.external:
                metrics.ORDER_LATENCY.labels(venue=order.venue).observe(
                    (order.ts_ack_ns - order.ts_created_ns) / 1e9
                )

    def _escalate(self, kind: str, detail: str, coid: str, order: Order | None, venue: str) -> None:
        venue = order.venue if order is not None else venue
        event = "unmatched_fill" if kind == "unmatched_fill" else "order_escalation"
        self.log.error(event, kind=kind, detail=detail, client_order_id=coid, venue=venue)
        self.publish_stream(
            event, {"kind": kind, "detail": detail, "client_order_id": coid, "venue": venue}
        )
        if kind == "unmatched_fill":
            metrics.UNMATCHED_FILLS.labels(venue=venue or "unknown").inc()
            if self.cfg.oms.unmatched_fill_engages_kill_switch:
                self.engage_kill_switch("unmatched_fill")

    def engage_kill_switch(self, reason: str) -> None:
        """Ask risk to engage; ask again until it answers (it may be restarting)."""
        self.kill_switch_engaged = True
        cmd = KillSwitchCommand(action="engage", reason=reason, source="oms")

        def answered(reply: Envelope | None) -> None:
            if reply is None:
                self.log.warning("kill_switch_request_lost", reason=reason)
                self.call_later(_RISK_RETRY_S, lambda: self.engage_kill_switch(reason))

        self.risk.request(cmd, answered, self.cfg.oms.request_timeout_s)

    # ------------------------------------------------------------------ requests

    def on_request(self, env: Envelope, reply: Replier) -> None:
        body = env.body
        if isinstance(body, ExecReport):
            self._on_exec(body, reply)
        elif isinstance(body, SubmitOrder):
            self._on_submit(body, reply)
        elif isinstance(body, CancelOrder):
            self._on_cancel_or_replace(body.client_order_id, reply, None)
        elif isinstance(body, ReplaceOrder):
            self._on_cancel_or_replace(body.client_order_id, reply, body)
        elif isinstance(body, VenueStateChanged):
            link = self.venues.get(body.venue)
            if link is not None:
                link.on_state(body.state, env.epoch, body.detail)
            reply(Ack(ref=env.msg_id))
        elif isinstance(body, GetOrder):
            order = self.book.get(body.client_order_id)
            if order is None:
                reply.reject(ErrorCode.UNKNOWN_ORDER, f"no order {body.client_order_id!r}")
            else:
                self.after_commit(lambda: reply(OrderAck(order=order.view())))
        elif isinstance(body, ListOrders):
            self.after_commit(lambda: reply(self._order_page(body)))
        elif isinstance(body, GetPositions):
            self.after_commit(lambda: reply(self._positions(body)))
        elif isinstance(body, StreamEvent):
            # risk / heartbeat / connectors publish through the OMS's one client stream
            self.publish_stream(body.event, {**body.data, "source": env.sender})
            if body.event == "kill_switch" and "engaged" in body.data:
                if body.data["engaged"]:
                    self._on_kill_switch(True)  # at once; a late or stale one is harmless
                else:
                    self._ks_stamp = None  # a reset: the state file says (an old event can
                    self._poll_kill_switch()  # arrive after a newer engagement)
            reply(Ack(ref=env.msg_id))
        elif isinstance(body, SnapshotRequest):
            self.after_commit(
                lambda: reply(
                    Snapshot(
                        event_seq=self.event_seq,
                        orders=[o.view() for o in self.book.orders(open_only=True)],
                    )
                )
            )
        else:
            super().on_request(env, reply)

    def _on_submit(self, msg: SubmitOrder, reply: Replier) -> None:
        existing = self.book.get(msg.client_order_id)
        if existing is None:
            problem = self._intake_problem(msg)
            if problem is not None:
                reply.reject(*problem)
                return
        outcome = self.record(self.book.submit(msg, time.time_ns()))
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
        self.after_commit(lambda: self._answer_submit(order, reply, duplicate=not outcome.applied))

    # Read answers are built after the turn's events went out, so their `event_seq` says
    # exactly which events they already reflect (risk rebuilds its exposure on that).

    def _order_page(self, req: ListOrders) -> OrderList:
        matching = self.book.orders(req.venue, open_only=req.open_only)
        end = req.offset + req.limit
        page = [o.view() for o in matching[req.offset : end]]
        more = end if end < len(matching) else None
        return OrderList(orders=page, next_offset=more, event_seq=self.event_seq)

    def _positions(self, req: GetPositions) -> Positions:
        views = [p.view() for p in self.book.positions(req.venue)]
        return Positions(source="oms", venue=req.venue, positions=views, event_seq=self.event_seq)

    def _intake_problem(self, msg: SubmitOrder) -> tuple[ErrorCode, str, str | None] | None:
        link = self.venues.get(msg.venue)
        if link is None:
            return ErrorCode.UNKNOWN_VENUE, f"unknown venue {msg.venue!r}", "venue"
        terms = terms_problem(msg)
        if terms is not None:
            return ErrorCode.INVALID_ORDER, *terms
        if self.intake_paused:
            return ErrorCode.NOT_READY, "order intake is paused by an operator", None
        if not link.ever_reconciled:
            return (
                ErrorCode.NOT_READY,
                f"{msg.venue} not reconciled yet since the OMS started",
                None,
            )
        if link.depth >= self.cfg.oms.venue_queue_bound and not link.ready:
            return (
                ErrorCode.VENUE_DOWN,
                f"{msg.venue} is {link.state.value} and its queue is full",
                None,
            )
        return None

    def _ask_risk(self, order: Order) -> None:
        coid = order.client_order_id
        self._risk_deadline.setdefault(coid, time.monotonic() + self.cfg.oms.request_timeout_s)
        check = _risk_check(order, order.qty, order.price)
        self.risk.request(check, lambda r: self._on_verdict(coid, r), _RISK_RETRY_S)

    def _on_verdict(self, coid: str, reply: Envelope | None) -> None:
        order = self.book.get(coid)
        if order is None or order.status is not OrderStatus.PENDING_RISK:
            return
        if reply is None or not isinstance(reply.body, RiskVerdict):
            if time.monotonic() < self._risk_deadline.get(coid, 0):
                self._ask_risk(order)  # risk may be restarting: ask again
                return
            verdict = RiskVerdict(
                client_order_id=coid, approved=False, reason_code="risk_unavailable",
                reason="no risk verdict in time: fail closed",
            )  # fmt: skip
        else:
            verdict = reply.body
        self._risk_deadline.pop(coid, None)
        outcome = self.record(self.book.risk_verdict(verdict, time.time_ns()))
        order = outcome.order or order
        if outcome.applied and order.status is OrderStatus.PENDING_SUBMIT:
            link = self.venues[order.venue]
            self.after_commit(lambda: (link.enqueue(coid), link.dispatch()))
        waiting = self._waiting.pop(coid, [])
        code = verdict.reason_code
        for r in waiting:
            if verdict.approved:
                self.after_commit(lambda r=r: self._answer_submit(order, r, duplicate=False))
            else:
                err = _verdict_error(code)
                self.after_commit(lambda r=r: r.reject(err, verdict.reason or code, code))

    def _answer_submit(self, order: Order, reply: Replier, duplicate: bool) -> None:
        if order.status is OrderStatus.REJECTED and order.ts_submit_ns == 0:
            code = ErrorCode.KILL_SWITCH if "kill" in order.reason else ErrorCode.RISK_REJECTED
            reply.reject(code, order.reason or "rejected by risk", "risk")
            return
        reply(OrderAck(order=order.view(), duplicate=duplicate))

    def _poll_kill_switch(self) -> None:
        """The state file is the truth; risk's stream event is only the fast path. A switch
        the supervisor engaged or reset while risk was down publishes no event at all."""
        stamp = killswitch.file_stamp(self._ks_path)
        if stamp == self._ks_stamp:
            return
        self._ks_stamp = stamp
        engaged = killswitch.load(self._ks_path).engaged
        if engaged != self.kill_switch_engaged:
            self.log.info("kill_switch_seen", engaged=engaged, via="state_file")
            self._on_kill_switch(engaged)

    def _on_kill_switch(self, engaged: bool) -> None:
        """The switch changed. Orders approved but never sent are not sent now."""
        self.kill_switch_engaged = engaged
        if engaged:
            for link in self.venues.values():
                for coid in list(link.queue):
                    if self.drop_unsent(coid):
                        del link.queue[coid]

    def drop_unsent(self, coid: str) -> bool:
        """While the kill-switch is engaged, a queued order that never reached the venue
        (PENDING_SUBMIT, not in flight) is rejected instead of sent. True if it was."""
        order = self.book.get(coid)
        if (
            not self.kill_switch_engaged
            or order is None
            or order.status is not OrderStatus.PENDING_SUBMIT
        ):
            return False
        if coid in self.venues[order.venue].in_flight:
            return False
        reason = DROPPED_UNSENT
        self.record(
            self.book.apply_venue_status(coid, OrderStatus.REJECTED, time.time_ns(), reason=reason)
        )
        self.log.warning(
            "order_dropped_unsent", client_order_id=coid, venue=order.venue, reason=reason
        )
        return True

    def _on_cancel_or_replace(
        self,
        coid: str,
        reply: Replier,
        replace: ReplaceOrder | None,
        *,
        risk_approved: bool = False,
    ) -> None:
        order = self.book.get(coid)
        if order is None:
            reply.reject(ErrorCode.UNKNOWN_ORDER, f"no order {coid!r}")
            return
        if order.status is OrderStatus.CANCELLED and replace is None:
            # idempotent: a client retrying a cancel whose ack was lost (e.g. with a killed
            # OMS) after the venue already cancelled it gets the order, not an error
            self.after_commit(lambda: reply(OrderAck(order=order.view(), duplicate=True)))
            return
        if order.status in TERMINAL_STATUSES:
            reply.reject(ErrorCode.INVALID_STATE, f"{coid} is already {order.status.value}")
            return
        if (
            order.status
            in (OrderStatus.PENDING_RISK, OrderStatus.PENDING_SUBMIT, OrderStatus.UNKNOWN)
            and replace
        ):
            reply.reject(
                ErrorCode.INVALID_STATE, f"{coid} is {order.status.value}: not yet at the venue"
            )
            return
        if replace is not None and not risk_approved:
            self._check_replace_risk(order, replace, reply)
            return
        ts = time.time_ns()
        outcome = self.record(
            self.book.request_replace(replace, ts)
            if replace
            else self.book.request_cancel(coid, ts)
        )
        if outcome.kind == "refused":
            reply.reject(
                ErrorCode.INVALID_STATE if outcome.order else ErrorCode.UNKNOWN_ORDER,
                outcome.reason,
            )
            return
        order = outcome.order or order
        if outcome.applied:
            link = self.venues[order.venue]
            self.after_commit(lambda: (link.enqueue(coid), link.dispatch()))
        self.after_commit(
            lambda: reply(OrderAck(order=order.view(), duplicate=not outcome.applied))
        )

    def _check_replace_risk(self, order: Order, msg: ReplaceOrder, reply: Replier) -> None:
        """A replace changes what is at risk: check the new terms first, then re-enter
        `_on_cancel_or_replace` (which re-validates the order's state) on approval."""
        coid = order.client_order_id
        check = _risk_check(
            order,
            msg.qty if msg.qty is not None else order.qty,
            msg.price if msg.price is not None else order.price,
        )

        def verdict(r: Envelope | None) -> None:
            if r is None or not isinstance(r.body, RiskVerdict):
                reply.reject(
                    ErrorCode.RISK_REJECTED,
                    "no risk verdict in time: fail closed",
                    "risk_unavailable",
                )
            elif not r.body.approved:
                code = r.body.reason_code
                reply.reject(_verdict_error(code), r.body.reason or code, code)
            else:
                self._on_cancel_or_replace(coid, reply, msg, risk_approved=True)

        self.risk.request(check, verdict, self.cfg.oms.request_timeout_s)

    def _on_exec(self, report: ExecReport, reply: Replier) -> None:
        outcome = self.record(self.book.apply_exec(report, time.time_ns()), venue=report.venue)
        if outcome.applied and outcome.order is not None and outcome.fill_qty:
            if outcome.order.status is OrderStatus.PARTIALLY_FILLED and self.crash_points_armed:
                self.journal.commit()
                self.crash_point("between_partial_fills")
        if outcome.kind == "refused":
            self.log.warning(
                "exec_refused",
                exec_id=report.exec_id,
                cl_ord_id=report.cl_ord_id,
                reason=outcome.reason,
                venue=report.venue,
            )
        order = outcome.order
        if order is not None and (
            order.status is OrderStatus.UNKNOWN or _says_finished(report, order)
        ):
            # e.g. a duplicate-ClOrdID reject, or a cancel refused because the venue had
            # already finished the order (its confirmation lost): learn how it ended
            self.venues[order.venue].start_reconcile()
        self.after_commit(lambda: reply(ExecAck(venue=report.venue, exec_ids=[report.exec_id])))

    # ------------------------------------------------------------------ reconciliation

    def _sweep_stale(self) -> None:
        """Safety nets: every connected venue is reconciled at least every
        `oms.reconcile_interval_s`; an order sent but still without any venue answer after a
        full request timeout (e.g. the venue session-rejected it) triggers a pass at once."""
        horizon = time.time_ns() - int(self.cfg.oms.request_timeout_s * 1e9)
        waiting = (
            OrderStatus.PENDING_SUBMIT,
            OrderStatus.UNKNOWN,
            OrderStatus.PENDING_CANCEL,
            OrderStatus.PENDING_REPLACE,
        )
        for link in self.venues.values():
            if not link.ready or link.reconciling:
                continue
            if time.monotonic() - link.last_pass_at >= self.cfg.oms.reconcile_interval_s:
                # a report the venue never delivered (e.g. lost with its own crash) leaves
                # an order open here and finished there: a periodic pass finds it
                link.start_reconcile()
                continue
            for order in self.book.orders(link.venue, open_only=True):
                coid = order.client_order_id
                if (
                    order.status in waiting
                    and order.ts_updated_ns < horizon
                    and coid not in link.queue
                    and coid not in link.in_flight
                ):
                    self.log.info(
                        "stale_order_reconcile",
                        venue=link.venue,
                        client_order_id=coid,
                        status=order.status.value,
                    )
                    link.start_reconcile()
                    break

    def apply_reconcile_plan(self, link: VenueLink, plan: Plan, venue_positions: Positions) -> None:
        summary = plan.summary()
        self.log.info("reconcile_plan", **summary)
        cold = self.cold and not link.ever_reconciled
        for i, (action, outcome) in enumerate(apply_plan(self.book, plan, time.time_ns())):
            if i == len(plan.actions) // 2 and plan.changes and self.crash_points_armed:
                self.journal.commit()
                self.crash_point("during_reconciliation")
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
                self.publish_stream("reconcile_escalation", action.to_dict())
                continue
            if outcome is not None:
                self.record(outcome)
            if isinstance(action, Resubmit):
                link.enqueue(action.client_order_id)  # sent once the venue is ready
                self.log.warning(
                    "order_resubmitted",
                    venue=link.venue,
                    client_order_id=action.client_order_id,
                    cl_ord_id=action.cl_ord_id,
                )
            if isinstance(action, Adopt):
                self.log.warning(
                    "order_adopted",
                    venue=link.venue,
                    client_order_id=action.client_order_id,
                    cold=self.cold,
                )
                if self.cold and self.cfg.oms.cold_start_open_orders == "cancel":
                    self.record(self.book.request_cancel(action.client_order_id, time.time_ns()))
        if cold:
            self._take_opening_positions(link.venue, venue_positions)

    def _take_opening_positions(self, venue: str, venue_positions: Positions) -> None:
        """Cold start: our book starts empty but the venue's positions do not; take them as
        opening positions (journalled), so heartbeats compare like with like."""
        for p in venue_positions.positions:
            if self.book.position(venue, p.symbol).qty != p.qty:
                self.journal.append(
                    self.book.set_opening_position(venue, p.symbol, p.qty, p.avg_px, time.time_ns())
                )
                self.log.warning(
                    "opening_position",
                    venue=venue,
                    symbol=p.symbol,
                    qty=str(p.qty),
                    avg_px=str(p.avg_px),
                )

    def on_venue_reconciled(self, link: VenueLink, plan: Plan, first: bool) -> None:
        if not first:
            return
        pending = [v for v in self.venues.values() if not v.ever_reconciled]
        if pending or self._warm_logged:
            return
        self._warm_logged = True
        counts = {
            "orders": len(self.book.orders()),
            "open_orders": len(self.book.orders(open_only=True)),
        }
        if self.cold:
            self.log.info(
                "cold_start",
                step="reconciled",
                policy=self.cfg.oms.cold_start_open_orders,
                **counts,
            )
            self.cold_marker.unlink(missing_ok=True)
            self.cold = False
        else:
            self.log.info("warm_start", **counts)
        self.publish_stream("intake_open", counts)

    # ------------------------------------------------------------------ operator commands

    def on_control(self, command: Command, respond: Callable[[ControlReply], None]) -> None:
        if isinstance(command, Intake):
            if command.action in ("pause", "resume"):
                self.intake_paused = command.action == "pause"
                self.log.warning("intake_paused" if self.intake_paused else "intake_resumed")
            respond(
                ControlReply(
                    status="ok", reason=f"intake {self._intake_state()}", data=self.heartbeat_info()
                )
            )
        elif isinstance(command, Reconcile):
            link = self.venues.get(command.venue)
            if link is None:
                respond(ControlReply(status="error", reason=f"unknown venue {command.venue!r}"))
                return
            dry = command.dry_run

            def done(plan: Plan) -> None:
                respond(
                    ControlReply(
                        status="ok",
                        reason=plan.format_dry_run(),
                        data={
                            "summary": plan.summary(),
                            "actions": plan.to_dicts(),
                            "dry_run": dry,
                        },
                    )
                )

            link.start_reconcile(done, dry_run=dry)
        else:
            super().on_control(command, respond)

    def _intake_state(self) -> str:
        if self.intake_paused:
            return "paused"
        return "open" if all(v.ever_reconciled for v in self.venues.values()) else "starting"

    def heartbeat_info(self) -> dict[str, Any]:
        if not hasattr(self, "venues"):
            return {}
        return {
            "intake": self._intake_state(),
            "kill_switch": "engaged" if self.kill_switch_engaged else "off",
            "queues": {n: v.depth for n, v in self.venues.items()},
            "venues": {
                n: ("reconciled" if v.reconciled else v.state.value) for n, v in self.venues.items()
            },
            "unmatched_fills": len(self.book.unmatched_fills()),
        }

    def on_stop(self) -> None:
        """Stop intake, drain in-flight work for a bounded time, persist."""
        self.intake_paused = True

        def drained() -> bool:
            return not self._waiting and not any(v.in_flight for v in self.venues.values())

        if not self.run_until(drained, self.cfg.oms.drain_timeout_s):
            self.log.warning("drain_timeout", waiting=len(self._waiting))
        self.after_iteration()
        self.journal.write_snapshot(self.book.to_dict())
        self.journal.close()


def _risk_check(order: Order, qty: Decimal, price: Decimal | None) -> RiskCheck:
    """The question for risk: this order with these (possibly replaced) terms."""
    return RiskCheck(
        client_order_id=order.client_order_id, venue=order.venue, symbol=order.symbol,
        side=order.side, qty=qty, order_type=order.order_type, price=price,
    )  # fmt: skip


def _verdict_error(reason_code: str) -> ErrorCode:
    """How a client sees a risk refusal: the kill-switch is its own error."""
    return ErrorCode.KILL_SWITCH if reason_code == "kill_switch" else ErrorCode.RISK_REJECTED


def _says_finished(report: ExecReport, order: Order) -> bool:
    """A cancel/replace reject whose OrdStatus says the order is over while ours is not."""
    said = parse_ord_status(report.ord_status) if report.kind == "cancel_rejected" else None
    return said in TERMINAL_STATUSES and not order.is_terminal
