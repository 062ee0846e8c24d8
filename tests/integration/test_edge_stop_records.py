"""The core's record of an operator stop of an edge's connector follows the edge (issue 13):
the edge's supervisor is the source of truth for its actors, its link reports their stops
with each ping, and the core's supervisor aligns its records (its OMS refuses the venue's
orders, its heartbeat counts no outage) whenever the link is up. A `start` that is never
sent leaves the stop recorded; a restart of either supervisor re-aligns the two. Loopback,
two real supervisors (`tests/integration/edge_support.py`)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import SystemUnderTest, eventually
from tests.integration.edge_support import EDGE, VENUE, deploy, link_state

pytestmark = pytest.mark.integration
CONNECTOR = f"connector.{VENUE}"


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[dict[str, Any]]:
    with deploy(tmp_path, link={"down_after_s": 1.0}) as d:  # a lost edge seen in 1 s
        yield d


def _row(core: SystemUnderTest) -> str:
    return str(core.status()["venues"][VENUE]["state"])


def _no_outage_counted(core: SystemUnderTest) -> bool:
    """The core's heartbeat reads the stop: simA's silence is no outage."""
    return VENUE in core.actor("heartbeat")["info"]["stopped_venues"]


def test_the_cores_stop_record_follows_the_edge_through_a_lost_link_and_restarts(
    deployment: dict[str, Any],
) -> None:
    """Stopped from the core: a `start` while the link is down is not sent (exit 3) and the
    core keeps the stop (its heartbeat counts no outage); a restarted core learns the stop
    the edge still holds from the edge's report; a restarted edge forgets its stops (as a
    supervisor on one host does), runs the connector, and the core drops its record."""
    core = deployment["make"]("core").start(wait_ready=False)  # side by side
    edge = deployment["make"](EDGE).start()
    core.wait_ready()
    eventually(lambda: link_state(core, EDGE) == "up", 10.0)
    out = core.cli("stop", CONNECTOR, "--reason", "maint", "--force")
    assert out.returncode == 0, out
    eventually(lambda: edge.actor(CONNECTOR)["state"] == "stopped", 10.0)
    assert _row(core) == "stopped"

    # the link down: `start` is not sent, the stop stays recorded at both ends
    assert edge.proc is not None
    pids = [edge.proc.pid, edge.pid_of("link")]  # the supervisor first (no hang restart)
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        eventually(lambda: link_state(core, EDGE) == "down", 10.0)
        out = core.cli("start", CONNECTOR)
        assert out.returncode == 3 and "not sent" in out.stderr, out
        assert _row(core) == "stopped"
    finally:
        for pid in reversed(pids):
            os.kill(pid, signal.SIGCONT)
    eventually(lambda: link_state(core, EDGE) == "up", 10.0)
    assert _row(core) == "stopped" and edge.actor(CONNECTOR)["state"] == "stopped"
    assert _no_outage_counted(core)

    # the core restarted (its stops file starts empty): the edge's report brings it back
    assert core.stop() == 0
    core = deployment["make"]("core", root=core.root).start()
    eventually(lambda: link_state(core, EDGE) == "up", 10.0)
    eventually(lambda: _row(core) == "stopped", 10.0)
    assert "maint" in core.status()["venues"][VENUE]["detail"]
    eventually(lambda: _no_outage_counted(core), 10.0)
    assert edge.actor(CONNECTOR)["state"] == "stopped"

    # the edge restarted: it runs the connector, and the core's record goes
    assert edge.stop() == 0
    edge = deployment["make"](EDGE, root=edge.root).start()
    eventually(lambda: edge.actor(CONNECTOR)["state"] == "running", 15.0)
    eventually(lambda: link_state(core, EDGE) == "up", 10.0)
    eventually(lambda: _row(core) != "stopped", 10.0)
    eventually(lambda: not _no_outage_counted(core), 10.0)
    assert not core.status()["kill_switch"].get("engaged")
