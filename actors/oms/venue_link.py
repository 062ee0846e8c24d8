"""The OMS's link to one venue: connection state, submission queue, in-flight requests and
the reconciliation pass run at warm start and after every connector restart or reconnect.

The link owns its queue: a venue that is not CONNECTED-and-reconciled holds its orders
(the OMS bounds intake by `oms.venue_queue_bound`), and they are sent once the
reconciliation pass after the next CONNECTED has told us which ones the venue already has.
The link needs of the OMS only what `LinkHost` lists, so the two do not import each other.

One pass per venue at a time: every pass has a generation (`_gen`); an answer or a retry
timer of an older generation (a pass given up, or one of a connector incarnation that
restarted) is ignored; a pass plans and applies in slices over loop turns, and one given up
stops at its next slice (`actors.oms.reconcile_pass`). A failed pass, or a connector restart
seen before its CONNECTED, is retried once: at once if a CONNECTED came meanwhile, else after
a backoff (`actors.oms.reconcile_retry`: when, and when not); until a pass succeeds the venue
shows `reconcile_failing: <reason>`. A pass asks one status query per open local order the
venue did not list; the connector paces the H messages under the venue's rate limit. A
connector stopped by an operator or given up on by the supervisor leaves the venue
DISCONNECTED, its cancels queued for its next start (`actors.oms.venue_stop`).
New connections told by state version: `conn_version`; refusing venues: `reconcile_pass`.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Any

from actors.oms.conn_version import later
from actors.oms.exec_cut import ExecLog
from actors.oms.link_host import LinkHost, VenuePeer
from actors.oms.link_sent import SentRequests
from actors.oms.opening_ask import OpeningAsk
from actors.oms.order_book import OrderBook
from actors.oms.plan import Action, Plan
from actors.oms.reconcile_pass import ReconcilePass
from actors.oms.reconcile_retry import ReconcileRetry
from actors.oms.reconcile_rules import RESUBMIT_GRACE_S, ReconcilePolicy
from actors.oms.send_batch import HeldSends
from actors.oms.sent_answer import unacknowledged
from actors.oms.venue_request import venue_request
from actors.oms.venue_stop import StopHold
from actors.runtime import metrics
from actors.runtime.tally import TURN
from protocol.codec import Envelope
from protocol.messages import Ack, Message, Positions, VenueConnState


class VenueLink:
    """One venue as the OMS sees it: `state` (from the connector's VenueStateChanged), `ready`
    once CONNECTED and reconciled, the request queue and the passes."""

    def __init__(
        self,
        venue: str,
        host: LinkHost,
        peer: VenuePeer,
        *,
        request_timeout_s: float,
        log: Any,
        status_rate_per_s: float = 5000.0,
        retry_initial_s: float = 1.0,
        retry_max_s: float = 30.0,
        resubmit_grace_s: float = RESUBMIT_GRACE_S,
        rand: Callable[[], float] | None = None,
        exec_log: ExecLog | None = None,
        oms_epoch: int = 0,
        ordered_session: bool = False,
    ) -> None:
        self.host = host
        self.venue = venue
        self.peer = peer
        self.request_timeout_s = request_timeout_s
        self.sends = HeldSends(peer, request_timeout_s)  # held while the OMS's sends run
        self.status_rate_per_s = status_rate_per_s  # the venue's rate limit (H pacing)
        self.state = VenueConnState.DISCONNECTED
        self.connector_epoch: int | None = None
        self.reconciled = self.ever_reconciled = False  # since the last CONNECTED / OMS start
        self._logged_on_epoch: int | None = None  # the connector epoch last seen CONNECTED
        self.reconciling = False
        self.rerun: list[Callable[[Plan], None]] | None = None  # a pass asked for meanwhile
        self._gen = 0  # the current pass's generation: older answers and timers are ignored
        self._connected_seq = 0  # CONNECTED events seen (a pass notes the one it began under)
        self._version: int | None = 0  # of the state heard (None: CONNECTED learnt by answer)
        self._fallback_logged: dict[str, int | None] = {}  # what -> epoch it was logged in
        self.retry = ReconcileRetry(
            venue, initial_s=retry_initial_s, max_s=retry_max_s, log=log,
            **({} if rand is None else {"rand": rand}),
        )  # fmt: skip
        self.last_pass_at = 0.0  # monotonic time of the last applied pass
        self.resubmitted_at_s: dict[str, float] = {}  # client_order_id -> monotonic
        self.policy = ReconcilePolicy(resubmit_grace_s=resubmit_grace_s)
        self._grace_seeded = False  # resubmissions of an earlier process given their grace
        self._ends_grace_at_logon = ordered_session  # FIX: see `_logged_on_again`
        self._started_s = time.monotonic()
        self._queue: OrderedDict[str, None] = OrderedDict()  # client_order_ids to send
        self._in_flight: dict[str, str] = {}  # client_order_id -> request ClOrdID
        self._sent = SentRequests()  # cancels/replaces acked, and requests waiting behind
        self.depth_gauge = metrics.QUEUE_DEPTH.labels(venue=venue)
        self.exec_log = exec_log or ExecLog()  # the OMS's, fed with what it applies
        self.oms_epoch = oms_epoch  # this OMS incarnation's (the cuts that name it)
        self._passes: dict[ReconcilePass, tuple[int, int]] = {}  # -> (gen, connected_seq)
        self.log = log
        self.opening = OpeningAsk(self, host.call_later, rand)  # a cold start's positions
        self.stop = StopHold(self)  # its connector stopped (an operator's, a give-up)

    @property
    def ready(self) -> bool:
        return self.state is VenueConnState.CONNECTED and self.reconciled

    @property
    def status_text(self) -> str:
        """`tradepulse status`: reconciled, the state, or reconcile_failing: <reason>."""
        if self.reconciled:
            return "reconciled"
        if self.retry.failing and self.state is VenueConnState.CONNECTED:
            return f"reconcile_failing: {self.retry.reason}"
        return self.state.value

    @property
    def depth(self) -> int:  # requests queued or in flight
        return len(self._queue) + len(self._in_flight)

    @property
    def has_in_flight(self) -> bool:  # handed to the connector, its answer not come yet
        return bool(self._in_flight)

    def is_in_flight(self, client_order_id: str) -> bool:
        return client_order_id in self._in_flight

    def is_waiting(self, client_order_id: str) -> bool:
        """The order's request is queued or in flight (its answer is on its way)."""
        return client_order_id in self._queue or client_order_id in self._in_flight

    # ------------------------------------------------------------------ state

    def on_state(self, state: VenueConnState, epoch: int, detail: str, version: int = 0) -> None:
        if state is VenueConnState.CONNECTED and self.stop.hides(epoch):
            return  # the incarnation an operator stopped, still stopping
        if epoch == self.connector_epoch and later(version, self._version):
            return  # older than what an answer told (`connected_by_answer`): stale
        known, self._version = self._version, version
        again = state is self.state is VenueConnState.CONNECTED and epoch == self.connector_epoch
        reconnected = again and later(known, version)  # the states between lost
        if not (state is not self.state or epoch != self.connector_epoch or reconnected):
            return
        heard = self.connector_epoch is not None  # a state of this venue's connector before
        restarted = heard and epoch != self.connector_epoch
        self.state, self.connector_epoch = state, epoch
        if state is VenueConnState.CONNECTED:
            self._connected_seq += 1
            self.retry.connected()
            self._logged_on_again(heard)
        if state is VenueConnState.OUT_OF_SESSION:
            self.drop_unsent(out_of_session=True)
        if restarted:
            # requests the dead incarnation never answered: venue evidence (reconciliation) decides
            # them now, not at their deadline; the pass in flight is given up (answers, timer)
            self._gen += 1
            self.reconciling = False
            self._drop_rerun("its connector restarted")
            self.peer.fail_pending()
        self.announce(state, epoch, detail)
        self.reconciled = False
        if restarted and state is not VenueConnState.CONNECTED:  # its CONNECTED may be lost
            self._retry_later(self.retry.delay(), self._gen)
        if state is VenueConnState.CONNECTED:
            first_logon, self._logged_on_epoch = self._logged_on_epoch != epoch, epoch
            if not (first_logon and self._pass_awaits_open_orders()):
                self.start_reconcile()

    def connected_by_answer(self, epoch: int, version: int | None = None) -> None:
        """Open orders answered while not seen CONNECTED or at a later `version`: a logon."""
        same = epoch == self.connector_epoch
        if self.stop.hides(epoch):
            return
        if self.state is not VenueConnState.CONNECTED or (same and later(self._version, version)):
            self._logged_on_again(self.connector_epoch is not None)
            self.state, self._version = VenueConnState.CONNECTED, version  # None: an older one
            self.connector_epoch = self._logged_on_epoch = epoch
            self.announce(self.state, epoch, "answered open orders")

    def _logged_on_again(self, heard: bool) -> None:
        """Logged on after a state we `heard`: a new FIX connection brings no earlier one's
        resubmission (read before the logon, or gap-filled: fix transmit): none in grace."""
        if self._ends_grace_at_logon and heard:
            self.resubmitted_at_s.clear()
            self._grace_seeded = True

    def announce(self, state: VenueConnState, epoch: int, detail: str) -> None:
        self.log.info("venue_state", state=state.value, connector_epoch=epoch, detail=detail)
        self.host.publish_stream(
            "venue_state", {"venue": self.venue, "state": state.value, "detail": detail}
        )

    def _pass_awaits_open_orders(self) -> bool:
        """A pass still waits for the venue's open orders at this connector's first logon (it
        answers from this session, or fails and reruns at once: `_pass_failed`): no second
        pass. A later logon always reruns: an answer of the old session may be on its way."""
        return any(
            not p.dry_run and not p.open_answered and self.is_current(p) for p in self._passes
        )

    # ------------------------------------------------------------------ dispatch

    def enqueue(self, client_order_id: str) -> None:
        """Queue the order's pending request (sent by the next `dispatch` while ready)."""
        self._queue[client_order_id] = None
        self._queue.move_to_end(client_order_id)

    def push(self, client_order_id: str) -> None:
        """Queue the order's pending request and send what the venue is ready for. A new
        order approved after its venue's session closed (risk answered after the close) is
        rejected instead: nothing is sent into a later session (nor a closed window)."""
        closed = self.state is VenueConnState.OUT_OF_SESSION
        if self.host.drop_unsent(client_order_id, out_of_session=closed):
            TURN.set(self.depth_gauge, self.depth)
            return
        self.enqueue(client_order_id)
        self.dispatch()

    def drop_unsent(self, *, out_of_session: bool = False) -> None:
        """Take out of the queue every request the host will not send now (the
        kill-switch engaged, or the venue's session closed: orders approved but never sent
        are rejected instead; cancels and replaces stay for the next session)."""
        dropped = [
            c for c in self._queue if self.host.drop_unsent(c, out_of_session=out_of_session)
        ]
        for coid in dropped:
            del self._queue[coid]
        self.host.unsent.hold(self.venue, out_of_session=out_of_session)  # the book's too
        TURN.set(self.depth_gauge, self.depth)

    def dispatch(self) -> None:
        """Send queued requests while the venue is ready."""
        book, gate = self.host.book, self.host.gate
        if self.ready and self._queue and self.venue in gate.stopped_now():
            self.host.poll_stops()  # a stop written, not polled yet: seen first (venue_stop)
        while self.ready and self._queue:
            coid, _ = self._queue.popitem(last=False)
            order = book.get(coid)
            if order is not None and coid in self._in_flight:
                self._sent.behind.add(coid)  # sent once the one in flight is acked
                continue
            if order is None or self.host.drop_unsent(coid):
                continue
            msg = venue_request(order)
            if msg is None:
                continue  # resolved meanwhile (e.g. by reconciliation)
            self._in_flight[coid] = msg.cl_ord_id
            for p in self._passes:
                p.handed(coid)  # in flight for the pass (actors.oms.reconcile_pass)
            self.host.crash_point("before_send")
            self.sends.request(msg, partial(self._on_sent, coid, msg.type))  # send_batch.py
        TURN.set(self.depth_gauge, self.depth)

    def _on_sent(self, coid: str, kind: str, reply: Envelope | None) -> None:
        request_id = self._in_flight.pop(coid, "")
        self.host.crash_point("after_send_before_ack")
        acked = reply is not None and isinstance(reply.body, Ack)
        if self._sent.answered(coid, kind, request_id, acked=acked):
            order = self.host.book.get(coid)  # a cancel/replace asked meanwhile: now
            msg = None if order is None else venue_request(order)
            if msg is not None and msg.cl_ord_id != request_id:
                # after this turn's commit: the order may have changed in this turn
                self.host.after_commit(partial(self.push, coid), first=True)
        if not acked:
            unacknowledged(self, coid, kind, reply)  # refused, or no answer: sent_answer.py

    def refused_sending(self) -> None:
        if self.state is VenueConnState.CONNECTED:
            self.state = VenueConnState.DISCONNECTED
            self.reconciled = False

    def unconfirmed(self) -> None:
        self.reconciled = False
        if not self.held_off:  # else the connector's next CONNECTED runs the pass
            self.start_reconcile()

    def hold_lifted(self) -> None:
        """The stop of its connector (an operator's, a give-up) went. Its next CONNECTED runs
        the pass the stop held off, but that may have come first (a give-up read after the
        new incarnation's CONNECTED) or never come (a stop across hosts the edge did not
        carry out: the connector ran on): not reconciled, a pass is retried after the backoff
        (one that a CONNECTED meanwhile runs first is not: `_retry_later`)."""
        self.stop.lifted()
        if not (self.reconciled or self.reconciling):
            self._retry_later(self.retry.delay(), self._gen)

    # ------------------------------------------------------------------ reconciliation

    def start_reconcile(
        self, on_plan: Callable[[Plan], None] | None = None, *, dry_run: bool = False
    ) -> None:
        """Gather the venue's view, plan, and (unless `dry_run`) apply the plan. One pass
        at a time: asked while one is in flight, another follows it once it succeeds (its
        `on_plan` is answered then, or with a failed plan if the pass in flight fails)."""
        if self.reconciling and not dry_run:
            self.rerun = (self.rerun or []) + ([on_plan] if on_plan is not None else [])
            return
        if not dry_run:
            self.reconciling = True
            self._gen += 1
        p = ReconcilePass(self, on_plan, dry_run)
        self._passes[p] = (self._gen, self._connected_seq)
        p.start()

    # what a pass needs of its link (actors.oms.reconcile_pass.PassLink)

    @property
    def book(self) -> OrderBook:
        return self.host.book

    def in_flight_ids(self) -> set[str]:
        return set(self._in_flight)

    def request(
        self, body: Message, callback: Callable[[Envelope | None], None], timeout_s: float
    ) -> None:
        self.peer.request(body, callback, timeout_s)

    def is_current(self, p: ReconcilePass) -> bool:
        """A dry run is never given up; a pass is, when its connector restarted."""
        return p.dry_run or self._passes.get(p, (-1, 0))[0] == self._gen

    def _end(self, p: ReconcilePass, plan: Plan | None = None) -> tuple[int, int]:
        p.ended = True
        gen_seq = self._passes.pop(p, (self._gen, self._connected_seq))
        if plan is not None and p.on_plan is not None:
            p.on_plan(plan)
        return gen_seq

    def pass_superseded(self, p: ReconcilePass, reason: str) -> None:
        self.log.warning("reconcile_failed", reason=reason, superseded=True)
        self._end(p, Plan(venue=self.venue, actions=(), failed=reason))

    def pass_failed(self, p: ReconcilePass, reason: str) -> None:
        gen, connected_seq = self._end(p, Plan(venue=self.venue, actions=(), failed=reason))
        if p.dry_run:
            self.log.warning("reconcile_failed", reason=reason, dry_run=True)
            return
        self.reconciling = False
        self._drop_rerun(reason)
        self._pass_failed(reason, gen, connected_seq)

    def pass_gathered(self, p: ReconcilePass, venue_positions: Positions | None) -> None:
        """The venue's view is in: the pass plans and applies it in slices (`pass_planned`,
        `apply_steps`, `pass_applied`)."""
        now_s, grace_s = time.monotonic(), self.policy.resubmit_grace_s
        for coid in [c for c, at_s in self.resubmitted_at_s.items() if now_s - at_s >= grace_s]:
            del self.resubmitted_at_s[coid]  # out of grace is as good as never resubmitted
        # one sent just before this process started may be in flight: its grace runs from
        # our start (the first pass to plan every order gives it), not again now
        seed_s = None if self._grace_seeded else self._started_s
        p.judge(venue_positions, now_s=now_s, resubmitted_at_s=self.resubmitted_at_s, seed_s=seed_s)

    def pass_planned(self, p: ReconcilePass, plan: Plan) -> bool:
        if p.seeding:
            self._grace_seeded = True
        if plan.skipped:
            self.log.info("reconcile_skipped_in_flight", orders=plan.skipped)
        if p.dry_run:
            self._end(p, plan)
            return False
        self.host.reconcile_plan_ready(self, plan)
        return True

    def apply_steps(self, plan: Plan, steps: Sequence[tuple[int, Action]]) -> None:
        self.host.apply_reconcile_steps(self, plan, steps)

    def next_turn(self, fn: Callable[[], None]) -> None:
        self.host.next_turn(fn)

    def pass_applied(self, p: ReconcilePass, plan: Plan, venue_positions: Positions | None) -> None:
        self.host.reconcile_plan_applied(self, plan, venue_positions)
        if self.opening.again(p):  # not taken as opening positions: asked again, or failed
            return
        if p.moved:
            self.log.info("reconcile_skipped_moved", orders=p.moved)
        self._end(p, plan)
        self.reconciling = False
        self.retry.succeeded()
        if self.rerun is not None:
            waiting, self.rerun = self.rerun, None
            self.start_reconcile(partial(_answer_all, waiting))
            return
        self.last_pass_at = time.monotonic()
        if self.state is VenueConnState.CONNECTED:
            self.reconciled = True
            first = not self.ever_reconciled
            self.ever_reconciled = True
            self._requeue_after(p.to_requeue)
            self.host.on_venue_reconciled(self, plan, first)
            # after this turn's commit: the plan's records (a resubmit) are durable first
            self.host.after_commit(self.dispatch, first=True)

    def log_once(self, what: str, event: str, reason: str) -> None:
        """A fallback of this pass, logged once per connector incarnation."""
        if self._fallback_logged.get(what) != self.connector_epoch:
            self._fallback_logged[what] = self.connector_epoch
            self.log.warning(event, reason=reason)

    def _drop_rerun(self, why: str) -> None:
        """The pass asked for meanwhile will not run: whoever asked gets a failed plan."""
        waiting, self.rerun = self.rerun or [], None
        _answer_all(waiting, Plan(venue=self.venue, actions=(), failed=why))

    def requeue_walk(self, found: list[str]) -> Iterator[None]:
        """`_requeue_after`'s walk, a step an order, spread over loop turns by a pass."""
        return self._sent.walk(self.host.book, self.venue, found)

    def _requeue_after(self, found: list[str]) -> None:
        """Besides the plan's Resubmits, a finished pass sends the cancels/replaces its walk
        found that this connector incarnation has not acknowledged sending, as they are now."""
        for coid in self._sent.unconfirmed(self.host.book, found):
            self.enqueue(coid)

    def _pass_failed(self, reason: str, gen: int, connected_seq: int) -> None:
        """A pass failed: counted and made visible while CONNECTED, retried once, also when
        not seen CONNECTED (that message may have been sent before we listened, or lost)."""
        at_once = self.state is VenueConnState.CONNECTED and connected_seq != self._connected_seq
        delay = self.retry.failed(reason, at_once=at_once, state=self.state)
        self.start_reconcile() if at_once else self._retry_later(delay, gen)

    @property
    def held_off(self) -> bool:  # no pass now: `ReconcileRetry.holds_off` (a stop, a give-up)
        return self.retry.holds_off(self.state, self.venue in self.host.gate.stopped_venues)

    def _retry_later(self, delay_s: float, gen: int, *, fired: bool = False) -> None:
        """Retry pass `gen` after `delay_s` (`fired`: its timer, ignored if another pass began
        since); none while the venue is `held_off`."""
        if self.held_off:
            return
        if not fired:
            self.host.call_later(delay_s, partial(self._retry_later, 0.0, gen, fired=True))
        elif gen == self._gen and not self.reconciling and not self.reconciled:
            self.start_reconcile()


def _answer_all(waiting: list[Callable[[Plan], None]], plan: Plan) -> None:
    for answer in waiting:
        answer(plan)
