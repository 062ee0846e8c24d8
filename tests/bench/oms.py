"""OMS benchmarks on the real system (supervisor, risk, OMS, FIX connector, venue sim).

1. `latency`: one order in flight. The client library submits a resting limit order and
   the clock stops when the client's event stream (`client.events()`) shows it ACCEPTED:
   client -> OMS -> risk -> OMS -> connector -> venue sim (FIX over TCP) -> connector ->
   OMS -> client, 8 process hops. Next to it, round trips before each order (the system
   idle: `TRAILING_S` after the previous order), a raw zmq chain with the same number of
   hops (7 relay processes forwarding the same bytes over ipc PUSH/PULL, one message in
   flight) and the ratio. `stages` splits the system's time with the journal's own
   timestamps (wall clock, same host): client -> OMS received, received -> risk approved,
   approved -> venue acceptance applied, acceptance -> client event; plus the fsync floor
   of the state dir's filesystem. The
   floor of the path is the same chain with an fdatasync at the three relays where the
   design needs one in series (FSYNC_HOPS says which and why). Targets: p50 <= 2x and
   p99 <= 3x that floor.
2. `throughput`: many in flight, durable. CLIENTS processes each pipeline SubmitOrders
   over a raw DEALER (WINDOW in flight per process); an order counts when its OrderAck
   (durable, risk-approved) arrives; latency is send -> OrderAck. A subscriber in this
   process also times each order's ACCEPTED event (at the venue). The orders are resting
   limit buys (qty 1, inside the 10% price band), so 10,000 of them stay open at the
   venue for section 3. Target >= 5,000 orders/s with p99 < 20 ms.
3. `warm_start`: the same system with 10,000 open orders at the venue. Killed -9 (warm
   start replays the journal) and, after that, stopped with SIGTERM (the stop writes a
   snapshot): each time `run` again and measure supervisor start -> `warm_start` logged
   (every venue reconciled, intake open), with the log's milestones and the stages of
   the critical path (supervisor started, venue listening, connector logged on, its mass
   status read and answered; `_WARM_STAGES`). Target <= 1 s, with the venue up: the
   same two starts with the venue run alone (on the port it binds), up throughout as a
   real venue is (tests/bench/venue_up.py). The embedded venue's starts (killed and started
   with the system, its own book loaded on the critical path) are reported beside.

`python -m tests.bench --only oms`; sizes via TP_BENCH_OMS_* env vars.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psutil
import zmq

from protocol.codec import Sender, decode, decode_item, encode
from protocol.event_batch import read_events
from protocol.messages import (
    Message,
    OrderAck,
    OrderEvent,
    OrderStatus,
    OrdType,
    Replies,
    RequestRejected,
    Side,
    SubmitOrder,
    TimeInForce,
)
from protocol.wire_out import dump
from tests.bench._stats import describe, host_info, percentile
from tests.bench.floor_pipe import Chain, pipelined_floor
from tests.helpers import REPO_ROOT, SystemUnderTest, event_time, raw_dealer
from tests.integration.oms_support import OmsSystem, overrides
from tests.system_ops import VENUE, client, journal_records, submit_when_open

LAT_ORDERS = int(os.environ.get("TP_BENCH_OMS_LAT_ORDERS", "1000"))
LAT_WARMUP = 50
TRAILING_S = 0.006  # from one order's ACCEPTED to the next one's floor (see `latency`)
HOPS = 8
THR_ORDERS = int(os.environ.get("TP_BENCH_OMS_OPEN_ORDERS", "10000"))
CLIENTS = int(os.environ.get("TP_BENCH_OMS_CLIENTS", "4"))
WINDOW = int(os.environ.get("TP_BENCH_OMS_WINDOW", "16"))
FLOOR_MIN_ORDERS = 20_000  # the throughput floor's orders at least (tests/bench/floor_pipe.py)
# 1: each throughput client sends its window's room as one SubmitOrders (`pipeline_worker`)
SUBMIT_MANY = os.environ.get("TP_BENCH_SUBMIT_MANY", "0") == "1"
TARGETS = {
    "latency_ratio_p50": 2.0, "latency_ratio_p99": 3.0,
    "throughput_orders_per_s": 5000.0, "throughput_p99_ms": 20.0, "warm_start_s": 1.0,
}  # fmt: skip


def _config() -> dict[str, Any]:
    """Quiet single venue (oms_support.overrides) with the limits out of the way of 10k
    open orders at full speed."""
    cfg = overrides()
    cfg["venues"][0] |= {"rate_limit_per_s": 1_000_000.0, "rate_burst": 100_000}
    return cfg | {
        "risk": {
            "max_open_orders_per_venue": 1_000_000, "max_orders_per_s_per_venue": 1e6,
            "max_orders_per_s": 1e6, "max_position": "1000000", "max_order_notional": "1e9",
        },
        "oms": {**cfg["oms"], "venue_queue_bound": 1_000_000, "request_timeout_s": 10.0},
        "supervisor": {"hang_missed_intervals": 25},
    }  # fmt: skip


def _order(coid: str, price: Decimal) -> SubmitOrder:
    """A resting limit buy of 1 (the market is 99.99 / 100.01)."""
    return SubmitOrder(
        client_order_id=coid, venue="simA", symbol="AAPL", side=Side.BUY, qty=Decimal(1),
        order_type=OrdType.LIMIT, price=price, tif=TimeInForce.DAY,
    )  # fmt: skip


def _payload() -> list[bytes]:  # the floors' message: a SubmitOrder's envelope
    return encode(Sender("bench", 1).envelope(_order("lat-00000", Decimal("95.00"))))


def _ms(values: Sequence[float]) -> dict[str, float]:
    return describe(values, scale=1e3) | {"p99": round(percentile(values, 99) * 1e3, 3)}


# --------------------------------------------------------------------------- 1. latency

# The fdatasyncs in series that the design needs between submit and ACCEPTED on the
# client's stream, by relay (hop) number: 3 the OMS's commit of the new order with its
# verdict (before the PlaceOrder leaves: nothing is sent before its journal commit),
# 4 the connector's FIX store (the D is durable before it is on the wire, so a restart
# never reuses its sequence number or forgets it was sent), 7 the OMS's commit of the
# acceptance (an event is published only once durable). Not in series: the connector's
# exec outbox (it forwards the execution to the OMS first, then syncs) and the venue's
# (the outside world: the simulator writes its log before it answers, which survives
# its kill -9, and fsyncs it once a second, `actors.venuesim.unit.SYNC_INTERVAL_S`).
# Tables before 2026-12-05 (#7) had an fdatasync at hop 5 too, for the venue: a floor
# one fdatasync slower than the path the system runs, so their ratios were too low.
FSYNC_HOPS = (3, 4, 7)


def fsync_floor_s(directory: Path, n: int = 300) -> list[float]:
    path = directory / "fsync-probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        samples = []
        for _ in range(n):
            os.write(fd, b"x" * 200)
            start = time.perf_counter()
            os.fdatasync(fd)
            samples.append(time.perf_counter() - start)
        return samples
    finally:
        os.close(fd)
        path.unlink()


def latency(sut: SystemUnderTest) -> dict[str, Any]:
    """One order in flight, submit -> ACCEPTED on the client's event stream; before each
    order, round trips of the raw chain for `TRAILING_S` (the last one kept) and one of
    the floor, so that the three series share the machine's moments (a ratio of series
    taken minutes apart measured the machine's load as much as the code)."""
    stamps: dict[str, tuple[int, int, int]] = {}
    payload = _payload()
    raw_s: list[float] = []
    floor_s: list[float] = []
    with contextlib.ExitStack() as chains, client(sut) as c:
        raw = Chain(HOPS, payload)
        chains.callback(raw.close)
        floor_chain = Chain(HOPS, payload, sut.state_dir, FSYNC_HOPS)
        chains.callback(floor_chain.close)
        # intake open; a market order, not open
        submit_when_open(c, VENUE, qty="1", price=None, client_order_id="lat-probe")
        c.subscribe()
        for i in range(LAT_ORDERS + LAT_WARMUP):
            coid = f"lat-{i:05d}"
            # the chains first: raw round trips for `TRAILING_S`, then the floor's. The
            # previous order's trailing work (the connector's exec outbox sync after it
            # forwarded the execution, the OMS's ExecAck 2 ms after its commit, each
            # actor's metric writes 5 ms after its first update) ends meanwhile, so it
            # slows neither the floor's fdatasyncs nor this order; the raw chain keeps the
            # machine as busy as back-to-back orders would (an idle pause instead slowed
            # the order and the floor alike by half: the VM's idle CPUs wake slowly)
            gap_end = time.monotonic() + TRAILING_S
            r = raw.round_trip()
            while time.monotonic() < gap_end:
                r = raw.round_trip()  # the last one, the closest to the order
            f = floor_chain.round_trip()
            t0 = time.time_ns()
            c.submit("simA", "AAPL", "BUY", "1", "LIMIT", price="95.00", client_order_id=coid)
            t1 = time.time_ns()
            for ev in c.events(timeout_s=10.0):
                if isinstance(ev, OrderEvent) and ev.order.client_order_id == coid:
                    if ev.order.status is OrderStatus.ACCEPTED:
                        break
            else:
                raise AssertionError(f"{coid}: no ACCEPTED event")
            t2 = time.time_ns()
            if i >= LAT_WARMUP:
                stamps[coid] = (t0, t1, t2)
                raw_s.append(r)
                floor_s.append(f)
    e2e = [(t2 - t0) / 1e9 for t0, _, t2 in stamps.values()]
    acks = [(t1 - t0) / 1e9 for t0, t1, _ in stamps.values()]
    means = _metric_means_ms(sut)
    raw = _ms(raw_s)
    floor = _ms(floor_s)
    system = _ms(e2e)
    return {
        "orders": len(e2e),
        "hops": HOPS,
        "fsync_hops": list(FSYNC_HOPS),
        "submit_to_accepted_event_ms": system,
        "submit_to_order_ack_ms": _ms(acks),
        "zmq_chain_same_hops_ms": raw,
        "floor_hops_and_fsyncs_ms": floor,
        "ratio_p50": round(system["median"] / floor["median"], 2),
        "ratio_p99": round(system["p99"] / floor["p99"], 2),
        "ratio_p50_hops_only": round(system["median"] / raw["median"], 2),
        "stages_ms": _stages(sut, stamps),
        "metrics_mean_ms": means,
        "fsync_floor_ms": _ms(fsync_floor_s(sut.state_dir)),
    }


def _metric_means_ms(sut: SystemUnderTest) -> dict[str, float]:
    """Means of the system's own latency histograms over the run (all orders)."""
    from tests.helpers import metric_value

    text = sut.metrics_text()
    out = {}
    for key, name in (
        ("oms_submit_to_venue_ack", "tradepulse_order_latency_seconds"),
        ("connector_d_to_first_exec_report", "tradepulse_venue_roundtrip_seconds"),
        ("oms_journal_commit", "tradepulse_journal_fsync_seconds"),
    ):
        total, count = metric_value(text, f"{name}_sum"), metric_value(text, f"{name}_count")
        if total is not None and count:
            out[key] = round(total / count * 1e3, 3)
    return out


def _stages(sut: SystemUnderTest, stamps: dict[str, tuple[int, int, int]]) -> dict[str, Any]:
    """Where the time goes, from the journal's timestamps of each measured order."""
    seen: dict[str, dict[str, int]] = {}
    for r in journal_records(sut):
        d = r["data"] if r["kind"] == "record" else {}
        if d.get("kind") == "new":
            seen.setdefault(d["order"]["client_order_id"], {})["new"] = d["order"]["ts_created_ns"]
        elif d.get("kind") == "event":
            seen.setdefault(d["id"], {})[d["event"]] = d["ts_ns"]
    cols: dict[str, list[float]] = {
        "client_to_oms": [], "oms_to_risk_approved": [], "approved_to_venue_accepted": [],
        "accepted_to_client_event": [],
    }  # fmt: skip
    for coid, (t0, _, t2) in stamps.items():
        s = seen.get(coid, {})
        if {"new", "risk_approved", "accepted"} <= set(s):
            cols["client_to_oms"].append((s["new"] - t0) / 1e9)
            cols["oms_to_risk_approved"].append((s["risk_approved"] - s["new"]) / 1e9)
            cols["approved_to_venue_accepted"].append((s["accepted"] - s["risk_approved"]) / 1e9)
            cols["accepted_to_client_event"].append((t2 - s["accepted"]) / 1e9)
    return {k: _ms(v) for k, v in cols.items() if v}


# --------------------------------------------------------------------------- 2. throughput


def pipeline_worker(endpoint: str, prefix: str, n: int, window: int) -> dict[str, Any]:
    """One client process: `n` SubmitOrders, `window` in flight, over a raw DEALER. With
    `TP_BENCH_SUBMIT_MANY=1` (`SUBMIT_MANY`), the orders it may send at a moment (its window's
    room) go as one `SubmitOrders` (one alone as a lone SubmitOrder), as `submit_many` sends."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = raw_dealer(ctx, endpoint)
    sender = Sender(prefix, 1)
    print("ready", flush=True)
    sys.stdin.readline()  # "go"
    t0 = os.times()  # the CPU of the run, not of the interpreter's start and imports
    inflight: dict[str, float] = {}
    lat: list[float] = []
    sent_wall: list[float] = []  # time.time() of each send: submit -> ACCEPTED (other process)
    errors: dict[str, int] = {}
    sent = 0
    t_first = time.time()

    def answered(corr: str, reply: Message) -> None:
        started = inflight.pop(corr, None)
        if started is None:
            return
        if isinstance(reply, OrderAck):
            lat.append(time.perf_counter() - started)
        else:
            code = reply.code.value if isinstance(reply, RequestRejected) else reply.type
            errors[code] = errors.get(code, 0) + 1

    while sent < n or inflight:
        room = min(n - sent, window - len(inflight))
        if SUBMIT_MANY and room > 1:
            items = []
            for _ in range(room):
                price = Decimal(f"{91 + sent % 9}.{sent % 100:02d}")  # 91.00..99.99: in the band
                msg_id = sender.next_id()
                items.append({"id": msg_id, "body": dump(_order(f"{prefix}-{sent:06d}", price))})
                inflight[msg_id] = time.perf_counter()
                sent_wall.append(time.time())
                sent += 1
            sock.send_multipart(sender.encode_body("submit_orders", {"orders": items})[1])
        while sent < n and len(inflight) < window:
            price = Decimal(f"{91 + sent % 9}.{sent % 100:02d}")  # 91.00..99.99: in the band
            env = sender.envelope(_order(f"{prefix}-{sent:06d}", price))
            inflight[env.msg_id] = time.perf_counter()
            sent_wall.append(time.time())
            sock.send_multipart(encode(env))
            sent += 1
        if not sock.poll(30_000):
            raise RuntimeError(f"{prefix}: no reply in 30 s ({len(inflight)} in flight)")
        while True:
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            reply = decode(frames)
            if isinstance(reply.body, Replies):
                for item in reply.body.replies:
                    answered(str(item["corr"]), decode_item(str(item["type"]), item["body"]))
            else:
                answered(reply.corr_id, reply.body)
    t = os.times()
    out = {"lat": lat, "t_first": t_first, "t_last": time.time(), "errors": errors,
           "cpu_s": t.user + t.system - t0.user - t0.system, "sent_wall": sent_wall}  # fmt: skip
    ctx.destroy(linger=0)
    return out


class _AcceptedCounter(threading.Thread):
    """Times the ACCEPTED event of every throughput order on the OMS event stream."""

    def __init__(self, endpoint: str, prefix: str, expected: int) -> None:
        super().__init__(daemon=True)
        self.ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.sub = self.ctx.socket(zmq.SUB)
        self.sub.setsockopt(zmq.RCVHWM, 0)
        self.sub.setsockopt(zmq.SUBSCRIBE, b"")
        self.sub.connect(endpoint)
        self.prefix = prefix
        self.expected = expected
        self.accepted: dict[str, float] = {}  # client order id -> time.time() seen ACCEPTED
        self.t_last = 0.0
        self.stop = threading.Event()
        self.connected = threading.Event()  # it has received an event
        self._cpu_s = 0.0

    def cpu_s(self) -> float:
        """This thread's CPU so far (as of its last message): the event stream's reader is
        part of what an order costs (every event read once, as a client reads it)."""
        return self._cpu_s

    def run(self) -> None:
        while not self.stop.is_set() and len(self.accepted) < self.expected:
            if not self.sub.poll(200):
                continue
            frames = self.sub.recv_multipart()
            self.connected.set()
            self._cpu_s = time.thread_time()  # up to the message before this one
            if not any(b"ACCEPTED" in f for f in frames):
                continue  # cheap filter: decode only the events that can count
            batch = read_events(frames)  # a turn's events in one message, or one event
            events = [decode(frames).body] if batch is None else [i.decode() for i in batch[1]]
            for body in events:
                if isinstance(body, OrderEvent) and body.order.status is OrderStatus.ACCEPTED:
                    coid = body.order.client_order_id
                    if coid.startswith(self.prefix) and coid not in self.accepted:
                        self.t_last = self.accepted[coid] = time.time()

    def close(self) -> None:
        self.stop.set()
        self.join(5.0)
        self.ctx.destroy(linger=0)


def throughput(
    sut: SystemUnderTest,
    total: int,
    *,
    clients: int = CLIENTS,
    window: int = WINDOW,
    prefix: str = "thr",
) -> dict[str, Any]:
    """`total` resting orders from `clients` pipelining processes (`window` in flight each),
    with the CPU each process of the system spent on them (psutil, before/after)."""
    per_client = [total // clients + (1 if i < total % clients else 0) for i in range(clients)]
    counter = _AcceptedCounter(sut.cfg.events_endpoint, prefix, total)
    counter.start()
    with client(sut) as c:  # market orders (not left open) until the subscriber sees events
        for i in range(100):
            submit_when_open(c, VENUE, qty="1", price=None, client_order_id=f"probe-{prefix}-{i}")
            if counter.connected.wait(0.2):
                break
    rows = [a for a in sut.status()["actors"] if a["pid"]]
    assert sut.proc is not None
    rows.append({"id": "supervisor", "kind": "supervisor", "pid": sut.proc.pid})
    actors = {a["id"]: psutil.Process(a["pid"]) for a in rows}
    kinds = {a["id"]: a["kind"] for a in rows}
    forks = {k for k, kind in kinds.items() if kind != "supervisor"}  # its forked helpers too
    cpu_before = {k: _cpu_s(p, k in forks) or 0.0 for k, p in actors.items()}
    reader_before = counter.cpu_s()
    host_before = psutil.cpu_times()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.bench.oms", "pipeline", sut.cfg.client_endpoint,
             f"{prefix}{i}", str(n), str(window)],
            cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        for i, n in enumerate(per_client)
    ]  # fmt: skip
    try:
        for p in procs:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        results = []
        for p in procs:
            out, _ = p.communicate(timeout=300)
            results.append(json.loads(out))
        deadline = time.monotonic() + 120
        while len(counter.accepted) < total and time.monotonic() < deadline:
            time.sleep(0.05)  # a bench, not a test: waiting for the stream to drain
        after = {k: _cpu_s(p, k in forks) for k, p in actors.items()}
        reader_cpu = counter.cpu_s() - reader_before
        gone = sorted(k for k, v in after.items() if v is None)  # restarted meanwhile
        cpu = {k: v - cpu_before[k] for k, v in after.items() if v is not None}
        host = _busy_fraction(host_before, psutil.cpu_times())
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        counter.close()
    lat = [x for r in results for x in r["lat"]]
    accepted_lat = [
        counter.accepted[coid] - sent
        for i, r in enumerate(results)
        for j, sent in enumerate(r["sent_wall"])
        if (coid := f"{prefix}{i}-{j:06d}") in counter.accepted
    ]
    clients_cpu = sum(r["cpu_s"] for r in results)
    by_kind: dict[str, float] = {"clients": clients_cpu, "event_reader": reader_cpu}
    for k, v in cpu.items():
        by_kind[kinds[k]] = by_kind.get(kinds[k], 0.0) + v
    cpu["clients"] = clients_cpu
    cpu["event_reader"] = reader_cpu
    t_first = min(r["t_first"] for r in results)
    t_last = max(r["t_last"] for r in results)
    errors: dict[str, int] = {}
    for r in results:
        for k, v in r["errors"].items():
            errors[k] = errors.get(k, 0) + v
    cpu_per_order = {k: round(v / total * 1e3, 3) for k, v in sorted(cpu.items()) if v}
    floor_n = max(total, FLOOR_MIN_ORDERS)  # ~1-3 s: a shorter run was noise (8.7-14.4k/s)
    floor = pipelined_floor(_payload(), HOPS, FSYNC_HOPS, sut.state_dir, floor_n, clients * window)
    acked_per_s = round(len(lat) / (t_last - t_first), 1)
    return {
        "orders": total,
        "acked": len(lat),
        "clients": clients,
        "window_per_client": window,
        "submit_many": SUBMIT_MANY,  # the clients' orders sent as SubmitOrders batches
        "errors": errors,
        "acked_orders_per_s": acked_per_s,
        "submit_to_order_ack_ms": _ms(lat),
        "submit_to_accepted_event_ms": _ms(accepted_lat) if accepted_lat else {},
        "accepted_at_venue": len(counter.accepted),
        "accepted_orders_per_s": round(len(counter.accepted) / (counter.t_last - t_first), 1)
        if counter.accepted else 0.0,
        "cpu_ms_per_order": cpu_per_order,
        "cpu_ms_per_order_by_kind": {
            k: round(v / total * 1e3, 3) for k, v in sorted(by_kind.items()) if v
        },
        "host_cpu_busy_fraction": round(host, 2),
        "exited_during_run": gone,  # their CPU is missing from the figures
        # the same hops and fdatasyncs, pipelined, right after (tests/bench/floor_pipe.py)
        "floor": floor,
        "ratio_orders_per_s": round(floor["orders_per_s"] / acked_per_s, 2),
        "ratio_cpu_per_order": round(sum(cpu_per_order.values()) / floor["cpu_ms_per_order"], 2),
    }  # fmt: skip


def _cpu_s(p: psutil.Process, forks: bool = False) -> float | None:
    """User + system CPU seconds of `p`; None once it has exited. With `forks`, also of the
    children it forked (the OMS's background snapshot: O(book) CPU at nice 19), reaped or
    running, which is CPU the actor's work costs too."""
    try:
        t = p.cpu_times()
        children = p.children() if forks else []
    except psutil.Error:
        return None
    own = t.user + t.system
    if not forks:
        return float(own)
    running = 0.0
    for c in children:
        with contextlib.suppress(psutil.Error):
            ct = c.cpu_times()
            running += ct.user + ct.system
    return float(own + t.children_user + t.children_system + running)


def _busy_fraction(before: Any, after: Any) -> float:
    """Share of all CPUs busy between two `psutil.cpu_times()` (every process on the host)."""
    idle = (after.idle + after.iowait) - (before.idle + before.iowait)
    total = sum(after) - sum(before)
    return 1.0 - idle / total if total > 0 else 0.0


# --------------------------------------------------------------------------- 3. warm start


def warm_start(
    root: Path, how: str, overrides: dict[str, Any] | None = None
) -> tuple[dict[str, Any], OmsSystem]:
    """`run` on `root` (after a kill -9 or a stop): supervisor start -> `warm_start`.
    `overrides`: the config's (default `_config()`; `venue_up` runs the venue alone)."""
    sut = OmsSystem(root=root, overrides=_config() if overrides is None else overrides)
    t0 = time.time()
    sut.start(wait_ready=False)
    try:
        warm = sut.wait_event("warm_start", 120.0, actor="oms")
        replayed = sut.wait_event("journal_replayed", actor="oms")
        connected = sut.wait_event("venue_state", actor="oms", state="CONNECTED")
        plan = sut.wait_event("reconcile_plan", actor="oms")
    except BaseException:
        sut.destroy()  # never returned to the caller, which could not destroy it
        raise
    return {
        "after": how,
        "open_orders": warm["open_orders"],
        "orders": warm["orders"],
        "journal_records": replayed["records"],
        "snapshot": replayed["snapshot"],
        "plan_actions": plan["actions"],
        "start_to_warm_start_s": round(event_time(warm) - t0, 3),
        "milestones_s": {
            "journal_replayed": round(event_time(replayed) - t0, 3),
            "venue_connected": round(event_time(connected) - t0, 3),
            "reconcile_plan": round(event_time(plan) - t0, 3),
            "warm_start": round(event_time(warm) - t0, 3),
        },
        "stages_s": _warm_stages(sut, t0),
    }, sut


# each stage of a warm start's critical path, as the first (actor prefix, event) logged
_WARM_STAGES = (
    ("supervisor_started", "supervisor", "supervisor_started"),
    ("venue_listening", "venuesim.", "sim_listening"),
    ("connector_logged_on", "connector.", "fix_logon"),
    ("mass_status_read", "connector.", "open_orders_at_logon"),
    ("open_orders_answered", "connector.", "open_orders_from_logon"),
)


def _warm_stages(sut: OmsSystem, t0: float) -> dict[str, float]:
    """Seconds from the start to each of `_WARM_STAGES` that was logged, in the order logged
    (one not logged is left out: the mass status's when the connector's early view of the
    open orders was not used)."""
    out: dict[str, float] = {}
    for key, actor, name in _WARM_STAGES:
        found = [e for e in sut.events(name) if str(e.get("actor", "")).startswith(actor)]
        if found:
            out[key] = round(event_time(found[0]) - t0, 3)
    return dict(sorted(out.items(), key=lambda kv: kv[1]))


_EMBEDDED = "embedded (killed and started with the system)"


def _venue_up_warm_starts(root: Path, systems: list[Any]) -> list[dict[str, Any]]:
    """The target's warm starts on `root` (the state the throughput step left): the venue
    run alone and up throughout, as a real venue is (tests/bench/venue_up.py); after a
    kill -9 of the system (the journal replayed), then after its stop (a snapshot)."""
    from tests.bench import venue_up  # it imports this module

    venue, port = venue_up.start_venue(root, root / "state")
    systems.append(venue)
    crash, sut = venue_up.warm_start(root, "kill -9", port)
    systems.append(sut)
    assert sut.stop() == 0
    stop, sut = venue_up.warm_start(root, "SIGTERM stop (snapshot)", port)
    systems.append(sut)
    sut.destroy()  # nothing of this pair runs beside the embedded pair's measurement
    venue.destroy()
    return [crash, stop]


# --------------------------------------------------------------------------- run


def run() -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="tpbo", dir="/tmp"))
    root_up = Path(tempfile.mkdtemp(prefix="tpbu", dir="/tmp"))
    root_up.rmdir()  # copied into after the throughput step
    systems: list[Any] = []  # systems and the venue run alone: each destroyed at the end
    try:
        lat_sut = OmsSystem(overrides=_config())
        systems.append(lat_sut)
        lat = latency(lat_sut.start())
        lat_sut.destroy()
        sut = OmsSystem(root=root, overrides=_config())
        systems.append(sut)
        thr = throughput(sut.start(), THR_ORDERS)
        sut.destroy()  # kill -9 of everything: the next start replays the journal
        # the same state twice: the venue run alone (the target's) and the embedded one
        shutil.copytree(root, root_up, symlinks=True, ignore=shutil.ignore_patterns("*.sock"))
        up = _venue_up_warm_starts(root_up, systems)
        crash, sut = warm_start(root, "kill -9")
        systems.append(sut)
        assert sut.stop() == 0
        stop, sut = warm_start(root, "SIGTERM stop (snapshot)")
        systems.append(sut)
    finally:
        for s in systems:
            s.destroy()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(root_up, ignore_errors=True)
    warm_s = max(w["start_to_warm_start_s"] for w in up)
    meets = {
        "latency_p50": lat["ratio_p50"] <= TARGETS["latency_ratio_p50"],
        "latency_p99": lat["ratio_p99"] <= TARGETS["latency_ratio_p99"],
        "throughput": thr["acked_orders_per_s"] >= TARGETS["throughput_orders_per_s"]
        and thr["submit_to_order_ack_ms"]["p99"] < TARGETS["throughput_p99_ms"],
        "warm_start": warm_s <= TARGETS["warm_start_s"],
    }  # fmt: skip
    return {
        "latency": lat,
        "throughput": thr,
        "warm_start": [*up, crash | {"venue": _EMBEDDED}, stop | {"venue": _EMBEDDED}],
        "targets": TARGETS,
        "meets_target": meets,
        "host": {**host_info(), "loadavg_1m": round(os.getloadavg()[0], 2)},
        "ts": datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def summary(r: dict[str, Any]) -> list[str]:
    lat, thr, ok = r["latency"], r["throughput"], r["meets_target"]

    def line(label: str, d: dict[str, Any]) -> str:
        return f"{label:<40} p50 {d['median']:>8} ms  p99 {d['p99']:>8} ms  (n={d['n']})"

    def met(key: str) -> str:
        return "met" if ok[key] else "NOT met"

    out = [
        f"latency, one in flight ({lat['hops']} hops):",
        line("  submit -> ACCEPTED on the client stream", lat["submit_to_accepted_event_ms"]),
        line("  submit -> OrderAck (durable, approved)", lat["submit_to_order_ack_ms"]),
        line(f"  raw zmq chain, {lat['hops']} hops", lat["zmq_chain_same_hops_ms"]),
        line(
            f"  floor: the chain + fdatasync at hops {lat['fsync_hops']}",
            lat["floor_hops_and_fsyncs_ms"],
        ),
        f"  ratio to the floor p50 {lat['ratio_p50']} (target <= 2: {met('latency_p50')}), "
        f"p99 {lat['ratio_p99']} (target <= 3: {met('latency_p99')}); "
        f"to the hops alone p50 {lat['ratio_p50_hops_only']}",
        *[line(f"    {k}", v) for k, v in lat["stages_ms"].items()],
        line("    fsync floor (200 B append)", lat["fsync_floor_ms"]),
        f"    metric means (ms): {lat['metrics_mean_ms']}",
        f"throughput, {thr['clients']} clients x {thr['window_per_client']} in flight, "
        f"{thr['orders']} orders: {thr['acked_orders_per_s']} acked/s, "
        f"{thr['accepted_orders_per_s']} accepted at the venue/s, errors {thr['errors']}",
        line("  submit -> OrderAck", thr["submit_to_order_ack_ms"]),
        f"  CPU ms per order {thr['cpu_ms_per_order']}; host CPUs busy "
        f"{thr['host_cpu_busy_fraction']:.0%} (every process on the host)",
        f"  floor (the same hops and fdatasyncs, {thr['floor']['window']} in flight): "
        f"{thr['floor']['orders_per_s']}/s, {thr['floor']['cpu_ms_per_order']} CPU ms an order; "
        f"ratios {thr['ratio_orders_per_s']} (orders/s), {thr['ratio_cpu_per_order']} (CPU)",
        f"  target >= 5000/s with p99 < 20 ms: {met('throughput')}",
    ]
    for w in r["warm_start"]:
        out.append(
            f"warm start after {w['after']}, venue {w['venue']}: {w['open_orders']} open orders, "
            f"{w['journal_records']} records{' + snapshot' if w['snapshot'] else ''}: "
            f"{w['start_to_warm_start_s']} s  {w['milestones_s']}"
        )
        out.append(f"  stages: {w['stages_s']}")
    out.append(f"  target <= 1 s (venue up, after kill -9 and after a stop): {met('warm_start')}")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Worker entry: `python -m tests.bench.oms pipeline ENDPOINT PREFIX N WINDOW`."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] != "pipeline":
        print(__doc__)
        return 2
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    result = pipeline_worker(args[1], args[2], int(args[3]), int(args[4]))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
