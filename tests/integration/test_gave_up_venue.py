"""A connector the supervisor gives up on, through the real system (seen on the demo): its
exec outbox corrupt, killed, its restart meets the bytes (`state_corrupt`, exit 65) and it
stays DOWN. The OMS used to keep its own view of the venue (CONNECTED, reconciled), accept
new orders for it, send them to no connector (UNKNOWN after the request timeout) and resend
them when the connector came back hours later. Now the supervisor records the give-up in
the stops file: a new order for the venue is refused at once, VENUE_DOWN naming the
connector and why; after the operator's repair and `restart`, orders are accepted again. An
order in flight to the connector when it died goes UNKNOWN at once (not at the request
timeout) and, the venue never having had it, is rejected at the restart, not resubmitted."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from typing import Any

import pytest

from actors.oms.orders import DROPPED_GAVE_UP
from protocol import paths
from protocol.client import VenueDown
from protocol.messages import OrderStatus
from tests.helpers import SystemUnderTest, event_time, eventually
from tests.system_ops import client, submit_when_open

pytestmark = pytest.mark.integration

GARBAGE = b"\x09\xd7 not a tradepulse file \xff\x00" * 64


def _oms_sees_gave_up(sut: SystemUnderTest, venue: str) -> dict[str, Any] | None:
    """The OMS's view (its heartbeat info, in status) once it read the record."""
    status = sut.status()
    return status if venue in (status.get("intake_pauses") or {}).get("gave_up", {}) else None


def test_orders_for_a_gave_up_connector_are_refused_at_once_until_its_restart(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    sut = start_system()
    with client(sut) as c:
        submit_when_open(c, "simB")  # the venue trades
    outbox = paths.exec_outbox(sut.state_dir, "simB")
    pid = sut.pid_of("connector.simB")
    os.kill(pid, signal.SIGSTOP)  # it writes nothing more while its file is damaged
    good = outbox.read_bytes()
    outbox.write_bytes(GARBAGE)
    os.kill(pid, signal.SIGKILL)
    gave_up = sut.wait_event("actor_gave_up", child="connector.simB", timeout_s=30)
    assert gave_up["reason"] == "state_corrupt", gave_up
    status = eventually(lambda: _oms_sees_gave_up(sut, "simB"), 10, message="OMS sees it")
    assert status["venues"]["simB"]["state"] == "DOWN", status["venues"]

    with client(sut) as c:
        started = time.monotonic()
        with pytest.raises(VenueDown) as refused:
            c.submit("simB", "AAPL", "BUY", "10", "LIMIT", price="95.00", timeout_s=10)
        took_s = time.monotonic() - started
        assert "connector.simB gave up: state_corrupt" in str(refused.value), refused.value
        assert took_s < sut.cfg.oms.request_timeout_s, took_s  # at once, not after a timeout
        assert submit_when_open(c, "simA").venue == "simA"  # the other venue trades
    assert len(sut.events("actor_spawned", child="connector.simB")) == 2  # never respawned

    outbox.write_bytes(good)  # the operator's repair, then the runbook's restart
    proc = sut.cli("restart", "connector.simB")
    assert proc.returncode == 0, proc.stderr
    with client(sut) as c:  # NotReady until reconciled: waited for
        order = submit_when_open(c, "simB", timeout_s=30)
        assert order.venue == "simB" and order.status != "REJECTED", order
    # the OMS's view reaches status with its next heartbeat: waited for
    eventually(lambda: _oms_sees_gave_up(sut, "simB") is None, 10, message="OMS's view cleared")
    assert sut.stop() == 0


def test_an_order_in_flight_to_the_dead_connector_is_never_sent_later(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """The demo's stale order: accepted (PENDING_SUBMIT) while its connector hung, the
    connector then killed into a corrupt outbox. The OMS learns from the give-up that no
    answer will come: UNKNOWN well before the request timeout; after the repair and
    `restart`, reconciliation finds the venue never had it and it is REJECTED
    (DROPPED_GAVE_UP), not resubmitted hours later to go live."""
    hang_s = {"supervisor": {"hang_missed_intervals": 100}}  # the test's SIGSTOP is no hang
    sut = start_system(overrides=hang_s)
    with client(sut) as c:
        submit_when_open(c, "simB")
        outbox = paths.exec_outbox(sut.state_dir, "simB")
        pid = sut.pid_of("connector.simB")
        os.kill(pid, signal.SIGSTOP)
        good = outbox.read_bytes()
        outbox.write_bytes(GARBAGE)
        stale = c.submit("simB", "AAPL", "BUY", "10", "LIMIT", price="95.00", timeout_s=10)
        assert stale.status is OrderStatus.PENDING_SUBMIT, stale  # sent to a stopped process
        os.kill(pid, signal.SIGKILL)
        sut.wait_event("actor_gave_up", child="connector.simB", timeout_s=30)
        coid = stale.client_order_id
        unknown = c.wait_for_status(coid, {OrderStatus.UNKNOWN}, timeout_s=10)
        assert unknown.reason == "no connector answer", unknown
        sent = sut.events("order_dropped_unsent", client_order_id=coid)
        assert not sent, sent  # it was handed to the connector: only the venue can tell
        # log lines reach the test after the client's reply can: waited for, not read once
        marked = sut.wait_event("venue_request_unconfirmed", client_order_id=coid)
        gave_up = sut.wait_event("connector_gave_up_recorded", child="connector.simB")
        waited_s = _ts(marked) - _ts(gave_up)
        assert waited_s < sut.cfg.oms.request_timeout_s / 2, waited_s  # not its deadline

        outbox.write_bytes(good)
        proc = sut.cli("restart", "connector.simB")
        assert proc.returncode == 0, proc.stderr
        final = c.wait_for_status(coid, {OrderStatus.REJECTED, OrderStatus.ACCEPTED}, timeout_s=30)
        assert final.status is OrderStatus.REJECTED and final.reason == DROPPED_GAVE_UP, final
        assert submit_when_open(c, "simB").venue == "simB"  # new orders go as usual
    assert sut.stop() == 0


def test_a_gave_up_connector_is_taken_as_disconnected_until_its_restart(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """The give-up stands for the DISCONNECTED the killed connector never sent. The OMS kept
    the venue CONNECTED and reconciled: its periodic pass and a cancel went to the dead
    connector, each waited `oms.request_timeout_s`, and the failed pass counted as one
    failing while connected (`tradepulse_reconcile_failing` 1: ReconcileFailing beside
    VenueDown). Now nothing goes to it; after the repair and `restart` the logon's pass runs
    at once and sends the cancel queued meanwhile."""
    timeout_s = 2.0  # the OMS sweeps for passes due every request timeout
    oms = {"request_timeout_s": timeout_s, "reconcile_interval_s": 0.5}
    sut = start_system(overrides={"oms": oms})
    with client(sut) as c:
        coid = submit_when_open(c, "simB").client_order_id
        c.wait_for_status(coid, {OrderStatus.ACCEPTED})  # resting at the venue
        since = sut.mark()
        good = _kill_into_corrupt_outbox(sut, "simB")
        seen = sut.wait_event("venue_stop_seen", since=since, venue="simB", timeout_s=30)
        assert c.cancel(coid).status is OrderStatus.PENDING_CANCEL
        # simA's periodic passes show the sweeps ran: one to simB would have failed by now
        due = event_time(seen) + 3 * timeout_s
        eventually(
            lambda: [e for e in sut.events("reconcile_plan", since=since, venue="simA")
                     if event_time(e) > due],
            30, message="simA's periodic passes",
        )  # fmt: skip
        failed = sut.events("reconcile_failed", since=since, venue="simB")
        void = [e for e in failed if e.get("state") != "DISCONNECTED"]  # (one in flight: ok)
        void += sut.events("venue_request_unconfirmed", since=since, client_order_id=coid)
        assert not void, void  # nothing asked of the dead connector
        down = sut.events("venue_state", since=since, actor="oms", venue="simB")
        assert [e["state"] for e in down] == ["DISCONNECTED"], down
        assert down[0]["detail"] == "connector gave up: state_corrupt", down
        assert sut.metric("tradepulse_reconcile_failing", venue="simB") == 0

        paths.exec_outbox(sut.state_dir, "simB").write_bytes(good)
        back = sut.mark()
        proc = sut.cli("restart", "connector.simB")
        assert proc.returncode == 0, proc.stderr
        c.wait_for_status(coid, {OrderStatus.CANCELLED}, timeout_s=10)
        logon = sut.wait_event("venue_state", since=back, actor="oms", state="CONNECTED")
        plan = sut.wait_event("reconcile_plan", since=back, venue="simB")
        assert event_time(plan) - event_time(logon) < timeout_s, (logon, plan)  # at once
    assert sut.stop() == 0


def test_a_pass_in_flight_at_the_give_up_fails_then_and_the_restart_reconciles_at_once(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """A restarted OMS's first pass for simB is in flight to its connector (stopped, then
    killed into a corrupt outbox) when the supervisor gives up on it: the pass fails at the
    give-up, not at `oms.request_timeout_s`, and after the repair and `restart` the logon's
    pass runs at once (no pass of the dead connector's is taken as still in flight): the
    venue is reconciled, its resting order listed, and intake takes its orders."""
    timeout_s = 10.0
    hang = {"hang_missed_intervals": 100}  # the test's SIGSTOP is no hang
    sut = start_system(overrides={"supervisor": hang, "oms": {"request_timeout_s": timeout_s}})
    with client(sut) as c:
        coid = submit_when_open(c, "simB").client_order_id
        c.wait_for_status(coid, {OrderStatus.ACCEPTED})  # resting at the venue
    os.kill(sut.pid_of("connector.simB"), signal.SIGSTOP)  # it answers nothing now
    since = sut.mark()
    os.kill(sut.pid_of("oms"), signal.SIGKILL)
    sut.wait_event("actor_ready", since=since, child="oms", timeout_s=30)  # its pass is out
    good = _kill_into_corrupt_outbox(sut, "simB")
    recorded = sut.wait_event("connector_gave_up_recorded", since=since, child="connector.simB")
    failed = sut.wait_event("reconcile_failed", since=since, actor="oms", venue="simB")
    assert event_time(failed) - event_time(recorded) < timeout_s / 2, (recorded, failed)

    paths.exec_outbox(sut.state_dir, "simB").write_bytes(good)
    back = sut.mark()
    assert sut.cli("restart", "connector.simB").returncode == 0
    logon = sut.wait_event("venue_state", since=back, actor="oms", state="CONNECTED")
    plan = sut.wait_event("reconcile_plan", since=back, venue="simB", timeout_s=30)
    assert event_time(plan) - event_time(logon) < timeout_s / 2, (logon, plan)  # at once
    with client(sut) as c:
        assert c.get_order(coid).status is OrderStatus.ACCEPTED
        assert submit_when_open(c, "simB").venue == "simB"
    assert sut.stop() == 0


def _kill_into_corrupt_outbox(sut: SystemUnderTest, venue: str) -> bytes:
    """Kill the venue's connector with its exec outbox corrupt: the supervisor gives up on
    it (`state_corrupt`). Returns the outbox's good bytes, for the operator's repair."""
    outbox = paths.exec_outbox(sut.state_dir, venue)
    pid = sut.pid_of(f"connector.{venue}")
    os.kill(pid, signal.SIGSTOP)  # it writes nothing more while its file is damaged
    good = outbox.read_bytes()
    outbox.write_bytes(GARBAGE)
    os.kill(pid, signal.SIGKILL)
    gave_up = sut.wait_event("actor_gave_up", child=f"connector.{venue}", timeout_s=30)
    assert gave_up["reason"] == "state_corrupt", gave_up
    return good


def _ts(event: dict[str, Any]) -> float:
    """A log line's time (its ISO `ts`), in seconds."""
    from datetime import datetime

    return datetime.fromisoformat(str(event["ts"]).replace("Z", "+00:00")).timestamp()
