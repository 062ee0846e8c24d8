"""Big venue answers (issue 16, "work that blocks"): thousands of open orders at one venue,
then a reconciliation, whose mass status makes the venue answer one FIX 8 per order.
Every actor on the way (venue simulator, connector, OMS) must keep its liveness beats
flowing: none is killed as hung, and the pass completes."""

from __future__ import annotations

import pytest

from protocol.messages import RequestRejected, Snapshot, SnapshotRequest
from tests.integration.many_orders import many_orders_overrides, place_resting, wait_open_at_venue
from tests.integration.oms_support import start, systems, trigger_reconcile
from tests.system_ops import VENUE, client

pytestmark = pytest.mark.integration

OPEN_ORDERS = 12_000
HANG_TIMEOUT_S = 0.6  # the tests' supervisor: 3 missed beats of 0.2 s
WATCHED = ("oms", f"venuesim.{VENUE}", f"connector.{VENUE}")


@pytest.mark.timeout(300)  # 12,000 orders placed through the OMS first
def test_reconcile_with_12000_open_orders_kills_no_actor() -> None:
    """With 12,000 orders open at one venue, an operator's `reconcile` (mass status: 12,000
    execution reports in one answer, more than one reply to the OMS carries: refused, so
    the pass asks by order) is answered with a pass that completed (a `reconcile_plan`
    logged, no `reconcile_failed`), no actor is killed as hung and none
    restarted (same epochs), the longest silence the supervisor saw of each stays under the
    hang timeout, and every order is still open in the OMS."""
    with systems() as started:
        sut = start(started, overrides=many_orders_overrides())
        acked = place_resting(sut, OPEN_ORDERS)
        wait_open_at_venue(sut, OPEN_ORDERS)
        epochs = {a: sut.epoch_of(a) for a in WATCHED}
        mark = sut.mark()
        reply = trigger_reconcile(sut, timeout_s=60.0)
        assert reply is not None and reply.status == "ok", reply
        # the plan's line read (it can come after the reply), then the lines before it
        sut.wait_event("reconcile_plan", since=mark, timeout_s=30.0)
        hung = sut.events("actor_hung")
        assert not hung, hung
        assert not sut.events("reconcile_failed", since=mark), sut.describe()
        # too big for one reply to the OMS: refused, and the pass asked by order (H)
        (fallback,) = sut.events("venue_open_orders_unavailable", since=mark)
        assert "over the 10000" in fallback["reason"], fallback
        assert {a: sut.epoch_of(a) for a in WATCHED} == epochs
        status = sut.status()
        gaps = {a: sut.actor(a, status)["heartbeat_gap_max_s"] for a in WATCHED}
        assert all(gap < HANG_TIMEOUT_S for gap in gaps.values()), gaps
        with client(sut) as c:
            views = {v.client_order_id: v for v in c.list_orders(VENUE)}
            assert all(views[coid].status.value == "ACCEPTED" for coid in acked)
            # a subscriber's snapshot after a gap: more open orders than one reply carries,
            # so the OMS refuses SnapshotRequest and the client pages them instead
            refused = c._request(SnapshotRequest())  # noqa: SLF001 - what a gap sends
            assert isinstance(refused, RequestRejected) and "page with" in refused.reason
            snap = c._snapshot()  # noqa: SLF001 - the client's gap recovery
            assert isinstance(snap, Snapshot) and set(acked) <= {
                o.client_order_id for o in snap.orders
            }
        assert sut.actor("oms")["heartbeat_gap_max_s"] < HANG_TIMEOUT_S
        assert sut.epoch_of("oms") == epochs["oms"]
