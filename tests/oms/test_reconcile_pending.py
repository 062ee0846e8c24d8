"""A status answer's `pending` ids (the venue does not know the order yet, but a create of
it may still arrive: a ccxt create whose answer was lost, within its recvWindow) are not
"never seen": the pass treats such an order as in flight. It is neither resubmitted nor,
with the kill switch engaged, rejected as never sent (it may be live at the venue a moment
later, unmanaged), nor escalated; the next pass asks again, and an `unknown` then acts as
before.

The rig is `tests/oms/test_resubmit_after_commit.py`'s (the real `VenueLink`, `PlanApplier`
and `OrderBook`), with the OMS's kill-switch rule for a never-sent order (`drop_unsent`)."""

from __future__ import annotations

import time
from pathlib import Path

import structlog

from actors.oms.orders import DROPPED_UNSENT
from actors.oms.venue_link import VenueLink
from protocol.messages import (
    GetPositions,
    OpenOrders,
    OpenOrdersRequest,
    OrderStatus,
    OrderStatusAnswer,
    OrderStatusQuery,
    PlaceOrder,
    ReplaceOrder,
)
from tests.oms.test_reconcile_cut import _answer
from tests.oms.test_reconcile_slices import (
    OMS_EPOCH,
    D,
    _accepted,
    _approved,
    _cut,
    _ledger,
    _listed,
    _rig,
)
from tests.oms.test_resubmit_after_commit import CommitLoop
from tests.oms.test_venue_link import CONNECTED, StubPeer, V, _complete_pass

KILL_SWITCH = DROPPED_UNSENT  # the OMS's reason


class KillSwitchEngaged(CommitLoop):
    """The OMS with its kill switch engaged: a queued order that never reached the venue
    (PENDING_SUBMIT, not in flight) is rejected instead of sent (`OmsActor.drop_unsent`)."""

    def drop_unsent(self, coid: str, *, out_of_session: bool = False) -> bool:
        order = self.book.get(coid)
        if order is None or order.status is not OrderStatus.PENDING_SUBMIT:
            return False
        if self.links[V].is_in_flight(coid):
            return False
        ts = time.time_ns()
        self.record(
            self.book.apply_venue_status(coid, OrderStatus.REJECTED, ts, reason=KILL_SWITCH)
        )
        return True


def _pass(
    oms: KillSwitchEngaged, peer: StubPeer, link: VenueLink, answer: OrderStatusAnswer
) -> None:
    link.start_reconcile()
    _answer(peer, OpenOrdersRequest, OpenOrders(venue=V, orders=[], cut=_cut()))
    oms.run()
    assert isinstance(_answer(peer, OrderStatusQuery, answer), OrderStatusQuery)
    _answer(peer, GetPositions, _ledger())
    oms.run()
    oms.turn()


def test_a_pending_id_is_in_flight_not_never_seen_and_a_later_unknown_acts_as_before(
    tmp_path: Path,
) -> None:
    oms = KillSwitchEngaged(tmp_path)
    peer = StubPeer()
    link = VenueLink(
        V, oms, peer, request_timeout_s=5.0, log=structlog.get_logger(), rand=lambda: 0.5,
        oms_epoch=OMS_EPOCH,
    )  # fmt: skip
    oms.links[V] = link
    link.on_state(CONNECTED, 7, "logged on")
    _complete_pass(peer)
    _approved(oms, "x")  # sent; the connector's answer was lost: UNKNOWN
    oms.record(oms.book.mark_unknown("x", "no connector answer", time.time_ns()))
    order = oms.book.get("x")
    assert order is not None and order.status is OrderStatus.UNKNOWN
    cl = order.cl_ord_id

    _pass(
        oms, peer, link, OrderStatusAnswer(venue=V, orders=[], unknown=[], pending=[cl], cut=_cut())
    )
    order = oms.book.get("x")
    assert order is not None
    assert (order.status, order.resubmits) == (OrderStatus.UNKNOWN, 0)
    assert not [m for m, _ in peer.sent if isinstance(m, PlaceOrder)]
    plan = oms.plans[-1]
    assert plan.skipped == 1 and not plan.actions, plan  # no resubmit, no escalation

    _pass(oms, peer, link, OrderStatusAnswer(venue=V, orders=[], unknown=[cl], cut=_cut()))
    order = oms.book.get("x")
    assert order is not None
    assert (order.status, order.reason) == (OrderStatus.REJECTED, KILL_SWITCH)  # as before
    assert not [m for m, _ in peer.sent if isinstance(m, PlaceOrder)]


def test_an_order_whose_replace_is_pending_is_not_judged_by_its_old_order(
    tmp_path: Path,
) -> None:
    """x is being replaced (cancel + new at a ccxt venue): the venue answers x CANCELLED
    (the replace's cancel) and the replace's new id `pending` (its create may still
    arrive). The order is in flight for the pass: not marked CANCELLED while its new order
    then rests at the venue."""
    link, oms, peer, log = _rig(tmp_path)
    _accepted(oms, log, "x")
    replace = ReplaceOrder(client_order_id="x", qty=D(2), price=D(94))
    assert oms.book.request_replace(replace, time.time_ns()).applied
    order = oms.book.get("x")
    assert order is not None and order.status is OrderStatus.PENDING_REPLACE
    new_id = order.pending_cl_ord_id
    link.start_reconcile()
    _answer(peer, OpenOrdersRequest, OpenOrders(venue=V, orders=[], cut=_cut()))
    oms.run()
    cancelled = _listed("x", OrderStatus.CANCELLED).model_copy(update={"leaves_qty": D(0)})
    answer = OrderStatusAnswer(
        venue=V, orders=[cancelled], unknown=[], pending=[new_id], cut=_cut()
    )
    query = _answer(peer, OrderStatusQuery, answer)
    assert isinstance(query, OrderStatusQuery) and query.cl_ord_ids == ["x", new_id]
    _answer(peer, GetPositions, _ledger())
    oms.run()
    order = oms.book.get("x")
    assert order is not None and order.status is OrderStatus.PENDING_REPLACE
    assert oms.plans[-1].skipped == 1 and not oms.plans[-1].actions, oms.plans[-1]
