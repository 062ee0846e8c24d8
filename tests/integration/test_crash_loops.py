"""Crash loops (TP_FAULT_CRASH_ON_START makes an actor exit before READY): growing backoff
delays, then escalation: a connector marks its venue DOWN and the system keeps running; the
OMS over its budget stops the whole system with a non-zero exit."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.helpers import SystemUnderTest, process_alive

pytestmark = pytest.mark.integration

INITIAL_S, FACTOR, MAX_S, JITTER, BUDGET = 0.02, 2.0, 0.3, 0.2, 4
RESTART_POLICY = {
    "supervisor": {
        "restart": {
            "initial_s": INITIAL_S,
            "factor": FACTOR,
            "max_s": MAX_S,
            "jitter": JITTER,
            "max_restarts": BUDGET,
            "window_s": 60.0,
            "reset_after_s": 30.0,
        }
    }
}


def test_connector_crash_loop_backs_off_then_marks_venue_down(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """connector.simA crashes at every start: `actor_restarting` delays grow by the factor
    (within the jitter), after BUDGET restarts `actor_gave_up` is logged once and venue simA
    is DOWN, the rest of the system starts and keeps running, and the connector is still
    retried at the max delay."""
    sut = start_system(
        overrides=RESTART_POLICY,
        env={"TP_FAULT_CRASH_ON_START": "connector.simA"},
        wait_ready=False,
    )
    gave_up = sut.wait_event("actor_gave_up", child="connector.simA", timeout_s=20.0)
    restarting = sut.events("actor_restarting", child="connector.simA")
    delays = [e["delay_s"] for e in restarting[:BUDGET]]
    assert [e["attempt"] for e in restarting[:BUDGET]] == list(range(1, BUDGET + 1))
    for n, delay in enumerate(delays, start=1):
        base = INITIAL_S * FACTOR ** (n - 1)
        assert base * (1 - JITTER) - 1e-3 <= delay <= base * (1 + JITTER) + 1e-3, delays
    assert delays == sorted(delays) and len(set(delays)) == BUDGET  # strictly growing
    assert gave_up["restarts"] == BUDGET + 1
    assert not gave_up.get("critical")

    # the rest of the system comes up without the DOWN connector
    others = [a for a in sut.actor_ids() if a != "connector.simA"]
    status = sut.wait_ready(actors=others)
    assert status["venues"]["simA"]["state"] == "DOWN"
    assert status["venues"]["simB"]["state"] != "DOWN"
    assert sut.actor("connector.simA", status)["state"] in {"down", "starting", "backoff"}

    # still retried, at the max delay, without a new give-up per retry
    mark = sut.mark()
    sut.wait_events("actor_exited", 2, since=mark, child="connector.simA", timeout_s=10.0)
    later = sut.events("actor_restarting", since=mark, child="connector.simA")
    assert later and all(e["delay_s"] == MAX_S for e in later)
    assert len(sut.events("actor_gave_up", child="connector.simA")) == 1
    assert sut.metric("tradepulse_venue_down", venue="simA") == 1
    assert sut.proc is not None and sut.proc.poll() is None
    assert sut.stop() == 0


def test_oms_crash_loop_stops_the_system_with_nonzero_exit(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """oms crashes at every start: after its budget the supervisor logs `actor_gave_up`
    (critical), stops every actor it started and exits non-zero."""
    sut = start_system(
        overrides=RESTART_POLICY, env={"TP_FAULT_CRASH_ON_START": "oms"}, wait_ready=False
    )
    code = sut.wait_exit(timeout_s=20.0)
    assert code != 0
    gave_up = sut.wait_event("actor_gave_up", child="oms", timeout_s=1.0)
    assert gave_up["critical"] is True
    assert len(sut.events("actor_restarting", child="oms")) == BUDGET
    started = {e["pid"] for e in sut.events("actor_spawned")}
    assert not [p for p in started if process_alive(p)]
    # every other actor it started is stopped once, in reverse start order: risk and the
    # venues' chains (a simulator, then its connector) start beside each other, so the
    # order across chains varies; within a venue, its connector goes before its simulator
    stopped = [e["child"] for e in sut.events("actor_stopped", actor="supervisor")]
    spawned = {e["child"] for e in sut.events("actor_spawned")} - {"oms"}
    assert sorted(stopped) == sorted(spawned) and "risk" in stopped
    assert {"venuesim.simA", "venuesim.simB"} <= spawned
    for venue in ("simA", "simB"):
        if f"connector.{venue}" in stopped:
            assert stopped.index(f"connector.{venue}") < stopped.index(f"venuesim.{venue}")
    shutdown = sut.wait_event("loop_shutdown", timeout_s=1.0)
    assert shutdown["exit_code"] == code
    assert not sut.events("actor_spawned", child="heartbeat")  # never got that far
