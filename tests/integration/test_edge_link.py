"""Across hosts on loopback: a core supervisor and an edge supervisor (two real processes,
their own state and runtime dirs) with the simulated FIX venue `simA` placed on the edge,
linked over tcp + CurveZMQ (actors/link). Orders flow end to end; a supervisor whose key
the core does not list gets nothing; kill -9 of the edge supervisor and a restart: the
venue is reconciled, nothing lost or doubled."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from protocol.messages import OrderStatus
from tests.helpers import SystemUnderTest, eventually
from tests.integration.edge_support import VENUE, all_pids, deploy, gone, link_state
from tests.system_ops import client, submit_when_open, venue_orders

pytestmark = pytest.mark.integration


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[dict[str, Any]]:
    with deploy(tmp_path) as d:
        yield d


def _at_venue(sut: SystemUnderTest, coid: str) -> dict[str, Any]:
    """The venue's one order of client order id `coid` (its ClOrdIDs derive from it)."""
    held = [o for o in venue_orders(sut, VENUE) if any(coid in i for i in o["cl_ord_ids"])]
    assert len(held) == 1, (coid, held)
    return held[0]


def test_orders_flow_core_to_edge_strangers_get_nothing_and_an_edge_restart_loses_nothing(
    deployment: dict[str, Any],
) -> None:
    """Core (risk, OMS, link, heartbeat) and edge (sim, link, connector) as two supervisors:
    a market order fills end to end across the link, and again after kill -9 of either
    end's link actor (restarted by its supervisor); a supervisor holding the core's public
    key but a secret key the core does not list is refused (peer_refused at the core's
    link, its link never up) while orders keep flowing; kill -9 of the edge supervisor takes
    its actors with it, an order taken meanwhile is sent once the restarted edge's venue is
    reconciled, and the venue holds each order exactly once, as the OMS does; kill -9 of the
    core: the edge's dead-man switch cancels the resting order after core_loss_cancel_s."""
    make = deployment["make"]
    core = make("core").start()
    assert core.actor_ids() == ["risk", "oms", "link", "heartbeat"]
    edge = make("edge-a").start()
    assert edge.actor_ids() == [f"venuesim.{VENUE}", "link", f"connector.{VENUE}"]
    eventually(lambda: link_state(edge, "core") == "up", 10.0)
    with client(core) as c:
        submit_when_open(c, VENUE, qty="10", price=None, client_order_id="mkt-1")
        assert c.wait_for_status("mkt-1", {OrderStatus.FILLED}).cum_qty == Decimal(10)
        submit_when_open(c, VENUE, qty="5", price="95.00", client_order_id="rest-1")
        c.wait_for_status("rest-1", {OrderStatus.ACCEPTED})
    row = core.status()["venues"][VENUE]
    assert row["host_group"] == "edge-a" and row["link"]["state"] == "up"
    eventually(lambda: core.status()["venues"][VENUE]["link"]["rtt_ms"] is not None, 5.0)
    assert core.metric("tradepulse_link_up", peer="edge-a") == 1
    assert edge.metric("tradepulse_link_up", peer="core") == 1
    assert "link to core: up" in edge.cli("status").stdout

    # `restart connector.simA` on the core: done by the edge's supervisor, across the link
    before, since = edge.actor(f"connector.{VENUE}"), edge.mark()
    out = core.cli("restart", f"connector.{VENUE}", "--reason", "test")
    assert out.returncode == 0 and f"connector.{VENUE} restarting" in out.stdout, out
    eventually(lambda: edge.actor(f"connector.{VENUE}")["epoch"] > before["epoch"], 10.0)
    audited = edge.wait_event("operator_command", since=since, command="restart")
    assert audited["via"] == "actor:link" and "from the core operator" in audited["reason"]
    refused = core.cli("restart", f"connector.{VENUE}x")
    assert refused.returncode == 1 and "unknown actor" in refused.stderr + refused.stdout

    # kill -9 of either end's link actor: its supervisor restarts it, the link comes back
    for sut in (core, edge):
        old = sut.actor("link")
        os.kill(old["pid"], signal.SIGKILL)
        eventually(lambda s=sut, o=old: s.actor("link")["epoch"] > o["epoch"], 10.0)
    eventually(lambda: link_state(edge, "core") == "up", 10.0)
    with client(core) as c:
        submit_when_open(c, VENUE, qty="2", price=None, client_order_id="mkt-0")
        assert c.wait_for_status("mkt-0", {OrderStatus.FILLED}).cum_qty == Decimal(2)

    # a stranger: the core's public key, its own secret key (not listed at the core)
    stranger_keys: Path = deployment["stranger"]
    (stranger_keys / "core.key").write_bytes(
        (Path(core.cfg.link.keys_dir) / "core.key").read_bytes()
    )
    stranger = make("edge-a", stranger_keys).start()
    eventually(lambda: (core.metric("tradepulse_peers_refused_total", actor="link") or 0) >= 1, 10)
    assert link_state(stranger, "core") == "down"
    with client(core) as c:
        submit_when_open(c, VENUE, qty="3", price=None, client_order_id="mkt-2")
        assert c.wait_for_status("mkt-2", {OrderStatus.FILLED}).cum_qty == Decimal(3)
    assert link_state(stranger, "core") == "down"
    assert not [o for o in venue_orders(stranger, VENUE)]  # nothing reached its venue
    stranger_pids = all_pids(stranger)
    assert stranger.stop() == 0
    eventually(lambda: gone(stranger_pids), 10.0)

    # kill -9 of the edge supervisor: its actors die with it; the core keeps the order
    edge_pids = all_pids(edge)
    assert edge.proc is not None
    os.kill(edge.proc.pid, signal.SIGKILL)
    eventually(lambda: gone(edge_pids - {edge.proc.pid}), 10.0)  # type: ignore[union-attr]
    eventually(lambda: core.status()["venues"][VENUE]["link"]["state"] == "down", 10.0)
    with client(core) as c:
        c.submit(VENUE, "AAPL", "BUY", "7", order_type="MARKET", client_order_id="mkt-3")
    edge.wait_exit(timeout_s=5)
    again = make("edge-a", root=edge.root).start()  # the same state and runtime dirs
    with client(core) as c:
        assert c.wait_for_status("mkt-3", {OrderStatus.FILLED}, timeout_s=30).cum_qty == Decimal(7)
        assert c.get_order("rest-1").status is OrderStatus.ACCEPTED
        assert c.get_order("mkt-1").cum_qty == Decimal(10)
    for coid in ("mkt-1", "rest-1", "mkt-0", "mkt-2", "mkt-3"):
        _at_venue(again, coid)  # exactly once
    assert len(venue_orders(again, VENUE)) == 5

    # the dead-man switch: kill -9 of the core; 2 s later the edge cancels the open order
    core_pids = all_pids(core)
    since = again.mark()
    assert core.proc is not None
    os.kill(core.proc.pid, signal.SIGKILL)
    lost = again.wait_event("core_lost", since=since, timeout_s=15)
    assert lost["silent_s"] > 2.0 and lost["connectors"] == 1
    done = again.wait_event("core_lost_cancels_done", since=since, timeout_s=15)
    assert done["results"] == {f"connector.{VENUE}": "accepted"}
    eventually(lambda: _at_venue(again, "rest-1")["status"] == "CANCELLED", 10.0)
    assert (again.metric("tradepulse_link_core_lost_total") or 0) == 1
    pids = all_pids(again)
    assert again.stop() == 0
    eventually(lambda: gone(pids | core_pids), 10.0)


def test_plaintext_link_works_and_warns_at_every_start(deployment: dict[str, Any]) -> None:
    """`allow_plaintext = true` and no keys: the link runs without Curve, an order fills
    across it, and each end logs `link_plaintext` when it starts."""
    core = deployment["make"]("core", None).start()
    edge = deployment["make"]("edge-a", None).start()
    for sut in (core, edge):
        assert sut.wait_event("link_plaintext", since=0)["actor"] == "link"
        assert sut.wait_event("link_started", since=0)["curve"] is False
    with client(core) as c:
        submit_when_open(c, VENUE, qty="4", price=None, client_order_id="plain-1")
        assert c.wait_for_status("plain-1", {OrderStatus.FILLED}).cum_qty == Decimal(4)
    pids = all_pids(core) | all_pids(edge)
    assert edge.stop() == 0 and core.stop() == 0
    eventually(lambda: gone(pids), 10.0)
