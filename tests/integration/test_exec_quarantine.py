"""A poison execution does not block its venue's reconciliation (real processes: supervisor,
risk, OMS, connector, venue sim). The OMS's apply of every execution of one order raises
(fault injected: `TP_FAULT_POISON_EXEC`, actors/oms/exec_quarantine.py). Before, the OMS
answered it INTERNAL and never acked it: the connector sent it again forever, and every
reconcile pass failed ("open orders without a consistent execution cut"), also for a
restarted OMS, which then never opened intake. Now it is quarantined and acked: passes
succeed, the order is set right from the venue's view, intake for the venue stays paused
until an operator resumes it, across an OMS restart."""

from __future__ import annotations

import os
import signal

import pytest

from actors.oms.exec_quarantine import POISON_ENV
from protocol.messages import OrderStatus
from tests.helpers import eventually
from tests.integration.oms_support import overrides, start, systems, trigger_reconcile
from tests.system_ops import VENUE, client, submit_when_open

pytestmark = pytest.mark.integration
POISON = "qp-1"  # its ClOrdID is its client order id


def test_a_poison_execution_is_quarantined_and_reconciliation_goes_on() -> None:
    with systems() as started:
        sut = start(started, env={POISON_ENV: POISON}, overrides=overrides())
        with client(sut) as c:
            submit_when_open(c, VENUE, client_order_id="ok-1")
            c.wait_for_status("ok-1", {OrderStatus.ACCEPTED})
            since = sut.mark()
            submit_when_open(c, VENUE, client_order_id=POISON)
            quarantined = sut.wait_event("execution_quarantined", 15.0, since=since)
            assert quarantined["venue"] == VENUE and quarantined["cl_ord_id"] == POISON
            # the pause the quarantine wrote (persisted: what a restarted OMS reads)
            paused = eventually(
                lambda: (st := sut.status())["intake_pauses"]["venues"].get(VENUE) and st, 10.0
            )
            assert "quarantined" in paused["intake_pauses"]["venues"][VENUE]["reason"]
            # acked: the connector's cuts advance, so a pass succeeds, and it sets the order
            # right from the venue's view (its accepted report was never applied)
            reply = trigger_reconcile(sut, timeout_s=15.0)
            assert reply is not None and reply.status == "ok", reply
            c.wait_for_status(POISON, {OrderStatus.ACCEPTED}, timeout_s=15.0)

            before = sut.mark()
            old = sut.pid_of("oms")
            os.kill(old, signal.SIGKILL)
            ready = sut.wait_event("actor_ready", 30.0, since=before, child="oms")
            # the new OMS reconciles the venue (a consistent cut), but intake stays paused;
            # its epoch: the operator pass's reconcile_plan above can be read after `before`
            sut.wait_event(
                "reconcile_plan", 30.0, since=before, venue=VENUE, epoch=ready["child_epoch"]
            )
            assert sut.events("reconcile_failed", since=before, actor="oms") == []
            status = eventually(
                lambda: (st := sut.status())["intake_pauses"]["venues"].get(VENUE) and st, 10.0
            )
            assert "quarantined" in status["intake_pauses"]["venues"][VENUE]["reason"]
            assert sut.events("execution_quarantined", since=before) == []  # not sent again
