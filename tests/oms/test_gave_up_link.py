"""`StopHold.seen` of a give-up (actors/oms/venue_stop.py): the supervisor gave up on the
venue's connector (the OMS reads it in the stops file). It stands for the DISCONNECTED the
killed process never sent: what the connector never answered fails at once, and nothing
more goes to it until its next incarnation's CONNECTED, whose pass runs at once. Before,
the link stayed CONNECTED and reconciled: the failed PlaceOrder started a pass to the dead
connector, and its periodic passes and cancels went there too, each waiting out
`oms.request_timeout_s` (the pass counted as failing while CONNECTED:
`tradepulse_reconcile_failing` 1)."""

from __future__ import annotations

from actors.oms.venue_link import VenueLink
from actors.runtime.operator_stops import OperatorStop
from protocol.messages import OpenOrdersRequest, OrderStatus, PlaceOrder, VenueConnState
from tests.oms.test_venue_link import (
    CONNECTED,
    CONNECTING,
    StubOms,
    StubPeer,
    V,
    _approved,
    _complete_pass,
    _link,
)


def _gave_up(link: VenueLink, oms: StubOms) -> None:
    """As `OmsActor.poll_stops`: the gate has the record (`stopped_venues`), then the link."""
    oms.gate.stopped_venues = frozenset({V})
    link.stop.seen(OperatorStop(f"connector.{V}", "exit 65", 0.0, V, gave_up="state_corrupt"))


def _trading() -> tuple[VenueLink, StubOms, StubPeer]:
    link, oms, peer = _link()
    link.on_state(CONNECTED, 7, "logged on")
    _complete_pass(peer)
    assert link.ready
    return link, oms, peer


def test_what_the_dead_connector_never_answered_fails_and_no_pass_goes_to_it() -> None:
    link, oms, peer = _trading()
    link.start_reconcile()  # a pass in flight
    _approved(oms, "q-1")
    link.push("q-1")  # and a PlaceOrder
    assert [type(m) for m, _ in peer.sent] == [OpenOrdersRequest, PlaceOrder]
    _gave_up(link, oms)
    order = oms.book.get("q-1")
    assert order is not None and order.status is OrderStatus.UNKNOWN  # the venue decides
    assert peer.sent == [] and oms.timers == []  # no pass, no retry to a dead process
    assert not link.ready and not link.reconciling
    assert link.status_text == "DISCONNECTED"  # not reconcile_failing: it is down
    assert oms.streams[-1] == (
        "venue_state",
        {"venue": V, "state": "DISCONNECTED", "detail": "connector gave up: state_corrupt"},
    )


def test_nothing_is_sent_to_it_until_its_restart_whose_logon_reconciles_at_once() -> None:
    link, oms, peer = _trading()
    _gave_up(link, oms)
    _approved(oms, "q-2")
    link.push("q-2")  # (the OMS rejects a new order first: queued here, never sent)
    assert peer.sent == [] and link.depth == 1
    link.on_state(CONNECTING, 8, "starting")  # the operator's restart
    assert peer.sent == [] and oms.timers == []  # the record goes once it is READY
    oms.gate.stopped_venues = frozenset()
    link.on_state(CONNECTED, 8, "logged on")
    assert [type(m) for m, _ in peer.sent] == [OpenOrdersRequest]  # at once
    _complete_pass(peer, never_seen=("q-2",))
    assert oms.reconciled == [True, False] and link.ready
    assert link.state is VenueConnState.CONNECTED
