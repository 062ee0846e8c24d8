"""Across hosts (issue 13): a venue's connector on an edge, in another network namespace
across a veth pair (tcp + CurveZMQ through the two link actors), next to the same venue's
connector on the core (ipc), in the same run.

Two namespaces joined by a veth pair (`tests.netfault.netns.net_pair`: addresses only
inside them, removed with every process in them on the way out, also on SIGTERM / SIGHUP /
Ctrl-C): the core supervisor runs in one, every edge supervisor in the other, each with its
own state and runtime dirs (the client, the control sockets and this process talk ipc,
which crosses namespaces as filesystem paths). Keys from `protocol.curve_keys.generate`.

1. Latency: deployment A places venue `vcore` on the core and `vedge` (the same simulated
   FIX venue, the same config) on the edge group `edge-a`. Resting limit buys, submit ->
   ACCEPTED on the client's event stream, the two venues alternating so both series see
   the same machine: one in flight, then a modest load (WINDOW in flight in all). Ratio
   edge / core; the OMS journal's stamps split the one-in-flight series
   (`tests.bench.oms._stages`), LEG being the connector + venue leg as the OMS sees it.
2. The link's raw round trip, same run, same veth (`tests.bench._link_floor`): a bare
   Curve DEALER / ROUTER pair, one process in each namespace, back to back and spaced as
   the orders are; and the link actor's own `tradepulse_link_rtt_seconds` (the edge's
   /metrics read inside its namespace during the series). An order crosses the link once
   each way, so `added` (edge p50 - core p50) is set against 1x the raw round trip (the
   wire's share; the rest is the two link processes' hops) and 2x (the issue's budget).
3. PSS (`memory_full_info().pss` summed over the supervisor's process tree) of every
   supervisor, the edge's among them, idle (after the start) and after the orders.
4. Scale: deployment B, 2 venues on 1 edge; deployment C, 8 venues over 2 edges (edge-a,
   edge-b: two supervisors in the edge namespace). Each: total PSS of all supervisors'
   trees idle and after SCALE_ORDERS resting orders (one in flight, round robin over the
   venues), and their latency; the edge's PSS per venue and fixed part from the two.

`python -m tests.bench --only edge` (~2 minutes); TP_BENCH_EDGE_ORDERS orders per venue
and series in (1), TP_BENCH_EDGE_SCALE_ORDERS in all in (4).
"""

from __future__ import annotations

import os
import signal
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import zmq

from protocol.codec import Sender, decode, encode
from protocol.curve_keys import generate
from protocol.fastpath import peek_order_event
from protocol.messages import OrderStatus, OrdType, RequestRejected, Side, SubmitOrder
from tests.bench._link_floor import RttSampler, link_pings
from tests.bench._stats import host_info
from tests.bench.memory import processes, sample
from tests.bench.oms import _config as oms_config
from tests.bench.oms import _ms, _stages
from tests.helpers import SystemUnderTest, eventually
from tests.integration.oms_support import venue_cfg
from tests.netfault.netns import NetPair, net_pair, netns_unavailable
from tests.system_ops import client, submit_when_open

ORDERS = int(os.environ.get("TP_BENCH_EDGE_ORDERS", "500"))  # per venue, (1) one in flight
LOAD_ORDERS = ORDERS  # per venue, (1) under load
WINDOW = 8  # in flight in all under load
SCALE_ORDERS = int(os.environ.get("TP_BENCH_EDGE_SCALE_ORDERS", "400"))  # in all, (4)
WARMUP = 20  # per venue, per series
PINGS = 2000
SPACED_PINGS, PING_GAP_S = 500, 0.003  # about the link's pace in the one-in-flight series
LINK_PORT = 7100  # inside the bench's own namespaces: nothing else binds there
CORE, EDGE = "vcore", "vedge"
PLACED_A = {CORE: "core", EDGE: "edge-a"}
PLACED_B = {"e1": "edge-a", "e2": "edge-a"}
PLACED_C = {f"e{i}": "edge-a" if i <= 4 else "edge-b" for i in range(1, 9)}
LEG = "approved_to_venue_accepted"  # tests.bench.oms._stages: OMS -> connector -> venue -> OMS
SETUP_S = 90.0  # a start on a loaded 2-core machine


def _config(placed: Mapping[str, str], bind: str, keys: Path) -> dict[str, Any]:
    """`tests.bench.oms`'s limits (out of the way of resting orders at full speed) with the
    venues placed as given and the link between the namespaces."""
    cfg = oms_config()
    rates = {"rate_limit_per_s": 1_000_000.0, "rate_burst": 100_000}
    cfg["venues"] = [venue_cfg(v) | rates | {"host_group": g} for v, g in placed.items()]
    cfg["link"] = {"bind": bind, "connect": bind, "keys_dir": str(keys), "ping_interval_s": 0.2}
    return cfg


# --------------------------------------------------------------------------- deployments


class Deployment:
    """A core supervisor in the core namespace and one supervisor per edge group in the
    edge namespace, started (links up, intake open at every venue); `destroy()` kills
    them all, also after a failed start."""

    def __init__(self, pair: NetPair, keys: Path, placed: Mapping[str, str], port: int) -> None:
        self.venues = list(placed)
        cfg = _config(placed, f"tcp://{pair.core_ip}:{port}", keys)
        groups = ["core", *sorted(set(placed.values()) - {"core"})]
        self.suts = {
            g: SystemUnderTest(
                venues=self.venues, overrides=cfg, run_args=["--host-group", g],
                launcher=pair.launcher("core" if g == "core" else "edge"),
            )
            for g in groups
        }  # fmt: skip

    @property
    def core(self) -> SystemUnderTest:
        return self.suts["core"]

    def edges(self) -> dict[str, SystemUnderTest]:
        return {g: s for g, s in self.suts.items() if g != "core"}

    def start(self) -> Deployment:
        for sut in self.suts.values():
            sut.start(timeout_s=SETUP_S)
        for edge in self.edges().values():
            eventually(partial(_link_up, edge), SETUP_S, interval_s=0.1)
        with client(self.core) as c:  # intake open at every venue (market orders fill)
            for v in self.venues:
                submit_when_open(c, v, qty="1", price=None, client_order_id=f"probe-{v}",
                                 timeout_s=SETUP_S)  # fmt: skip
        return self

    def pss_mib(self) -> dict[str, float]:
        """Host group -> PSS of its supervisor's whole process tree, MiB."""
        out = {}
        for g, sut in self.suts.items():
            out[g] = round(sum(v["pss_mib"] for v in sample(processes(sut)).values()), 1)
        return out

    def destroy(self) -> None:
        for sut in reversed(self.suts.values()):
            sut.destroy()


def _link_up(edge: SystemUnderTest) -> bool:
    info = edge.actor("link").get("info") or {}
    return bool((info.get("link") or {}).get("core", {}).get("state") == "up")


@contextmanager
def _deployed(
    pair: NetPair, keys: Path, placed: Mapping[str, str], port: int
) -> Iterator[Deployment]:
    d = Deployment(pair, keys, placed, port)
    try:
        yield d.start()
    finally:
        d.destroy()


# --------------------------------------------------------------------------- order series


Stamps = dict[str, dict[str, tuple[int, int, int]]]  # venue -> coid -> (t0, t0, t2) ns


def series(
    sut: SystemUnderTest, venues: Sequence[str], total: int, window: int, tag: str
) -> Stamps:
    """`total` resting limit buys (1 AAPL at 95.00, the market 99.99 / 100.01) round robin
    over `venues`, `window` in flight, each timed (wall clock, ns) from its send to its
    ACCEPTED event on the client's stream (a raw DEALER and SUB, this process); the first
    WARMUP per venue are left out. In the shape `tests.bench.oms._stages` reads."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    dealer = ctx.socket(zmq.DEALER)
    sub = ctx.socket(zmq.SUB)
    for sock in (dealer, sub):
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVHWM, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(sut.cfg.events_endpoint)
    dealer.connect(sut.cfg.client_endpoint)
    sender = Sender(f"bench-{tag}", 1)
    out: Stamps = {v: {} for v in venues}
    sent_at: dict[str, tuple[str, int, bool]] = {}  # coid -> (venue, t0, measured)
    try:
        _subscribed(sut, sub, tag)
        total += WARMUP * len(venues)
        sent = 0
        while sent < total or sent_at:
            while sent < total and len(sent_at) < window:
                venue = venues[sent % len(venues)]
                coid = f"{tag}-{sent:06d}"
                order = SubmitOrder(
                    client_order_id=coid, venue=venue, symbol="AAPL", side=Side.BUY,
                    qty=Decimal(1), order_type=OrdType.LIMIT, price=Decimal("95.00"),
                )  # fmt: skip
                frames = encode(sender.envelope(order))
                sent_at[coid] = (venue, time.time_ns(), sent >= WARMUP * len(venues))
                dealer.send_multipart(frames)
                sent += 1
            _await(dealer, sub, sent_at, out)
    finally:
        ctx.destroy(linger=0)
    return out


def _seconds(stamps: Mapping[str, tuple[int, int, int]]) -> list[float]:
    return [(t2 - t0) / 1e9 for t0, _, t2 in stamps.values()]


def _await(
    dealer: zmq.Socket[bytes],
    sub: zmq.Socket[bytes],
    sent_at: dict[str, tuple[str, int, bool]],
    out: Stamps,
) -> None:
    """Take what arrived (waiting up to 10 s for something): ACCEPTED events end an
    order's clock; a refusal of one of ours fails the series."""
    poller = zmq.Poller()
    poller.register(dealer, zmq.POLLIN)
    poller.register(sub, zmq.POLLIN)
    ready = dict(poller.poll(10_000))
    if not ready:
        raise RuntimeError(f"nothing from the OMS in 10 s ({len(sent_at)} in flight)")
    while True:
        try:
            frames = sub.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            break
        now = time.time_ns()
        peek = peek_order_event(frames)
        if peek is not None and peek[2] not in (OrderStatus.ACCEPTED, OrderStatus.REJECTED):
            continue
        body = decode(frames).body
        order = getattr(body, "order", None)
        if order is None or order.client_order_id not in sent_at:
            continue
        if order.status is OrderStatus.REJECTED:
            raise RuntimeError(f"{order.client_order_id} rejected: {order.reason}")
        if order.status is OrderStatus.ACCEPTED:
            venue, t0, measured = sent_at.pop(order.client_order_id)
            if measured:
                out[venue][order.client_order_id] = (t0, t0, now)
    while True:
        try:
            reply = decode(dealer.recv_multipart(zmq.NOBLOCK))
        except zmq.Again:
            break
        if isinstance(reply.body, RequestRejected):
            raise RuntimeError(f"submit refused: {reply.body.code.value} {reply.body.reason}")


def _subscribed(sut: SystemUnderTest, sub: zmq.Socket[bytes], tag: str) -> None:
    """Market orders (filled at once, not left open) until `sub` hears the stream."""
    with client(sut) as c:
        for i in range(100):
            submit_when_open(c, sut.cfg.venues[0].name, qty="1", price=None,
                             client_order_id=f"sub-{tag}-{i}")  # fmt: skip
            if sub.poll(200):
                while sub.poll(0):
                    sub.recv_multipart()
                return
    raise RuntimeError("the event stream stayed silent")


# --------------------------------------------------------------------------- the sections


def latency(pair: NetPair, keys: Path) -> dict[str, Any]:
    """(1), (2) and (3) on deployment A."""
    with _deployed(pair, keys, PLACED_A, LINK_PORT) as d:
        edge = d.edges()["edge-a"]
        pss_idle = d.pss_mib()
        with RttSampler(pair.edge_ns, edge) as rtt:
            one = series(d.core, [EDGE, CORE], ORDERS * 2, 1, "one")
            loaded = series(d.core, [EDGE, CORE], LOAD_ORDERS * 2, WINDOW, "load")
        pings = link_pings(pair, keys, PINGS)
        spaced = link_pings(pair, keys, SPACED_PINGS, PING_GAP_S)
        pss_after = d.pss_mib()
        stages = {v: _stages(d.core, one[v]) for v in (EDGE, CORE)}
    return {
        "one_in_flight_ms": {v: _ms(_seconds(s)) for v, s in one.items()},
        "under_load_ms": {v: _ms(_seconds(s)) for v, s in loaded.items()},
        "stages_one_in_flight_ms": stages,
        "raw_link_ping_ms": _ms(pings),
        "raw_link_ping_spaced_ms": _ms(spaced),
        "link_actor_rtt_gauge_ms": _ms(rtt.samples) if rtt.samples else None,
        "link_actor_rtt_gauge_error": None if rtt.error is None else repr(rtt.error),
        "pss_idle_mib": pss_idle,
        "pss_after_mib": pss_after,
    }


def scale(pair: NetPair, keys: Path) -> dict[str, Any]:
    """(4): 2 venues on 1 edge, then 8 venues over 2 edges."""
    out = {}
    for label, placed, port in (("2_venues_1_edge", PLACED_B, LINK_PORT + 1),
                                ("8_venues_2_edges", PLACED_C, LINK_PORT + 2)):  # fmt: skip
        with _deployed(pair, keys, placed, port) as d:
            idle = d.pss_mib()
            lat = series(d.core, list(placed), SCALE_ORDERS, 1, f"s{len(placed)}")
            after = d.pss_mib()
        out[label] = {
            "venues": len(placed),
            "pss_idle_mib": idle | {"total": round(sum(idle.values()), 1)},
            "pss_after_mib": after | {"total": round(sum(after.values()), 1)},
            "submit_to_accepted_ms": _ms([x for v in lat.values() for x in _seconds(v)]),
        }
    return out


@contextmanager
def _interruptible() -> Iterator[None]:
    """SIGTERM / SIGHUP raise SystemExit here, so the namespaces and processes are cleaned
    up on the way out (SIGINT already raises KeyboardInterrupt)."""

    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    old = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def run() -> dict[str, Any]:
    why = netns_unavailable()
    if why is not None:
        raise RuntimeError(f"the edge bench needs network namespaces: {why}")
    with _interruptible(), tempfile.TemporaryDirectory(prefix="tpk", dir="/tmp") as tmp:
        keys = Path(tmp) / "keys"
        for group in ("core", "edge-a", "edge-b"):
            generate(keys, group)
        with net_pair() as pair:
            lat = latency(pair, keys)
            sc = scale(pair, keys)
    return {
        "orders_per_venue": ORDERS,
        "window_under_load": WINDOW,
        **lat,
        "scale": sc,
        "compare": _compare(lat, sc),
        "host": {**host_info(), "loadavg_1m": round(os.getloadavg()[0], 2)},
        "ts": datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def _compare(lat: Mapping[str, Any], sc: Mapping[str, Any]) -> dict[str, float]:
    """Ratios and differences: edge against core, the link's share, 8 venues against 2."""
    one, loaded = lat["one_in_flight_ms"], lat["under_load_ms"]
    rtt, spaced = lat["raw_link_ping_ms"], lat["raw_link_ping_spaced_ms"]
    leg = {v: lat["stages_one_in_flight_ms"][v].get(LEG, {}) for v in (EDGE, CORE)}
    added = one[EDGE]["median"] - one[CORE]["median"]
    small, big = sc["2_venues_1_edge"], sc["8_venues_2_edges"]
    per_venue = (big["pss_idle_mib"]["edge-a"] - small["pss_idle_mib"]["edge-a"]) / 2
    out = {
        "ratio_p50_edge_vs_core": one[EDGE]["median"] / one[CORE]["median"],
        "ratio_p99_edge_vs_core": one[EDGE]["p99"] / one[CORE]["p99"],
        "ratio_p50_edge_vs_core_under_load": loaded[EDGE]["median"] / loaded[CORE]["median"],
        "ratio_p99_edge_vs_core_under_load": loaded[EDGE]["p99"] / loaded[CORE]["p99"],
        "added_p50_ms": added,
        "added_p99_ms": one[EDGE]["p99"] - one[CORE]["p99"],
        "added_p50_vs_raw_rtt_p50": added / rtt["median"],
        "added_p50_vs_2x_raw_rtt_p50": added / (2 * rtt["median"]),
        "added_beyond_wire_p50_ms": added - rtt["median"],
        "added_p50_vs_spaced_rtt_p50": added / spaced["median"],
        "added_beyond_spaced_wire_p50_ms": added - spaced["median"],
        "scale_ratio_total_pss_8_vs_2": big["pss_after_mib"]["total"]
        / small["pss_after_mib"]["total"],
        "scale_ratio_p50_8_vs_2": big["submit_to_accepted_ms"]["median"]
        / small["submit_to_accepted_ms"]["median"],
        "scale_ratio_p99_8_vs_2": big["submit_to_accepted_ms"]["p99"]
        / small["submit_to_accepted_ms"]["p99"],
        "edge_pss_per_venue_mib": per_venue,
        "edge_pss_fixed_mib": small["pss_idle_mib"]["edge-a"] - 2 * per_venue,
    }
    if leg[EDGE] and leg[CORE]:  # the connector + venue leg as the OMS's journal sees it
        out["added_leg_p50_ms"] = leg[EDGE]["median"] - leg[CORE]["median"]
        out["added_leg_p50_vs_raw_rtt_p50"] = out["added_leg_p50_ms"] / rtt["median"]
    return {k: round(v, 3) for k, v in out.items()}


def summary(r: dict[str, Any]) -> list[str]:
    def line(label: str, d: Mapping[str, Any]) -> str:
        return f"{label:<44} p50 {d['median']:>7.3f} ms  p99 {d['p99']:>7.3f} ms  (n={d['n']})"

    one, load, sc, c = r["one_in_flight_ms"], r["under_load_ms"], r["scale"], r["compare"]
    stages = r["stages_one_in_flight_ms"]
    out = [
        line("submit -> ACCEPTED, connector on the edge", one[EDGE]),
        line("submit -> ACCEPTED, connector on the core", one[CORE]),
        *(line(f"  OMS approved -> venue accepted, {v}", stages[v][LEG])
          for v in (EDGE, CORE) if LEG in stages[v]),
        line(f"  under load ({r['window_under_load']} in flight), edge", load[EDGE]),
        line(f"  under load ({r['window_under_load']} in flight), core", load[CORE]),
        line("raw DEALER/ROUTER + Curve ping, veth", r["raw_link_ping_ms"]),
        line(f"  same, {PING_GAP_S * 1e3:g} ms apart", r["raw_link_ping_spaced_ms"]),
    ]  # fmt: skip
    if r["link_actor_rtt_gauge_ms"]:
        out.append(line("link actor's rtt gauge (edge)", r["link_actor_rtt_gauge_ms"]))
    out += [
        f"ratio edge / core p50 {c['ratio_p50_edge_vs_core']}, p99 "
        f"{c['ratio_p99_edge_vs_core']}; under load p50 {c['ratio_p50_edge_vs_core_under_load']}"
        f", p99 {c['ratio_p99_edge_vs_core_under_load']}",
        f"added p50 {c['added_p50_ms']} ms = {c['added_p50_vs_raw_rtt_p50']} x raw rtt "
        f"({c['added_p50_vs_2x_raw_rtt_p50']} x 2 rtt); beyond the wire "
        f"{c['added_beyond_wire_p50_ms']} ms ({c['added_beyond_spaced_wire_p50_ms']} ms beyond "
        f"the spaced ping's); OMS-side leg added "
        f"{c.get('added_leg_p50_ms')} ms",
        f"PSS MiB idle {r['pss_idle_mib']} -> after {r['pss_after_mib']}",
    ]
    for label, s in sc.items():
        out.append(
            f"{label}: PSS total {s['pss_idle_mib']['total']} -> {s['pss_after_mib']['total']}"
            f" MiB {s['pss_after_mib']}"
        )
        out.append(line(f"  {label} submit -> ACCEPTED", s["submit_to_accepted_ms"]))
    out.append(
        f"8 / 2 venues: PSS {c['scale_ratio_total_pss_8_vs_2']}, p50 {c['scale_ratio_p50_8_vs_2']}"
        f", p99 {c['scale_ratio_p99_8_vs_2']}; edge PSS per venue {c['edge_pss_per_venue_mib']}"
        f" MiB, fixed {c['edge_pss_fixed_mib']} MiB; load {r['host']['loadavg_1m']}"
    )
    return out
