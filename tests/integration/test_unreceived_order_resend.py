"""A NewOrderSingle the connector put on the wire that the venue never read, through the
real system: the venue simulator is stopped (SIGSTOP) with the D in its socket, the
kill-switch engages, and the venue is killed, losing the bytes. Its restart expects the
D's MsgSeqNum and asks for it again (ResendRequest). The FIX session used to answer from
its store with the D itself (PossDupFlag=Y): the market order went to the venue and
filled with the kill-switch engaged, past the OMS's hold, however long the venue had been
down. Now the session answers with a gap fill for a NewOrderSingle: whether the order
goes again is the OMS's decision (reconciliation finds the venue does not know it, and the
hold rejects it instead of resubmitting it)."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

import pytest

from actors.oms.orders import DROPPED_UNSENT
from protocol import paths
from protocol.messages import OrderStatus
from tests.helpers import SystemUnderTest, eventually
from tests.system_ops import client, submit_when_open, venue_order

pytestmark = pytest.mark.integration
VENUE = "simB"
SIM = f"venuesim.{VENUE}"


def _in_fix_store(sut: SystemUnderTest, cl_ord_id: str) -> bool:
    """The connector's FIX store holds a message naming `cl_ord_id`: it was numbered, kept
    and (the store synced first) handed to the socket."""
    store = paths.fix_dir(sut.state_dir, VENUE) / "session.log"
    return b"\x0111=" + cl_ord_id.encode() + b"\x01" in store.read_bytes()


@pytest.mark.parametrize("halt", [True, False], ids=["kill_switch", "no_halt"])
def test_an_order_the_venue_never_read_goes_again_only_by_the_oms(
    start_system: Callable[..., SystemUnderTest], halt: bool
) -> None:
    """With the kill-switch engaged while the venue was down, the order is REJECTED and
    never reaches the venue (it used to fill there). Without a halt, the OMS's pass at the
    logon resubmits it: FILLED, the venue holding it once."""
    hang_s = {"supervisor": {"hang_missed_intervals": 1000}}  # the test's SIGSTOP is no hang
    sut = start_system(overrides=hang_s)
    with client(sut) as c:
        warm = submit_when_open(c, VENUE)  # the session numbered past its logon
        c.wait_for_status(warm.client_order_id, {OrderStatus.ACCEPTED}, timeout_s=10)  # read
        sim = sut.pid_of(SIM)
        os.kill(sim, signal.SIGSTOP)
        order = c.submit(VENUE, "AAPL", "BUY", "10", "MARKET", timeout_s=10)
        coid, venue_id = order.client_order_id, order.cl_ord_id
        eventually(lambda: _in_fix_store(sut, venue_id), 10, message="the D kept and sent")
        since = sut.mark()
        if halt:
            done = sut.cli("kill-switch", "engage", "--reason", "desk halt, venue hung")
            assert done.returncode == 0, done.stdout + done.stderr
        os.kill(sim, signal.SIGKILL)  # the D, unread in its socket, is gone with it
        sut.wait_event("actor_ready", 30.0, since=since, child=SIM)
        sut.wait_event("fix_resend_requested", 30.0, since=since, actor=SIM)
        served = sut.wait_event("fix_resend_served", 30.0, since=since, actor=f"connector.{VENUE}")
        assert served["orders_gap_filled"] == 1, served
        done_statuses = {OrderStatus.REJECTED, OrderStatus.FILLED, OrderStatus.CANCELLED}
        final = c.wait_for_status(coid, done_statuses, timeout_s=60)
        at_venue = venue_order(sut, VENUE, venue_id)
        if halt:
            assert at_venue is None, (final, at_venue)
            assert final.status is OrderStatus.REJECTED, final
            assert final.reason == DROPPED_UNSENT, final  # the OMS's hold
        else:
            assert final.status is OrderStatus.FILLED and final.cum_qty == 10, final
            assert at_venue is not None and at_venue["status"] == "FILLED", at_venue
            sut.wait_event("order_resubmitted", client_order_id=coid)  # sent by the OMS
    assert sut.stop() == 0
