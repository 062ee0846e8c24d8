"""The fault planner with and without an edge (pure: no processes): the core topology draws
exactly the schedule it drew before link faults existed; core+edge draws link faults with
partitions on both sides of the dead-man limit and targets the edge's actors."""

from __future__ import annotations

from tests.chaos.nemesis import (
    ACTOR_FAULTS,
    DEFAULT_MIX,
    LINK_FAULTS,
    EdgePlan,
    FaultPlanner,
    parse_mix,
)
from tests.chaos.test_chaos_short import SEED, SHORT_MIX

EDGE = EdgePlan("edge-a", ("simA", "simB"), core_loss_cancel_s=4.0)


def test_the_core_topology_draws_the_schedule_it_drew_before_link_faults() -> None:
    """Seed 9727's schedule (the short run of make test, its comment in
    test_chaos_short.py) is unchanged although SHORT_MIX now also weighs the link faults:
    without an edge they are left out before anything is drawn."""
    planner = FaultPlanner(SEED, 2.0, SHORT_MIX, ("simA", "simB"), exchanges=("bx",))
    drawn = [(f.kind, f.target) for f in planner.take(14)]
    assert drawn == [
        ("sigstop", "connector.bx"),
        ("timeout_after_accept", "bx"),
        ("delay_trade_events", "bx"),
        ("sigkill", "oms"),
        ("supervisor_kill", "supervisor"),
        ("delay_execs", "simB"),
        ("refuse_logons", "simA"),
        ("exchange_kill", "bx"),
        ("venue_hang", "simA"),
        ("drop_session", "simB"),
        ("rate_limit", "bx"),
        ("sigterm", "connector.bx"),
        ("duplicate_trade_events", "bx"),
        ("reject_burst", "simA"),
    ]
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
