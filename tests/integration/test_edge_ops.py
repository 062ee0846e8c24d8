"""Operator commands for an edge's venue, given to the core (issue 13): `stop`, `fix seq`,
`start` and `restart` of simA's connector (placed on edge-a) are done by the edge's
supervisor through the link, answered at the core and audited on both sides; while the
link is down the core says so in one line and exits 3. systemd's STATUS= line is true at
both ends. Loopback, two real supervisors
(`tests/integration/edge_support.py`)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from actors.connector.fix.store import read_numbers
from actors.runtime.operator_stops import parse_stops
from actors.supervisor.sdnotify import status_line
from protocol import paths
from protocol.client import IntakePaused
from protocol.messages import OrderStatus
from tests.helpers import SystemUnderTest, eventually
from tests.integration.edge_support import EDGE, VENUE, all_pids, deploy, gone, link_state
from tests.system_ops import client, submit_when_open

pytestmark = pytest.mark.integration
CONNECTOR = f"connector.{VENUE}"


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[dict[str, Any]]:
    with deploy(tmp_path, link={"down_after_s": 1.0}) as d:  # a lost edge seen in 1 s
        yield d


def _cli(sut: SystemUnderTest, *argv: str, code: int = 0) -> str:
    out = sut.cli(*argv)
    assert out.returncode == code, f"{argv}: exit {out.returncode}\n{out.stdout}\n{out.stderr}"
    assert "Traceback" not in out.stderr, out.stderr
    return out.stdout + out.stderr


def _edge_audit(edge: SystemUnderTest, command: str, since: int) -> dict[str, Any]:
    line = edge.wait_event("operator_command", since=since, command=command)
    assert line["via"] == "actor:link" and "from the core operator" in line["reason"], line
    return line


def _next_out(edge: SystemUnderTest) -> int:
    """The edge's FIX store's next outbound MsgSeqNum (its file, as `fix seq` reads it)."""
    return read_numbers(paths.fix_dir(edge.cfg.state_path, VENUE))[1]


def test_stop_fix_seq_start_and_restart_of_an_edge_connector_from_the_core(
    deployment: dict[str, Any],
) -> None:
    """From the core: `stop` is refused while the core's OMS counts an order open at simA,
    then (--force) the edge's supervisor stops its connector, the core records it (status
    `stopped`, its OMS refuses simA's orders saying so, its heartbeat counts no outage);
    `fix seq` sets the edge's FIX store; `start` starts the connector again and an order
    fills; each is audited on the edge `via="actor:link"` with the core operator's name.
    With the edge gone, `restart` and `stop` answer in one line naming edge-a and the
    link's state, exit 3, and leave no stop recorded at the core."""
    core = deployment["make"]("core").start(wait_ready=False)  # side by side
    edge = deployment["make"](EDGE).start()
    core.wait_ready()
    eventually(lambda: link_state(core, EDGE) == "up", 10.0)
    with client(core) as c:
        submit_when_open(c, VENUE, qty="5", price="95.00", client_order_id="rest-1")
        c.wait_for_status("rest-1", {OrderStatus.ACCEPTED})
        # systemd's STATUS= line, true at both ends
        up = "ready: 1/1 venues up (1 on an edge, link edge-a up), intake open"
        eventually(lambda: status_line(core.status(), ready=True) == up, 10.0)
        on_edge = "ready: 1/1 venues up (host group edge-a, link core up)"
        eventually(lambda: status_line(edge.status(), ready=True) == on_edge, 10.0)
        oms_open = lambda: core.actor("oms")["info"].get("open_at_venue", {}).get(VENUE)  # noqa: E731
        eventually(lambda: oms_open() == 1, 10.0)
        refused = _cli(core, "stop", CONNECTOR, "--reason", "maint", code=1)
        assert f"1 order(s) open at {VENUE}" in refused
        assert edge.actor(CONNECTOR)["state"] == "running"

        since = edge.mark()
        stopping = _cli(core, "stop", CONNECTOR, "--reason", "maint", "--force")
        assert f"ok: {CONNECTOR} stopping" in stopping, stopping
        eventually(lambda: edge.actor(CONNECTOR)["state"] == "stopped", 10.0)
        _edge_audit(edge, "stop", since)
        row = core.status()["venues"][VENUE]
        assert row["state"] == "stopped" and "maint" in row["detail"], row
        assert row["host_group"] == EDGE
        with pytest.raises(IntakePaused, match=f"{VENUE} is stopped by an operator"):
            c.submit(VENUE, "AAPL", "BUY", "1", "LIMIT", price="95.00", client_order_id="no-1")
        eventually(lambda: VENUE in core.actor("heartbeat")["info"]["stopped_venues"], 10.0)

        # fix seq: the connector is stopped, so the edge's supervisor writes its store
        out = _next_out(edge) + 5
        since = edge.mark()
        seq = _cli(core, "fix", "seq", "--venue", VENUE, "--next-out", str(out), "--reason", "r")
        assert f"-> {out}" in seq, seq
        _edge_audit(edge, "fix-seq", since)
        assert _next_out(edge) == out
        shown = _cli(core, "fix", "seq", "--venue", VENUE, code=1)  # the store is not here
        assert f"runs on host group {EDGE}" in shown, shown

        since, epoch = edge.mark(), edge.actor(CONNECTOR)["epoch"]
        assert core.control("start", actor=CONNECTOR, reason="done").status == "ok"
        eventually(lambda: edge.actor(CONNECTOR)["state"] == "running", 15.0)
        assert edge.actor(CONNECTOR)["epoch"] > epoch
        _edge_audit(edge, "start", since)
        eventually(lambda: core.status()["venues"][VENUE]["state"] != "stopped", 5.0)
        # the core's actors poll the stops file (the OMS's push every 0.1 s): an order sent
        # within that of the start would be dropped as stopped, so wait for them to see it
        eventually(lambda: VENUE not in core.actor("heartbeat")["info"]["stopped_venues"], 10.0)
        submit_when_open(c, VENUE, qty="2", price=None, client_order_id="mkt-1")
        assert c.wait_for_status("mkt-1", {OrderStatus.FILLED}).cum_qty == Decimal(2)

    # the link down (the edge gone): one line, exit 3, nothing recorded at the core
    edge_pids = all_pids(edge)
    assert edge.proc is not None
    os.kill(edge.proc.pid, signal.SIGKILL)  # its actors go with it
    eventually(lambda: gone(edge_pids), 10.0)
    eventually(lambda: core.status()["venues"][VENUE]["link"]["state"] == "down", 10.0)
    out = core.cli("restart", CONNECTOR)
    assert out.returncode == 3, out
    assert out.stdout == "" and len(out.stderr.strip().splitlines()) == 1, out
    assert f"runs on host group {EDGE}" in out.stderr
    assert f"the link to {EDGE} is down" in out.stderr
    assert "Traceback" not in out.stderr
    stop = core.control("stop", actor=CONNECTOR, force=True)
    assert stop.status == "error" and stop.data["unreachable"]["host_group"] == EDGE
    row = core.status()["venues"][VENUE]  # recorded, then dropped: the link's state shown
    assert row["state"] == "remote (link down)" and row["host_group"] == EDGE, row
    stops_file = paths.operator_stops_path(core.runtime_dir)  # what its OMS and heartbeat read
    assert CONNECTOR not in parse_stops(stops_file.read_bytes())
    down = "ready: 0/1 venues up (1 on an edge, link edge-a down), intake open"
    assert status_line(core.status(), ready=True) == down
