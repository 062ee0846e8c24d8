"""A FIX venue's new connection ends every resubmission's grace (`VenueLink.on_state`): the
connection brings no earlier one's NewOrderSingle (the venue read it before the logon, or
gets a gap fill for it: fix transmit), so the pass at the logon judges each such order at
once instead of leaving it PENDING_SUBMIT for `oms.resubmit_grace_s`. The first state an
OMS process hears tells it nothing of connections (the previous process's resubmission
may be on its way on this one): the grace stays. A ccxt venue's creates have no
connection order: the grace stays there too."""

from __future__ import annotations

import structlog

from actors.oms.venue_link import VenueLink
from protocol.messages import OpenOrders, OpenOrdersRequest, VenueConnState
from tests.oms.test_venue_link import StubOms, StubPeer, V, _complete_pass

CONNECTED, DOWN = VenueConnState.CONNECTED, VenueConnState.DISCONNECTED


def _link(*, ordered: bool = True, peer: StubPeer | None = None) -> VenueLink:
    return VenueLink(
        V, StubOms(), peer or StubPeer(), request_timeout_s=5.0, log=structlog.get_logger(),
        rand=lambda: 0.5, ordered_session=ordered,
    )  # fmt: skip


def test_a_fix_logon_after_a_drop_ends_every_resubmission_grace() -> None:
    link = _link()
    link.on_state(CONNECTED, 7, "logged on")
    link.resubmitted_at_s["c1"] = 100.0
    link.on_state(DOWN, 7, "session dropped")
    assert link.resubmitted_at_s == {"c1": 100.0}  # on its way, or lost: not known yet
    link.on_state(CONNECTED, 7, "logged on")
    assert link.resubmitted_at_s == {}


def test_a_restarted_connectors_logon_ends_the_grace() -> None:
    link = _link()
    link.on_state(CONNECTED, 7, "logged on")
    link.resubmitted_at_s["c1"] = 100.0
    link.on_state(CONNECTED, 8, "logged on")  # its DISCONNECTED never reached us
    assert link.resubmitted_at_s == {}


def test_the_first_state_an_oms_hears_keeps_the_grace() -> None:
    """A restarted OMS: the connector may be on the connection its previous process sent a
    resubmission on; that one is given its grace (seeded at the first pass), not judged."""
    link = _link()
    link.resubmitted_at_s["c1"] = 100.0
    link.on_state(CONNECTED, 7, "logged on")
    assert link.resubmitted_at_s == {"c1": 100.0}


def test_a_ccxt_venue_keeps_the_grace_across_logons() -> None:
    link = _link(ordered=False)
    link.on_state(CONNECTED, 7, "logged on")
    link.resubmitted_at_s["c1"] = 100.0
    link.on_state(DOWN, 7, "session dropped")
    link.on_state(CONNECTED, 7, "logged on")
    assert link.resubmitted_at_s == {"c1": 100.0}


def test_a_reconnect_whose_states_were_lost_is_a_logon() -> None:
    """Across hosts the link drops what it cannot send, and the connector sends only its
    current state again: a partition over a venue reconnect shows the OMS CONNECTED then
    CONNECTED. At a later state version that is a new connection: the grace ends and the
    logon's pass runs (before: no change, the order waited out the grace and the next
    periodic pass, up to a minute)."""
    peer = StubPeer()
    link = _link(peer=peer)
    link.on_state(CONNECTED, 7, "logged on", 2)
    _complete_pass(peer)
    link.resubmitted_at_s["c1"] = 100.0
    link.on_state(CONNECTED, 7, "logged on", 2)  # the same state again (a refresh): nothing
    assert link.reconciled and link.resubmitted_at_s == {"c1": 100.0} and peer.sent == []
    link.on_state(CONNECTED, 7, "logged on", 4)  # DISCONNECTED 3 lost on the way
    assert link.resubmitted_at_s == {} and not link.reconciled
    assert [type(body) for body, _ in peer.sent] == [OpenOrdersRequest]  # the logon's pass


def test_the_connected_after_one_learnt_by_answer_is_not_a_reconnect() -> None:
    """The OMS took the venue CONNECTED from a pass's answer (its state message late): that
    message, whatever its version, is the same connection, not a new one."""
    link = _link()
    link.on_state(VenueConnState.CONNECTING, 7, "starting", 1)
    link.connected_by_answer(7)
    link.resubmitted_at_s["c1"] = 100.0
    link.on_state(CONNECTED, 7, "logged on", 2)
    assert link.resubmitted_at_s == {"c1": 100.0}


def _answered_from_a_new_connection() -> tuple[VenueLink, StubPeer]:
    """CONNECTED at version 2, a resubmission "old" in its grace; the connection drops and
    another logs on (versions 3-5) while the link is down: the first pass once it is back
    is answered from the new connection, before its CONNECTED comes again (resent every
    second). The pass then resubmits "c1" on that connection."""
    peer = StubPeer()
    link = _link(peer=peer)
    link.on_state(CONNECTED, 7, "logged on", 2)
    _complete_pass(peer)
    link.resubmitted_at_s["old"] = 100.0
    link.start_reconcile()
    peer.answer(OpenOrders(venue=V, orders=[], version=5))  # its logon: "old" gap-filled
    link.resubmitted_at_s["c1"] = 200.0
    return link, peer


def test_the_connected_of_a_connection_a_pass_was_answered_from_is_no_new_logon() -> None:
    """The answer's state version is that connection's logon; its CONNECTED at the same
    version, come late, is no new connection: "c1", sent on it, keeps its grace (before:
    the late CONNECTED ended it, and the next pass could send c1 again while the first was
    on its way). The grace of "old", sent on the connection that dropped, ended at the
    answer."""
    link, _ = _answered_from_a_new_connection()
    link.on_state(CONNECTED, 7, "logged on", 5)
    assert link.resubmitted_at_s == {"c1": 200.0}


def test_a_state_older_than_the_answer_is_stale() -> None:
    """On one host too: the states of the reconnect (on the connector's DEALER) are read
    after the answer (on the OMS's): the DISCONNECTED and CONNECTING are older than what
    the answer told, and the CONNECTED no new connection: "c1" keeps its grace."""
    link, _ = _answered_from_a_new_connection()
    link.on_state(DOWN, 7, "session dropped", 3)
    link.on_state(VenueConnState.CONNECTING, 7, "attempt 1", 4)
    assert link.state is CONNECTED
    link.on_state(CONNECTED, 7, "logged on", 5)
    assert link.resubmitted_at_s == {"c1": 200.0} and link.state is CONNECTED
