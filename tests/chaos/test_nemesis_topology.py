"""The fault planner with and without an edge (pure: no processes): the core topology draws
exactly the schedule it drew before link faults existed; core+edge draws link faults with
partitions on both sides of the dead-man limit and targets the edge's actors."""

from __future__ import annotations

import signal
import subprocess
from typing import Any

import pytest

from protocol.config import SystemConfig, parse_config
from tests.chaos.harness import ChaosOptions
from tests.chaos.nemesis import (
    ACTOR_FAULTS,
    DEFAULT_MIX,
    LINK_FAULTS,
    EdgePlan,
    FaultPlanner,
    Nemesis,
    PlannedFault,
    parse_mix,
    sim_hosts_of,
)
from tests.chaos.test_chaos_short import SEED, SHORT_MIX

EDGE = EdgePlan("edge-a", ("simA", "simB"), core_loss_cancel_s=4.0)


def test_the_core_topology_draws_the_schedule_it_drew_before_link_faults() -> None:
    """Seed 805695's schedule (the short run of make test, its comment in
    test_chaos_short.py): SHORT_MIX also weighs the link faults, but without an edge they
    are left out before anything is drawn, so they never change a core run's schedule."""
    planner = FaultPlanner(SEED, 2.0, SHORT_MIX, ("simA", "simB"), exchanges=("bx",))
    # the trade busts come from a stream of their own, in between (`FaultPlanner._bust`)
    drawn = [(f.kind, f.target) for f in planner.take(18) if f.kind != "trade_bust"][:14]
    assert drawn == [
        ("refuse_logons", "simB"),
        ("timeout_after_accept", "bx"),
        ("exchange_kill", "bx"),
        ("venue_kill", "simB"),
        ("sigstop", "connector.simB"),
        ("rate_limit", "bx"),
        ("sigkill", "risk"),
        ("venue_hang", "simB"),
        ("sigterm", "oms"),
        ("supervisor_kill", "supervisor"),
        ("drop_session", "simB"),
        ("exchange_kill", "bx"),
        ("duplicate_trade_events", "bx"),
        ("delay_execs", "simB"),
    ]
    no_busts = {k: w for k, w in SHORT_MIX.items() if k != "trade_bust"}
    without = FaultPlanner(SEED, 2.0, no_busts, ("simA", "simB"), exchanges=("bx",)).take(14)
    with_busts = FaultPlanner(SEED, 2.0, SHORT_MIX, ("simA", "simB"), exchanges=("bx",))
    others = [f for f in with_busts.take(18) if f.kind != "trade_bust"][:14]
    assert [(f.kind, f.target, f.params, f.gap_s) for f in without] == [
        (f.kind, f.target, f.params, f.gap_s) for f in others
    ]  # the gaps too: a bust's own gap is drawn from its own stream
    no_link = {k: w for k, w in SHORT_MIX.items() if k not in LINK_FAULTS}
    again = FaultPlanner(SEED, 2.0, no_link, ("simA", "simB"), exchanges=("bx",))
    assert again.take(14) == FaultPlanner(
        SEED, 2.0, SHORT_MIX, ("simA", "simB"), exchanges=("bx",)
    ).take(14)
    assert planner.actors == [
        "risk",
        "oms",
        "heartbeat",
        "connector.simA",
        "connector.simB",
        "connector.bx",
    ]
    many = FaultPlanner(1, 2.0, DEFAULT_MIX, ("simA", "simB"), exchanges=("bx",)).take(2000)
    assert not {f.kind for f in many} & set(LINK_FAULTS)


def test_core_and_edge_draws_link_faults_and_targets_the_edges_actors() -> None:
    """With an edge: every link fault kind is drawn; a partition is either short of the
    dead-man limit or at least 1 s past it; delays are 20 +/- 10 ms, 50 +/- 25 ms or the
    200 ms spike; stalls stay short of the limit; actor faults reach the core's link and
    the edge's link and connectors (`edge-a/...`), never a venue on the edge by its core
    name."""
    planner = FaultPlanner(
        7, 2.0, DEFAULT_MIX, ("simA", "simB"), exchanges=("bx",), edge=EDGE
    ).take(3000)
    kinds = {f.kind for f in planner}
    assert set(LINK_FAULTS) <= kinds
    partitions = [f for f in planner if f.kind == "partition"]
    assert {f.params["long"] for f in partitions} == {True, False}
    for f in partitions:
        d = f.params["duration_s"]
        assert d >= 4.0 + 1.0 if f.params["long"] else d < 4.0
    for f in planner:
        if f.kind == "link_delay":
            low, high = f.params["delay_ms"], f.params["delay_ms"] + f.params["jitter_ms"]
            assert (low, high) in ((10, 30), (25, 75))
        elif f.kind == "link_spike":
            assert f.params["delay_ms"] == 200 and f.params["jitter_ms"] == 0
        elif f.kind == "link_stall":
            assert 1.0 <= f.params["duration_s"] < 4.0
        if f.kind in LINK_FAULTS:
            assert f.target == "edge-a"
    targets = {f.target for f in planner if f.kind in ACTOR_FAULTS}
    assert targets == {
        "risk",
        "oms",
        "heartbeat",
        "link",
        "connector.bx",
        "edge-a/link",
        "edge-a/connector.simA",
        "edge-a/connector.simB",
    }


def test_the_same_seed_and_edge_draw_the_same_schedule() -> None:
    """A core+edge run is reproducible from its seed like any other."""
    a = FaultPlanner(11, 2.0, DEFAULT_MIX, ("simA",), edge=EDGE).take(200)
    b = FaultPlanner(11, 2.0, DEFAULT_MIX, ("simA",), edge=EDGE).take(200)
    assert a == b


def test_link_fault_kinds_are_accepted_in_a_mix() -> None:
    """`--mix partition=2,link_cut=1` parses; an unknown kind still does not."""
    assert parse_mix("partition=2,link_cut=1,edge_supervisor_kill") == {
        "partition": 2.0,
        "link_cut": 1.0,
        "edge_supervisor_kill": 1.0,
    }


def _fix_venues(*, runs_in: dict[str, str]) -> SystemConfig:
    """The chaos harness's config with FIX venues simA, simB, simC (and bx), each venue in
    `runs_in` simulated in that venue's process."""
    data = ChaosOptions(venues=("simA", "simB", "simC")).config_overrides()
    for v in data["venues"]:
        if v["name"] in runs_in:
            v["sim"]["runs_in"] = runs_in[v["name"]]
    return parse_config(data)


def _kills(planner: FaultPlanner, n: int = 200) -> set[tuple[str, str, tuple[str, ...]]]:
    drawn = planner.take(n)
    assert {f.kind for f in drawn} == {"venue_kill"}
    return {(f.target, f.params["actor"], tuple(f.params["venues"])) for f in drawn}


def test_venue_kill_targets_the_process_that_runs_the_venues_simulator() -> None:
    """simB simulated in simA's process (`runs_in`): a venue_kill kills `venuesim.simA`
    (simA and simB both go down) or `venuesim.simC`, never a `venuesim.simB` that does not
    exist, never the ccxt venue; with a process a venue, each venue is a target of its own."""
    mix = {"venue_kill": 1.0}
    fix = ("simA", "simB", "simC")
    shared = sim_hosts_of(_fix_venues(runs_in={"simB": "simA"}).venues)
    assert shared == {"simA": "simA", "simB": "simA", "simC": "simC"}  # bx: no venue sim
    assert _kills(FaultPlanner(5, 2.0, mix, fix, exchanges=("bx",), sim_hosts=shared)) == {
        ("simA", "venuesim.simA", ("simA", "simB")),
        ("simC", "venuesim.simC", ("simC",)),
    }
    own = sim_hosts_of(_fix_venues(runs_in={}).venues)
    expected = {(v, f"venuesim.{v}", (v,)) for v in fix}
    assert _kills(FaultPlanner(5, 2.0, mix, fix, exchanges=("bx",), sim_hosts=own)) == expected
    assert _kills(FaultPlanner(5, 2.0, mix, fix)) == expected  # no map: a process a venue


def test_venue_kill_on_the_edge_names_the_edges_simulator_and_needs_a_fix_venue() -> None:
    """core+edge: the simulator of a venue placed on the edge is the edge's
    (`edge-a/venuesim.simA`), a core venue's the core's; a run without FIX venues never
    draws venue_kill (the ccxt venues' exchanges are `exchange_kill`'s)."""
    planner = FaultPlanner(
        5, 2.0, {"venue_kill": 1.0}, ("simA", "simB", "simC"), edge=EDGE, sim_hosts={}
    )
    assert _kills(planner) == {
        ("simA", "edge-a/venuesim.simA", ("simA",)),
        ("simB", "edge-a/venuesim.simB", ("simB",)),
        ("simC", "venuesim.simC", ("simC",)),
    }
    ccxt_only = FaultPlanner(5, 2.0, {"venue_kill": 1.0, "sigkill": 1.0}, (), exchanges=("bx",))
    assert {f.kind for f in ccxt_only.take(200)} == {"sigkill"}


class _StubSystem:
    """The nemesis's view of a system whose `venuesim.simA` (running simA and simB) is
    `proc`; once `proc` is dead the supervisor has "restarted" it as pid 1 (never signalled).
    `connected`: the venues whose session the OMS has seen come back."""

    def __init__(self, proc: subprocess.Popen[bytes], connected: set[str]) -> None:
        self.proc, self.connected = proc, connected

    def try_status(self, timeout_s: float = 2.0) -> dict[str, Any] | None:
        pid = self.proc.pid if self.proc.poll() is None else 1
        return {"actors": [{"id": "venuesim.simA", "pid": pid, "state": "running"}]}

    def healthy(self, st: dict[str, Any]) -> bool:
        return True

    def kill_supervisor(self) -> set[int]:
        raise AssertionError("not this fault")

    def warm_restart(self, old_children: set[int], timeout_s: float = 60.0) -> None:
        raise AssertionError("not this fault")

    def mark(self) -> int:
        return 0

    def events(
        self, name: str | None = None, *, since: int = 0, **match: Any
    ) -> list[dict[str, Any]]:
        if (
            name != "venue_state"
            or match.get("state") != "CONNECTED"
            or match.get("actor") != "oms"
        ):
            return []
        return [{"venue": match["venue"]}] if match.get("venue") in self.connected else []


@pytest.mark.parametrize("connected", [{"simA", "simB"}, {"simA"}])
def test_venue_kill_kills_the_sim_process_and_waits_for_each_of_its_venues(
    connected: set[str],
) -> None:
    """The injection kills -9 the pid the status gives for the planned actor; the fault is
    recovered once that actor has a new pid and the OMS saw each venue it runs CONNECTED
    again (simB's session not back: not recovered)."""
    proc = subprocess.Popen(["sleep", "60"])
    try:
        nemesis = Nemesis(_StubSystem(proc, connected), FaultPlanner(1, 2.0, {}, ()),
                          lambda v, k, p: None, recovery_timeout_s=0.5)  # fmt: skip
        params = {"actor": "venuesim.simA", "venues": ["simA", "simB"]}
        rec = nemesis._inject(PlannedFault(1, "venue_kill", "simA", 0.0, params))
        assert proc.wait(timeout=5) == -signal.SIGKILL
        assert rec.detail["pid"] == proc.pid and not rec.error
        assert (rec.recovered_ns is not None) == (connected == {"simA", "simB"})
    finally:
        proc.kill()
        proc.wait()
