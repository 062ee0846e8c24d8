"""A cancel asked in the instant after `tradepulse stop connector.simB --force` wrote the
stop and the connector exited, but before the OMS's poll of the stops file (every 0.1 s)
read it, through the real supervisor and processes.

Found in review of the operator-stop change (actors/oms/venue_stop.py): the OMS took the
venue DISCONNECTED only at its next poll of the stops file, while the stopped connector
logs out and exits in a few ms (here ~20 ms after the stop is written; the poll came up to
~80 ms after that). A cancel asked in between was handed to the connector's socket with
no process behind it: answered "cancel requested" without the queued note, it waited out
`oms.request_timeout_s` (`venue_request_unconfirmed`), and the socket kept it for the next
incarnation (a DEALER keeps what it could not deliver), which can send it at `start`
ahead of the reconciliation pass that sends it again. The link now reads the stops file
(once a loop turn, as intake does) before it hands a request to the connector: a stop
written is a stop seen, and the supervisor writes it before it asks the connector to stop.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from protocol.messages import OrderStatus
from tests.helpers import SystemUnderTest, event_time, eventually
from tests.integration.test_cancel_at_stopped_venue import _cancels_at_venue
from tests.system_ops import client, submit_when_open, venue_status

pytestmark = pytest.mark.integration

VENUE = "simB"
CONNECTOR = f"connector.{VENUE}"
ROUNDS = 8  # the poll's phase decides each round: about half found the stop read already


def test_a_cancel_asked_once_the_stopped_connector_exited_is_queued_not_handed_to_it(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """Each round: an order rests at simB; `stop --force` (no CLI: the control request
    itself, so the cancel follows within ms); as soon as the supervisor reports the
    connector stopped (its process gone), a client's CancelOrder. Its answer says it is
    queued at the OMS (nothing was handed to the stopped connector), no request goes
    unconfirmed, and after `start` the cancel reaches the venue once, after the pass."""
    timeout_s = 2.0
    sut = start_system(overrides={"oms": {"request_timeout_s": timeout_s}})
    since = sut.mark()
    with client(sut) as c:
        for n in range(ROUNDS):
            coid = f"rest-{n}"
            submit_when_open(c, VENUE, "BUY", price="95.00", client_order_id=coid)
            c.wait_for_status(coid, {OrderStatus.ACCEPTED})
            eventually(lambda coid=coid: venue_status(sut, VENUE, coid) == "ACCEPTED", 10.0)
            stop = sut.control("stop", actor=CONNECTOR, force=True, reason="maintenance")
            assert stop.status == "ok", stop
            eventually(lambda: sut.actor(CONNECTOR)["state"] == "stopped", 10.0, interval_s=0.002)
            answer = c.cancel(coid)
            assert answer.status is OrderStatus.PENDING_CANCEL, answer
            assert answer.reason.startswith("queued at the OMS, not sent"), (n, answer)

            back = sut.mark()
            start = sut.control("start", actor=CONNECTOR)
            assert start.status == "ok", start
            c.wait_for_status(coid, {OrderStatus.CANCELLED}, timeout_s=30)
            eventually(lambda coid=coid: venue_status(sut, VENUE, coid) == "CANCELLED", 10.0)
            plan = sut.wait_event("reconcile_plan", since=back, venue=VENUE)
            eventually(lambda coid=coid: _cancels_at_venue(sut, coid), 10.0)  # its log written
            [at] = _cancels_at_venue(sut, coid)  # exactly once
            assert at >= event_time(plan), (coid, at, plan)  # after the pass, not before
            eventually(lambda: sut.actor("oms")["info"]["venues"][VENUE] == "reconciled", 15.0)
    assert not sut.events("venue_request_unconfirmed", since=since)
    assert sut.stop() == 0
