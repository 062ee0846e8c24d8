"""A never-sent order that an OMS kill -9 left only in the journal (its venue queue died
with the process) is still rejected, not sent, when its venue's connector is stopped:
held at the stop (actors/oms/unsent_guard.py), and reconciliation's Resubmit after the
`start` is rejected instead of reaching the venue."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

import pytest

from actors.oms.orders import DROPPED_STOPPED
from protocol.messages import OrderStatus
from tests.helpers import SystemUnderTest, eventually
from tests.integration.test_operator_intake import _cli, _oms_info, queue_for_down_simb
from tests.system_ops import client, sim_fault, submit_when_open, venue_status

pytestmark = pytest.mark.integration


def test_an_order_queued_before_an_oms_kill_is_rejected_not_sent_after_stop_and_start(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """simB refuses logons: an order to simB queues (PENDING_SUBMIT, never sent). The OMS
    is killed (-9), so its queue is gone. `stop connector.simB --force` holds the order
    (`unsent_orders_held`; still PENDING_SUBMIT: the dead OMS might have sent it). After
    the venue recovers and `start connector.simB`, reconciliation finds the venue never
    saw it: it ends REJECTED ("venue stopped by an operator before the order was sent"),
    and the venue never sees it, while a new simB order is sent as usual."""
    sut = start_system()
    with client(sut) as c:
        view = queue_for_down_simb(sut, c)

        old = sut.pid_of("oms")
        os.kill(old, signal.SIGKILL)
        eventually(
            lambda: (
                sut.actor("oms")["pid"] not in (None, old)
                and sut.actor("oms")["state"] == "running"
            ),
            30.0,
        )
        since = sut.mark()
        _cli(sut, "stop", "connector.simB", "--force", "--reason", "venue incident")
        sut.wait_event("unsent_orders_held", 15.0, since=since, venue="simB")
        eventually(lambda: sut.actor("connector.simB")["state"] == "stopped", 15.0)
        assert c.get_order("queued-b").status is OrderStatus.PENDING_SUBMIT

        sim_fault(sut, "simB", "clear")
        _cli(sut, "start", "connector.simB")
        eventually(lambda: _oms_info(sut)["venues"]["simB"] == "reconciled", 30.0)
        rejected = c.wait_for_status("queued-b", {OrderStatus.REJECTED})
        assert rejected.reason == DROPPED_STOPPED
        sut.wait_event("order_dropped_unsent", 15.0, since=since, client_order_id="queued-b")
        after = submit_when_open(c, "simB", client_order_id="b-after-start")
        eventually(lambda: venue_status(sut, "simB", after.cl_ord_id) is not None, 15.0)
        assert venue_status(sut, "simB", view.cl_ord_id) is None  # never reached the venue
        assert c.get_order("queued-b").status is OrderStatus.REJECTED
