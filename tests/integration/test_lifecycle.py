"""The supervisor's own lifecycle: graceful shutdown, kill -9 of the supervisor, the state dir
lock, and the `status` command's contents."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from actors.risk import killswitch
from protocol import paths
from tests.helpers import (
    SUPERVISOR,
    SystemUnderTest,
    eventually,
    kill_and_reap,
    process_alive,
)

pytestmark = pytest.mark.integration

ACTOR_FIELDS = {
    "id": str, "pid": int, "state": str, "epoch": int, "restarts": int, "uptime_s": float,
    "heartbeat_age_s": float, "rss_bytes": int, "cpu_percent": float, "endpoints": dict,
}  # fmt: skip


@pytest.mark.parametrize("how", ["SIGTERM", "SIGINT", "shutdown_command"])
def test_graceful_shutdown_stops_actors_in_reverse_order(
    start_system: Callable[..., SystemUnderTest], how: str
) -> None:
    """SIGTERM, SIGINT or `supervisor.py shutdown`: every actor is sent STOP and exits by
    itself in reverse start order (no escalation to signals), `loop_shutdown` is the
    supervisor's last event, the exit code is 0 and no actor process is left."""
    sut = start_system()
    status = sut.status()
    order = [a["id"] for a in status["actors"]]
    pids = [a["pid"] for a in status["actors"]]
    if how == "shutdown_command":
        proc = sut.cli("shutdown")
        assert proc.returncode == 0 and "shutting down" in proc.stdout, proc.stderr
        code = sut.wait_exit()
    else:
        code = sut.stop(getattr(signal, how))
    assert code == 0
    stopped = sut.events("actor_stopped", actor="supervisor")
    assert [e["child"] for e in stopped] == list(reversed(order))
    assert all(e["exit_code"] == 0 for e in stopped)
    for actor in order:  # each actor ran its own orderly stop
        assert sut.events("actor_stopping", actor=actor, reason="shutdown"), actor
    assert not sut.events("actor_stop_escalated")
    assert not sut.events("actor_restarting")
    supervisor_events = [e["event"] for e in sut.events(actor="supervisor")]
    assert supervisor_events[-1] == "loop_shutdown"
    assert sut.events("loop_shutdown")[0]["exit_code"] == 0
    assert not [p for p in pids if process_alive(p)]
    started = time.monotonic()
    after = sut.cli("status")  # says "not running" at once, not after its request timeout
    assert after.returncode == 3 and "no supervisor running" in after.stderr
    assert time.monotonic() - started < 5.0


def test_shutdown_command_logs_shutdown_requested(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """`tradepulse shutdown` logs `shutdown_requested` before the actors stop, as SIGTERM
    and SIGINT do: the runbook's shutdown procedure (10) names it for all three."""
    sut = start_system()
    proc = sut.cli("shutdown")
    assert proc.returncode == 0, proc.stderr
    assert sut.wait_exit() == 0
    events = [e["event"] for e in sut.events(actor="supervisor")]
    assert "shutdown_requested" in events, events[-5:]
    assert events.index("shutdown_requested") < events.index("actor_stopped")


@pytest.mark.parametrize("spawn", ["forkserver", "exec"])
def test_kill9_of_supervisor_leaves_no_actor_alive_after_1s(
    start_system: Callable[..., SystemUnderTest], spawn: str
) -> None:
    """kill -9 of the supervisor: every actor (and the fork server) dies with it within 1 s,
    whichever way the actors were spawned; nothing keeps running."""
    sut = start_system(overrides={"supervisor": {"spawn": spawn}})
    assert sut.proc is not None
    actor_pids = [a["pid"] for a in sut.status()["actors"]]
    descendants = [p.pid for p in psutil.Process(sut.proc.pid).children(recursive=True)]
    assert set(actor_pids) <= set(descendants)  # plus the fork server, if any
    killed_at = time.monotonic()
    os.kill(sut.proc.pid, signal.SIGKILL)
    eventually(lambda: not any(process_alive(p) for p in descendants), 1.0, interval_s=0.005)
    assert time.monotonic() - killed_at <= 1.0 + 0.1  # the poll's own granularity
    assert sut.proc.wait(timeout=5) == -signal.SIGKILL
    stale = sut.cli("status", timeout_s=5.0)  # its control socket file is left behind
    assert stale.returncode == 3 and "no supervisor running" in stale.stderr
    # dead, not lingering: once reaped (we are their subreaper now) the pids are gone
    kill_and_reap(descendants)
    assert not [p for p in descendants if psutil.pid_exists(p)]


def test_second_supervisor_on_the_same_state_dir_is_refused(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """A second `run` on a locked state dir exits at once with code 3 and says who holds
    it; the first system is untouched. After the first stops, the lock is free again."""
    sut = start_system()
    pids = sut.pids()
    started = time.monotonic()
    second = sut.run_tool([str(SUPERVISOR), "run", *sut.cli_args(), "--metrics-port", "0"], 30)
    assert time.monotonic() - started < 10.0
    assert second.returncode == 3, second.stderr
    assert "locked" in second.stderr and str(sut.state_dir) in second.stderr
    assert f"pid {sut.proc.pid}" in second.stderr  # type: ignore[union-attr]
    assert second.stdout == ""  # it started nothing, logged nothing
    assert sut.pids() == pids
    assert sut.stop() == 0

    again = SystemUnderTest(root=sut.root).start()
    try:
        epochs = {a["epoch"] for a in again.status()["actors"]}
        assert min(epochs) > max(e["child_epoch"] for e in sut.events("actor_spawned"))
        assert again.stop() == 0
    finally:
        again.destroy()


def test_status_json_has_every_field(start_system: Callable[..., SystemUnderTest]) -> None:
    """`status --json`: one envelope {status, reason, data}; per actor id, pid, state, epoch,
    restarts, uptime_s, heartbeat_age_s, rss_bytes, cpu_percent, endpoints; the venues with
    their state; the kill-switch."""
    sut = start_system()
    eventually(lambda: all(a["rss_bytes"] > 0 for a in sut.status()["actors"]), 10.0)
    proc = sut.cli("status", "--json")
    assert proc.returncode == 0, proc.stderr
    reply = json.loads(proc.stdout)
    assert reply["status"] == "ok" and "reason" in reply
    data = reply["data"]
    assert [a["id"] for a in data["actors"]] == [
        "venuesim.simA", "venuesim.simB", "risk", "oms", "connector.simA", "connector.simB",
        "heartbeat",
    ]  # fmt: skip
    for actor in data["actors"]:
        for name, typ in ACTOR_FIELDS.items():
            value = actor[name]
            ok = isinstance(value, typ) or (typ is float and isinstance(value, int))
            assert ok, (actor["id"], name, value)
        assert actor["state"] == "running" and actor["restarts"] == 0
        assert actor["uptime_s"] > 0 and 0 <= actor["heartbeat_age_s"] < 0.6
        assert actor["rss_bytes"] > 1_000_000 and actor["cpu_percent"] >= 0
        router = actor["endpoints"]["router"]
        assert router == f"ipc://{sut.runtime_dir}/{actor['id']}.sock"
        assert psutil.Process(actor["pid"]).is_running()
    assert set(data["venues"]) == {"simA", "simB"}
    assert all("state" in v for v in data["venues"].values())
    assert isinstance(data["kill_switch"]["engaged"], bool)
    assert data["supervisor_pid"] == sut.proc.pid  # type: ignore[union-attr]
    assert data["metrics_url"].startswith("http://127.0.0.1:")

    table = sut.cli("status")
    assert table.returncode == 0
    lines = table.stdout.splitlines()
    assert lines[0].split()[:5] == ["ACTOR", "PID", "STATE", "EPOCH", "RESTARTS"]
    for actor in data["actors"]:
        assert any(
            line.split()[:3] == [actor["id"], str(actor["pid"]), "running"] for line in lines
        )
    assert "kill-switch:" in table.stdout and "simA" in table.stdout
    assert not sut.events("bad_message")  # the CLI's liveness probe is not a bad frame


def test_status_without_a_running_supervisor_exits_3(short_tmp: Path) -> None:
    """The CLI says no supervisor is running (exit 3) instead of hanging: each command
    returns well before its 60 s deadline (a loaded CI runner takes ~4 s to start one)."""
    sut = SystemUnderTest(root=short_tmp)  # config written, nothing started
    for args in (("status",), ("status", "--json"), ("shutdown",), ("restart", "oms")):
        started = time.monotonic()
        proc = sut.cli(*args, "--timeout-s", "60", timeout_s=90.0)
        assert proc.returncode == 3, (args, proc.stdout, proc.stderr)
        assert time.monotonic() - started < 30.0, args
    assert json.loads(sut.cli("status", "--json").stdout)["status"] == "error"


def test_start_overlaps_the_simulated_venues_with_the_core(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """The simulators are spawned at once and load their books while risk and the OMS
    start (they were spawned only after every simulator was READY); each connector starts
    only after its own simulator is READY (not after the OMS: restart_policy.start_plan),
    the core one after the other, the heartbeat once everything else is READY."""
    sut = start_system()
    log = [
        (e["event"], e["child"])
        for e in sut.events(actor="supervisor")
        if e["event"] in ("actor_spawned", "actor_ready")
    ]
    sims = [c for _, c in log if c.startswith("venuesim.")]
    assert sims, log
    spawned_risk = log.index(("actor_spawned", "risk"))
    assert all(log.index(("actor_ready", s)) > spawned_risk for s in sims), log
    assert log.index(("actor_ready", "risk")) < log.index(("actor_spawned", "oms")), log
    for sim in sims:
        venue = sim.split(".", 1)[1]
        connector = log.index(("actor_spawned", f"connector.{venue}"))
        assert log.index(("actor_ready", sim)) < connector, log
    heartbeat = log.index(("actor_spawned", "heartbeat"))
    assert all(log.index(("actor_ready", c)) < heartbeat for _, c in log if c != "heartbeat"), log


def test_a_corrupt_journal_refuses_startup_in_one_line_without_a_traceback(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """docs/runbook.md, Warm start: a corrupt journal (not a torn tail) refuses startup with
    `JournalCorrupt` naming file and offset; Exit codes: `run` ends with one stderr line
    naming the problem, never a traceback. Seen on the demo (a flipped byte in
    state/oms/snapshot.bin): the OMS crash-looped, one Python traceback on stderr per try,
    until its restart budget ran out (kill-switch engaged, exit 1)."""
    sut = start_system()
    assert sut.stop() == 0
    switch = killswitch.kill_switch_path(sut.state_dir)
    assert not killswitch.load(switch).engaged
    snapshot = paths.oms_dir(sut.state_dir) / "snapshot.bin"
    data = bytearray(snapshot.read_bytes())
    data[len(data) // 2] ^= 0xFF
    snapshot.write_bytes(bytes(data))
    budget = {"supervisor": {"restart": {"max_restarts": 3}}}  # a loop, if any, ends soon
    again = SystemUnderTest(root=sut.root, overrides=budget).start(wait_ready=False)
    try:
        code = again.wait_exit(timeout_s=60)
        tracebacks = [line for line in again.stderr_lines if "Traceback" in line]
        # 2: the same start fails the same way until an operator acts (never restarted)
        assert code == 2 and not tracebacks, (code, again.stderr_lines[:20])
        assert any("corrupt" in line and str(snapshot) in line for line in again.stderr_lines)
        (corrupt,) = again.events("state_corrupt", actor="oms")
        assert corrupt["path"] == str(snapshot)
        assert len(again.events("actor_spawned", child="oms")) == 1  # not restarted
        state = killswitch.load(switch)  # fail closed: no trading until an operator decides
        assert state.engaged and state.reason == "oms_state_corrupt", state
    finally:
        again.destroy()
