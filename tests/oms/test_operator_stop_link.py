"""`StopHold.seen` of an operator's stop (actors/oms/venue_stop.py): the venue goes
DISCONNECTED as for a give-up, so a cancel asked meanwhile is queued, not handed to the
stopped connector's socket, and sent once, after the next incarnation's pass. Before, the
link stayed CONNECTED and reconciled: the cancel went to the stopped connector, waited out
`oms.request_timeout_s` and reached the venue only through the socket's queue at `start`,
ahead of the pass that sends it again. Unlike a give-up, what was in flight to the
stopping connector runs to its answer: it may still acknowledge a cancel it sent."""

from __future__ import annotations

from decimal import Decimal

from actors.oms.venue_link import VenueLink
from actors.runtime.operator_stops import OperatorStop
from protocol.codec import Sender
from protocol.messages import (
    Ack,
    CancelOnVenue,
    GetPositions,
    Message,
    OpenOrders,
    OpenOrdersRequest,
    OrderStatus,
    Positions,
    Side,
    VenueConnState,
)
from protocol.venue_messages import VenueOrder
from tests.oms.test_cancel_during_place import placing
from tests.oms.test_venue_link import CONNECTED, CONNECTOR, StubOms, StubPeer, V

INCARNATION_8 = Sender(f"connector.{V}", 8)  # the one `tradepulse start` spawns
STOP = OperatorStop(f"connector.{V}", "maintenance", 0.0, V, by="alice (uid 1000, pid 9)")


def _resting() -> tuple[VenueLink, StubOms, StubPeer]:
    """A reconciled link whose order x-1 rests at the venue (placed, acknowledged)."""
    link, oms, peer = placing()
    assert peer.answer(Ack(ref="p")).type == "place_order"
    oms.book.apply_venue_status("x-1", OrderStatus.ACCEPTED, 3)
    return link, oms, peer


def _stop(link: VenueLink, oms: StubOms) -> None:
    """As `OmsActor.poll_stops`: the gate has the stop (`stopped_venues`), then the link."""
    oms.gate.stopped_venues = frozenset({V})
    link.stop.seen(STOP)


def _cancel(link: VenueLink, oms: StubOms) -> None:
    assert oms.book.request_cancel("x-1", 4).applied
    link.push("x-1")  # after the cancel's commit, as `Intake.cancel_or_replace` does


def _answer(peer: StubPeer, body: Message) -> Message:
    request, cb = peer.sent.pop(0)
    cb(INCARNATION_8.envelope(body))
    return request


def _started_pass(link: VenueLink, oms: StubOms, peer: StubPeer) -> None:
    """`start`: the stop goes, incarnation 8 logs on, and its pass finds x-1 live."""
    oms.gate.stopped_venues = frozenset()
    link.hold_lifted()
    link.on_state(CONNECTED, 8, "logged on")
    live = VenueOrder(
        cl_ord_id="x-1", venue_order_id="V-1", symbol="AAPL", side=Side.BUY,
        order_qty=Decimal(1), price=Decimal("95"), status=OrderStatus.ACCEPTED,
        leaves_qty=Decimal(1),
    )  # fmt: skip
    assert isinstance(_answer(peer, OpenOrders(venue=V, orders=[live])), OpenOrdersRequest)
    assert isinstance(_answer(peer, Positions(source="venue", venue=V, positions=[])), GetPositions)
    oms.commit()  # the pass's dispatch runs after its turn's commit


def test_a_cancel_at_a_stopped_venue_is_queued_and_sent_once_after_the_starts_pass() -> None:
    link, oms, peer = _resting()
    _stop(link, oms)
    assert not link.ready and link.state is VenueConnState.DISCONNECTED
    assert oms.streams[-1] == (
        "venue_state",
        {
            "venue": V,
            "state": "DISCONNECTED",
            "detail": "connector stopped (by operator alice: maintenance)",
        },
    )
    _cancel(link, oms)
    assert peer.sent == [] and link.depth == 1  # queued, not sent to the stopped connector
    link.on_state(CONNECTED, 7, "logged on")  # a state refresh it sent while stopping
    assert peer.sent == [] and not link.ready and oms.timers == []
    _started_pass(link, oms, peer)
    assert link.ready
    [(cancel, _)] = peer.sent
    assert isinstance(cancel, CancelOnVenue) and cancel.cl_ord_id == "x-1.c1"


def test_a_cancel_in_flight_at_the_stop_is_left_to_its_answer_and_not_sent_again() -> None:
    """The stopping connector acknowledges the cancel it had (it sent it before its
    logout): the pass after `start` finds the order still live and sends nothing more."""
    link, oms, peer = _resting()
    _cancel(link, oms)
    [(cancel, acked)] = peer.sent
    _stop(link, oms)
    assert len(peer.sent) == 1  # not failed at once, unlike a give-up's
    peer.sent.clear()
    acked(CONNECTOR.envelope(Ack(ref="c")))
    assert peer.sent == [] and oms.timers == []
    _started_pass(link, oms, peer)
    assert link.ready and peer.sent == []  # the venue has it: its answer will come


def test_a_cancel_unanswered_at_its_deadline_under_the_stop_is_sent_after_the_pass() -> None:
    link, oms, peer = _resting()
    _cancel(link, oms)
    [(cancel, unanswered)] = peer.sent
    _stop(link, oms)
    peer.sent.clear()
    unanswered(None)  # `oms.request_timeout_s`: the connector stopped before it read it
    assert peer.sent == [] and oms.timers == []  # queued again; no pass to a stopped one
    order = oms.book.get("x-1")
    assert order is not None and order.status is OrderStatus.PENDING_CANCEL
    _started_pass(link, oms, peer)
    [(again, _)] = peer.sent  # once
    assert isinstance(again, CancelOnVenue) and again.cl_ord_id == "x-1.c1"


def test_a_cancel_asked_after_the_stop_is_written_but_before_its_poll_is_queued() -> None:
    """Found in review: the OMS reads the stops file every 0.1 s, and a connector stopped
    with nothing to log out exits in ~20 ms. A cancel asked in between went to the
    connector's socket with no process behind it. The link now reads the file (once a loop
    turn) before it sends: the stop written is seen first, and the cancel is queued."""
    link, oms, peer = _resting()
    oms.links[V] = link
    oms.gate.written = {V: STOP}  # `tradepulse stop` wrote it; the OMS's poll has not run
    _cancel(link, oms)
    assert peer.sent == [] and link.depth == 1, peer.sent  # queued, not handed to it
    assert not link.ready and link.state is VenueConnState.DISCONNECTED
    assert oms.gate.stopped_venues == frozenset({V})  # as the poll would have it
    oms.gate.written = {}
    _started_pass(link, oms, peer)
    [(cancel, _)] = peer.sent  # once, after the pass
    assert isinstance(cancel, CancelOnVenue) and cancel.cl_ord_id == "x-1.c1"


def test_a_stop_written_after_the_turn_first_read_the_file_is_seen_before_the_cancel_goes() -> None:
    """The OMS reads the stops file once a loop turn; a turn that read it before the stop
    was written may last long enough for the stop, the connector's exit and a client's
    cancel to come in it, and the link handed the cancel to the exited connector (found
    while looking for the cause of a make test failure, which was another: a stop after a
    start the poll missed, test_intake_state). The link reads the file anew."""
    link, oms, peer = _resting()
    oms.links[V] = link
    oms.gate.turn = {}  # this turn read the file before `tradepulse stop` wrote it
    oms.gate.written = {V: STOP}
    _cancel(link, oms)
    assert peer.sent == [] and link.depth == 1, peer.sent  # queued, not handed to it
    assert oms.gate.stopped_venues == frozenset({V})
