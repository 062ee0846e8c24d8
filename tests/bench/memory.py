"""Memory under sustained load: the two-venue demo-like system (supervisor, fork server,
OMS, risk, heartbeat, two FIX connectors, two venue simulators) and TP_BENCH_MEMORY_ORDERS
orders (default 100,000) pushed by CLIENTS client processes (WINDOW in flight each).

The orders are market orders of 1, alternately buy and sell, spread over both venues: each
one ends FILLED (terminal) at once, so after the run nothing is open and every byte still
held on account of an order is state that grows. After every checkpoint (every
TP_BENCH_MEMORY_CHECKPOINT orders, default 10,000) the bench waits until the OMS counted
every pushed order terminal (`tradepulse_orders_total`), then reads each process's PSS and
RSS (`psutil.Process.memory_full_info()`). Reported: PSS and RSS by process at every
checkpoint, summed PSS, and each process's RSS growth from the first checkpoint >= 10,000
orders to the last. Targets (issue 16): summed PSS <= 200 MiB after 100,000 orders; every
process's RSS flat after the first 10,000 (here: growth <= FLAT_MIB).

`python -m tests.bench --only memory` (the full figure, ~2-4 minutes);
`TP_BENCH_MEMORY_ORDERS=20000 python -m tests.bench --only memory` for a quick look.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import psutil
import zmq

from protocol.codec import Sender, decode, encode
from protocol.messages import OrderAck, OrdType, RequestRejected, Side, SubmitOrder, TimeInForce
from tests.bench._stats import host_info
from tests.helpers import REPO_ROOT, SystemUnderTest, metric_value, run_system

ORDERS = int(os.environ.get("TP_BENCH_MEMORY_ORDERS", "100000"))
CHECKPOINT = int(os.environ.get("TP_BENCH_MEMORY_CHECKPOINT", "10000"))
CLIENTS = int(os.environ.get("TP_BENCH_MEMORY_CLIENTS", "4"))
WINDOW = int(os.environ.get("TP_BENCH_MEMORY_WINDOW", "16"))
VENUES = ("simA", "simB")
TARGET_PSS_MIB = 200.0
FLAT_MIB = 4.0
TERMINAL = ("FILLED", "CANCELLED", "REJECTED", "EXPIRED")


def config(venues: Sequence[str] = VENUES) -> dict[str, Any]:
    """The demo's shape (two simulated venues, forkserver, 0.2 s liveness, 1 s beats) with
    the limits out of the way of a sustained stream, and the heartbeat's position compare
    tolerant of the executions in flight at any instant (issue 16 names that defect; it is
    not what this bench measures)."""
    return {
        "heartbeat": {"interval_s": 1.0, "log_every_n": 60, "position_tolerance": "1000000",
                      "divergence_beats": 1000},
        "risk": {"max_orders_per_s_per_venue": 1e6, "max_orders_per_s": 1e6,
                 "max_position": "1000000", "max_order_notional": "1e9"},
        "oms": {"venue_queue_bound": 1_000_000, "request_timeout_s": 10.0},
        "supervisor": {"hang_missed_intervals": 25},
        "venues": [
            {"name": v, "target_comp_id": v.upper(), "rate_limit_per_s": 1e6,
             "rate_burst": 100_000,
             "sim": {"reference_prices": {"AAPL": "100.00"}, "volatility_bps": 0.0,
                     "quote_qty": "1000000"}}
            for v in venues
        ],
    }  # fmt: skip


# --------------------------------------------------------------------------- client worker


def worker(endpoint: str, prefix: str, window: int, venues: Sequence[str]) -> None:
    """One client process: for each line `N` on stdin, push N market orders (window in
    flight, round robin over `venues`) over a raw DEALER and print one JSON line {acked,
    errors}; EOF ends it."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    sender = Sender(prefix, 1)
    seq = 0
    print("ready", flush=True)
    for line in sys.stdin:
        n = int(line)
        inflight: set[str] = set()
        acked, errors, sent = 0, dict[str, int](), 0
        while sent < n or inflight:
            while sent < n and len(inflight) < window:
                order = SubmitOrder(
                    client_order_id=f"{prefix}-{seq:07d}", venue=venues[seq % len(venues)],
                    symbol="AAPL", side=Side.BUY if (seq // 2) % 2 else Side.SELL,
                    qty=Decimal(1), order_type=OrdType.MARKET, tif=TimeInForce.DAY,
                )  # fmt: skip
                env = sender.envelope(order)
                inflight.add(env.msg_id)
                sock.send_multipart(encode(env))
                sent += 1
                seq += 1
            if not sock.poll(30_000):
                raise RuntimeError(f"{prefix}: no reply in 30 s ({len(inflight)} in flight)")
            while True:
                try:
                    reply = decode(sock.recv_multipart(zmq.NOBLOCK))
                except zmq.Again:
                    break
                if reply.corr_id not in inflight:
                    continue
                inflight.discard(reply.corr_id)
                if isinstance(reply.body, OrderAck):
                    acked += 1
                else:
                    body = reply.body
                    code = body.code.value if isinstance(body, RequestRejected) else reply.type
                    errors[code] = errors.get(code, 0) + 1
        print(json.dumps({"acked": acked, "errors": errors}), flush=True)
    ctx.destroy(linger=0)


class Clients:
    """CLIENTS worker processes, told to push a batch at a time."""

    def __init__(self, endpoint: str, venues: Sequence[str] = VENUES) -> None:
        argv = [sys.executable, "-m", "tests.bench.memory", "worker", endpoint]
        self.procs = [
            subprocess.Popen(
                [*argv, f"m{i}", str(WINDOW), ",".join(venues)],
                cwd=REPO_ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )  # fmt: skip
            for i in range(CLIENTS)
        ]
        for p in self.procs:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"

    def push(self, total: int) -> dict[str, Any]:
        per = [total // CLIENTS + (1 if i < total % CLIENTS else 0) for i in range(CLIENTS)]
        for p, n in zip(self.procs, per, strict=True):
            assert p.stdin is not None
            p.stdin.write(f"{n}\n")
            p.stdin.flush()
        acked, errors = 0, dict[str, int]()
        for p in self.procs:
            assert p.stdout is not None
            line = p.stdout.readline()
            if not line:
                raise RuntimeError("a bench client died")
            r = json.loads(line)
            acked += r["acked"]
            for k, v in r["errors"].items():
                errors[k] = errors.get(k, 0) + v
        return {"acked": acked, "errors": errors}

    def close(self) -> None:
        for p in self.procs:
            if p.stdin is not None:
                p.stdin.close()
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            if p.stdout is not None:
                p.stdout.close()


# --------------------------------------------------------------------------- measuring


def terminal_orders(sut: SystemUnderTest) -> int:
    text = sut.metrics_text()
    return int(sum(metric_value(text, "tradepulse_orders_total", status=s) or 0 for s in TERMINAL))


def wait_terminal(sut: SystemUnderTest, expected: int, timeout_s: float = 120.0) -> int:
    """Wait until the OMS has counted `expected` orders terminal (a bench, not a test:
    polling the metrics endpoint)."""
    deadline = time.monotonic() + timeout_s
    seen = terminal_orders(sut)
    while seen < expected and time.monotonic() < deadline:
        time.sleep(0.2)
        seen = terminal_orders(sut)
    return seen


def processes(sut: SystemUnderTest) -> dict[str, psutil.Process]:
    """Process name (`supervisor`, `forkserver`, actor id) -> process."""
    assert sut.proc is not None
    sup = psutil.Process(sut.proc.pid)
    by_pid = {a["pid"]: a["id"] for a in sut.status()["actors"] if a["pid"]}
    out = {"supervisor": sup}
    for child in sup.children(recursive=True):
        try:
            parent = by_pid.get(child.ppid())
        except psutil.NoSuchProcess:
            continue
        # an actor's own child (the OMS's background snapshot writer) is named after it
        name = by_pid.get(child.pid) or (f"{parent}.child" if parent else "forkserver")
        out[name] = child
    return out


def sample(procs: dict[str, psutil.Process]) -> dict[str, dict[str, float]]:
    out = {}
    for name, p in sorted(procs.items()):
        try:
            m = p.memory_full_info()
        except psutil.NoSuchProcess:
            continue
        out[name] = {"pss_mib": round(m.pss / 2**20, 1), "rss_mib": round(m.rss / 2**20, 1)}
    return out


def _total_pss(s: dict[str, dict[str, float]]) -> float:
    return round(sum(v["pss_mib"] for v in s.values()), 1)


def measure(
    orders: int = ORDERS, checkpoint: int = CHECKPOINT, venues: Sequence[str] = VENUES
) -> dict[str, Any]:
    checkpoints: list[dict[str, Any]] = []
    errors: dict[str, int] = {}
    with run_system(venues=venues, overrides=config(venues), timeout_s=60.0) as sut:
        procs = processes(sut)
        checkpoints.append({"orders": 0, "processes": sample(procs)})
        clients = Clients(sut.cfg.client_endpoint, venues)
        pushed, started = 0, time.monotonic()
        try:
            while pushed < orders:
                n = min(checkpoint, orders - pushed)
                r = clients.push(n)
                for k, v in r["errors"].items():
                    errors[k] = errors.get(k, 0) + v
                pushed += n
                done = wait_terminal(sut, pushed - sum(errors.values()))
                now = processes(sut)
                restarted = sorted(k for k in now if k in procs and now[k].pid != procs[k].pid)
                procs = now
                checkpoints.append({
                    "orders": pushed, "terminal": done, "elapsed_s": round(
                        time.monotonic() - started, 1), "restarted": restarted,
                    "processes": sample(procs),
                })  # fmt: skip
        finally:
            clients.close()
        sut.stop()
    return {"checkpoints": checkpoints, "errors": errors}


def run() -> dict[str, Any]:
    m = measure()
    cps = m["checkpoints"]
    for cp in cps:
        cp["total_pss_mib"] = _total_pss(cp["processes"])
    base = next((c for c in cps if c["orders"] >= 10_000), cps[0])
    last = cps[-1]
    growth = {
        name: round(last["processes"][name]["rss_mib"] - v["rss_mib"], 1)
        for name, v in base["processes"].items()
        if name in last["processes"]
    }
    elapsed = last.get("elapsed_s") or 0.0
    clean = (
        not m["errors"]
        and not any(c.get("restarted") for c in cps)
        and all(c.get("terminal", c["orders"]) >= c["orders"] for c in cps)
    )
    return {
        "orders": last["orders"],
        "clients": CLIENTS,
        "window_per_client": WINDOW,
        "errors": m["errors"],
        "orders_per_s": round(last["orders"] / elapsed, 1) if elapsed else 0.0,
        "checkpoints": cps,
        "total_pss_mib": {str(c["orders"]): c["total_pss_mib"] for c in cps},
        "rss_growth_mib_after": {"from_orders": base["orders"], "to_orders": last["orders"],
                                 "by_process": growth},
        "targets": {"total_pss_mib": TARGET_PSS_MIB, "rss_growth_mib": FLAT_MIB},
        # a run counts only whole: every order answered without error and ended, no actor
        # restarted (a restarted process's RSS starts again: it would look flat)
        "clean": clean,
        "met": {"pss": clean and last["orders"] >= 100_000
                       and last["total_pss_mib"] <= TARGET_PSS_MIB,
                "flat": clean and bool(growth) and max(growth.values()) <= FLAT_MIB},
        "host": {**host_info(), "loadavg_1m": round(os.getloadavg()[0], 2)},
        "ts": datetime.now().astimezone().isoformat(timespec="seconds"),
    }  # fmt: skip


def summary(r: dict[str, Any]) -> list[str]:
    cps = r["checkpoints"]
    names = sorted({n for c in cps for n in c["processes"]})
    head = f"{'orders':>8} " + " ".join(f"{n[-12:]:>12}" for n in names) + f" {'total':>8}"
    out = [f"{r['orders']} market orders, {r['clients']} clients x {r['window_per_client']} "
           f"in flight, {r['orders_per_s']} orders/s, errors {r['errors']}",
           "PSS MiB by process:", head]  # fmt: skip
    for c in cps:
        cells = " ".join(f"{c['processes'].get(n, {}).get('pss_mib', '-'):>12}" for n in names)
        out.append(f"{c['orders']:>8} {cells} {c['total_pss_mib']:>8}")
    g = r["rss_growth_mib_after"]
    out.append(
        f"RSS growth MiB from {g['from_orders']} to {g['to_orders']} orders: {g['by_process']}"
    )
    met = r["met"]
    out.append(
        f"targets: summed PSS <= {TARGET_PSS_MIB} MiB after 100k: "
        f"{'met' if met['pss'] else 'NOT met'}; every RSS growth <= {FLAT_MIB} MiB: "
        f"{'met' if met['flat'] else 'NOT met'}"
        + (
            ""
            if r.get("clean", True)
            else " (the run was not clean: errors, a restart or "
            "orders not ended; nothing counts as met)"
        )
    )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Worker entry: `python -m tests.bench.memory worker ENDPOINT PREFIX WINDOW VENUES`."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] != "worker":
        print(__doc__)
        return 2
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    worker(args[1], args[2], int(args[3]), args[4].split(","))
    return 0


if __name__ == "__main__":
    sys.exit(main())
