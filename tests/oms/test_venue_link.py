"""VenueLink (the OMS's link to one venue) driven by hand-written stubs, no sockets: when a
reconciliation pass runs, reruns, retries, and when the venue's queue is sent."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import structlog
from structlog.testing import capture_logs

from actors.oms.order_book import OrderBook
from actors.oms.orders import DROPPED_OUT_OF_SESSION, Outcome
from actors.oms.plan import Action, Plan
from actors.oms.venue_link import VenueLink
from actors.runtime.operator_stops import OperatorStop
from protocol.codec import Envelope, Sender
from protocol.messages import (
    Ack,
    ErrorCode,
    GetPositions,
    Message,
    OpenOrders,
    OpenOrdersRequest,
    OrderStatus,
    OrderStatusAnswer,
    OrderStatusQuery,
    OrdType,
    PlaceOrder,
    Positions,
    RequestRejected,
    RiskVerdict,
    Side,
    SubmitOrder,
    VenueConnState,
)

V = "simA"
CONNECTOR = Sender(f"connector.{V}", 7)
CONNECTED, CONNECTING = VenueConnState.CONNECTED, VenueConnState.CONNECTING


@dataclass
class StubPeer:
    """Records requests; the test answers them (or fails them, as a restart does)."""

    sent: list[tuple[Message, Callable[[Envelope | None], None]]] = field(default_factory=list)

    def request(
        self, body: Message, callback: Callable[[Envelope | None], None], timeout_s: float
    ) -> str:
        self.sent.append((body, callback))
        return str(len(self.sent))

    def fail_pending(self) -> None:
        pending, self.sent = self.sent, []
        for _, cb in pending:
            cb(None)

    def answer(self, body: Message) -> Message:
        """Answer the oldest request with `body`; returns that request."""
        request, cb = self.sent.pop(0)
        cb(CONNECTOR.envelope(body))
        return request


class NoHolds:
    """The OMS's `UnsentGuard` (actors/oms/unsent_guard.py, tested on its own)."""

    def hold(self, venue: str, *, out_of_session: bool = False) -> None:
        pass


class Stops:
    """The OMS's `IntakeGate` as the link sees it: the venues the operator stopped."""

    def __init__(self) -> None:
        self.stopped_venues: frozenset[str] = frozenset()
        self.written: dict[str, OperatorStop] = {}  # the stops file, ahead of the poll
        self.turn: dict[str, OperatorStop] | None = None  # as this turn first read it

    def stopped(self) -> dict[str, OperatorStop]:
        return self.written if self.turn is None else self.turn

    def stopped_now(self) -> dict[str, OperatorStop]:
        self.turn = None
        return self.written


class StubOms:
    """What VenueLink uses of the OMS actor (its `LinkHost`)."""

    def __init__(self) -> None:
        self.book = OrderBook()
        self.gate = Stops()
        self.timers: list[tuple[float, Callable[[], None]]] = []
        self.plans: list[Plan] = []
        self.reconciled: list[bool] = []
        self.unsent = NoHolds()
        self.streams: list[tuple[str, dict[str, Any]]] = []
        self.committed_then: list[Callable[[], None]] = []
        self.links: dict[str, VenueLink] = {}  # the links `poll_stops` acts on

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> None:
        self.timers.append((delay_s, fn))

    def after_commit(self, fn: Callable[[], None], *, first: bool = False) -> None:
        self.committed_then.append(fn)

    def commit(self) -> None:
        fns, self.committed_then = self.committed_then, []
        for fn in fns:
            fn()

    def poll_stops(self) -> None:
        """As `OmsActor.poll_stops` for the links a test registers in `links`."""
        new = {v: s for v, s in self.gate.written.items() if v not in self.gate.stopped_venues}
        self.gate.stopped_venues = frozenset(self.gate.written)
        for venue, stop in new.items():
            self.links[venue].stop.seen(stop)

    def publish_stream(self, event: str, data: dict[str, Any]) -> None:
        self.streams.append((event, data))

    def crash_point(self, name: str) -> None:
        pass

    def drop_unsent(self, coid: str, *, out_of_session: bool = False) -> bool:
        """As the OMS: once the session closed, a new order never sent is rejected."""
        order = self.book.get(coid)
        if not out_of_session or order is None or order.status is not OrderStatus.PENDING_SUBMIT:
            return False
        self.book.apply_venue_status(coid, OrderStatus.REJECTED, 3, reason=DROPPED_OUT_OF_SESSION)
        return True

    def record(self, outcome: Outcome) -> Outcome:
        return outcome

    def next_turn(self, fn: Callable[[], None]) -> None:
        fn()  # a pass's slices run at once here (tests/oms/test_reconcile_slices.py: not)

    def reconcile_plan_ready(self, link: VenueLink, plan: Plan) -> None:
        self.plans.append(plan)

    def apply_reconcile_steps(
        self, link: VenueLink, plan: Plan, steps: Sequence[tuple[int, Action]]
    ) -> None:
        pass

    def reconcile_plan_applied(
        self, link: VenueLink, plan: Plan, positions: Positions | None
    ) -> None:
        pass

    def on_venue_reconciled(self, link: VenueLink, plan: Plan, first: bool) -> None:
        self.reconciled.append(first)


def _link() -> tuple[VenueLink, StubOms, StubPeer]:
    oms, peer = StubOms(), StubPeer()
    link = VenueLink(
        V, oms, peer, request_timeout_s=5.0, log=structlog.get_logger(), rand=lambda: 0.5
    )  # rand 0.5: no jitter
    return link, oms, peer


def _complete_pass(peer: StubPeer, never_seen: tuple[str, ...] = ()) -> None:
    """Answer one whole pass for an empty venue: open orders, the status of `never_seen`
    (unknown to the venue) if any, then positions."""
    assert isinstance(peer.answer(OpenOrders(venue=V, orders=[])), OpenOrdersRequest)
    if never_seen:
        query = peer.answer(OrderStatusAnswer(venue=V, orders=[], unknown=list(never_seen)))
        assert isinstance(query, OrderStatusQuery) and query.cl_ord_ids == list(never_seen)
    assert isinstance(peer.answer(Positions(source="venue", venue=V, positions=[])), GetPositions)


def test_a_pass_failing_after_connected_arrived_reruns_at_once() -> None:
    """The start-up pass goes out before the connector logged on; CONNECTED arrives while it
    is in flight (so it is only noted), then the pass fails VENUE_DOWN: the next pass is
    sent at once, not after the retry delay, and completes (intake opens)."""
    link, oms, peer = _link()
    link.start_reconcile()
    link.on_state(CONNECTING, 7, "starting")
    link.on_state(CONNECTED, 7, "logged on")
    assert len(peer.sent) == 1  # the CONNECTED pass waits for the one in flight
    peer.answer(RequestRejected(code=ErrorCode.VENUE_DOWN, reason="not logged on"))
    assert [type(b) for b, _ in peer.sent] == [OpenOrdersRequest]
    assert oms.timers == []
    _complete_pass(peer)
    assert oms.reconciled == [True] and link.ready


def test_a_pass_failing_with_nothing_pending_retries_after_the_delay() -> None:
    """A pass that fails while the venue stays CONNECTED (no new CONNECTED) is retried by a
    timer after the retry delay, not in a tight loop."""
    link, oms, peer = _link()
    link.on_state(CONNECTED, 7, "logged on")
    peer.answer(RequestRejected(code=ErrorCode.VENUE_DOWN, reason="dropped"))
    assert peer.sent == []
    [(delay, retry)] = oms.timers
    assert delay == 1.0  # oms.reconcile_retry_initial_s
    retry()
    _complete_pass(peer)
    assert oms.reconciled == [True]


def test_a_failed_pass_while_not_seen_connected_is_retried_after_the_backoff() -> None:
    """Not seen CONNECTED (the connector's CONNECTED was sent before we listened, or lost):
    a failed pass is retried after the backoff anyway, not left waiting for a state message
    that may never come again; the retry's answer shows the venue up and it reconciles.
    Before, a failed pass while not CONNECTED scheduled nothing."""
    link, oms, peer = _link()
    link.start_reconcile()
    peer.answer(RequestRejected(code=ErrorCode.VENUE_DOWN, reason="not logged on"))
    assert peer.sent == []
    [(delay, retry)] = oms.timers
    assert delay == 1.0  # oms.reconcile_retry_initial_s
    retry()
    peer.answer(RequestRejected(code=ErrorCode.VENUE_DOWN, reason="not logged on"))
    assert [d for d, _ in oms.timers] == [1.0, 2.0]  # the backoff grows
    oms.timers[-1][1]()
    _complete_pass(peer)  # the connector was up all along; its CONNECTED never came
    assert oms.reconciled == [True] and link.ready
    assert link.state is CONNECTED


def test_a_connected_during_the_backoff_runs_a_pass_at_once_and_voids_the_timer() -> None:
    """A failed pass waits for its backoff timer, but a new CONNECTED starts a pass at once;
    the old timer, firing later, starts nothing."""
    link, oms, peer = _link()
    link.start_reconcile()
    peer.answer(RequestRejected(code=ErrorCode.VENUE_DOWN, reason="not logged on"))
    [(_, retry)] = oms.timers
    link.on_state(CONNECTED, 7, "logged on")
    _complete_pass(peer)
    assert oms.reconciled == [True]
    retry()
    assert peer.sent == [] and oms.reconciled == [True]


def test_a_connector_restart_seen_during_the_backoff_schedules_a_retry() -> None:
    """A pass fails while the venue is not seen CONNECTED (a timer); the connector restarts
    and only its CONNECTING is seen: the restart voids the old timer, so it schedules one of
    its own, which runs a pass even if that incarnation's CONNECTED is lost. Before,
    nothing was scheduled and the venue was never reconciled again."""
    link, oms, peer = _link()
    link.on_state(CONNECTING, 7, "logging on")
    link.start_reconcile()
    peer.answer(RequestRejected(code=ErrorCode.VENUE_DOWN, reason="not logged on"))
    [(_, stale)] = oms.timers
    link.on_state(CONNECTING, 8, "connector restarted")  # its later CONNECTED is lost
    stale()
    assert peer.sent == []  # the old pass's timer: voided by the restart
    assert len(oms.timers) == 2
    oms.timers[-1][1]()
    _complete_pass(peer)
    assert link.ready and oms.reconciled == [True]


def test_the_backoff_starts_again_at_connected() -> None:
    """Failures while the venue was down grow the backoff; once CONNECTED, the first pass
    that fails waits the initial delay again, not oms.reconcile_retry_max_s."""
    link, oms, peer = _link()
    link.start_reconcile()
    for _ in range(8):  # the venue down a while: the retry keeps failing
        peer.answer(RequestRejected(code=ErrorCode.VENUE_DOWN, reason="not logged on"))
        oms.timers[-1][1]()
    peer.answer(RequestRejected(code=ErrorCode.VENUE_DOWN, reason="not logged on"))
    assert oms.timers[-1][0] == 30.0  # oms.reconcile_retry_max_s
    link.on_state(CONNECTED, 7, "logged on")  # back: a pass at once, which fails once
    peer.answer(RequestRejected(code=ErrorCode.VENUE_DOWN, reason="session dropped"))
    assert oms.timers[-1][0] == 1.0
    assert link.status_text.startswith("reconcile_failing")  # still shown failing


def _closed_session_retries(link: VenueLink, oms: StubOms, peer: StubPeer) -> int:
    """Fire the retry timers while each retry is refused OUT_OF_SESSION (at most 50)."""
    retries = 0
    while oms.timers and retries < 50:
        _, fn = oms.timers.pop()
        fn()
        if not peer.sent:
            break
        retries += 1
        peer.answer(RequestRejected(code=ErrorCode.OUT_OF_SESSION, reason="closed"))
    return retries


def test_a_closed_session_is_not_polled_all_night() -> None:
    """A pass in flight when the session closes fails OUT_OF_SESSION: no retry until the
    session opens (before, one every oms.reconcile_retry_max_s all night, a warning and a
    venue request each); the session's CONNECTED runs a pass at once."""
    link, oms, peer = _link()
    link.on_state(CONNECTED, 7, "logged on")
    link.on_state(VenueConnState.OUT_OF_SESSION, 7, "session closed")
    peer.answer(RequestRejected(code=ErrorCode.OUT_OF_SESSION, reason="closed"))
    assert _closed_session_retries(link, oms, peer) == 0 and oms.timers == []
    link.on_state(CONNECTED, 7, "session open")
    _complete_pass(peer)
    assert link.ready


def test_a_retry_timer_firing_after_the_session_closed_starts_nothing() -> None:
    """The backoff timer of a pass failed before the close fires out of session: nothing."""
    link, oms, peer = _link()
    link.on_state(CONNECTED, 7, "logged on")
    peer.answer(RequestRejected(code=ErrorCode.VENUE_DOWN, reason="dropped"))
    [(_, retry)] = oms.timers
    link.on_state(VenueConnState.OUT_OF_SESSION, 7, "session closed")
    retry()
    assert peer.sent == []


def test_no_retry_while_the_operator_stopped_the_connector() -> None:
    """A connector the operator stopped is not asked again and again: a pass failing then,
    or a restart seen then, schedules nothing; its start (CONNECTED) runs a pass."""
    link, oms, peer = _link()
    link.on_state(CONNECTING, 7, "logging on")
    oms.gate.stopped_venues = frozenset({V})
    link.start_reconcile()
    peer.answer(RequestRejected(code=ErrorCode.VENUE_DOWN, reason="stopped"))
    link.on_state(CONNECTING, 8, "connector restarted")
    assert oms.timers == [] and peer.sent == []
    oms.gate.stopped_venues = frozenset()
    link.on_state(CONNECTED, 8, "logged on")
    _complete_pass(peer)
    assert link.ready


def test_queued_orders_are_sent_only_once_the_venue_is_reconciled() -> None:
    """An approved order queued while the venue is not ready is sent (PlaceOrder) right
    after the commit of the reconciliation pass that follows CONNECTED, once."""
    link, oms, peer = _link()
    msg = SubmitOrder(
        client_order_id="q-1",
        venue=V,
        symbol="AAPL",
        side=Side.BUY,
        qty=Decimal(1),
        order_type=OrdType.LIMIT,
        price=Decimal("95"),
    )
    oms.book.submit(msg, 1)
    oms.book.risk_verdict(RiskVerdict(client_order_id="q-1", approved=True), 2)
    link.enqueue("q-1")
    link.dispatch()
    assert peer.sent == [] and link.depth == 1
    link.on_state(CONNECTED, 7, "logged on")
    _complete_pass(peer, never_seen=("q-1",))
    assert peer.sent == []  # the pass's records are committed first
    oms.commit()
    [(place, _)] = peer.sent
    assert isinstance(place, PlaceOrder) and place.cl_ord_id == "q-1"
    peer.answer(Ack(ref="x"))
    assert link.depth == 0


def test_an_operator_pass_asked_while_one_is_in_flight_is_answered() -> None:
    """`tradepulse reconcile` while a pass is in flight: the pass it asked for follows the
    one in flight and its plan answers the operator; if the pass in flight fails, the
    operator gets an empty plan at once instead of waiting for the CLI's timeout (found by
    review: the callback was dropped)."""
    link, oms, peer = _link()
    link.on_state(CONNECTED, 7, "logged on")  # a pass is in flight
    answered: list[Plan] = []
    link.start_reconcile(answered.append)
    assert answered == [] and len(peer.sent) == 1
    _complete_pass(peer)  # the pass in flight, then the operator's
    assert answered == []
    _complete_pass(peer)
    assert len(answered) == 1 and answered[0].venue == V

    link.start_reconcile()  # another pass in flight
    link.start_reconcile(answered.append)
    peer.answer(RequestRejected(code=ErrorCode.VENUE_DOWN, reason="not logged on"))
    assert len(answered) == 2 and answered[1].actions == ()


def _approved(oms: StubOms, coid: str) -> None:
    msg = SubmitOrder(
        client_order_id=coid, venue=V, symbol="AAPL", side=Side.BUY, qty=Decimal(1),
        order_type=OrdType.LIMIT, price=Decimal("95"),
    )  # fmt: skip
    oms.book.submit(msg, 1)
    oms.book.risk_verdict(RiskVerdict(client_order_id=coid, approved=True), 2)


def test_an_order_refused_out_of_session_is_rejected_never_sent_next_session() -> None:
    """The session closed while a PlaceOrder was on its way: the connector refuses it with
    OUT_OF_SESSION (nothing was sent). It is rejected with the reason, not queued for the
    next session (hours later, at another market) and not marked UNKNOWN; the link shows
    OUT_OF_SESSION and the next session sends nothing of it."""
    link, oms, peer = _link()
    link.on_state(CONNECTED, 7, "logged on")
    _complete_pass(peer)
    _approved(oms, "q-2")
    link.push("q-2")
    assert isinstance(peer.sent[-1][0], PlaceOrder)
    peer.answer(RequestRejected(code=ErrorCode.OUT_OF_SESSION, reason="outside the session"))
    order = oms.book.get("q-2")
    assert order is not None and order.status is OrderStatus.REJECTED
    assert order.reason == DROPPED_OUT_OF_SESSION and link.depth == 0
    link.on_state(VenueConnState.OUT_OF_SESSION, 7, "outside the trading session")
    assert link.status_text == "OUT_OF_SESSION" and peer.sent == []
    link.on_state(CONNECTED, 7, "logged on")
    _complete_pass(peer)
    assert not [m for m, _ in peer.sent if isinstance(m, PlaceOrder)]


def test_orders_queued_when_the_session_closes_are_rejected() -> None:
    """Orders approved but still queued (the venue dropped, not yet back) when the
    connector reports OUT_OF_SESSION are rejected at the close, not sent next session."""
    link, oms, peer = _link()
    link.on_state(CONNECTED, 7, "logged on")
    _complete_pass(peer)
    link.on_state(VenueConnState.DISCONNECTED, 7, "connection lost")
    for coid in ("w-1", "w-2"):
        _approved(oms, coid)
        link.push(coid)
    assert link.depth == 2 and peer.sent == []
    link.on_state(VenueConnState.OUT_OF_SESSION, 7, "outside the trading session")
    assert link.depth == 0
    for coid in ("w-1", "w-2"):
        order = oms.book.get(coid)
        assert order is not None and order.status is OrderStatus.REJECTED, coid
        assert order.reason == DROPPED_OUT_OF_SESSION


def test_an_order_approved_after_the_close_is_rejected_not_queued() -> None:
    """Intake saw the venue in session, then the session closed while risk was deciding:
    the approval arrives after OUT_OF_SESSION and the order is rejected, not queued for the
    next session (found by review: it went out at the next session's reconciliation)."""
    link, oms, peer = _link()
    link.on_state(CONNECTED, 7, "logged on")
    _complete_pass(peer)
    link.on_state(VenueConnState.OUT_OF_SESSION, 7, "outside the trading session")
    _approved(oms, "late-1")
    link.push("late-1")
    order = oms.book.get("late-1")
    assert order is not None and order.status is OrderStatus.REJECTED
    assert order.reason == DROPPED_OUT_OF_SESSION and link.depth == 0
    link.on_state(CONNECTED, 7, "logged on")
    _complete_pass(peer)
    assert not [m for m, _ in peer.sent if isinstance(m, PlaceOrder)]


def test_a_resubmission_of_the_previous_process_keeps_its_grace_after_a_restart() -> None:
    """The OMS resubmitted an order, then restarted: the first pass of the new process
    finds it PENDING_SUBMIT with one resubmit, still unknown to the venue (the resubmit
    may be on its way). It is not resubmitted again at once: its grace runs from this
    process's start (found by review: the monotonic grace forgot it across the restart)."""
    link, oms, peer = _link()
    _approved(oms, "r-1")
    order = oms.book.get("r-1")
    assert order is not None and order.status is OrderStatus.PENDING_SUBMIT
    order.resubmits = 1
    link.on_state(CONNECTED, 7, "logged on")
    _complete_pass(peer, never_seen=(order.cl_ord_id,))
    (plan,) = oms.plans
    assert [a.name for a in plan.actions] == []


def test_connected_during_a_pass_still_waiting_for_open_orders_does_not_repeat_it() -> None:
    """The start-up pass's OpenOrdersRequest is answered after the connector logged on (it
    was queued until then): that pass already sees the logged-on venue, so the CONNECTED that
    came while it waited does not start a second full pass (at a warm start with 10,000 open
    orders the repeat cost ~0.8 s before the OMS opened its intake)."""
    link, oms, peer = _link()
    link.start_reconcile()
    link.on_state(CONNECTING, 7, "starting")
    link.on_state(CONNECTED, 7, "logged on")
    _complete_pass(peer)
    assert peer.sent == [] and len(oms.plans) == 1
    assert oms.reconciled == [True] and link.ready


def test_a_connector_answering_before_its_connected_arrives_is_announced_connected() -> None:
    """The start-up pass's open orders are answered before the connector's CONNECTED comes
    (across hosts: its state messages sent before the link was up were dropped, and the
    pass's retry won the race with the next one): the OMS takes the venue as CONNECTED from
    the answer and logs and publishes `venue_state` CONNECTED then, once; the state message
    that follows changes nothing and starts no second pass. Before, the venue became
    CONNECTED silently and the state message was no change: no `venue_state` ever."""
    with capture_logs() as logs:
        link, oms, peer = _link()
        link.start_reconcile()
        _complete_pass(peer)
        link.on_state(CONNECTED, 7, "logged on")
    assert oms.reconciled == [True] and link.ready and peer.sent == []
    states = [(e["state"], e["connector_epoch"]) for e in logs if e["event"] == "venue_state"]
    assert states == [("CONNECTED", 7)]
    published = [(e, d["venue"], d["state"]) for e, d in oms.streams if e == "venue_state"]
    assert published == [("venue_state", V, "CONNECTED")]


def test_connected_after_a_pass_got_its_open_orders_reruns_it() -> None:
    """A pass that already had the venue's open orders when the venue came back (a session
    drop and logon in the middle): its view may predate the drop, so another pass follows."""
    link, oms, peer = _link()
    link.on_state(CONNECTED, 7, "logged on")
    assert isinstance(peer.answer(OpenOrders(venue=V, orders=[])), OpenOrdersRequest)
    link.on_state(CONNECTING, 7, "session dropped")
    link.on_state(CONNECTED, 7, "logged on")
    assert isinstance(peer.answer(Positions(source="venue", venue=V, positions=[])), GetPositions)
    assert [type(b) for b, _ in peer.sent] == [OpenOrdersRequest]  # the rerun


def test_a_later_logon_while_a_pass_waits_for_open_orders_reruns_it() -> None:
    """The session drops and logs on again (same connector) while a pass still waits for
    its open orders: the answer on its way may be the old session's, so another pass
    follows it."""
    link, oms, peer = _link()
    link.on_state(CONNECTED, 7, "logged on")
    link.on_state(CONNECTING, 7, "session dropped")
    link.on_state(CONNECTED, 7, "logged on")
    _complete_pass(peer)
    assert [type(b) for b, _ in peer.sent] == [OpenOrdersRequest]  # the rerun
