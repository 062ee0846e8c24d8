"""A cancel toward a venue whose connector an operator stopped (`tradepulse stop
connector.simB --force`, orders resting there), through the real supervisor and processes.

Found open in review: the OMS kept the venue CONNECTED and reconciled after the stop, so
the operator's `cancel` (and a client's CancelOrder) was answered "cancel requested" and
handed to the stopped connector's socket: nothing reached the venue, the request waited
out `oms.request_timeout_s` (`venue_request_unconfirmed`: "no connector answer"), and the
socket kept it for the next incarnation, which sent it at `start` before the OMS's
reconciliation pass (whose own resend of the unconfirmed cancel raced it). The OMS now
takes the venue DISCONNECTED at the stop, as for a connector given up on
(actors/oms/venue_stop.py): the cancel is queued, the answer says so and why, and it is
sent once, after the pass that follows `start`."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime

import pytest

from actors.connector.fix.msglog import IN, log_files, parse_line
from protocol import paths
from protocol.messages import OrderStatus
from tests.helpers import SystemUnderTest, event_time, eventually
from tests.system_ops import client, submit_when_open, venue_status

pytestmark = pytest.mark.integration

VENUE = "simB"


def _cancels_at_venue(sut: SystemUnderTest, orig: str) -> list[float]:
    """When the venue received an OrderCancelRequest (35=F) for ClOrdID `orig`."""
    out = []
    for path in log_files(paths.venue_message_log_dir(sut.state_dir, VENUE)):
        for line in path.read_bytes().splitlines():
            entry = parse_line(line)
            if entry is None or entry.direction != IN:
                continue
            fields = entry.raw.split(b"\x01")
            if b"35=F" in fields and b"41=" + orig.encode() in fields:
                out.append(datetime.fromisoformat(entry.ts.replace("Z", "+00:00")).timestamp())
    return out


def test_a_cancel_to_a_stopped_connector_is_queued_saying_so_and_sent_once_after_start(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """Two orders rest at simB; `stop connector.simB --force`. The operator's `cancel` of
    one is taken (exit 0) with an answer saying it is queued at the OMS because the
    connector is stopped by an operator, and that `start` sends it; a client's CancelOrder
    of the other is PENDING_CANCEL, its answer's reason saying the same. The OMS shows simB
    DISCONNECTED ("connector stopped (by operator ...)"), and past the request timeout
    nothing went to the stopped connector (no `venue_request_unconfirmed`) and the venue
    still has both live. After `start`: each cancel reaches the venue exactly once, after
    the reconciliation pass, and the OMS, its views (`orders`, `status`) and the venue
    agree: both CANCELLED, nothing open at simB."""
    timeout_s = 2.0
    oms = {"request_timeout_s": timeout_s, "reconcile_interval_s": 0.5}
    sut = start_system(overrides={"oms": oms})
    coids = ("by-operator", "by-client")
    with client(sut) as c:
        for coid in coids:
            submit_when_open(c, VENUE, "BUY", price="95.00", client_order_id=coid)
            c.wait_for_status(coid, {OrderStatus.ACCEPTED})
        for coid in coids:
            eventually(lambda coid=coid: venue_status(sut, VENUE, coid) == "ACCEPTED", 10.0)

        since = sut.mark()
        stop = sut.cli("stop", f"connector.{VENUE}", "--reason", "maintenance", "--force")
        assert stop.returncode == 0, (stop.stdout, stop.stderr)
        eventually(lambda: sut.actor(f"connector.{VENUE}")["state"] == "stopped", 15.0)
        sut.wait_event("venue_stop_seen", since=since, venue=VENUE)

        op = sut.cli("cancel", "by-operator", "--reason", "desk")
        assert op.returncode == 0, (op.stdout, op.stderr)
        said = op.stdout
        assert said.startswith("ok: by-operator on simB: cancel requested: PENDING_CANCEL"), said
        assert "queued at the OMS, not sent: connector.simB is stopped (by operator" in said, said
        assert "sent once `tradepulse start connector.simB`" in said, said
        answer = c.cancel("by-client")  # a client's CancelOrder: the same note, as its reason
        assert answer.status is OrderStatus.PENDING_CANCEL, answer
        assert answer.reason.startswith("queued at the OMS, not sent: connector.simB is"), answer
        assert "sent once `tradepulse start connector.simB`" in answer.reason, answer
        asked = sut.wait_event("operator_cancel", since=since, client_order_id="by-operator")

        # past both requests' deadline: simA's periodic passes are the clock
        due = event_time(asked) + 2 * timeout_s
        eventually(
            lambda: [e for e in sut.events("reconcile_plan", since=since, venue="simA")
                     if event_time(e) > due],
            30, message="simA's periodic passes",
        )  # fmt: skip
        unsent = sut.events("venue_request_unconfirmed", since=since)
        assert not unsent, unsent  # nothing was handed to the stopped connector
        down = sut.events("venue_state", since=since, actor="oms", venue=VENUE)
        assert [e["state"] for e in down] == ["DISCONNECTED"], down
        assert down[0]["detail"].startswith("connector stopped (by operator"), down
        assert sut.metric("tradepulse_reconcile_failing", venue=VENUE) == 0
        for coid in coids:
            assert c.get_order(coid).status is OrderStatus.PENDING_CANCEL
            assert venue_status(sut, VENUE, coid) == "ACCEPTED"
            assert _cancels_at_venue(sut, coid) == []

        back = sut.mark()
        start = sut.cli("start", f"connector.{VENUE}")
        assert start.returncode == 0, (start.stdout, start.stderr)
        for coid in coids:
            c.wait_for_status(coid, {OrderStatus.CANCELLED}, timeout_s=30)
            eventually(lambda coid=coid: venue_status(sut, VENUE, coid) == "CANCELLED", 10.0)
        plan = sut.wait_event("reconcile_plan", since=back, venue=VENUE)
        for coid in coids:
            [at] = _cancels_at_venue(sut, coid)  # exactly once
            assert at >= event_time(plan), (coid, at, plan)  # after the pass, not before
        eventually(lambda: sut.status()["intake_pauses"]["stopped"] == {}, 10.0)

    listed = sut.cli("orders", "--venue", VENUE, "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)["data"]["orders"]
    assert {(o["client_order_id"], o["status"]) for o in rows} == {
        (coid, "CANCELLED") for coid in coids
    }
    status = eventually(
        lambda: (st := sut.status())["venues"][VENUE]["state"] == "CONNECTED" and st, 15.0
    )
    info = sut.actor("oms", status)["info"]
    assert info["venues"][VENUE] == "reconciled" and info["queues"][VENUE] == 0, info
    assert info["open_at_venue"].get(VENUE, 0) == 0, info
    assert sut.stop() == 0
