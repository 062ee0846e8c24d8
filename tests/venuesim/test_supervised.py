"""The venue sim as the supervisor runs it: spawned first, READY after its port file is
written, controlled through its own ROUTER, restarted after kill -9 on the same port
with its book intact."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from collections.abc import Callable

import pytest

from protocol.paths import sim_port_file
from tests.helpers import SystemUnderTest, eventually

pytestmark = pytest.mark.integration
SIM = "venuesim.simA"


def _sim_cli(sut: SystemUnderTest, *args: str) -> subprocess.CompletedProcess[str]:
    return sut.run_tool(["-m", "actors.venuesim", *args], timeout_s=30)


def test_supervised_sim_port_control_heartbeat_info_and_restart(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """The supervisor's venuesim.simA writes its port file before READY and listens there;
    a fault set with `python -m actors.venuesim control` shows in the supervisor's
    status (heartbeat info); after kill -9 the supervisor restarts it on the same port,
    and inspect reads its state dir; log lines carry the venue."""
    sut = start_system(venues=("simA",), wait_ready=False)
    sut.wait_ready(actors=[SIM])
    port = int(sim_port_file(sut.runtime_dir, "simA").read_text())
    socket.create_connection(("127.0.0.1", port), timeout=5).close()
    ctl = ["control", *sut.cli_args(), "--venue", "simA"]
    done = _sim_cli(sut, *ctl, "reject_next", "--value", "3", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["data"]["faults"] == {"reject_next": 3}
    eventually(lambda: sut.actor(SIM)["info"].get("faults") == {"reject_next": 3}, 5.0)
    assert sut.actor(SIM)["info"]["port"] == port

    pid = sut.pid_of(SIM)
    os.kill(pid, signal.SIGKILL)
    eventually(
        lambda: sut.actor(SIM)["pid"] not in (None, pid) and sut.actor(SIM)["state"] == "running",
        15.0,
    )
    assert int(sim_port_file(sut.runtime_dir, "simA").read_text()) == port
    assert sut.actor(SIM)["info"]["port"] == port
    inspected = _sim_cli(
        sut, "inspect", "--state-dir", str(sut.state_dir), "--venue", "simA", "--json"
    )
    assert inspected.returncode == 0, inspected.stderr
    assert json.loads(inspected.stdout)["book_id"]
    # running in status (over ZeroMQ); the new simulator's line is read by a thread
    listening = sut.wait_events("sim_listening", 2)
    assert all(e["venue"] == "simA" and e["port"] == port for e in listening)
