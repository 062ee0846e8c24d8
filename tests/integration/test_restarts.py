"""Restarts of single actors in a running system: kill -9, a frozen (SIGSTOPped) actor, and
the operator's `restart ACTOR`. Each incarnation gets a new, strictly greater epoch and the
other actors are left alone."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Callable

import psutil
import pytest

from tests.helpers import REPO_ROOT, SystemUnderTest, eventually, metric_value, process_alive

pytestmark = pytest.mark.integration

HEARTBEAT_INTERVAL_S = 0.2  # the test config's supervisor.heartbeat_interval_s
HANG_LIMIT_S = 3 * HEARTBEAT_INTERVAL_S
SLACK_S = 1.5  # scheduling slack on a loaded 2-core machine


def _others(pids: dict[str, int | None], actor: str) -> dict[str, int | None]:
    return {k: v for k, v in pids.items() if k != actor}


def _documented_events(procedure: str) -> list[str]:
    """The log events the procedures table of docs/runbook.md names for `procedure`, and
    the README's table: an operator greps for these."""
    names: list[str] = []
    for doc in (REPO_ROOT / "docs" / "runbook.md", REPO_ROOT / "README.md"):
        row = next(r for r in doc.read_text().splitlines() if f"| {procedure} |" in r)
        cells = [c.strip() for c in row.strip("|").split("|")]
        column = cells[3] if cells[0].isalnum() and cells[1] == procedure else cells[2]
        names += re.findall(r"`([a-z]+(?:_[a-z]+)+)`", column)
    return names


def _no_zombie_children(pid: int) -> bool:
    return not [c for c in psutil.Process(pid).children() if c.status() == psutil.STATUS_ZOMBIE]


def test_kill9_of_each_actor_restarts_it_with_a_greater_epoch(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """kill -9 of every actor in turn: the supervisor logs the exit with the signal, starts a
    new incarnation (new pid, strictly greater epoch, READY with its crash -> READY time),
    the other actors keep their pids, and no zombie is left behind."""
    sut = start_system()
    actors = sut.actor_ids()
    assert actors[0].startswith("venuesim.") and actors[-1] == "heartbeat"
    for actor in actors:
        before = sut.status()
        old = sut.actor(actor, before)
        pids = {a["id"]: a["pid"] for a in before["actors"]}
        since = sut.mark()
        os.kill(old["pid"], signal.SIGKILL)
        exited = sut.wait_event("actor_exited", since=since, child=actor, pid=old["pid"])
        assert exited["signal"] == "SIGKILL"
        ready = sut.wait_event("actor_ready", since=since, child=actor)
        assert ready["restart_s"] < 5.0
        new = sut.actor(actor)
        assert new["state"] == "running"
        assert new["pid"] != old["pid"] and new["pid"] == ready["pid"]
        assert new["epoch"] > old["epoch"] and new["epoch"] == ready["child_epoch"]
        assert new["restarts"] == old["restarts"] + 1
        assert _others(sut.pids(), actor) == _others(pids, actor)
        assert not process_alive(old["pid"])
    eventually(lambda: _no_zombie_children(sut.proc.pid), 5.0)  # type: ignore[union-attr]
    # the new incarnations heartbeat, and the metrics saw every restart
    final = sut.status()
    assert all(a["heartbeat_age_s"] < HANG_LIMIT_S for a in final["actors"])
    text = sut.metrics_text()
    for actor in actors:
        assert metric_value(text, "tradepulse_actor_restarts_total", actor=actor) == 1
        assert metric_value(text, "tradepulse_actor_up", actor=actor) == 1
    assert metric_value(text, "tradepulse_actor_restart_seconds_count") == len(actors)


@pytest.mark.parametrize("actor", ["risk", "connector.simA"])
def test_sigstopped_actor_is_reported_hung_and_replaced(
    start_system: Callable[..., SystemUnderTest], actor: str
) -> None:
    """A frozen actor (SIGSTOP: its process lives, its loop sends no heartbeat) is logged
    `actor_hung` once 3 heartbeat intervals pass, its process group is killed and a new
    incarnation is READY, all within ~3 intervals plus slack; the others keep their pids."""
    sut = start_system()
    pids = sut.pids()
    old_pid, old_epoch = sut.pid_of(actor), sut.epoch_of(actor)
    since = sut.mark()
    stopped_at = time.monotonic()
    os.kill(old_pid, signal.SIGSTOP)
    try:
        hung = sut.wait_event("actor_hung", since=since, child=actor, timeout_s=10.0)
        hung_after_s = time.monotonic() - stopped_at
        ready = sut.wait_event("actor_ready", since=since, child=actor, timeout_s=10.0)
        replaced_after_s = time.monotonic() - stopped_at
    finally:
        if process_alive(old_pid):
            os.kill(old_pid, signal.SIGCONT)
    assert hung["pid"] == old_pid
    assert hung["heartbeat_age_s"] >= HANG_LIMIT_S - 0.001  # logged rounded to 1 ms
    assert hung_after_s <= HANG_LIMIT_S + SLACK_S
    assert replaced_after_s <= HANG_LIMIT_S + SLACK_S
    exited = sut.wait_event("actor_exited", since=since, child=actor, pid=old_pid)
    assert exited["signal"] == "SIGKILL"
    assert ready["pid"] != old_pid and ready["child_epoch"] > old_epoch
    eventually(lambda: not process_alive(old_pid), 5.0)
    assert _others(sut.pids(), actor) == _others(pids, actor)
    assert sut.actor(actor)["state"] == "running"


def test_restart_command_gives_a_new_epoch(start_system: Callable[..., SystemUnderTest]) -> None:
    """`supervisor.py restart oms`: the old oms is asked to stop (exits 0), a new one is READY
    with a greater epoch, the others keep their pids; an unknown actor is an error."""
    sut = start_system()
    pids = sut.pids()
    old_pid, old_epoch = sut.pid_of("oms"), sut.epoch_of("oms")
    since = sut.mark()
    proc = sut.cli("restart", "oms")
    assert proc.returncode == 0, proc.stderr
    assert "oms restarting" in proc.stdout
    ready = sut.wait_event("actor_ready", since=since, child="oms")
    assert ready["child_epoch"] > old_epoch and ready["pid"] != old_pid
    exited = sut.wait_event("actor_exited", since=since, child="oms", pid=old_pid)
    assert exited["exit_code"] == 0  # a clean stop, not a kill
    sut.wait_event("actor_stopping", since=since, actor="oms", epoch=old_epoch, reason="restart")
    documented = _documented_events("restart one actor")  # the runbook named actor_stopped,
    assert documented and {"actor_spawned", "actor_ready"} <= set(documented)  # never logged
    for event in documented:  # for a restart (only at shutdown)
        assert sut.events(event, since=since, child="oms"), f"runbook names {event}: not logged"
    new = sut.actor("oms")
    assert new["epoch"] == ready["child_epoch"] and new["state"] == "running"
    assert _others(sut.pids(), "oms") == _others(pids, "oms")

    bad = sut.cli("restart", "nosuchactor")
    assert bad.returncode == 1
    assert "unknown actor" in bad.stdout and "oms" in bad.stdout


def test_restart_still_works_after_the_fork_server_died(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """kill -9 of the fork server: the next restart logs `spawn_failed`, starts a new fork
    server and the actor is READY again; the dead fork server is reaped (no zombie)."""
    sut = start_system()
    assert sut.proc is not None
    actor_pids = set(sut.pids().values())
    servers = [c for c in psutil.Process(sut.proc.pid).children() if c.pid not in actor_pids]
    assert len(servers) == 1 and "actors.supervisor.forkserver" in servers[0].cmdline()
    os.kill(servers[0].pid, signal.SIGKILL)
    eventually(lambda: not psutil.pid_exists(servers[0].pid), 5.0)  # reaped by the supervisor
    since = sut.mark()
    old_epoch = sut.epoch_of("risk")
    os.kill(sut.pid_of("risk"), signal.SIGKILL)
    ready = sut.wait_event("actor_ready", since=since, child="risk", timeout_s=15.0)
    assert ready["child_epoch"] > old_epoch
    assert sut.events("spawn_failed", since=since, child="risk")
    new_servers = [
        c for c in psutil.Process(sut.proc.pid).children() if c.pid not in set(sut.pids().values())
    ]
    assert len(new_servers) == 1 and new_servers[0].pid != servers[0].pid
    eventually(lambda: _no_zombie_children(sut.proc.pid), 5.0)  # type: ignore[union-attr]
    assert sut.stop() == 0
