"""Open orders at scale (issue 16, "work that blocks"): the real system (supervisor, risk,
OMS, FIX connector, venue sim) with 1k, 5k, 20k and 50k resting orders at one venue
(TP_BENCH_OPEN_ORDERS_SIZES, comma-separated; placed cumulatively through the client
socket, `tests.integration.many_orders`). At each size:

- `reconcile_s`: an operator's `reconcile --venue simA` round trip: the OMS's pass, that
  is the mass status (AF: one FIX 8 per order, pumped by the venue 256 a turn; answers
  over 10,000 orders are refused by the connector and the pass asks by order, H, in chunks
  of 2,000), the positions request, the plan and its application;
- `stall_ms`: the longest silence of each actor the supervisor saw during that pass
  (`heartbeat_age_s` sampled every 20 ms: a lower bound, 20 ms resolution), next to the
  hang timeout (0.6 s in the tests and the demo); the supervisor's hang detection is
  relaxed here (5 s) so that a stall is measured, not killed;
- `snapshot`: a subscriber's recovery from a gap: one Snapshot up to 5,000 open orders,
  else ListOrders pages of 2,000; its time and the OMS's longest silence meanwhile;
- `place_per_s`: the rate the orders were placed at (pipelined, 64 in flight);
- `order_path`: the cost of an order at this size (issue 16: "cost per order independent
  of open orders"): `PATH_ORDERS` more resting orders from 4 clients x 16 in flight
  (`tests.bench.oms.throughput`: durable orders/s, submit -> OrderAck p50/p99, CPU ms per
  order of every process, with what each forked meanwhile: the OMS's background journal
  snapshot, O(book)), left resting (the next size counts them), and `oms_snapshots`, the
  journal snapshots begun meanwhile; the summary gives the largest size's figures over the
  smallest's.

`python -m tests.bench --only open_orders`.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import psutil

from actors.venuesim.control import control_request as sim_control_request
from protocol.config import OmsCfg
from protocol.messages import Snapshot
from tests.bench._stats import host_info
from tests.bench.oms import throughput
from tests.helpers import SystemUnderTest, run_system
from tests.integration.many_orders import many_orders_overrides, place_resting, wait_open_at_venue
from tests.integration.oms_support import trigger_reconcile
from tests.system_ops import VENUE, client

SIZES = [
    int(s) for s in os.environ.get("TP_BENCH_OPEN_ORDERS_SIZES", "1000,5000,20000,50000").split(",")
]
WATCHED = ("oms", f"venuesim.{VENUE}", f"connector.{VENUE}", "risk")
HANG_TIMEOUT_S = 0.6
DEFAULT_RECONCILE_INTERVAL_S = OmsCfg().reconcile_interval_s  # the demo's, every venue
PATH_ORDERS = int(os.environ.get("TP_BENCH_OPEN_ORDERS_PATH_ORDERS", "4000"))


def _config() -> dict[str, Any]:
    cfg = many_orders_overrides(oms={"request_timeout_s": 10.0, "reconcile_interval_s": 3600.0})
    # the order path's market probes fill, so risk knows a reference price (100.01) and its
    # default 10 % band would refuse the next size's resting buys at 90-99
    cfg["risk"]["price_band_pct"] = 50.0
    return cfg | {"supervisor": {"hang_missed_intervals": 25}}


class _StallWatch(threading.Thread):
    """The largest `heartbeat_age_s` of each actor seen in the supervisor's status."""

    def __init__(self, sut: SystemUnderTest) -> None:
        super().__init__(daemon=True)
        self.sut = sut
        self.max_age_s: dict[str, float] = dict.fromkeys(WATCHED, 0.0)
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                status = self.sut.status(timeout_s=2.0)
            except Exception:  # noqa: BLE001 - a slow answer: sample again
                continue
            for actor in WATCHED:
                age = self.sut.actor(actor, status).get("heartbeat_age_s") or 0.0
                self.max_age_s[actor] = max(self.max_age_s[actor], float(age))
            self.stop.wait(0.02)


def _system_cpu_s(sut: SystemUnderTest) -> float:
    """CPU seconds so far of the supervisor and every process under it."""
    assert sut.proc is not None
    sup = psutil.Process(sut.proc.pid)
    total = 0.0
    for p in (sup, *sup.children(recursive=True)):
        with contextlib.suppress(psutil.NoSuchProcess):
            t = p.cpu_times()
            total += t.user + t.system
    return total


def _measure(sut: SystemUnderTest, n: int) -> dict[str, Any]:
    mark = sut.mark()
    asked_before = _status_requests(sut)
    with _watching(sut) as watch:
        cpu_before = _system_cpu_s(sut)
        started = time.perf_counter()
        reply = trigger_reconcile(sut, timeout_s=600.0)
        reconcile_s = time.perf_counter() - started
        pass_cpu_s = _system_cpu_s(sut) - cpu_before  # the idle system's beats too (~1 %)
    failed = sut.events("reconcile_failed", since=mark)
    asked = _status_requests(sut) - asked_before
    with _watching(sut) as snap_watch:
        snap = _snapshot(sut)
    return {
        "open_orders": n,
        "reconcile_s": round(reconcile_s, 3),
        "reconcile_ok": reply is not None and reply.status == "ok" and not failed,
        # the periodic pass is the same work: at the default interval it costs this share
        # of a core with n orders open, whatever the order rate (the order path below runs
        # with the periodic pass off, so that its CPU per order is the order's alone)
        "reconcile_cpu_s": round(pass_cpu_s, 3),
        "reconcile_pct_of_core_at_default_interval": round(
            pass_cpu_s / DEFAULT_RECONCILE_INTERVAL_S * 100, 1
        ),
        "asked_by_order": asked >= n,  # the mass status refused: every order by H
        "stall_ms": {a: round(s * 1e3) for a, s in watch.max_age_s.items()},
        "hung": len(sut.events("actor_hung")),
        "snapshot": snap | {"oms_stall_ms": round(snap_watch.max_age_s["oms"] * 1e3)},
    }


def _status_requests(sut: SystemUnderTest) -> int:
    """OrderStatusRequests (H) the venue received so far (its status command)."""
    reply = sim_control_request(sut.cfg, VENUE, "status", {}, timeout_s=10.0)
    return int((reply.data or {}).get("received", {}).get("H", 0))


@contextlib.contextmanager
def _watching(sut: SystemUnderTest) -> Iterator[_StallWatch]:
    watch = _StallWatch(sut)
    watch.start()
    try:
        yield watch
    finally:
        watch.stop.set()
        watch.join()


def _snapshot(sut: SystemUnderTest) -> dict[str, Any]:
    """A subscriber's recovery from a gap (`ExecutionClient._snapshot`): one Snapshot up to
    5,000 open orders, else the OMS refuses and the client pages ListOrders; its time."""
    with client(sut, timeout_s=60.0) as c:
        started = time.perf_counter()
        snap = c._snapshot()  # noqa: SLF001 - what events() does on a gap
        took = round(time.perf_counter() - started, 3)
    if isinstance(snap, Snapshot):
        return {"s": took, "outcome": f"{len(snap.orders)} orders"}
    return {"s": took, "outcome": str(snap)[:80]}


def _order_path(sut: SystemUnderTest, n: int) -> dict[str, Any]:
    """What an order costs with `n` resting: `PATH_ORDERS` more from 4 pipelining clients."""
    segment = _journal_segment(sut)
    r = throughput(sut, PATH_ORDERS, clients=4, window=16, prefix=f"op{n}-")
    return {
        "orders_per_s": r["acked_orders_per_s"],
        "order_ack_ms": r["submit_to_order_ack_ms"],
        "cpu_ms_per_order": round(sum(r["cpu_ms_per_order"].values()), 3),
        "cpu_ms_per_order_by_kind": r["cpu_ms_per_order_by_kind"],
        "errors": r["errors"],
        "exited_during_run": r["exited_during_run"],
        "host_cpu_busy_fraction": r["host_cpu_busy_fraction"],  # every process on the host
        # journal snapshots begun meanwhile: each is O(book) (a forked child, counted above)
        "oms_snapshots": _journal_segment(sut) - segment,
    }


def _journal_segment(sut: SystemUnderTest) -> int:
    """The OMS journal's newest segment number (one more for each snapshot begun)."""
    names = [p.name for p in (sut.state_dir / "oms").glob("journal-*.log")]
    return max((int(name[8:16]) for name in names), default=0)


def run() -> dict[str, Any]:
    rows = []
    placed = 0
    with run_system(venues=(VENUE,), overrides=_config(), timeout_s=30.0) as sut:
        for n in SIZES:
            started = time.perf_counter()
            place_resting(sut, n - placed, prefix=f"oo{n}", timeout_s=900.0)
            rate = (n - placed) / (time.perf_counter() - started)
            placed = n
            wait_open_at_venue(sut, n, timeout_s=300.0)
            row = _measure(sut, n) | {"place_per_s": round(rate)}
            rows.append(row | {"order_path": _order_path(sut, n)})
            placed += PATH_ORDERS
        sut.stop()
    return {"sizes": rows, "hang_timeout_s": HANG_TIMEOUT_S, "host": host_info()}


def summary(r: dict[str, Any]) -> list[str]:
    lines = [
        f"{'open orders':>11} {'reconcile s':>11} {'by H':>5} {'ok':>3} "
        f"{'oms ms':>7} {'sim ms':>7} {'conn ms':>7} {'risk ms':>7} "
        f"{'snapshot s':>10} {'oms ms':>7}  snapshot"
    ]
    for row in r["sizes"]:
        st, snap = row["stall_ms"], row["snapshot"]
        by_h = "yes" if row["asked_by_order"] else "no"
        ok = "yes" if row["reconcile_ok"] else "NO"
        sim, conn = st[f"venuesim.{VENUE}"], st[f"connector.{VENUE}"]
        lines.append(
            f"{row['open_orders']:>11} {row['reconcile_s']:>11} {by_h:>5} {ok:>3} "
            f"{st['oms']:>7} {sim:>7} {conn:>7} {st['risk']:>7} "
            f"{snap['s']!s:>10} {snap['oms_stall_ms']:>7}  "
            f"{snap['outcome']}"
        )
    lines.append(
        f"stall: longest silence seen by the supervisor (hang timeout {r['hang_timeout_s']} s)"
    )
    lines.append(
        "a pass's CPU, all processes (s), and the periodic pass's share of a core at the "
        f"default interval ({DEFAULT_RECONCILE_INTERVAL_S:g} s): "
        + ", ".join(
            f"{row['open_orders']}: {row['reconcile_cpu_s']} s, "
            f"{row['reconcile_pct_of_core_at_default_interval']} %"
            for row in r["sizes"]
        )
    )
    lines.append(
        f"{'open orders':>11} {'orders/s':>9} {'ack p50 ms':>10} {'ack p99 ms':>10}"
        f" {'cpu ms/order':>12} {'snapshots':>9}"
    )
    for row in r["sizes"]:
        path, ack = row["order_path"], row["order_path"]["order_ack_ms"]
        lines.append(
            f"{row['open_orders']:>11} {path['orders_per_s']:>9} {ack['median']:>10}"
            f" {ack['p99']:>10} {path['cpu_ms_per_order']:>12}"
            f" {path.get('oms_snapshots', '-')!s:>9}"
        )
    first, last = r["sizes"][0]["order_path"], r["sizes"][-1]["order_path"]
    lines.append(
        f"order path at {r['sizes'][-1]['open_orders']} open / at {r['sizes'][0]['open_orders']}:"
        f" orders/s x{last['orders_per_s'] / first['orders_per_s']:.2f},"
        f" cpu per order x{last['cpu_ms_per_order'] / first['cpu_ms_per_order']:.2f}"
    )
    return lines
