"""The OMS actor: order intake, the durable journal, routing to venues, executions.

Order path: SubmitOrder -> journal `new` -> RiskCheck -> verdict journalled -> commit ->
PlaceOrder to the connector (queued for the venue) -> event, ack the client. Executions from a
connector are applied once per exec id, journalled, committed, then acked (ExecAck) and
published. Nothing leaves this process before the records behind it are durable: every
reply, send and event waits in `_after_commit` for the loop's one group commit.

This module is the shell: setup, request dispatch, the commit and what waits for it, the
kill-switch (`actors.oms.kill_switch_follower`), operator commands and stop. It composes
`actors.oms.order_book.OrderBook` (the state, pure and event-sourced),
`actors.oms.intake.Intake` (submit / cancel / replace with the risk round trip),
`actors.oms.venue_link.VenueLink` (one per venue: queue, sends, reconciliation passes) and
`actors.oms.plan_apply.PlanApplier` (carrying out the passes' plans, start-up, stale
sweep), each through its own small Protocol.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import msgspec

from actors.oms import escalation, operator_orders, outcome_metrics, queued_request, reads
from actors.oms.at_venue import OpenAtVenue
from actors.oms.client_endpoint import ClientEndpoint
from actors.oms.commit_policy import AfterCommit, CommitPolicy, EventHold
from actors.oms.event_wire import (
    EventFill,
    EventStreams,
    event_parts,
    merge_fill,
    messages,
    order_event_body,
    packed,
)
from actors.oms.exec_cut import ExecLog
from actors.oms.exec_intake import DeferredAcks, ExecIntake
from actors.oms.exec_quarantine import ExecApplier
from actors.oms.intake import Intake
from actors.oms.intake_state import IntakeGate, unsent_reason
from actors.oms.journal import Journal
from actors.oms.journal_space import PROBE_S, JournalSpace
from actors.oms.kill_switch_follower import INTAKE_HALTED, KillSwitchFollower
from actors.oms.orders import Order, Outcome
from actors.oms.plan import Action, Plan
from actors.oms.plan_apply import PlanApplier
from actors.oms.retention import open_book
from actors.oms.snapshot_due import snapshot_due
from actors.oms.trading_gate import TradingGate
from actors.oms.unsent_guard import UnsentGuard
from actors.oms.venue_link import VenueLink
from actors.oms.views import OmsViews
from actors.risk import killswitch
from actors.runtime import metrics
from actors.runtime.actor import Actor
from actors.runtime.gcpause import collections_paused
from actors.runtime.peer import Replier
from actors.runtime.tally import TURN
from protocol import commands, day_clock
from protocol.codec import Envelope
from protocol.messages import (
    Ack,
    CancelOrder,
    ControlReply,
    ErrorCode,
    ExecReport,
    ExecReports,
    GetOrder,
    GetPositions,
    ListOrders,
    OrderAck,
    OrderStatus,
    Positions,
    ReplaceOrder,
    SnapshotRequest,
    StreamEvent,
    SubmitOrder,
    VenueConnState,
    VenueStateChanged,
)
from protocol.paths import cold_marker, oms_dir, operator_stops_path


class OmsActor(Actor):
    kind = "oms"

    def setup(self) -> None:
        self.exec_log = ExecLog()  # recent executions by connector number (`ExecCut`)
        self.exec_applier = ExecApplier(self)  # quarantines an execution whose apply raises
        with collections_paused():  # the replay builds long-lived objects only
            self.journal, recovery = Journal.open(oms_dir(self.cfg.state_path))
            keep, snap = self.cfg.oms.recent_terminal_orders, recovery.snapshot
            self.book = open_book(self.journal, snap, oms_dir(self.cfg.state_path), keep, self)
            self.book.day_clock = day_clock.DayClock.of(self.cfg.risk)  # (risk's days)
            for record in recovery.records:
                self.book.apply_record(record)
            self.views = OmsViews(self.book, recovery.snapshot).replay(recovery.records)
        self.log.info("journal_replayed", records=len(recovery.records),
                      snapshot=recovery.snapshot is not None, orders=len(self.book.orders()),
                      torn_tail=bool(recovery.torn_tail))  # fmt: skip
        self.space = JournalSpace(self.journal, self.cfg.oms.journal_reserve_bytes, self.log)
        self._after_commit = AfterCommit()  # venue requests first, then replies and reads
        self._built: list[msgspec.Raw] = []  # this turn's order events, sent after the commit
        self.commits, self.at_venue = CommitPolicy(), OpenAtVenue()  # `new` waits: its verdict
        self.event_hold = EventHold(self.call_later)  # and its event waits for the verdict
        self._changed: dict[str, EventFill] = {}
        names, stops = [v.name for v in self.cfg.venues], operator_stops_path(self.cfg.runtime_path)
        self.gate = IntakeGate(self.cfg.state_path, stops, names, self.log)  # operator pauses
        self.kill_switch = KillSwitchFollower(self)  # reads the state file now
        self.event_seq = 0
        self.pub = EventStreams.bind(self.ctx, self.cfg, self.call_later)  # clients', risk's later
        self.clients = ClientEndpoint(self, self.cfg.client_endpoint)  # oms.sock: internal
        self.add_socket(self.clients.sock, self.clients.on_readable)
        self.risk = self.pub.follows(self.peer("risk"))  # its stream goes before a check
        self.venues = {
            v.name: VenueLink(
                v.name,
                self,
                self.peer(f"connector.{v.name}"),
                request_timeout_s=self.cfg.oms.request_timeout_s,
                status_rate_per_s=v.rate_limit_per_s,
                log=self.log.bind(venue=v.name),
                retry_initial_s=self.cfg.oms.reconcile_retry_initial_s,
                retry_max_s=self.cfg.oms.reconcile_retry_max_s,
                resubmit_grace_s=self.cfg.oms.resubmit_grace_s,
                exec_log=self.exec_log,
                oms_epoch=self.epoch,
                ordered_session=v.kind == "fix",
            )
            for v in self.cfg.venues
        }
        self.trading = TradingGate.start(self)  # [trading] windows, read from self.cfg
        self.unsent = UnsentGuard(self)  # never-sent orders a restart left in the book only
        self.intake = Intake(self, self.venues, self.risk, self.cfg.oms, self.trading)
        self.acks = DeferredAcks(self.after_commit, self.call_later)  # ExecAcks, soon after
        self.execs = ExecIntake(self, self.log, self.acks)  # executions from the connectors
        cold_marker_path = cold_marker(self.cfg.state_path)
        self.plans = PlanApplier(self, self.venues, self.cfg.oms, self.log, cold_marker_path)
        self.intake.resume()  # verdicts lost with the last incarnation
        for link in self.venues.values():
            link.start_reconcile()  # a connected connector answers; else we wait for CONNECTED
        self.call_every(self.cfg.oms.request_timeout_s, self.plans.sweep_stale)
        self.call_every(killswitch.KillSwitchWatcher.POLL_S, self.kill_switch.poll)
        self.call_every(killswitch.KillSwitchWatcher.POLL_S, self.poll_stops)
        self.call_every(PROBE_S, self.space.probe)

    @property
    def journal_problem(self) -> str | None:
        return self.space.problem

    def unready(self, venue: str) -> str | None:
        return self.plans.unready(venue)

    @property
    def kill_switch_engaged(self) -> bool:
        return self.kill_switch.engaged

    # ------------------------------------------------------------------ durability

    def record(self, outcome: Outcome, venue: str = "") -> Outcome:
        """Journal an outcome's records and remember the order for publishing. `venue`
        names the venue of an escalation that matches no order (an unmatched fill)."""
        for rec in outcome.records:
            self.journal.append(rec)
            self.views.note(rec)
        self.commits.noted(outcome.records, outcome.order.status if outcome.order else None)
        if outcome.applied and outcome.order is not None:
            coid = outcome.order.client_order_id
            fill = merge_fill(self._changed.get(coid), outcome)
            self._changed[coid] = fill  # every fill since the order's last event
            outcome_metrics.count(outcome)
            self.at_venue.note(outcome.order)
        for esc in outcome.escalations:
            self._escalate(esc.kind, esc.detail, esc.client_order_id, outcome.order, venue)
        return outcome

    def after_commit(self, fn: Callable[[], None], *, first: bool = False) -> None:
        self._after_commit.add(fn, first=first)  # first: a venue request (commit_policy)

    def durable_crash_point(self, name: str) -> None:
        """A crash point (armed by tests) after what is journalled so far is durable."""
        if self.crash_points_armed:
            self.journal.commit()
            self.crash_point(name)

    def after_iteration(self, *, force: bool = False) -> None:
        self.gate.next_turn()  # the stops file is read again next turn
        if self.journal.pending and not self.commits.due(waiting=force or bool(self._after_commit)):
            self.journal.poll_background()
            return  # only new orders waiting for their verdict: committed with it
        changed, self._changed = self._changed, {}
        events = self._built  # built before the commit (~15 us each) and the sends
        for coid, fill in changed.items():
            order = self.book.get(coid)
            if order is not None and self.event_hold.hold(coid, order.status):
                self._changed[coid] = fill  # awaiting its verdict: published with it
            elif order is not None:
                for part, args in event_parts(order, fill):  # a correction's: two
                    self.event_seq += 1
                    events.append(packed(order_event_body(part, self.event_seq, *args)))
        fsync_s = None
        if self.journal.pending:
            start = time.perf_counter()
            self.journal.commit(hook=False)  # its hook (the archive's) after the sends
            fsync_s = time.perf_counter() - start
            self.commits.committed()
            if snapshot_due(self.journal, self.cfg.oms.snapshot_every):  # snapshot_due.py
                if not self.space.low:  # a snapshot needs new space; replay does not
                    self.journal.write_snapshot_in_background(self.views.state)
        self._send_committed()
        if fsync_s is not None:  # what the order path does not wait for, after its sends
            TURN.observe(metrics.JOURNAL_FSYNC_SECONDS, fsync_s)
            self.journal.run_after_commit()
            self.space.check()
        self.journal.poll_background()

    def _send_committed(self) -> None:  # venue requests, then the turn's events, replies
        sends, actions = self._after_commit.take()
        if actions or sends:
            self.crash_point("after_journal_before_send")
        links = self.venues.values() if sends else ()
        for link in links:
            link.sends.hold()  # each connector's requests of these sends as one message
        try:
            for fn in sends:  # the venue first: the order's path waits on it, readers do not
                fn()
        finally:
            for link in links:
                link.sends.release()
        if self.journal.pending:  # a send recorded (an order dropped unsent): durable before
            self.journal.commit()  # this turn's reads and replies can show it
            self.commits.committed()
        self._publish_built()
        self.clients.hold()  # the replies to a client's batch items: one `Replies` each
        try:
            for fn in actions:
                fn()
        finally:
            self.clients.release()

    def _publish_built(self) -> None:  # the turn's order events (committed), in event_seq order
        built, self._built = self._built, []
        for type_, body in messages(built):  # as few messages as the bounds allow
            self.pub.send_multipart(self.sender.encode_body(type_, body)[1], copy=False)

    def publish_stream(self, event: str, data: dict[str, Any]) -> None:
        self._publish_built()  # a send publishing: the events built before it go first
        self.event_seq += 1
        body = StreamEvent(event_seq=self.event_seq, event=event, data=data)
        self.pub.send_multipart(self.sender.encode(body), copy=False)

    def _escalate(self, kind: str, detail: str, coid: str, order: Order | None, venue: str) -> None:
        escalation.escalate(self, kind, detail, coid, order, venue)  # (tests stub this one)

    # ------------------------------------------------------------------ never sent

    def poll_stops(self) -> None:
        """A venue whose connector was stopped or given up on (`StopHold.seen`), or whose
        stop went (`VenueLink.hold_lifted`); also before a link sends (`VenueLink.dispatch`)."""
        held = self.gate.stopped_venues
        for venue, stop in self.gate.poll_stops().items():
            if (link := self.venues.get(venue)) is not None:
                link.stop.seen(stop)
        for link in (self.venues[v] for v in held - self.gate.stopped_venues if v in self.venues):
            link.hold_lifted()

    def drop_unsent(self, client_order_id: str, *, out_of_session: bool = False) -> bool:
        """While the kill-switch is engaged, once the venue's trading session closed
        (`out_of_session`), while the `[trading]` windows close trading, or while an operator
        stopped its connector, a queued order that
        never reached the venue (PENDING_SUBMIT, not in flight) is rejected instead of
        sent. True if it was."""
        coid = client_order_id
        order = self.book.get(coid)
        if order is None or order.status is not OrderStatus.PENDING_SUBMIT:
            return False
        reason = unsent_reason(
            self.kill_switch_engaged, out_of_session, self.gate, order.venue, self.trading.closed
        ) or self.unsent.reason(order)
        if reason is None or self.venues[order.venue].is_in_flight(coid):
            return False
        self.record(
            self.book.apply_venue_status(coid, OrderStatus.REJECTED, time.time_ns(), reason=reason)
        )
        self.log.warning(
            "order_dropped_unsent", client_order_id=coid, venue=order.venue, reason=reason
        )
        return True

    # ------------------------------------------------------------------ requests

    def on_request(self, env: Envelope, reply: Replier) -> None:
        body = env.body
        if isinstance(body, ExecReport):
            self.execs.on_report(body, reply, env.epoch)
        elif isinstance(body, ExecReports):
            self.execs.on_batch(body, reply, env.epoch)
        elif isinstance(body, SubmitOrder):
            self.intake.submit(body, reply)
        elif isinstance(body, (CancelOrder, ReplaceOrder)):  # the answer says if queued
            replace = body if isinstance(body, ReplaceOrder) else None
            noted = queued_request.NotedReply(reply, self.venues, self.gate)
            self.intake.cancel_or_replace(body.client_order_id, noted, replace)
        elif isinstance(body, VenueStateChanged):
            link = self.venues.get(body.venue)
            if link is not None:
                link.on_state(body.state, env.epoch, body.detail, body.version)
            reply(Ack(ref=env.msg_id))
        elif isinstance(body, GetOrder):
            order = self.book.get(body.client_order_id)
            if order is None:
                reply.reject(ErrorCode.UNKNOWN_ORDER, f"no order {body.client_order_id!r}")
            else:
                self.after_commit(
                    self.answer_later(partial(_answer_order, reply, order), reply.internal)
                )
        elif isinstance(body, ListOrders):
            self.after_commit(  # built after the commit: its event_seq says what it reflects
                self.answer_later(
                    lambda: reply(reads.order_page(self.book, body, self.event_seq, self.epoch)),
                    reply.internal,
                )
            )
        elif isinstance(body, GetPositions):
            self.after_commit(
                self.answer_later(partial(reads.positions, reply, self, body), reply.internal)
            )
        elif isinstance(body, StreamEvent):
            # risk / heartbeat / connectors publish through the OMS's one client stream
            self.publish_stream(body.event, {**body.data, "source": env.sender})
            self.views.on_stream(body.event, body.data)
            if body.event == "kill_switch":
                self.kill_switch.on_event(body.data)
            reply(Ack(ref=env.msg_id))
        elif isinstance(body, SnapshotRequest):
            self.after_commit(  # as the page: event_seq read after the commit
                self.answer_later(
                    lambda: reply(reads.snapshot(self.book, self.event_seq)), reply.internal
                )
            )
        else:
            super().on_request(env, reply)

    # ------------------------------------------------------------------ reconciliation

    def next_turn(self, fn: Callable[[], None]) -> None:
        self.call_later(0.0, fn)  # due now: runs after the next turn's requests

    def reconcile_plan_ready(self, link: VenueLink, plan: Plan) -> None:
        self.plans.begin(link, plan)

    def apply_reconcile_steps(
        self, link: VenueLink, plan: Plan, steps: Sequence[tuple[int, Action]]
    ) -> None:
        self.plans.apply_steps(link, plan, steps)

    def reconcile_plan_applied(
        self, link: VenueLink, plan: Plan, venue_positions: Positions | None
    ) -> None:
        self.plans.finish(link, venue_positions)

    def on_venue_reconciled(self, link: VenueLink, plan: Plan, first: bool) -> None:
        self.plans.on_reconciled(link, plan, first)

    # ------------------------------------------------------------------ operator commands

    def on_control(self, command: commands.Command, reply: Callable[[ControlReply], None]) -> None:
        if isinstance(command, commands.Intake):
            who = self.control_operator
            ok, text = self.gate.control(command, who.describe() if who else None)
            reason = f"intake {self._intake_state()}: {text}"
            reply(ControlReply(status="ok" if ok else "error", reason=reason,
                               data=self.heartbeat_info()))  # fmt: skip
        elif self.views.handles(command):  # orders, fills, positions: actors/oms/views.py
            fail = lambda why: reply(ControlReply(status="error", reason=why))  # noqa: E731
            self.after_commit(self.answer_later(lambda: reply(self.views.answer(command)), fail))
        elif isinstance(command, commands.Reconcile):  # actors/oms/operator_orders.py
            operator_orders.reconcile(self.venues, command, reply)
        elif isinstance(command, commands.Cancel):
            who = self.control_operator
            by = who.describe() if who else None
            operator_orders.cancel(self.intake, command, by, self.log, reply)
        else:
            super().on_control(command, reply)

    def on_config(self, section: str) -> None:
        if section == "risk":  # a reload of risk's day_start: positions' day marks follow
            self.book.day_clock = day_clock.DayClock.of(self.cfg.risk)  # (from their next fill)

    def _intake_state(self) -> str:
        if self.kill_switch_engaged or self.gate.globally_paused:  # the switch: the harder hold
            return INTAKE_HALTED if self.kill_switch_engaged else "paused"
        if (closed := self.trading.closed_text()) is not None:
            return closed  # "closed: <why>; reopens at ..."
        # a venue an operator stopped, or out of its session, is a planned outage, not a start
        waiting = [n for n, v in self.venues.items() if not v.ever_reconciled]
        off = VenueConnState.OUT_OF_SESSION
        planned = self.gate.stopped_venues | {n for n in waiting if self.venues[n].state is off}
        return "starting" if set(waiting) - planned else "open"

    def heartbeat_info(self) -> dict[str, Any]:
        if not hasattr(self, "venues"):
            return {}
        return {
            "intake": self._intake_state(),
            "kill_switch": "engaged" if self.kill_switch_engaged else "off",
            "journal": "low" if self.space.low else "ok",
            "queues": {n: v.depth for n, v in self.venues.items()},
            "venues": {n: self.gate.venue_text(n, v.status_text) for n, v in self.venues.items()},
            "venue_states": {n: v.state.value for n, v in self.venues.items()},  # as reported
            "intake_pauses": self.gate.view(),
            "unmatched_fills": len(self.book.unmatched_fills()),
            "open_at_venue": self.at_venue.counts(self.book),  # `tradepulse stop` checks it
            "trading": self.trading.info(),
        }

    def on_stop(self) -> None:
        """Stop intake, drain in-flight work for a bounded time, persist."""
        self.gate.draining = True

        def drained() -> bool:
            busy = any(v.has_in_flight for v in self.venues.values())
            return not self.intake.awaiting_risk and not busy

        if not self.run_until(drained, self.cfg.oms.drain_timeout_s):
            self.log.warning("drain_timeout", waiting=self.intake.awaiting_risk)
        self.after_iteration(force=True)
        self.pub.flush_risk()  # the stream's part still waiting for risk
        self.acks.flush()
        if (evictions := self.book.evictions) is not None:  # the archive's writer, bounded:
            evictions.close()  # what it does not confirm in time is in the snapshot
        if self.space.low:  # no space for one: the reserve left stays for the next start
            self.log.warning("snapshot_skipped", reason="journal_low")
        else:
            self.journal.write_snapshot(self.views.state())
        self.journal.close()


def _answer_order(reply: Replier, order: Order) -> None:
    reply(OrderAck(order=order.view()))
