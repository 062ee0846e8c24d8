"""Across hosts, for real: the core and an edge (two simulated FIX venues) in two network
namespaces joined by a veth pair, the edge's link through a userspace fault proxy in its
own namespace (tests/netfault; this kernel has no tc netem). Under a chaos load client,
with the chaos checker's invariants (no acked order lost, none twice at a venue, fills
applied once, positions equal, the OMS equal to each venue):

- orders both ways over a 20 ms + jitter link, stalls shorter and longer than the link's
  `down_after_s`, cut connections, and a supervisor with a key the core does not list;
- a 10 s partition (`ip link set ... down`) shorter than the dead-man switch: nothing is
  cancelled, nothing lost or doubled; then kill -9 of the core and its warm restart;
- kill -9 of the edge supervisor and its warm restart; a 10 s partition longer than the
  dead-man switch: the edge cancels its venues' open orders (`core_lost`), and once the
  link is back the OMS reconciles and agrees they are cancelled.

Each test starts its own core and edge (fresh dirs) in the module's namespace pair. The
figures each fault produced are printed (`pytest -s`) as `netns_figure` lines.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from functools import partial
from pathlib import Path

import pytest

from protocol.messages import OrderStatus
from tests.helpers import eventually
from tests.integration.edge_netns_support import (
    DOWN_AFTER_S,
    GROUP,
    LINK_PORT,
    VENUES,
    Deployment,
    assert_valid,
    load,
    make_keys,
    recorder,
)
from tests.integration.edge_support import all_pids, gone, link_state
from tests.netfault.netns import NetPair, net_pair, netns_unavailable
from tests.netfault.proxy import FaultProxy
from tests.system_ops import venue_orders, venue_status

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(netns_unavailable() is not None, reason=str(netns_unavailable())),
]
PARTITION_S = 10.0  # the partition
LONG_DEADMAN_S = 30.0  # longer than the partition: the dead-man does not fire
SHORT_DEADMAN_S = 3.0  # shorter: it fires mid-partition
SHORT_STALL_S = 0.3 * DOWN_AFTER_S  # the link stays up (pings every 0.2 s, down after 1 s)


def figure(name: str, **values: object) -> None:
    print(f"netns_figure {name} {json.dumps(values, default=str)}")


@pytest.fixture(scope="module")
def network(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[NetPair, FaultProxy, Path, Path]]:
    """One namespace pair and one proxy for the module (reset before each test), the
    deployment's keys and a stranger's."""
    keys, stranger = make_keys(tmp_path_factory.mktemp("netns-keys"))
    with net_pair() as pair, FaultProxy((pair.core_ip, LINK_PORT), netns=pair.edge_ns) as proxy:
        yield pair, proxy, keys, stranger


@pytest.fixture
def deploy(
    network: tuple[NetPair, FaultProxy, Path, Path],
) -> Iterator[Callable[[float], Deployment]]:
    """`deploy(core_loss_cancel_s)`: a started core and edge, destroyed after the test."""
    pair, proxy, keys, _ = network
    made: list[Deployment] = []

    def start(core_loss_cancel_s: float) -> Deployment:
        pair.link_up()
        proxy.set_delay(0.0)
        proxy.stall(False)
        proxy.refuse(False)
        d = Deployment(pair, proxy, keys, core_loss_cancel_s)
        made.append(d)
        return d.start()

    try:
        yield start
    finally:
        for d in made:
            d.destroy()
        pair.link_up()


def _hold_until(deadline: float) -> None:
    """Keep a fault applied until `deadline` (its duration, not a synchronisation)."""
    time.sleep(max(0.0, deadline - time.monotonic()))


def _venue_says(d: Deployment, venue: str, coid: str, status: str) -> bool:
    return venue_status(d.edge, venue, coid) == status


def _link_events(d: Deployment, since_c: int, since_e: int) -> list[str]:
    """What the links and the OMS logged about the link since the marks (for a failure)."""
    names = {"link_dropped", "link_up", "link_down", "venue_request_unconfirmed",
             "reconcile_plan", "reconcile_failed", "reconcile_recovered", "venue_state",
             "reconcile_skipped_in_flight"}  # fmt: skip
    return [
        f"{side} {e['ts'][11:23]} {e['event']} {e.get('venue') or e.get('peer')} "
        f"{e.get('client_order_id') or e.get('reason') or ''}"
        for side, sut, since in (("core", d.core, since_c), ("edge", d.edge, since_e))
        for e in sut.events(since=since)
        if e.get("event") in names
    ]


def _more_acked(acked: Callable[[], int], more: int, timeout_s: float = 20.0) -> None:
    start = acked()
    eventually(lambda: acked() >= start + more, timeout_s)


def test_orders_cross_a_slow_link_survive_stalls_and_cuts_and_a_stranger_gets_nothing(
    deploy: Callable[[float], Deployment],
    network: tuple[NetPair, FaultProxy, Path, Path],
    tmp_path: Path,
) -> None:
    """20 ms + up to 10 ms jitter each way: the link's round trip shows it, market orders
    fill and resting orders are cancelled across it (core -> edge -> core). A stall shorter
    than `down_after_s` only delays; a longer one takes the link down at both ends and it
    comes back (a reconnect counted); a cut (RST) is followed by a reconnect. A supervisor
    with the core's public key but an unlisted key pair is refused and gets nothing. The
    load running throughout passes the chaos checker."""
    d = deploy(LONG_DEADMAN_S)
    proxy, stranger_keys = network[1], network[3]
    history = tmp_path / "history"
    proxy.set_delay(0.020, 0.010)
    rtt = eventually(
        lambda: (d.core.status()["venues"][VENUES[0]]["link"]["rtt_ms"] or 0) >= 40, 10
    )
    assert rtt
    with recorder(d, history) as rec, load(d, history, rate_per_s=8.0) as ld:
        c = rec.c
        acks, fills = [], []
        for i in range(10):
            venue = VENUES[i % 2]
            t0 = time.monotonic()
            rec.submit(venue, f"slow-{i}", "1")
            acks.append(time.monotonic() - t0)
            assert c.wait_for_status(f"slow-{i}", {OrderStatus.FILLED}).cum_qty == Decimal(1)
            fills.append(time.monotonic() - t0)
        rec.submit(VENUES[1], "slow-rest", "3", "90.00")
        c.wait_for_status("slow-rest", {OrderStatus.ACCEPTED})
        t0 = time.monotonic()
        c.cancel("slow-rest")
        c.wait_for_status("slow-rest", {OrderStatus.CANCELLED})
        cancel_s = time.monotonic() - t0
        assert venue_status(d.edge, VENUES[1], "slow-rest") == "CANCELLED"
        link = d.core.status()["venues"][VENUES[0]]["link"]
        assert link["rtt_ms"] >= 40, link  # both directions held 20 ms or more
        assert min(fills) >= 0.04, fills  # an order and its fill cross twice
        figure(
            "slow_link",
            delay_ms=20,
            jitter_ms=10,
            rtt_ms=link["rtt_ms"],
            ack_p50_ms=round(statistics.median(acks) * 1000, 1),
            fill_p50_ms=round(statistics.median(fills) * 1000, 1),
            fill_max_ms=round(max(fills) * 1000, 1),
            cancel_ms=round(cancel_s * 1000, 1),
        )

        # a stall shorter than down_after_s: held, not down
        since_e, since_c = d.edge.mark(), d.core.mark()
        proxy.stall(True)
        t0 = time.monotonic()
        rec.submit(VENUES[0], "stall-1", "1")
        _hold_until(t0 + SHORT_STALL_S)
        proxy.stall(False)
        assert c.wait_for_status("stall-1", {OrderStatus.FILLED}).cum_qty == Decimal(1)
        short_fill = time.monotonic() - t0
        assert short_fill >= SHORT_STALL_S, short_fill
        assert not d.edge.events("link_down", since=since_e)
        assert not d.core.events("link_down", since=since_c)

        # a cut: every proxied connection reset (RST); the edge reconnects at once. An order
        # sent in the reconnect window is dropped (the link buffers nothing) and reaches
        # the venue through the OMS's request timeout and reconciliation; once the core
        # has heard the edge on the new connection, orders cross as before
        d.wait_healthy()
        conns = proxy.stats["connections"]
        since_c, since_e = d.core.mark(), d.edge.mark()
        t0 = time.monotonic()
        assert proxy.cut() >= 1
        rec.submit(VENUES[0], "cut-1", "1")
        eventually(lambda: proxy.stats["connections"] > conns and proxy.open_connections, 10)
        reconnect_s = time.monotonic() - t0
        eventually(lambda: d.heard_after(d.core, GROUP, t0 + reconnect_s), 10)
        t1 = time.monotonic()
        rec.submit(VENUES[1], "cut-2", "1")
        c.wait_for_status("cut-2", {OrderStatus.FILLED}, timeout_s=30)
        cut2_fill = time.monotonic() - t1
        assert cut2_fill < 3.0, (cut2_fill, _link_events(d, since_c, since_e))
        c.wait_for_status("cut-1", {OrderStatus.FILLED}, timeout_s=30)
        cut1_fill = time.monotonic() - t0
        figure(
            "cut",
            reconnect_s=round(reconnect_s, 3),
            order_sent_at_the_cut_filled_after_s=round(cut1_fill, 3),
            order_after_reconnect_filled_after_s=round(cut2_fill, 3),
        )

        # a stall longer than down_after_s: down at both ends (the link's pings), then back
        reconnects = d.metric(d.edge, "tradepulse_link_reconnects_total", peer="core")
        since_e, since_c = d.edge.mark(), d.core.mark()
        proxy.stall(True)
        t0 = time.monotonic()
        rec.submit(VENUES[1], "stall-2", "1")
        d.edge.wait_event("link_down", since=since_e, peer="core", timeout_s=10)
        d.core.wait_event("link_down", since=since_c, peer=GROUP, timeout_s=10)
        down_s = time.monotonic() - t0
        _hold_until(t0 + 3 * DOWN_AFTER_S)
        proxy.stall(False)
        t_up = time.monotonic()
        d.edge.wait_event("link_up", since=since_e, peer="core", timeout_s=15)
        up_s = time.monotonic() - t_up
        c.wait_for_status("stall-2", {OrderStatus.FILLED}, timeout_s=30)
        stall2_fill = time.monotonic() - t_up
        eventually(
            lambda: (
                d.metric(d.edge, "tradepulse_link_reconnects_total", peer="core") >= reconnects + 1
            ),
            10,
        )
        figure(
            "stall",
            short_s=SHORT_STALL_S,
            short_fill_s=round(short_fill, 3),
            long_s=3 * DOWN_AFTER_S,
            down_after_stall_s=round(down_s, 3),
            up_after_release_s=round(up_s, 3),
            order_filled_after_release_s=round(stall2_fill, 3),
        )

        # a stranger: the core's public key, its own pair under the edge's name
        refused = d.metric(d.core, "tradepulse_peers_refused_total", actor="link")
        stranger = d.make("edge", keys=stranger_keys).start()
        eventually(
            lambda: d.metric(d.core, "tradepulse_peers_refused_total", actor="link") > refused, 15
        )
        assert link_state(stranger, "core") == "down"
        _more_acked(ld.acked, 5)
        rec.submit(VENUES[1], "strange-1", "1")
        c.wait_for_status("strange-1", {OrderStatus.FILLED}, timeout_s=30)
        for v in VENUES:
            assert not venue_orders(stranger, v)  # nothing reached its venues
        assert link_state(stranger, "core") == "down"
        pids = all_pids(stranger)
        assert stranger.stop() == 0
        eventually(lambda: gone(pids), 10)
        acked = ld.acked()
    proxy.set_delay(0.0)
    result, settle_s = d.converge(history)
    assert_valid(result)
    figure("slow_link_load", acked=acked, settle_s=round(settle_s, 2), stats=result.stats)


def test_a_partition_shorter_than_the_dead_man_and_a_core_crash_lose_nothing(
    deploy: Callable[[float], Deployment],
    network: tuple[NetPair, FaultProxy, Path, Path],
    tmp_path: Path,
) -> None:
    """A 10 s partition mid-flow (veth down) with the dead-man at 30 s: both ends see the
    link down, the edge cancels nothing (no `core_lost`), resting orders stay open at the
    venues; an order taken by the OMS during the partition reaches its venue once the link
    is back, once. Then kill -9 of the core under load and a warm restart: the resting
    orders are still open, orders flow again. The chaos checker passes."""
    d = deploy(LONG_DEADMAN_S)
    pair = network[0]
    history = tmp_path / "history"
    with recorder(d, history) as rec, load(d, history, rate_per_s=8.0) as ld:
        c = rec.c
        for v in VENUES:
            rec.submit(v, f"keep-{v}", "2", "90.00")
            c.wait_for_status(f"keep-{v}", {OrderStatus.ACCEPTED})
        _more_acked(ld.acked, 5)
        since_e, since_c = d.edge.mark(), d.core.mark()
        pair.link_down()
        t0 = time.monotonic()
        d.edge.wait_event("link_down", since=since_e, peer="core", timeout_s=10)
        d.core.wait_event("link_down", since=since_c, peer=GROUP, timeout_s=10)
        rec.submit(VENUES[0], "during-1", "4")
        during = ld.acked()
        _hold_until(t0 + PARTITION_S)
        acked_in_partition = ld.acked() - during
        pair.link_up()
        t_up = time.monotonic()
        d.edge.wait_event("link_up", since=since_e, peer="core", timeout_s=15)
        link_up_s = time.monotonic() - t_up
        assert c.wait_for_status("during-1", {OrderStatus.FILLED}, timeout_s=30).cum_qty == 4
        during_fill_s = time.monotonic() - t_up
        d.wait_healthy(30)
        healthy_s = time.monotonic() - t_up
        assert not d.edge.events("core_lost", since=since_e)
        for v in VENUES:
            assert c.get_order(f"keep-{v}").status is OrderStatus.ACCEPTED
            assert venue_status(d.edge, v, f"keep-{v}") == "ACCEPTED"
        _more_acked(ld.acked, 5)
        figure(
            "partition_without_dead_man",
            partition_s=PARTITION_S,
            link_up_after_s=round(link_up_s, 3),
            order_from_the_partition_filled_after_s=round(during_fill_s, 3),
            healthy_after_link_up_s=round(healthy_s, 3),
            load_acked_during_partition=acked_in_partition,
        )

        # kill -9 of the core, under load; a warm restart on its dirs
        since_e = d.edge.mark()
        d.kill(d.core)
        t0 = time.monotonic()
        d.restart(d.core)
        restart_s = time.monotonic() - t0
        healthy_s = d.wait_healthy(30)
        _more_acked(ld.acked, 5, timeout_s=40)
        rec.submit(VENUES[1], "after-core", "1")
        c.wait_for_status("after-core", {OrderStatus.FILLED}, timeout_s=30)
        assert not d.edge.events("core_lost", since=since_e)
        for v in VENUES:
            assert c.get_order(f"keep-{v}").status is OrderStatus.ACCEPTED
            assert venue_status(d.edge, v, f"keep-{v}") == "ACCEPTED"
        figure(
            "core_kill", warm_start_s=round(restart_s, 3), healthy_after_start_s=round(healthy_s, 3)
        )
    result, settle_s = d.converge(history)
    assert_valid(result)
    figure("partition_without_dead_man_load", settle_s=round(settle_s, 2), stats=result.stats)


def test_an_edge_crash_then_a_partition_past_the_dead_man_cancel_at_the_edge_and_the_oms_agrees(
    deploy: Callable[[float], Deployment],
    network: tuple[NetPair, FaultProxy, Path, Path],
    tmp_path: Path,
) -> None:
    """kill -9 of the edge supervisor under load: an order taken meanwhile is sent once the
    restarted edge is back, once. Then a 10 s partition with the dead-man at 3 s: the edge
    logs `core_lost`, its connectors cancel every open order at both venues while the core
    cannot know; once the link is back the OMS learns the cancels and agrees with the
    venues. The chaos checker passes."""
    d = deploy(SHORT_DEADMAN_S)
    pair = network[0]
    history = tmp_path / "history"
    with recorder(d, history) as rec, load(d, history, rate_per_s=8.0) as ld:
        c = rec.c
        _more_acked(ld.acked, 5)
        old = d.edge
        d.kill(old)
        eventually(lambda: d.core.status()["venues"][VENUES[0]]["link"]["state"] == "down", 10)
        rec.submit(VENUES[0], "edge-dead", "6")
        t0 = time.monotonic()
        d.restart(old)
        restart_s = time.monotonic() - t0
        assert c.wait_for_status("edge-dead", {OrderStatus.FILLED}, timeout_s=30).cum_qty == 6
        edge_fill_s = time.monotonic() - t0
        healthy_s = d.wait_healthy(30)
        assert (
            len([o for o in venue_orders(d.edge, VENUES[0]) if "edge-dead" in o["cl_ord_ids"]]) == 1
        )
        figure(
            "edge_kill",
            warm_start_s=round(restart_s, 3),
            order_taken_meanwhile_filled_after_s=round(edge_fill_s, 3),
            healthy_after_start_s=round(healthy_s, 3),
        )

        for v in VENUES:
            rec.submit(v, f"dm-{v}", "2", "90.00")
            c.wait_for_status(f"dm-{v}", {OrderStatus.ACCEPTED})
        _more_acked(ld.acked, 3)
        since_e = d.edge.mark()
        pair.link_down()
        t0 = time.monotonic()
        lost = d.edge.wait_event("core_lost", since=since_e, timeout_s=15)
        done = d.edge.wait_event("core_lost_cancels_done", since=since_e, timeout_s=15)
        fired_s = time.monotonic() - t0
        # >=: the log rounds to the ms a silence that passed the dead-man (3.0004 s: "3.0")
        assert lost["silent_s"] >= SHORT_DEADMAN_S and lost["connectors"] == len(VENUES)
        assert done["results"] == {f"connector.{v}": "accepted" for v in VENUES}
        for v in VENUES:
            coid = f"dm-{v}"
            eventually(partial(_venue_says, d, v, coid, "CANCELLED"), 10)
            open_left = [
                o
                for o in venue_orders(d.edge, v)
                if o["status"] in ("ACCEPTED", "PARTIALLY_FILLED")
            ]
            assert not open_left, open_left
        _hold_until(t0 + PARTITION_S)
        oms_during = {v: c.get_order(f"dm-{v}").status.value for v in VENUES}
        pair.link_up()
        t_up = time.monotonic()
        for v in VENUES:
            c.wait_for_status(f"dm-{v}", {OrderStatus.CANCELLED}, timeout_s=30)
        oms_cancelled_s = time.monotonic() - t_up
        healthy_s = d.wait_healthy(30)
        _more_acked(ld.acked, 5)
        assert d.metric(d.edge, "tradepulse_link_core_lost_total") == 1
        figure(
            "partition_with_dead_man",
            partition_s=PARTITION_S,
            dead_man_s=SHORT_DEADMAN_S,
            core_lost_silent_s=lost["silent_s"],
            cancels_done_after_s=round(fired_s, 3),
            oms_status_during_partition=oms_during,
            oms_cancelled_after_link_up_s=round(oms_cancelled_s, 3),
            healthy_after_link_up_s=round(healthy_s, 3),
        )
    result, settle_s = d.converge(history)
    assert_valid(result)
    figure("partition_with_dead_man_load", settle_s=round(settle_s, 2), stats=result.stats)


def test_a_venue_reconnect_inside_a_partition_is_a_logon_for_the_oms(
    deploy: Callable[[float], Deployment],
    network: tuple[NetPair, FaultProxy, Path, Path],
) -> None:
    """The venue simulator on the edge is killed while the link is down: its connector logs
    on again, and its DISCONNECTED never crosses (the link drops what it cannot send; the
    connector sends its current state again once the link is back). The OMS takes the
    CONNECTED at a later state version as the new connection it is: `venue_state`
    CONNECTED and the logon's reconciliation pass once the link is back (before: CONNECTED
    after CONNECTED was no change, no pass until the periodic one, and a resubmission the
    venue never got kept its grace)."""
    d = deploy(LONG_DEADMAN_S)
    pair, venue = network[0], VENUES[0]
    since_c = d.core.mark()
    pair.link_down()
    d.core.wait_event("link_down", since=since_c, peer=GROUP, timeout_s=10)
    since_e, since_c = d.edge.mark(), d.core.mark()
    os.kill(d.edge.pid_of(f"venuesim.{venue}"), signal.SIGKILL)
    connector = f"connector.{venue}"
    logon = d.edge.wait_event(
        "venue_state", since=since_e, actor=connector, state="CONNECTED", timeout_s=20
    )
    states = [e["state"] for e in d.edge.events("venue_state", since=since_e, actor=connector)]
    assert states[0] != "CONNECTED"  # it went down first: that CONNECTED is a new connection
    assert d.core.events("venue_state", since=since_c, actor="oms", venue=venue) == []
    pair.link_up()
    seen = d.core.wait_event(
        "venue_state", since=since_c, actor="oms", venue=venue, state="CONNECTED", timeout_s=20
    )
    assert seen["connector_epoch"] == logon["epoch"]  # the same connector, a new connection
    d.core.wait_event("reconcile_plan", since=since_c, actor="oms", venue=venue, timeout_s=20)
