"""The grace also ends when the OMS learns of a new connection from a pass's answer, not
from the CONNECTED state message (`connected_by_answer`). A pass the OMS runs while it does
not see the venue CONNECTED (a retry, a request timeout's pass) can be answered from the new
connection before the connector's CONNECTED arrives (state messages and replies travel on
different sockets); that message then "changes nothing", so if the answer kept the grace,
a resubmission gap-filled at this logon stayed PENDING_SUBMIT for `oms.resubmit_grace_s`.
(Found by a review of 5a6e4f9.)"""

from __future__ import annotations

import time

import structlog

from actors.oms.plan import Resubmit
from actors.oms.venue_link import VenueLink
from protocol.messages import (
    GetPositions,
    OpenOrders,
    OpenOrdersRequest,
    OrderStatusAnswer,
    OrderStatusQuery,
    Positions,
    VenueConnState,
)
from tests.oms.test_venue_link import StubOms, StubPeer, V, _approved, _complete_pass

CONNECTED, DOWN = VenueConnState.CONNECTED, VenueConnState.DISCONNECTED


def _fix_link() -> tuple[VenueLink, StubOms, StubPeer]:
    oms, peer = StubOms(), StubPeer()
    link = VenueLink(
        V, oms, peer, request_timeout_s=5.0, log=structlog.get_logger(),
        rand=lambda: 0.5, ordered_session=True,
    )  # fmt: skip
    return link, oms, peer


def test_a_new_connection_learnt_from_a_pass_answer_ends_the_grace_too() -> None:
    link, oms, peer = _fix_link()
    link.on_state(CONNECTED, 7, "logged on")
    _complete_pass(peer)
    _approved(oms, "r-1")
    order = oms.book.get("r-1")
    assert order is not None
    order.resubmits = 1
    link.resubmitted_at_s["r-1"] = time.monotonic()  # resubmitted on this connection ...
    link.on_state(DOWN, 7, "session dropped")  # ... which died with it unread
    # a pass while DISCONNECTED (its retry timer, a request timeout): the connector is
    # logged on again and answers it before its CONNECTED message reaches the OMS
    link.start_reconcile()
    assert isinstance(peer.answer(OpenOrders(venue=V, orders=[])), OpenOrdersRequest)
    assert link.state is CONNECTED  # connected_by_answer
    query = peer.answer(OrderStatusAnswer(venue=V, orders=[], unknown=[order.cl_ord_id]))
    assert isinstance(query, OrderStatusQuery)
    assert isinstance(peer.answer(Positions(source="venue", venue=V, positions=[])), GetPositions)
    link.on_state(CONNECTED, 7, "logged on")  # the state message, later: changes nothing
    assert peer.sent == []  # no further pass
    plan = oms.plans[-1]
    # the gap-filled resubmission can never arrive: this pass (the only one at this logon)
    # should resubmit it, as the pass started by the CONNECTED message would
    assert [type(a) for a in plan.actions] == [Resubmit], (plan.actions, link.resubmitted_at_s)
