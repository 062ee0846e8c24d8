"""A venue's stop (an operator's, or the supervisor's give-up, in the stops file) holds off
its passes: a request left unanswered meanwhile starts none, nor does a failed pass's retry
(`VenueLink.held_off`), on the word that the connector's next CONNECTED runs one. That
CONNECTED may have come before the OMS's poll read the stop (a give-up read late, after
the new incarnation logged on), or never come (a stop across hosts the edge did not carry
out: the connector ran on, logged on). Before `VenueLink.hold_lifted`, the venue then stayed
unreconciled for good once the stop went: an order UNKNOWN, the queue never sent (the
periodic sweep passes only venues ready). The real `OmsActor.poll_stops`, `IntakeGate`
and stops file, with the link of test_venue_link."""

from __future__ import annotations

import time
from pathlib import Path
from typing import cast

import structlog

from actors.oms.actor import OmsActor
from actors.oms.intake_state import IntakeGate
from actors.oms.venue_link import VenueLink
from actors.runtime.operator_stops import OperatorStop, write_stops
from protocol.codec import Sender
from protocol.messages import (
    GetPositions,
    OpenOrders,
    OpenOrdersRequest,
    OrderStatus,
    PlaceOrder,
    Positions,
    VenueConnState,
)
from tests.oms.test_venue_link import (
    CONNECTED,
    StubOms,
    StubPeer,
    V,
    _approved,
    _complete_pass,
    _link,
)

INCARNATION_8 = Sender(f"connector.{V}", 8)


class _Poller:
    """What `OmsActor.poll_stops` uses of the OMS: its gate and its links."""

    def __init__(self, gate: IntakeGate, link: VenueLink) -> None:
        self.gate, self.venues = gate, {V: link}

    def poll(self) -> None:
        OmsActor.poll_stops(cast(OmsActor, self))


def _rig(tmp_path: Path) -> tuple[VenueLink, StubOms, StubPeer, _Poller, Path]:
    link, oms, peer = _link()
    stops = tmp_path / "rt" / "operator_stops.json"
    stops.parent.mkdir()
    gate = IntakeGate(tmp_path, stops, [V], structlog.get_logger())
    oms.gate = gate  # type: ignore[assignment]
    link.on_state(CONNECTED, 7, "logged on")
    _complete_pass(peer)
    assert link.ready
    return link, oms, peer, _Poller(gate, link), stops


def _stop(stops: Path, gave_up: str | None = None) -> None:
    stop = OperatorStop(f"connector.{V}", "maintenance", time.time(), V, gave_up=gave_up)
    write_stops(stops, {f"connector.{V}": stop})


def _fire(oms: StubOms) -> None:
    timers, oms.timers = oms.timers, []
    for _delay, fn in timers:
        fn()


def test_a_request_unanswered_under_a_stop_that_goes_without_a_connected_is_reconciled(
    tmp_path: Path,
) -> None:
    """A stop recorded (the core's, for an edge's connector) that the connector never
    carried out: the PlaceOrder in flight gets no answer (UNKNOWN) and starts no pass while
    the stop holds; once it goes, a pass runs after the backoff and the venue is ready."""
    link, oms, peer, poller, stops = _rig(tmp_path)
    _approved(oms, "q-1")
    link.push("q-1")
    [(request, answer)] = peer.sent
    assert isinstance(request, PlaceOrder)
    _stop(stops)
    poller.poll()
    peer.sent = []
    answer(None)  # no answer by its deadline
    order = oms.book.get("q-1")
    assert order is not None and order.status is OrderStatus.UNKNOWN
    assert peer.sent == [] and oms.timers == []  # held off: its CONNECTED would run it
    stops.unlink()  # the stop went; the connector, logged on all along, sends no CONNECTED
    poller.poll()
    assert [delay for delay, _ in oms.timers] == [1.0]  # oms.reconcile_retry_initial_s
    _fire(oms)
    assert [type(m) for m, _ in peer.sent] == [OpenOrdersRequest]
    _complete_pass(peer, never_seen=("q-1",))
    assert link.ready


def test_a_give_up_read_after_the_new_incarnations_connected_does_not_leave_it_down(
    tmp_path: Path,
) -> None:
    """The give-up of incarnation 7 read only after incarnation 8's CONNECTED (its record
    goes at 8's READY): taken as DISCONNECTED, the logon's pass failed and its retry held
    off. Once the record goes, a pass runs; its answer shows the venue logged on."""
    link, oms, peer, poller, stops = _rig(tmp_path)
    _stop(stops, gave_up="restart_intensity")
    link.on_state(CONNECTED, 8, "logged on")  # the new incarnation, before the poll
    assert [type(m) for m, _ in peer.sent] == [OpenOrdersRequest]
    poller.poll()  # the stale record: the pass to incarnation 8 fails, nothing retried
    assert peer.sent == [] and oms.timers == [] and not link.ready
    stops.unlink()
    poller.poll()
    _fire(oms)
    [(request, answer)], peer.sent = peer.sent, []
    assert isinstance(request, OpenOrdersRequest)
    answer(INCARNATION_8.envelope(OpenOrders(venue=V, orders=[])))  # logged on: it answers
    request, answer = peer.sent.pop(0)
    assert isinstance(request, GetPositions)
    answer(INCARNATION_8.envelope(Positions(source="venue", venue=V, positions=[])))
    assert link.ready and (link.state, link.connector_epoch) == (CONNECTED, 8)


def test_a_stop_going_while_reconciled_or_before_the_connected_asks_nothing_more(
    tmp_path: Path,
) -> None:
    """A stop (an operator's too: actors/oms/venue_stop.py) takes the venue DISCONNECTED;
    one going once the new incarnation's pass reconciled the venue arms no retry; one whose
    connector's CONNECTED comes after it goes runs that pass alone (the retry armed at the
    going sees it began)."""
    link, oms, peer, poller, stops = _rig(tmp_path)
    _stop(stops)
    poller.poll()
    assert not link.ready and link.state is VenueConnState.DISCONNECTED
    link.on_state(CONNECTED, 8, "logged on")  # `start`: its CONNECTED before the poll
    _complete_pass(peer)
    assert link.ready
    stops.unlink()
    poller.poll()
    assert oms.timers == [] and peer.sent == []
    _stop(stops, gave_up="restart_intensity")
    poller.poll()
    stops.unlink()
    poller.poll()
    link.on_state(CONNECTED, 9, "logged on")
    assert [type(m) for m, _ in peer.sent] == [OpenOrdersRequest]
    _fire(oms)
    assert len(peer.sent) == 1  # no second pass
    _complete_pass(peer)
    assert link.ready
