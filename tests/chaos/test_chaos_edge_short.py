"""The short seeded chaos run of `make test` in the core+edge topology (issue 13): the core
supervisor (risk, OMS, heartbeat, link, bx on its local exchange) in one network namespace,
an edge supervisor (`edge-a`: simA, simB and their connectors) in another, joined by a veth
pair; the link over tcp + CurveZMQ through a fault proxy in the edge's namespace. The
nemesis partitions the link past the edge's dead-man limit (the edge cancels its venues'
open orders), stalls and cuts it, kills -9 the edge supervisor (warm restart), the edge's
simulator of simA and the core's supervisor, and disturbs simA; the run must end valid,
the dead-man's cancels held CANCELLED by the OMS as by the venue."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.chaos.harness import ChaosOptions, run_chaos
from tests.chaos.nemesis import DEFAULT_MIX
from tests.chaos.report import summary_text
from tests.netfault.netns import netns_unavailable

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(netns_unavailable() is not None, reason=str(netns_unavailable())),
]

# Every fault kind with equal weight, the link's included.
EDGE_MIX = {kind: 1.0 for kind in DEFAULT_MIX}
# Seed 381331's schedule (`FaultPlanner(381331, 2.0, EDGE_MIX, ("simA", "simB"),
# exchanges=("bx",), edge=EdgePlan("edge-a", ("simA", "simB"), 4.0))`): a 1.87 s link
# stall, kill -9 of the edge supervisor + warm start, a link cut, a 6.07 s partition (past
# the 4 s dead-man limit), doubled execs at simA, a 1.88 s partition, kill -9 of the edge's
# venuesim.simA, kill -9 of the core's supervisor. The four this test needs come first, so
# a slow machine that gets fewer faults in still has them. After the stall, from the busts'
# own stream (the schedule above as it was): a correction of a recent simA trade at the
# edge (`busts_applied_exactly_once`). (Seed 72749 was the seed until
# venue_kill joined the mix, which changed every seed's schedule.)
SEED = 381331


@pytest.mark.timeout(400)
def test_short_seeded_core_and_edge_chaos_run_is_valid(tmp_path: Path) -> None:
    """Under ~16 operations/s and a fault every ~2 s for 35 s, the link's faults among
    them: no acknowledged order is lost or duplicated, the OMS, risk and all three venues
    agree on every order and position, the orders the edge's dead-man switch cancelled
    during the long partition are CANCELLED at the OMS too, every fault is recovered from,
    no process outlives the run, and the schedule did produce a link cut, a stall, a
    partition that fired the dead-man and a kill -9 of the edge supervisor."""
    opts = ChaosOptions(
        seed=SEED,
        duration_s=35.0,
        clients=2,
        rate_per_s=16.0,
        fault_interval_s=2.0,
        mix=EDGE_MIX,
        minimal_venues=("simB",),
        recovery_timeout_s=45.0,
        settle_timeout_s=60.0,
        out_root=str(tmp_path / "chaos"),
        topology="core+edge",
    )
    t0 = time.monotonic()
    report, out_dir = run_chaos(opts)
    wall_s = time.monotonic() - t0
    summary = summary_text(report)
    print(f"core+edge short run: {wall_s:.1f} s wall\n{summary}")
    assert report["valid"], summary
    kinds = set(report["faults"]["by_kind"])
    assert {"link_cut", "link_stall", "partition", "edge_supervisor_kill"} <= kinds, summary
    fired = [
        f
        for f in report["faults"]["records"]
        if f["kind"] == "partition" and f["params"]["long"] and f["detail"].get("dead_man_fired")
    ]
    assert fired, summary  # a partition past the limit, and the edge's dead-man fired in it
    link = report["link"]
    assert link["core_lost_cancels_done"] >= 1, link
    assert set(link["dead_man_results"][0].values()) == {"accepted"}, link
    cancelled = sum(link["dead_man_cancelled"].values())
    assert cancelled >= 1, link  # open orders were there to cancel
    assert link["dead_man_cancelled_oms_cancelled"] == cancelled, link
    assert link["proxy"]["cuts"] >= 1, link
    assert report["restarts"]["edge_supervisor"] >= 1, summary
    venue_orders = report["stats"]["venue_orders"]
    assert min(venue_orders.get(v, 0) for v in ("simA", "simB", "bx")) >= 20, summary
    assert report["orders"]["by_outcome"].get("acked", 0) >= 150, summary
    assert not report["kill_switch"]["engaged_at_end"], summary
    assert (out_dir / "edge-supervisor.log").stat().st_size > 0
    assert (out_dir / "timeline.png").stat().st_size > 10_000
