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
   /metrics read inside its namespace during the series). On the edge an order's way
   from the OMS to its connector is three hops instead of one (ipc into the core's link,
   tcp + Curve to the edge's link, ipc to the connector), and so is the way back: `added`
   (edge p50 - core p50) is set against 2x the raw round trip (two hops more each way,
   if an ipc hop cost what the tcp one does), and `beyond the wire` is added less one
   spaced round trip (the tcp crossing's share).
3. PSS (`memory_full_info().pss` summed over the supervisor's process tree) of every
   supervisor, the edge's among them, idle (after the start) and after the orders; and
   the CPU (psutil `cpu_times`) of both link actors per order sent to the edge's venue,
   raw and net of their idle rate (pings, beats; measured for IDLE_S before the series).
4. Scale: deployment B, 2 venues on 1 edge, and deployment C, 8 venues over 2 edges
   (edge-a, edge-b: two supervisors in the edge namespace), both up at once. Each: total
   PSS of all its supervisors' trees idle and after SCALE_ORDERS resting orders (one in
   flight, round robin over its venues; B's and C's in alternating chunks, so both see
   the same machine), and their latency; the edge's PSS per venue and its fixed part.

`python -m tests.bench --only edge` (~2 minutes); TP_BENCH_EDGE_ORDERS orders per venue
and series in (1), TP_BENCH_EDGE_SCALE_ORDERS in all in (4).
"""

from __future__ import annotations

import os
import signal
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from datetime import datetime
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import psutil
import zmq

from protocol.codec import Sender, decode, encode
from protocol.curve_keys import generate
from protocol.event_batch import events_of
from protocol.messages import OrderStatus, OrdType, RequestRejected, Side, SubmitOrder
from tests.bench._link_floor import RttSampler, link_pings
from tests.bench._stats import host_info
from tests.bench.ccxt import _cpu_s
from tests.bench.memory import processes, sample
from tests.bench.oms import _config as oms_config
from tests.bench.oms import _ms, _stages
from tests.helpers import SystemUnderTest, eventually
from tests.integration.oms_support import venue_cfg
from tests.netfault.netns import NetPair, net_pair, netns_unavailable
from tests.system_ops import client, submit_when_open

ORDERS = int(os.environ.get("TP_BENCH_EDGE_ORDERS", "500"))  # per venue, (1) one in flight
WINDOW = 8  # in flight in all under load
SCALE_ORDERS = int(os.environ.get("TP_BENCH_EDGE_SCALE_ORDERS", "400"))  # in all, (4)
SCALE_CHUNKS = 10  # (4): the two deployments' orders alternate in this many chunks each
WARMUP = 20  # per venue, per series
PINGS = 2000
SPACED_PINGS, PING_GAP_S = 500, 0.003  # about the link's pace in the one-in-flight series
LINK_PORT = 7100  # inside the bench's own namespaces: nothing else binds there
CORE, EDGE = "vcore", "vedge"
PLACED_A = {CORE: "core", EDGE: "edge-a"}
PLACED_B = {"e1": "edge-a", "e2": "edge-a"}
PLACED_C = {f"e{i}": "edge-a" if i <= 4 else "edge-b" for i in range(1, 9)}
LEG = "approved_to_venue_accepted"  # tests.bench.oms._stages: OMS -> connector -> venue -> OMS
IDLE_S = 4.0  # the link actors' idle CPU rate, measured before the series
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
        """Every supervisor's tree killed and its dirs removed, even if one of them fails."""
        with ExitStack() as stack:
            for sut in self.suts.values():
                stack.callback(sut.destroy)  # run in reverse: the edges before the core


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


_ENDS = frozenset((OrderStatus.ACCEPTED.value, OrderStatus.REJECTED.value))  # decoded events
Stamps = dict[str, dict[str, tuple[int, int, int]]]  # venue -> coid -> (t0, t0, t2) ns


class Orders:
    """A raw client of one system (a DEALER for the submits, a SUB on the event stream, in
    this process) that times resting limit buys (1 AAPL at 95.00, the market 99.99 /
    100.01) from the send to their ACCEPTED event (wall clock, ns: the shape
    `tests.bench.oms._stages` reads)."""

    def __init__(self, sut: SystemUnderTest, tag: str) -> None:
        self.ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.dealer = self.ctx.socket(zmq.DEALER)
        self.sub = self.ctx.socket(zmq.SUB)
        for sock in (self.dealer, self.sub):
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.RCVHWM, 0)
        self.sub.setsockopt(zmq.SUBSCRIBE, b"")
        self.sub.connect(sut.cfg.events_endpoint)
        self.dealer.connect(sut.cfg.client_endpoint)
        self.sender = Sender(f"bench-{tag}", 1)
        self.tag, self.sent = tag, 0
        try:
            _subscribed(sut, self.sub, tag)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self.ctx.destroy(linger=0)

    def series(
        self, venues: Sequence[str], total: int, window: int, warmup: int = WARMUP
    ) -> Stamps:
        """`total` orders round robin over `venues`, `window` in flight, after `warmup`
        per venue that are not timed."""
        out: Stamps = {v: {} for v in venues}
        in_flight: dict[str, tuple[str, int, bool]] = {}  # coid -> (venue, t0, timed)
        skip = warmup * len(venues)
        total += skip
        for i in range(total):
            while len(in_flight) >= window:
                self._take(in_flight, out)
            venue, coid = venues[i % len(venues)], f"{self.tag}-{self.sent:06d}"
            order = SubmitOrder(
                client_order_id=coid, venue=venue, symbol="AAPL", side=Side.BUY,
                qty=Decimal(1), order_type=OrdType.LIMIT, price=Decimal("95.00"),
            )  # fmt: skip
            frames = encode(self.sender.envelope(order))
            in_flight[coid] = (venue, time.time_ns(), i >= skip)
            self.dealer.send_multipart(frames)
            self.sent += 1
        while in_flight:
            self._take(in_flight, out)
        return out

    def _take(self, in_flight: dict[str, tuple[str, int, bool]], out: Stamps) -> None:
        """Take what arrived (waiting up to 10 s for something): an ACCEPTED event stops
        an order's clock; a refusal of one of ours fails the series."""
        poller = zmq.Poller()
        poller.register(self.dealer, zmq.POLLIN)
        poller.register(self.sub, zmq.POLLIN)
        if not poller.poll(10_000):
            raise RuntimeError(f"nothing from the OMS in 10 s ({len(in_flight)} in flight)")
        while True:
            try:
                frames = self.sub.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            now = time.time_ns()
            for _, event in events_of(frames, _ENDS):  # an event, or a turn's batch of them
                order = getattr(event, "order", None)
                if order is None or order.client_order_id not in in_flight:
                    continue
                if order.status is OrderStatus.REJECTED:
                    raise RuntimeError(f"{order.client_order_id} rejected: {order.reason}")
                if order.status is OrderStatus.ACCEPTED:
                    venue, t0, timed = in_flight.pop(order.client_order_id)
                    if timed:
                        out[venue][order.client_order_id] = (t0, t0, now)
        while True:
            try:
                reply = decode(self.dealer.recv_multipart(zmq.NOBLOCK))
            except zmq.Again:
                break
            if isinstance(reply.body, RequestRejected):
                raise RuntimeError(f"submit refused: {reply.body.code.value} {reply.body.reason}")


@contextmanager
def _orders(sut: SystemUnderTest, tag: str) -> Iterator[Orders]:
    o = Orders(sut, tag)
    try:
        yield o
    finally:
        o.close()


def _seconds(stamps: Mapping[str, tuple[int, int, int]]) -> list[float]:
    return [(t2 - t0) / 1e9 for t0, _, t2 in stamps.values()]


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
    with _deployed(pair, keys, PLACED_A, LINK_PORT) as d, _orders(d.core, "a") as orders:
        pss_idle = d.pss_mib()
        links = {g: psutil.Process(sut.pid_of("link")) for g, sut in d.suts.items()}
        idle0, t0 = _cpu_s(links), time.monotonic()
        time.sleep(IDLE_S)  # the link actors' idle rate (pings, beats): a window, not a wait
        with RttSampler(pair.edge_ns, d.edges()["edge-a"]) as rtt:
            cpu0, t1 = _cpu_s(links), time.monotonic()
            one = orders.series([EDGE, CORE], ORDERS * 2, 1)
            cpu1, t2 = _cpu_s(links), time.monotonic()
            loaded = orders.series([EDGE, CORE], ORDERS * 2, WINDOW)
            cpu2, t3 = _cpu_s(links), time.monotonic()
        pings = link_pings(pair, keys, PINGS)
        spaced = link_pings(pair, keys, SPACED_PINGS, PING_GAP_S)
        pss_after = d.pss_mib()
        stages = {v: _stages(d.core, one[v]) for v in (EDGE, CORE)}
    rate = {g: (cpu0[g] - idle0[g]) / (t1 - t0) for g in links}
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
        "link_idle_cpu_pct": {g: round(rate[g] * 100, 2) for g in links},
        "link_cpu_ms_per_edge_order": {  # warm-up orders included: they crossed too
            "one_in_flight": {g: _per_order(cpu1[g] - cpu0[g]) for g in links},
            "under_load": {g: _per_order(cpu2[g] - cpu1[g]) for g in links},
        },
        "link_cpu_ms_per_edge_order_net_of_idle": {
            "one_in_flight": {
                g: _per_order(cpu1[g] - cpu0[g] - rate[g] * (t2 - t1)) for g in links
            },
            "under_load": {g: _per_order(cpu2[g] - cpu1[g] - rate[g] * (t3 - t2)) for g in links},
        },
    }


def _per_order(cpu_s: float) -> float:
    return round(cpu_s / (ORDERS + WARMUP) * 1e3, 3)


def scale(pair: NetPair, keys: Path) -> dict[str, Any]:
    """(4): deployments B (2 venues on 1 edge) and C (8 venues over 2 edges), both up, their
    orders in alternating chunks so that both series see the same machine."""
    placements = {"2_venues_1_edge": PLACED_B, "8_venues_2_edges": PLACED_C}
    with ExitStack() as stack:
        deps = {
            label: stack.enter_context(_deployed(pair, keys, placed, LINK_PORT + 1 + i))
            for i, (label, placed) in enumerate(placements.items())
        }
        clients = {
            label: stack.enter_context(_orders(d.core, f"s{len(d.venues)}"))
            for label, d in deps.items()
        }
        idle = {label: d.pss_mib() for label, d in deps.items()}
        for label, d in deps.items():  # warm-up only
            clients[label].series(d.venues, 0, 1)
        stamps: dict[str, Stamps] = {label: {} for label in deps}
        for _ in range(SCALE_CHUNKS):
            for label, d in deps.items():
                got = clients[label].series(d.venues, SCALE_ORDERS // SCALE_CHUNKS, 1, 0)
                for venue, orders in got.items():
                    stamps[label].setdefault(venue, {}).update(orders)
        after = {label: d.pss_mib() for label, d in deps.items()}
    return {
        label: {
            "venues": len(placements[label]),
            "pss_idle_mib": idle[label] | {"total": round(sum(idle[label].values()), 1)},
            "pss_after_mib": after[label] | {"total": round(sum(after[label].values()), 1)},
            "submit_to_accepted_ms": _ms([x for v in stamps[label].values() for x in _seconds(v)]),
        }
        for label in deps
    }


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
    if why is not None:  # not root (CI and the bench machine are): said, not failed
        return {"skipped": f"needs network namespaces: {why}"}
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
        "added_p50_vs_2x_raw_rtt_p50": added / (2 * rtt["median"]),
        "added_p50_vs_2x_spaced_rtt_p50": added / (2 * spaced["median"]),
        "added_beyond_wire_p50_ms": added - spaced["median"],
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
    return {k: round(v, 3) for k, v in out.items()}


def summary(r: dict[str, Any]) -> list[str]:
    if "skipped" in r:
        return [f"skipped: {r['skipped']}"]

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
        f"added p50 {c['added_p50_ms']} ms (OMS-side leg {c.get('added_leg_p50_ms')} ms), p99 "
        f"{c['added_p99_ms']} ms; p50 / 2x raw rtt {c['added_p50_vs_2x_raw_rtt_p50']}, / 2x "
        f"spaced rtt {c['added_p50_vs_2x_spaced_rtt_p50']}; beyond the wire (spaced rtt) "
        f"{c['added_beyond_wire_p50_ms']} ms",
        f"PSS MiB idle {r['pss_idle_mib']} -> after {r['pss_after_mib']}",
        f"link actors' CPU ms per edge order: {r['link_cpu_ms_per_edge_order']}, net of "
        f"idle {r['link_cpu_ms_per_edge_order_net_of_idle']}; idle % {r['link_idle_cpu_pct']}",
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
