"""The connector actor: hosts one venue adapter in its own process (`connector.<venue>`).

What it does, whatever the venue speaks (the adapter, actors/connector/adapter.py, owns the
wire; the FIX one is actors/connector/fix/adapter.py):

- Connects at start and after every loss, with capped exponential backoff plus jitter
  (`VenueCfg.reconnect`, `actors.runtime.backoff`). Every attempt after the first logs
  `reconnect` (attempt, delay_s) and counts `tradepulse_reconnects_total{venue}`. The
  backoff restarts from the first step only after a session stayed up `stable_s`.
- Venue state: CONNECTING (attempting), CONNECTED (logged on, resend done), DISCONNECTED
  (a live session ended), DOWN (`down_after_failures` consecutive failed attempts; it keeps
  retrying at the max delay). Each change is logged `venue_state`, sets the
  `tradepulse_venue_up/down` gauges and goes to the supervisor and to the OMS; the OMS gets
  it again every second until it acks, every few seconds anyway, and at once when a new
  OMS incarnation (epoch) shows up.
- Serves the OMS's requests (INTERFACES.md): PlaceOrder / CancelOnVenue / ReplaceOnVenue ->
  Ack once the message is in the adapter's durable store, RequestRejected(VENUE_DOWN) when
  not logged on; OpenOrdersRequest, OrderStatusQuery, GetPositions, MassCancel -> answers,
  or RequestRejected(VENUE_DOWN / TIMEOUT). Where the venue serves no AF / AN (its dialect,
  or it refused one) `actors.connector.fallbacks` answers: VENUE_REFUSED for open orders,
  the connector's own fill ledger (`actors.connector.ledger`) for positions.
- Session schedule (`[venues.schedule]`, actors/connector/session_gate.py): outside the
  trading session it does not connect; at the end time it logs out (Logout, the reply
  awaited up to the session's logout timeout) and reports OUT_OF_SESSION, refusing every
  request with OUT_OF_SESSION (planned downtime, not VENUE_DOWN); at the start it logs on
  again (with `reset_seq_num_daily`, the first Logon of the session resets).
- Executions: each goes to the OMS as an ExecReport request and into the crash-safe
  `ExecOutbox` (fsynced before the adapter lets the venue's sequence number advance past
  it: the durability barrier); unacked ones are re-sent in venue order every ~0.5 s and at
  once when the OMS answers again or restarts. After a `kill -9` the outbox is reloaded
  and re-sent; what the venue sent while we were dead, or before the outbox had it, comes
  again through the FIX resend on logon (next-in never passed it). So every execution
  reaches the OMS at least once, and the OMS applies each exec id once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from actors.connector.ack_batch import AckBatch
from actors.connector.adapter import NoConsistentCut, RequestFailed, StatusResult, VenueAdapter
from actors.connector.early_view import EarlyOpenOrders
from actors.connector.exec_batch import exec_messages
from actors.connector.exec_cut import ExecSequencer
from actors.connector.fallbacks import VenueFallbacks
from actors.connector.fix.adapter import FixAdapter
from actors.connector.fix.msglog import MessageLog
from actors.connector.fix.seqadmin import set_sequence
from actors.connector.ledger import FillLedger
from actors.connector.outbox import ExecOutbox
from actors.connector.policy import ReconnectPolicy
from actors.connector.schedule import SessionWindow
from actors.connector.session_gate import SessionGate, failure_code
from actors.connector.venue_address import ccxt_base_url, venue_address
from actors.runtime import metrics
from actors.runtime.actor import Actor
from actors.runtime.peer import Peer, Replier
from actors.runtime.tally import TURN
from protocol.codec import Envelope
from protocol.commands import Command, FixSeq
from protocol.messages import (
    Ack,
    CancelOnVenue,
    ControlReply,
    ErrorCode,
    ExecAck,
    ExecCut,
    ExecReport,
    GetPositions,
    MassCancel,
    MassCancelDone,
    OpenOrders,
    OpenOrdersRequest,
    OrderStatusAnswer,
    OrderStatusQuery,
    PlaceOrder,
    Positions,
    ReplaceOnVenue,
    VenueConnState,
    VenueOrder,
    VenueStateChanged,
)
from protocol.paths import fix_dir, fix_message_log_dir

EXEC_RESEND_S = 0.5  # an unacked execution is sent again after this long
EXEC_RESEND_BATCH = 2000  # at most this many re-sends per tick
STATE_RESEND_S = 1.0  # unacked venue state: again every second
STATE_REFRESH_S = 5.0  # acked venue state: again every few seconds (a restarted OMS learns it)
STOP_LOGOUT_S = 2.0
RECONNECT_RECHECK_S = 0.05  # a reconnect due while the adapter is not yet idle waits this


class ConnectorActor(Actor):
    kind = "connector"
    trims_heap = True

    def setup(self) -> None:
        self.venue = self.args.venue or self.actor_id.partition(".")[2]
        self.vcfg = self.cfg.venue(self.venue)
        if not self.args.venue:
            self.log = self.log.bind(venue=self.venue)
        store_dir = fix_dir(self.cfg.state_path, self.venue)
        runtime_dir = self.cfg.runtime_path
        # a ledger that starts where the FIX store already exists missed earlier fills
        existing_store = (store_dir / "session.log").exists()
        self.message_log: MessageLog | None = None
        self.adapter: VenueAdapter
        fix: FixAdapter | None = None
        if self.vcfg.kind == "ccxt":
            # imported here: ccxt's classes are large, no other actor (nor the fork server's
            # preload) should carry them
            from actors.connector.ccxt.adapter import CcxtAdapter

            self.adapter = CcxtAdapter(
                self, self, self.vcfg, store_dir=store_dir, log=self.log,
                base_url=lambda: ccxt_base_url(self.vcfg, runtime_dir),
                crash_point=self.crash_point,
            )  # fmt: skip
        else:
            fix = FixAdapter(
                self, self, self.vcfg, store_dir=store_dir, log=self.log,
                address=lambda: venue_address(self.vcfg, runtime_dir),
                id_prefix=f"{self.epoch}.{time.time_ns() // 1_000_000 % 10**9}",
                crash_point=self.crash_point,
            )  # fmt: skip
            log_dir = fix_message_log_dir(self.cfg.state_path, self.venue)
            self.message_log = MessageLog.for_venue(log_dir, self.vcfg.message_log, self.log)
            fix.session.set_message_log(self.message_log)
            self.adapter = fix
        self.outbox = ExecOutbox(store_dir)
        # numbers the executions, stamps answers with their cut (actors/connector/exec_cut.py)
        self.cuts = ExecSequencer(self.epoch, self.outbox.pending, self.call_later)
        self.ledger = FillLedger(store_dir, unseeded=existing_store)
        if self.ledger.unseeded:
            self.log.warning("fill_ledger_unseeded", path=str(self.ledger.path))
        self._ledger_fills = metrics.FILL_LEDGER_FILLS.labels(venue=self.venue)
        self.fallbacks = VenueFallbacks(
            self.venue, self.vcfg.dialect, self.adapter, self.ledger, self.log
        )
        # the venue's open orders asked at the first logon (actors/connector/early_view.py)
        self.early = (
            EarlyOpenOrders(fix, self.fallbacks.open_orders, self.log, later=self.call_later)
            if fix
            else None
        )
        self.oms: Peer = self.peer("oms")
        self.acks = AckBatch(self.send_router)
        self.state: VenueConnState | None = None
        self._state_detail = ""
        self._state_version = 0
        self._state_acked = False
        self._state_sent_at = 0.0
        self._oms_epoch: int | None = None
        self._sent_at: dict[str, float] = {}  # exec_id -> last send (monotonic)
        self._retrying = False
        stable_s = max(self.vcfg.reconnect.max_s, 2.0 * self.vcfg.heartbeat_s)
        self.policy = ReconnectPolicy(self.vcfg.reconnect, self.vcfg.down_after_failures, stable_s)
        self._up_gauge = metrics.VENUE_UP.labels(venue=self.venue)
        self._down_gauge = metrics.VENUE_DOWN.labels(venue=self.venue)
        self._reconnects = metrics.RECONNECTS.labels(venue=self.venue)
        self.log.info("connector_recovered", pending_execs=len(self.outbox.pending))
        self.call_every(EXEC_RESEND_S / 2, self._resend_execs)
        self.call_every(STATE_RESEND_S, self._resend_state)
        self.gate = SessionGate(
            self.venue, self.vcfg.schedule, self, self.log,
            on_open=self._session_opened, on_close=self._session_closed,
        )  # fmt: skip
        self._resend_execs()  # what the last incarnation left unacked
        if self.gate.window is not None:
            self.adapter.new_trading_session(self.gate.window.key)
        if self.gate.in_session:
            self._set_state(self.policy.state, "starting")
            self.adapter.connect()
        else:
            self._set_state(VenueConnState.OUT_OF_SESSION, self.gate.detail)

    # ------------------------------------------------------------------ loop hooks

    def after_iteration(self) -> None:
        self.acks.open()  # the flush's Acks: one message per requester (ack_batch.py)
        try:
            self.adapter.flush()
        finally:
            self.acks.close()
        self.outbox.flush()

    def heartbeat_info(self) -> dict[str, Any]:
        state = self.state.value if self.state else ""
        return {
            "venue_state": state,
            "pending_execs": len(self.outbox.pending),
            **self.adapter.info(),
        }

    def on_stop(self) -> None:
        self.adapter.disconnect("shutdown")
        self.run_until(lambda: self.adapter.is_idle, STOP_LOGOUT_S)
        self.adapter.close()
        self.ledger.close()
        self.outbox.close()
        if self.message_log is not None:
            self.message_log.close()

    # ------------------------------------------------------------------ OMS requests

    def on_control(self, command: Command, respond: Callable[[ControlReply], None]) -> None:
        """`tradepulse fix seq ... --reason`: the running session's store takes the numbers."""
        if not isinstance(command, FixSeq) or not isinstance(self.adapter, FixAdapter):
            super().on_control(command, respond)
            return
        data = set_sequence(
            self.adapter.session.store,
            next_in=command.next_in,
            next_out=command.next_out,
            reason=command.reason,
            log=self.log,
            applied_by=self.actor_id,
        )
        respond(ControlReply(status="ok", reason="sequence numbers set", data=data))

    def on_request(self, env: Envelope, reply: Replier) -> None:
        if env.sender == "oms":
            self._note_oms_epoch(env.epoch)
        body = env.body
        if not self.gate.in_session and isinstance(body, _VENUE_REQUESTS):
            reply.reject(ErrorCode.OUT_OF_SESSION, f"{self.venue}: {self.gate.detail}")
        elif isinstance(body, PlaceOrder):
            self.adapter.place(body, self._sent_reply(reply, env.msg_id))
        elif isinstance(body, CancelOnVenue):
            self.adapter.cancel(body, self._sent_reply(reply, env.msg_id))
        elif isinstance(body, ReplaceOnVenue):
            self.adapter.replace(body, self._sent_reply(reply, env.msg_id))
        elif isinstance(body, OpenOrdersRequest):
            ask = self.early.open_orders if self.early else self.fallbacks.open_orders
            ask(self._answer(reply, self._open_orders, cut=True))
        elif isinstance(body, OrderStatusQuery):
            done = self._answer(reply, self._status_answer, cut=True)
            self.adapter.order_status(body.orders, done)
        elif isinstance(body, GetPositions):
            self.fallbacks.positions(self._answer(reply, _positions, cut=True, wait_s=body.wait_s))
        elif isinstance(body, MassCancel):
            self.log.warning("mass_cancel_requested", requester=env.sender, reason=body.reason)
            self.adapter.mass_cancel(self._answer(reply, self._mass_cancel_done))
        else:
            super().on_request(env, reply)

    def _sent_reply(self, reply: Replier, msg_id: str) -> Callable[[RequestFailed | None], None]:
        return self.acks.sent_reply(reply, msg_id, self._code)  # actors/connector/ack_batch.py

    def _answer(
        self,
        reply: Replier,
        build: Callable[..., Any],
        *,
        cut: bool = False,
        wait_s: float | None = None,
    ) -> Callable[[Any], None]:
        """`cut`: the answer is stamped with the executions it reflects (`ExecCut`) and
        held until the OMS has applied them, up to `wait_s` (actors/connector/exec_cut.py)."""
        since = self.cuts.mark_now(self.adapter.exec_mark)

        def done(result: Any) -> None:
            if isinstance(result, RequestFailed):
                reply.reject(self._code(result), str(result))
            elif cut:
                vouched = not isinstance(result, NoConsistentCut)  # else: names no OMS epoch
                send = lambda c: reply(build(result if vouched else result.answer, c))  # noqa: E731
                mark = self.adapter.exec_mark
                self.cuts.when_consistent(since, mark, time.monotonic(), send, wait_s, vouched)
            else:
                reply(build(result))

        return done

    def _code(self, err: RequestFailed) -> ErrorCode:
        return failure_code(err, in_session=self.gate.in_session)

    def _open_orders(self, orders: list[VenueOrder], cut: ExecCut) -> OpenOrders:
        v = self._state_version if self.state is VenueConnState.CONNECTED else None  # its logon
        return OpenOrders(venue=self.venue, orders=orders, cut=cut, version=v)

    def _status_answer(self, r: StatusResult, cut: ExecCut) -> OrderStatusAnswer:
        return OrderStatusAnswer(
            venue=self.venue, orders=r.orders, unknown=r.unknown, cut=cut, pending=r.pending
        )

    def _mass_cancel_done(self, accepted: bool) -> MassCancelDone:
        return MassCancelDone(venue=self.venue, accepted=accepted)

    # ------------------------------------------------------------------ adapter events

    def on_session_up(self, detail: str) -> None:
        if self.gate.in_session:
            self._set_state(self.policy.on_up(time.monotonic()), detail)
            if self.early and self._oms_epoch is None and self.fallbacks.serves_mass_status:
                self.early.start()  # no OMS heard yet: it replays its journal (early_view.py)

    def on_session_down(self, reason: str, was_up: bool) -> None:
        if self._stopping:
            return
        if not self.gate.in_session:
            self.log.info("fix_session_logged_out", reason=reason, was_up=was_up)
            return  # planned downtime: no reconnect until the session opens
        retry = self.policy.on_down(was_up, time.monotonic())
        if not was_up:
            self.log.warning("connect_failed", reason=reason, failures=retry.failures)
        self._set_state(retry.state, reason)
        delay_s = round(retry.delay_s, 4)
        self.log.info("reconnect", attempt=retry.attempt, delay_s=delay_s, reason=reason)
        self._reconnects.inc()
        self.call_later(retry.delay_s, self._reconnect)

    def _reconnect(self) -> None:
        if self._stopping or not self.gate.in_session:
            return
        if not self.adapter.is_idle:  # the last session still unwinding: soon again
            self.call_later(RECONNECT_RECHECK_S, self._reconnect)
            return
        self._set_state(self.policy.on_attempt(), f"attempt {self.policy.attempt}")
        self.adapter.connect()

    def _session_opened(self, window: SessionWindow) -> None:
        self._set_state(self.policy.restart(), "trading session opened")
        self.adapter.new_trading_session(window.key)
        if self.adapter.is_idle:
            self.adapter.connect()  # else the last session's logout ends in a reconnect

    def _session_closed(self, window: SessionWindow) -> None:
        self._set_state(VenueConnState.OUT_OF_SESSION, self.gate.detail)
        self.adapter.disconnect("end of trading session")

    def on_execs(self, reports: Sequence[ExecReport]) -> None:
        """The durability barrier: the executions are in the outbox, fsynced, when this
        returns (the adapter lets the venue's sequence number advance only after). They go
        to the OMS first, so it gets them while the fsync runs: a crash before it completes
        leaves next-in behind too, and the venue sends them again. The fill ledger (deduped
        by ExecID) takes them and is made durable in the same step, after the forward too."""
        reports = self.cuts.number(reports)  # exec_seq, in venue order
        new = self.outbox.add(reports)
        if not self._retrying:
            self._send_execs(new)
            if len(new) > 1:  # tests: kill -9 with a batch sent, nothing of it durable here
                self.crash_point("after_exec_batch_sent")
        if fills := self.ledger.add(reports):
            TURN.inc(self._ledger_fills, fills)  # written after the turn (runtime.tally)
        self.ledger.sync()
        self.outbox.sync()

    # ------------------------------------------------------------------ exec delivery

    def _send_execs(self, reports: Sequence[ExecReport]) -> None:
        """In venue order, as one request per batch (actors/connector/exec_batch.py)."""
        now = time.monotonic()
        for msg, carried in exec_messages(self.venue, reports):
            for report in carried:
                self._sent_at[report.exec_id] = now
            self.oms.request(msg, self._on_exec_reply, EXEC_RESEND_S * 2)
            self.log.debug("exec_forwarded", exec_ids=[r.exec_id for r in carried][:8],
                           count=len(carried))  # fmt: skip

    def _on_exec_reply(self, env: Envelope | None) -> None:
        if env is not None:
            self._on_oms_message(env)

    def on_peer_message(self, peer: Peer, env: Envelope) -> None:
        """A late reply (after its request timed out): an ExecAck still counts."""
        if peer is self.oms:
            self._on_oms_message(env)
        else:
            super().on_peer_message(peer, env)

    def _on_oms_message(self, env: Envelope) -> None:
        self._note_oms_epoch(env.epoch)
        if isinstance(env.body, ExecAck):
            for exec_id in self.outbox.ack(env.body.exec_ids):
                self._sent_at.pop(exec_id, None)
            self.cuts.poll(time.monotonic())  # answers waiting for these acks
            if self._retrying:  # the OMS answers again: the rest now, not at the next tick
                self._resend_execs()

    def _resend_execs(self) -> None:
        """Send again, in venue order, every pending execution unacked for EXEC_RESEND_S."""
        if not self.outbox.pending:
            self._retrying = False
            self._sent_at.clear()
            return
        cutoff = time.monotonic() - EXEC_RESEND_S
        due = [r for i, r in self.outbox.pending.items() if self._sent_at.get(i, 0.0) <= cutoff]
        self._retrying = bool(due)
        self._send_execs(due[:EXEC_RESEND_BATCH])

    def _note_oms_epoch(self, epoch: int) -> None:
        self.cuts.oms_seen(epoch)
        if epoch == self._oms_epoch:
            return
        restarted, self._oms_epoch = self._oms_epoch is not None, epoch
        if restarted:
            self.log.info("oms_restarted", oms_epoch=epoch, pending_execs=len(self.outbox.pending))
            self._sent_at.clear()  # whatever the old incarnation held is lost
            self._state_acked = False  # until the new one acks it (resent every second)
            self._send_state()
            self._resend_execs()

    # ------------------------------------------------------------------ venue state

    def _set_state(self, state: VenueConnState, detail: str) -> None:
        if state is self.state:
            return
        self.state, self._state_detail = state, detail
        self._state_version += 1
        self._state_acked = False
        self.log.info("venue_state", state=state.value, detail=detail)
        self._up_gauge.set(1 if state is VenueConnState.CONNECTED else 0)
        self._down_gauge.set(1 if state is VenueConnState.DOWN else 0)
        self.send_supervisor(self._state_msg())
        self._send_state()

    def _state_msg(self) -> VenueStateChanged:
        assert self.state is not None
        return VenueStateChanged(venue=self.venue, state=self.state, detail=self._state_detail,
                                 version=self._state_version)  # fmt: skip

    def _send_state(self) -> None:
        if self.state is None:
            return
        version = self._state_version
        self._state_sent_at = time.monotonic()

        def on_reply(env: Envelope | None) -> None:
            if env is None:
                return
            self._note_oms_epoch(env.epoch)
            if isinstance(env.body, Ack) and version == self._state_version:
                self._state_acked = True

        self.oms.request(self._state_msg(), on_reply, STATE_RESEND_S)

    def _resend_state(self) -> None:
        if not self._state_acked or time.monotonic() - self._state_sent_at >= STATE_REFRESH_S:
            self._send_state()


_VENUE_REQUESTS = (PlaceOrder, CancelOnVenue, ReplaceOnVenue, OpenOrdersRequest,
                   OrderStatusQuery, GetPositions, MassCancel)  # fmt: skip


def _positions(positions: Positions, cut: ExecCut) -> Positions:
    return positions.model_copy(update={"cut": cut})
