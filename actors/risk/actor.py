"""The risk actor: pre-trade gate on every RiskCheck and owner of the persisted kill-switch.

Checks: `actors.risk.checks.RiskGate` (pure) over an exposure view fed by the OMS's order
events (SUB on the OMS event stream). The view is rebuilt from the OMS (open orders +
positions) whenever the event stream (re)connects: at this actor's start, after an OMS
restart, on a gap in the event sequence, and on a cold start's opening positions (no order
event carries them). Until the first rebuild, and until an opening-positions rebuild is
in (the view lacks them), the gate fails closed: a check is held up to `_NOT_READY_HOLD_S`,
then rejected with `risk_not_ready`. A re-sent check gets the verdict it got before
(`VerdictCache`), except that a cached approval is never served while the kill-switch is
engaged.

Kill-switch (`actors.risk.killswitch`, one file in the state dir): loaded at every start and
re-read whenever the file changes (the supervisor may write it directly). Engaged by a limit
escalation of the gate, by `KillSwitchCommand(engage)` from other actors (OMS, heartbeat)
and by the operator (`kill-switch` control command, forwarded by the supervisor); reset only
by the operator, with a reason. Engaging it rejects every check (`kill_switch`), sends
MassCancel to every connector until each confirms (a connector that does not answer in time
is restarted through the supervisor's control socket and asked again), sweeps once more a
little later (orders that were on their way), and publishes a `kill_switch` event through
the OMS. While engaged, an order event showing an order live at its venue (a create that
landed after those rounds) sweeps that venue again (`actors.risk.live_sweeps`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from actors.risk import killswitch
from actors.risk.batch import Answer, BatchAnswer
from actors.risk.checks import ReasonCode, RiskGate
from actors.risk.live_sweeps import LiveOrderSweeps
from actors.risk.support import (
    TRIGGER_LABELS,
    CancelAction,
    CancelOutcome,
    CancelTracker,
    VerdictCache,
    describe_reply,
    reference_prices,
    trigger_label,
)
from actors.risk.sync import ExposureSync
from actors.risk.trading_day import TradingDay
from actors.runtime import metrics
from actors.runtime.actor import Actor
from actors.runtime.peer import Peer, Replier
from actors.runtime.tally import TURN
from protocol.codec import Envelope
from protocol.commands import Command, Exposure, KillSwitch, Restart
from protocol.messages import (
    ControlReply,
    ControlRequest,
    ErrorCode,
    GetPositions,
    KillSwitchCommand,
    MassCancel,
    MassCancelDone,
    OrderView,
    Positions,
    RequestRejected,
    RiskCheck,
    RiskChecks,
    RiskVerdict,
    StreamEvent,
)

NOT_READY = "risk_not_ready"
_NOT_READY_HOLD_S = 1.0  # a check waits this long for the first rebuild, then is rejected
_CANCEL_RETRY_S = 0.5
_CANCEL_SWEEP_S = 1.0  # a second round after an engagement: orders that were in flight
_LIVE_SWEEP_MIN_S = 1.0  # a venue's sweeps for live orders: at least this far apart
_CANCEL_TIMEOUT_MARGIN_S = 1.0  # beyond the connector's own venue request timeout
_PUBLISH_TIMEOUT_S = 2.0
_PUBLISH_ATTEMPTS = 3
_HISTORY_SHOWN = 10  # newest kill-switch events in a status reply


class RiskActor(Actor):
    kind = "risk"
    trims_heap = True

    def setup(self) -> None:
        self.ks_path = killswitch.kill_switch_path(self.cfg.state_path)
        self.ks = killswitch.KillSwitchState()
        self._ks_watch = killswitch.KillSwitchWatcher(self.ks_path)  # supervisor writes too
        self.gate = RiskGate(self.cfg.risk, reference_prices=reference_prices(self.cfg))
        self.cache = VerdictCache(self.cfg.risk.verdict_cache_entries, live=self.gate.live)
        self._held: list[tuple[RiskCheck, Answer, float]] = []
        self.oms = self.peer("oms")
        self.connectors = {v.name: self.peer(f"connector.{v.name}") for v in self.cfg.venues}
        self.control = Peer(self, "control", self.cfg.control_endpoint)
        self.add_socket(self.control.sock, self.control.on_readable)
        self.cancels = CancelTracker(self.connectors)
        self.live_sweeps = LiveOrderSweeps(
            self.cancels, engaged=lambda: self.engaged, call_later=self.call_later,
            send_cancel=self._send_cancel, log=self.log, min_interval_s=_LIVE_SWEEP_MIN_S,
        )  # fmt: skip
        self._engagements = 0
        self._checks = {c: metrics.RISK_CHECKS.labels(outcome=c) for c in (*ReasonCode, NOT_READY)}
        self._triggers = {t: metrics.KILL_SWITCH_TRIGGERS.labels(reason=t) for t in TRIGGER_LABELS}
        self._engaged_gauge = metrics.KILL_SWITCH_ENGAGED
        self.sync = ExposureSync(self, self.gate, self.oms, self._answer_held)
        self.day = TradingDay(self.cfg.risk, self.cfg.state_path, self.gate, log=self.log,
                              call_later=self.call_later, call_every=self.call_every)  # fmt: skip
        self.sync.settled, self.sync.installed = self._on_order, self.day.at_rebuild  # (sync)
        self._ks_read_this_turn = False  # the state file, re-read for this turn's checks
        self._reload_kill_switch(starting=True)
        self.call_every(killswitch.KillSwitchWatcher.POLL_S, self._reload_kill_switch)
        self.call_every(0.05, self._expire_held)

    def after_iteration(self) -> None:
        self._ks_read_this_turn = False

    @property
    def engaged(self) -> bool:
        return self.ks.engaged

    @property
    def ready(self) -> bool:
        return self.sync.ready

    # ------------------------------------------------------------------ requests

    def on_request(self, env: Envelope, reply: Replier) -> None:
        body = env.body
        if isinstance(body, RiskCheck):
            self._on_check(body, reply)
        elif isinstance(body, RiskChecks):  # each as alone, one answer (actors.risk.batch)
            batch = BatchAnswer(reply, [c.client_order_id for c in body.checks])
            for i, check in enumerate(body.checks):
                self._on_batched_check(check, batch.slot(i), env)
        elif isinstance(body, KillSwitchCommand):
            self._on_command(body, env.sender, reply)
        elif isinstance(body, GetPositions):
            self._on_positions(body, reply)
        else:
            super().on_request(env, reply)

    def _on_batched_check(self, check: RiskCheck, slot: Answer, env: Envelope) -> None:
        """A check of a batch: one that raises fails its own order only (risk_error), as it
        would alone (`serve`), not the checks of the batch already approved and counted."""
        try:
            self._on_check(check, slot)
        except Exception as exc:  # noqa: BLE001 - one bad check must not fail its batch
            if (skipped := self._failed_log.take()) is not None:
                self.log.exception("request_failed", type=env.type, suppressed=skipped)
            slot(RequestRejected(code=ErrorCode.INTERNAL, reason=f"{type(exc).__name__}: {exc}"))

    def _on_check(self, check: RiskCheck, reply: Answer) -> None:
        if not self._ks_read_this_turn:  # once per loop turn, not per check: the read
            self._ks_read_this_turn = True  # (open, fstat, read) was 7 % of risk's CPU
            self._reload_kill_switch()
            self.sync.catch_up()  # the stream the OMS sent just before its checks
        if not self.sync.ready and not self.ks.engaged and self.cache.get(check) is None:
            self._held.append((check, reply, time.monotonic() + _NOT_READY_HOLD_S))
            return  # (engaged, or answered before: the answer needs no exposure)
        self._answer(check, reply)

    def _answer(self, check: RiskCheck, reply: Answer) -> None:
        """The verdict an identical check got (never a cached approval while engaged), else
        the gate's; its cache entry, counter and log line after the answer (issue 16)."""
        cached, engaged = self.cache.get(check), self.ks.engaged  # (not the properties: calls)
        if cached is not None and not (cached.approved and engaged):
            reply(cached)
            return
        verdict = self.gate.check(check, now_ns=time.monotonic_ns(), kill_switch_engaged=engaged)
        msg = verdict.to_message(check.client_order_id)
        if verdict.approved:
            self.sync.approved(check)
        if verdict.engage:  # after the reply: engaging writes the state to disk

            def escalate() -> None:
                self.engage(verdict.engage_reason, "risk")

            self.call_later(0, escalate)
        reply(msg)
        try:  # answered: a failure here must not answer it again (serve's INTERNAL)
            self.cache.put(check, msg)
            TURN.inc(self._checks[str(verdict.code)])
            if not verdict.approved:
                self.log.info(
                    "risk_rejected", client_order_id=check.client_order_id, venue=check.venue,
                    reason_code=str(verdict.code), reason=verdict.reason,
                )  # fmt: skip
        except Exception:  # noqa: BLE001 - logged (request_failed); the verdict stands
            self.count_failed("risk_check")

    def _on_positions(self, req: GetPositions, reply: Replier) -> None:
        """Risk's own position view (what its limits read), for operators and the checker."""
        if not self.ready:
            reply.reject(ErrorCode.NOT_READY, "risk has not rebuilt its exposure from the OMS yet")
            return
        views = self.gate.exposure.position_views(req.venue)
        reply(Positions(source="risk", venue=req.venue, positions=views))

    def _expire_held(self) -> None:
        now = time.monotonic()
        keep = []
        for check, reply, deadline in self._held:
            if now < deadline:
                keep.append((check, reply, deadline))
                continue
            self._checks[NOT_READY].inc()
            reply(RiskVerdict(
                client_order_id=check.client_order_id, approved=False, reason_code=NOT_READY,
                reason="risk has not rebuilt its exposure from the OMS yet: fail closed",
            ))  # fmt: skip
        self._held = keep

    def _answer_held(self, first: bool, listed: list[OrderView]) -> None:
        if first and (unreadable := self.day.begin()) is not None:  # the day's baseline first
            self.engage(f"{killswitch.STATE_UNREADABLE}: {unreadable}", "risk")  # its loss unknown
        if self.engaged:  # an order live at its venue whose event risk never read (a gap,
            for order in listed:  # a restart's slow join): swept as its event would be
                self.live_sweeps.on_order(order)
        held, self._held = self._held, []
        for check, reply, _deadline in held:
            self._answer(check, reply)

    def _on_order(self, order: OrderView) -> None:
        self.day.at_event(order.ts_ns)  # a new day first if it is of one (before applied)
        self.cache.settled(order)  # the OMS applied a verdict: forget it
        self.live_sweeps.on_order(order)  # live at its venue while engaged: swept again

    def _on_command(self, cmd: KillSwitchCommand, sender: str, reply: Replier) -> None:
        if cmd.action == "engage":
            reply(self.engage(cmd.reason or "unspecified", cmd.source or sender).to_message())
        elif cmd.action == "status":
            self._reload_kill_switch()
            reply(self.ks.to_message())
        else:
            reply.reject(
                ErrorCode.BAD_REQUEST,
                "kill-switch reset only by the operator: supervisor.py kill-switch reset --reason",
            )

    # ------------------------------------------------------------------ kill-switch

    def engage(self, reason: str, source: str, who: str = "") -> killswitch.KillSwitchState:
        """Engage (idempotent): cancels go out first, then the state is made durable. `who`:
        the operator's identity, for an operator's engage."""
        newly = not self.engaged
        if newly:
            self.ks = self.ks.model_copy(
                update={"engaged": True, "reason": reason, "source": source}
            )
            self._engaged_gauge.set(1)
            self._start_cancel_round("engaged")
        self._triggers[trigger_label(reason, source)].inc()
        try:
            state = killswitch.engage(self.ks_path, reason, source, who=who)
            self._adopt(state, we_wrote=True)
        except OSError as exc:  # engaged in memory regardless: trading stays halted
            self.log.error("kill_switch_persist_failed", error=str(exc), reason=reason)
            state = self.ks
        if newly:
            self._engagements += 1
            this = self._engagements
            self.call_later(_CANCEL_SWEEP_S, lambda: self._sweep(this))
            self._publish_event("kill_switch", self._ks_data("engage"))
        return state

    def _sweep(self, engagement: int) -> None:
        """The second round of an engagement (not of a later one, after a reset)."""
        if engagement == self._engagements:
            self._start_cancel_round("sweep")

    def _adopt(self, state: killswitch.KillSwitchState, *, we_wrote: bool) -> None:
        """Take `state` as ours. Only a state this process just wrote marks the file as
        seen: after a poll, a second stat could hide a write that came after the read."""
        self.ks = state
        if we_wrote:
            self._ks_watch.mark_seen()
        self._engaged_gauge.set(1 if state.engaged else 0)

    def _reload_kill_switch(self, starting: bool = False) -> None:
        """Re-read the file if it changed (cheap: one stat), and act on an outside change."""
        state = self._ks_watch.poll(force=starting)
        if state is None:
            return
        was = self.engaged
        self._adopt(state, we_wrote=False)
        if self._ks_watch.removed:  # engaged, and so on disk: a restart reads it engaged
            self._adopt(killswitch.engage_removed(self.ks_path, state), we_wrote=True)
        if starting:
            self.log.info(
                "kill_switch_loaded",
                engaged=state.engaged,
                reason=state.reason,
                source=state.source,
                ts_ns=state.ts_ns,
            )
        if state.engaged and (starting or not was):
            if not starting:  # engaged by another writer (the supervisor)
                self._triggers[trigger_label(state.reason, state.source)].inc()
            self._start_cancel_round("loaded" if starting else "engaged_elsewhere")
        elif was and not state.engaged:
            self.cancels.stop()

    def _on_reset(self, reason: str, operator: str, who: str = "") -> ControlReply:
        try:
            state = killswitch.reset(self.ks_path, reason, operator, who=who)
        except killswitch.KillSwitchResetRefused as exc:
            self.log.warning("kill_switch_reset_refused", reason=str(exc))
            return ControlReply(status="error", reason=str(exc), data=self._ks_data("status"))
        self._adopt(state, we_wrote=True)
        self._engagements += 1  # a pending sweep belongs to the engagement just reset
        self.cancels.stop()
        self.gate.breaches.reset()
        self._publish_event("kill_switch", self._ks_data("reset"))
        return ControlReply(status="ok", reason="kill-switch reset", data=self._ks_data("reset"))

    def _ks_data(self, action: str) -> dict[str, Any]:
        ks = self.ks
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ks.ts_ns / 1e9)) if ks.ts_ns else ""
        return {
            "action": action, "engaged": ks.engaged, "reason": ks.reason, "source": ks.source,
            "operator": ks.operator, "ts_ns": ks.ts_ns, "time": stamp,
        }  # fmt: skip

    def on_control(self, command: Command, respond: Callable[[ControlReply], None]) -> None:
        if isinstance(command, Exposure):
            if not self.ready:
                respond(ControlReply(status="error", reason="risk has not rebuilt its exposure"))
                return
            views = self.gate.exposure.position_views(command.venue)
            positions = [v.model_dump(mode="json") for v in views]
            data = {"positions": positions, "daily": self.day.summary()}
            respond(ControlReply(status="ok", data=data))
            return
        if not isinstance(command, KillSwitch):
            super().on_control(command, respond)
            return
        reason = command.reason.strip()
        who = self.control_operator.describe() if self.control_operator else ""
        if command.action == "engage":
            self.engage(reason or "operator engage (no reason given)", "operator", who)
            respond(
                ControlReply(status="ok", reason="kill-switch engaged", data=self._status_data())
            )
        elif command.action == "reset":
            respond(self._on_reset(reason, "operator", who))
        else:
            self._reload_kill_switch()
            state = "engaged" if self.engaged else "not engaged"
            respond(ControlReply(status="ok", reason=state, data=self._status_data()))

    def on_config(self, section: str) -> None:
        if section == "risk":  # a reload: new checks against the new limits (a verdict
            self.gate.set_limits(self.cfg.risk)  # already given, re-sent, stands)
            self.day.reconfigure(self.cfg.risk)
            self.cache.resize(self.cfg.risk.verdict_cache_entries)

    def _status_data(self) -> dict[str, Any]:
        history = [e.model_dump() for e in self.ks.history[-_HISTORY_SHOWN:]]
        return {**self._ks_data("status"), "cancels": self.cancels.progress(),
                "ready": self.ready, "history": history}  # fmt: skip

    def heartbeat_info(self) -> dict[str, Any]:
        if not hasattr(self, "cancels"):
            return {}
        return {"ready": self.ready, "kill_switch": self.engaged,
                "cancel_pending": self.cancels.pending}  # fmt: skip

    # ------------------------------------------------------------------ mass cancel

    def _start_cancel_round(self, why: str) -> None:
        if not self.engaged:
            return
        self.log.warning("kill_switch_cancel_round", why=why, venues=list(self.connectors))
        self._round_started = time.monotonic()
        self.live_sweeps.round_started(self._round_started)
        for venue in self.cancels.start_round():
            self._send_cancel(venue)

    def _send_cancel(self, venue: str) -> None:
        if (
            not self.engaged
            or venue not in self.cancels.pending
            or self.cancels.venues[venue].in_flight
        ):
            return
        self.cancels.sent(venue)
        timeout = self.cfg.venue(venue).request_timeout_s + _CANCEL_TIMEOUT_MARGIN_S

        def on_reply(reply: Envelope | None) -> None:
            self._on_cancel_reply(venue, reply)

        self.connectors[venue].request(MassCancel(reason=self.ks.reason), on_reply, timeout)

    def _retry_cancel(self, venue: str) -> None:
        self.cancels.retry_fired(venue)
        self._send_cancel(venue)

    def _on_cancel_reply(self, venue: str, reply: Envelope | None) -> None:
        body = reply.body if reply is not None else None
        if isinstance(body, MassCancelDone) and body.accepted:
            outcome, detail = CancelOutcome.DONE, body.detail
        elif body is None:
            outcome, detail = CancelOutcome.TIMEOUT, "no answer"
        else:
            outcome = CancelOutcome.REFUSED
            detail = body.detail if isinstance(body, MassCancelDone) else describe_reply(body)
        action = self.cancels.on_outcome(venue, outcome, time.monotonic())
        self.log.info(
            "kill_switch_cancel", venue=venue, outcome=str(outcome), detail=detail, next=str(action)
        )
        if action is CancelAction.RESEND:
            self._send_cancel(venue)
        elif action is CancelAction.RETRY:
            self.call_later(_CANCEL_RETRY_S, lambda: self._retry_cancel(venue))
        elif action is CancelAction.RESTART:
            self._restart_connector(venue)
            self._send_cancel(venue)  # queued for the new incarnation
        elif self.cancels.complete:
            elapsed = round(time.monotonic() - self._round_started, 4)
            self.log.warning(
                "kill_switch_cancel_done", venues=self.cancels.progress(), elapsed_s=elapsed
            )

    def _restart_connector(self, venue: str) -> None:
        actor = f"connector.{venue}"
        self.log.error(
            "connector_restart_requested", venue=venue, child=actor, why="mass cancel unanswered"
        )

        def done(reply: Envelope | None) -> None:
            body = reply.body if reply is not None else None
            ok = isinstance(body, ControlReply) and body.status == "ok"
            self.log.info(
                "connector_restart_answer", child=actor, ok=ok, detail=describe_reply(body)
            )

        # `force`: it is unresponsive, a polite stop is pointless (the supervisor may honour it)
        restart = Restart(
            actor=actor, force=True, reason="mass cancel unanswered", override_stop=True
        )  # a connector an operator stopped is started: the mass cancel must reach its venue
        self.control.request(ControlRequest(command=restart), done, 5.0)

    def _publish_event(self, event: str, data: dict[str, Any], attempt: int = 1) -> None:
        def done(reply: Envelope | None) -> None:
            if reply is None and attempt < _PUBLISH_ATTEMPTS:
                self._publish_event(event, data, attempt + 1)
            elif reply is None:
                self.log.warning("stream_event_lost", stream_event=event)

        self.oms.request(StreamEvent(event_seq=0, event=event, data=data), done, _PUBLISH_TIMEOUT_S)
