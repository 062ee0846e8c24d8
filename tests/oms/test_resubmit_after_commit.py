"""A resubmission planned by a reconciliation pass goes to the venue only after the turn's
journal commit that records it (nothing is sent before its journal commit). The pass's last
turn used to dispatch the link's queue itself, in the turn whose records (the `resubmit`
event among them) were not yet committed: a crash between that send and the commit left a
D at the venue that the journal did not know was sent again.

The rig is `tests/oms/test_reconcile_slices.py`'s loop (the real `PlanApplier` on the real
`OrderBook`, the records of a turn committed at its end), with the turn's after-commit
functions run after its commit, as `OmsActor.after_iteration` does."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import structlog

from actors.oms.venue_link import VenueLink
from protocol.codec import Envelope
from protocol.messages import (
    GetPositions,
    Message,
    OpenOrders,
    OpenOrdersRequest,
    OrderStatusAnswer,
    OrderStatusQuery,
    PlaceOrder,
)
from tests.oms.test_reconcile_cut import _answer
from tests.oms.test_reconcile_slices import OMS_EPOCH, Loop, _approved, _cut, _ledger
from tests.oms.test_venue_link import CONNECTED, StubPeer, V, _complete_pass


class CommitLoop(Loop):
    """A turn: what is due, the group commit, then what waits for the commit."""

    def turn(self) -> None:
        super().turn()
        self.commit()  # StubOms: runs the after-commit functions


class WatchingPeer(StubPeer):
    """Notes, for each PlaceOrder, whether records of its order were still uncommitted."""

    def __init__(self, loop: CommitLoop) -> None:
        super().__init__()
        self.loop = loop
        self.uncommitted_at_send: dict[str, list[str]] = {}

    def request(
        self, body: Message, callback: Callable[[Envelope | None], None], timeout_s: float
    ) -> str:
        if isinstance(body, PlaceOrder):
            pending = [
                str(r.get("event") or r["kind"])
                for r in self.loop._pending
                if r.get("id") == body.cl_ord_id  # a placement's ClOrdID is its order's id
            ]
            self.uncommitted_at_send[body.cl_ord_id] = pending
        return super().request(body, callback, timeout_s)


def test_a_resubmitted_order_is_sent_after_the_commit_of_its_resubmit(tmp_path: Path) -> None:
    oms = CommitLoop(tmp_path)
    peer = WatchingPeer(oms)
    link = VenueLink(
        V, oms, peer, request_timeout_s=5.0, log=structlog.get_logger(), rand=lambda: 0.5,
        oms_epoch=OMS_EPOCH,
    )  # fmt: skip
    oms.links[V] = link
    link.on_state(CONNECTED, 7, "logged on")
    _complete_pass(peer)
    # approved by the previous process, which crashed before its D went out
    _approved(oms, "x")
    order = oms.book.get("x")
    assert order is not None
    link.start_reconcile()
    _answer(peer, OpenOrdersRequest, OpenOrders(venue=V, orders=[], cut=_cut()))
    oms.run()
    unknown = OrderStatusAnswer(venue=V, orders=[], unknown=[order.cl_ord_id], cut=_cut())
    assert isinstance(_answer(peer, OrderStatusQuery, unknown), OrderStatusQuery)
    _answer(peer, GetPositions, _ledger())
    oms.run()
    oms.turn()  # the turn after: nothing was left to commit
    assert oms.book.get("x").resubmits == 1  # type: ignore[union-attr]
    sent = [m for m, _ in peer.sent if isinstance(m, PlaceOrder)]
    assert [m.cl_ord_id for m in sent] == ["x"]  # once
    assert peer.uncommitted_at_send == {order.cl_ord_id: []}, (
        "the resubmitted D went out before its journal commit"
    )
    assert any(
        r.get("id") == "x" and r.get("event") == "resubmit" for turn in oms.committed for r in turn
    )
