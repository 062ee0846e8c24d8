"""Idle cost per venue: the real system with N simulated venues (default 16, TP_BENCH_IDLE_VENUES)
and the demo's intervals (supervisor liveness 0.2 s, heartbeat 1 s), no orders.

After every actor is running and a settle period, each process's CPU time is sampled over
TP_BENCH_IDLE_S seconds (default 20) and its PSS read once (`memory_full_info().pss`).
Reported: CPU as % of one core per process role and in total, per venue (the venue's
connector plus its simulator), and the fixed part (supervisor, fork server, OMS, risk,
heartbeat); PSS likewise. Beside it, what a venue adds: the same with 1 venue, and the
difference of the totals (every process) over the 15 more venues; the supervisor's work for
each venue counts there, and the pages the venues share with the fixed processes are
charged where they fall. Floor in the same run: an idle Python process blocked in
`zmq.Poller.poll(1000)` (what an actor costs doing nothing). Targets (issue 16):
<= 0.5 % of a core and <= 15 MiB PSS per venue.

Beside it, the same 16 venues with their simulators in one process (`[venues.sim] runs_in`,
`shared_sims`): each venue's connector as before, one `venuesim` process for all 16 (the
simulated outside world laid out as a host of many simulated venues would run it; a real
venue has no simulator here at all). TP_BENCH_IDLE_SHARED=0 leaves it out.

TP_BENCH_IDLE_MEMORY_MERGE=1 runs the system with `[supervisor] memory_merge = true`
(kernel samepage merging of the actors; the host must run ksmd, /sys/kernel/mm/ksm/run = 1)
and reports the scanner's own CPU (the `ksmd` kernel thread, in no process of ours) beside.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import defaultdict
from datetime import datetime
from typing import Any

import psutil

from tests.bench._stats import host_info
from tests.helpers import run_system

VENUES = int(os.environ.get("TP_BENCH_IDLE_VENUES", "16"))
SAMPLE_S = float(os.environ.get("TP_BENCH_IDLE_S", "20"))
SETTLE_S = float(os.environ.get("TP_BENCH_IDLE_SETTLE_S", "5"))  # ksmd's first passes: minutes
TARGET_CPU_PCT_PER_VENUE = 0.5
TARGET_PSS_MIB_PER_VENUE = 15.0
MEMORY_MERGE = os.environ.get("TP_BENCH_IDLE_MEMORY_MERGE", "0") == "1"
SHARED = os.environ.get("TP_BENCH_IDLE_SHARED", "1") == "1"
CONFIG = {
    "heartbeat": {"interval_s": 1.0, "log_every_n": 60},
    "supervisor": {"memory_merge": MEMORY_MERGE},
}

_IDLE_FLOOR = (
    "import zmq,sys;c=zmq.Context();s=c.socket(zmq.PULL);s.bind('tcp://127.0.0.1:*');"
    "p=zmq.Poller();p.register(s,zmq.POLLIN);sys.stdout.write('up\\n');sys.stdout.flush()\n"
    "while True: p.poll(1000)"
)


def _role(actor_id: str) -> str:
    """`connector.v03` -> `connector`; `oms` -> `oms`."""
    return actor_id.split(".", 1)[0]


def _cpu_s(p: psutil.Process) -> float:
    t = p.cpu_times()
    return float(t.user + t.system)


def floor_cpu_pct(seconds: float) -> float:
    proc = subprocess.Popen(
        [sys.executable, "-c", _IDLE_FLOOR], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        assert proc.stdout is not None
        proc.stdout.readline()
        p = psutil.Process(proc.pid)
        before = _cpu_s(p)
        time.sleep(seconds)  # sampling window, not synchronisation
        return (_cpu_s(p) - before) / seconds * 100
    finally:
        proc.kill()
        proc.wait()


def _ksmd() -> psutil.Process | None:
    for p in psutil.process_iter(["name"]):
        if p.info["name"] == "ksmd":
            return p
    return None


def _shared_sims(names: list[str]) -> dict[str, Any]:
    """CONFIG with every venue's simulator in the first venue's process (`sim.runs_in`)."""

    def sim(i: int) -> dict[str, Any]:
        return {"reference_prices": {"AAPL": "100.00"}} | ({"runs_in": names[0]} if i else {})

    venues = [{"name": n, "target_comp_id": n.upper(), "sim": sim(i)} for i, n in enumerate(names)]
    return {**CONFIG, "venues": venues}


def _sample(venues: int, shared: bool = False) -> dict[str, Any]:
    """The system with `venues` simulated venues (`shared`: their simulators in one
    process), idle: CPU (% of a core) and PSS (MiB) by process role over SAMPLE_S after
    SETTLE_S."""
    names = [f"v{i:02d}" for i in range(venues)]
    overrides = _shared_sims(names) if shared else CONFIG
    with run_system(venues=names, overrides=overrides, timeout_s=60.0) as sut:
        assert sut.proc is not None
        sup = psutil.Process(sut.proc.pid)
        time.sleep(SETTLE_S)  # let start-up work (reconciliation, first beats) finish
        roles = {a["pid"]: _role(a["id"]) for a in sut.status()["actors"] if a["pid"]}
        procs = [sup, *sup.children(recursive=True)]
        roles[sup.pid] = "supervisor"
        before = {p.pid: _cpu_s(p) for p in procs}
        ksmd = _ksmd() if MEMORY_MERGE else None
        ksmd_before = _cpu_s(ksmd) if ksmd is not None else 0.0
        t0 = time.monotonic()
        time.sleep(SAMPLE_S)  # sampling window
        elapsed = time.monotonic() - t0
        ksmd_pct = (_cpu_s(ksmd) - ksmd_before) / elapsed * 100 if ksmd is not None else None
        cpu: dict[str, float] = defaultdict(float)
        pss: dict[str, float] = defaultdict(float)
        count: dict[str, int] = defaultdict(int)
        for p in procs:
            try:
                role = roles.get(p.pid, "forkserver")  # the one child that is no actor
                cpu[role] += (_cpu_s(p) - before[p.pid]) / elapsed * 100
                pss[role] += p.memory_full_info().pss / 2**20
                count[role] += 1
            except psutil.NoSuchProcess:
                continue
        sut.stop()
    return {"cpu": cpu, "pss": pss, "count": count, "elapsed": elapsed, "ksmd_pct": ksmd_pct}


def run() -> dict[str, Any]:
    """16 venues (the target's system), and 1 venue beside it: what a venue adds is the
    difference over the 15 more, every process counted (the supervisor's work per venue
    too, and the shared pages charged where they fall), next to the target's own reading,
    the 16 venues' connectors and simulators divided by 16."""
    one = _sample(1)
    r = _sample(VENUES)
    cpu, pss, count, elapsed, ksmd_pct = r["cpu"], r["pss"], r["count"], r["elapsed"], r["ksmd_pct"]
    own = _per_venue(r, one)
    floor = floor_cpu_pct(min(SAMPLE_S, 10.0))
    shared = _per_venue(_sample(VENUES, shared=True), one) if SHARED else None
    return {
        "venues": VENUES,
        "processes": sum(count.values()),
        "sample_s": round(elapsed, 1),
        "cpu_pct_of_core": {r: round(v, 3) for r, v in sorted(cpu.items())},
        "pss_mib": {r: round(v, 1) for r, v in sorted(pss.items())},
        "processes_by_role": dict(sorted(count.items())),
        **{k: own[k] for k in ("total_cpu_pct", "total_pss_mib", "per_venue_cpu_pct",
                                "per_venue_pss_mib")},
        "one_venue": {"total_cpu_pct": round(sum(one["cpu"].values()), 2),
                      "total_pss_mib": round(sum(one["pss"].values()), 1)},
        **{k: own[k] for k in ("added_per_venue_cpu_pct", "added_per_venue_pss_mib")},
        "floor_idle_process_cpu_pct": round(floor, 4),
        "memory_merge": MEMORY_MERGE,
        "ksmd_cpu_pct_of_core": None if ksmd_pct is None else round(ksmd_pct, 3),
        "shared_sims": shared,
        "targets": {"cpu_pct_per_venue": TARGET_CPU_PCT_PER_VENUE,
                    "pss_mib_per_venue": TARGET_PSS_MIB_PER_VENUE},
        "met": own["met"],
        "host": host_info(),
        "ts": datetime.now().astimezone().isoformat(timespec="seconds"),
    }  # fmt: skip


def _per_venue(r: dict[str, Any], one: dict[str, Any]) -> dict[str, Any]:
    """A venue's share of a sample: its connector plus its simulator's process divided by
    the venues it runs (the target's reading), what a venue adds over `one` (the 1-venue
    sample), the whole system; met or not."""
    cpu = (r["cpu"]["connector"] + r["cpu"]["venuesim"]) / VENUES
    pss = (r["pss"]["connector"] + r["pss"]["venuesim"]) / VENUES
    added = {k: (sum(r[k].values()) - sum(one[k].values())) / (VENUES - 1) for k in ("cpu", "pss")}
    return {
        "added_per_venue_cpu_pct": round(added["cpu"], 3),
        "added_per_venue_pss_mib": round(added["pss"], 1),
        "processes": sum(r["count"].values()),
        "per_venue_cpu_pct": round(cpu, 3),
        "per_venue_pss_mib": round(pss, 1),
        "connector_pss_mib": round(r["pss"]["connector"] / VENUES, 1),
        "total_cpu_pct": round(sum(r["cpu"].values()), 2),
        "total_pss_mib": round(sum(r["pss"].values()), 1),
        "met": {"cpu": cpu <= TARGET_CPU_PCT_PER_VENUE, "pss": pss <= TARGET_PSS_MIB_PER_VENUE,
                "added_cpu": added["cpu"] <= TARGET_CPU_PCT_PER_VENUE,
                "added_pss": added["pss"] <= TARGET_PSS_MIB_PER_VENUE},
    }  # fmt: skip


def summary(r: dict[str, Any]) -> list[str]:
    return [
        f"{r['venues']} venues, {r['processes']} processes, idle {r['sample_s']} s",
        f"CPU % of a core by role: {r['cpu_pct_of_core']}  total {r['total_cpu_pct']} %",
        f"PSS MiB by role: {r['pss_mib']}  total {r['total_pss_mib']} MiB",
        f"per venue (connector + sim): {r['per_venue_cpu_pct']} % of a core "
        f"(target <= {TARGET_CPU_PCT_PER_VENUE}: {'met' if r['met']['cpu'] else 'NOT met'}), "
        f"{r['per_venue_pss_mib']} MiB PSS "
        f"(target <= {TARGET_PSS_MIB_PER_VENUE}: {'met' if r['met']['pss'] else 'NOT met'})",
        f"what a venue adds (every process, {r['venues']} venues against 1, over "
        f"{r['venues'] - 1}): {r['added_per_venue_cpu_pct']} % of a core "
        f"({'met' if r['met']['added_cpu'] else 'NOT met'}), "
        f"{r['added_per_venue_pss_mib']} MiB PSS ({'met' if r['met']['added_pss'] else 'NOT met'})",
        f"floor: an idle python+zmq process polling: {r['floor_idle_process_cpu_pct']} % of a core",
        *([_shared_line(sh)] if (sh := r.get("shared_sims")) else []),
        *(
            [f"memory_merge on: ksmd (the host's scanner) {r['ksmd_cpu_pct_of_core']} % of a core"]
            if r.get("memory_merge")
            else []
        ),
    ]


def _shared_line(sh: dict[str, Any]) -> str:
    met = sh["met"]
    return (
        f"simulators in one process ({sh['processes']} processes): per venue "
        f"{sh['per_venue_cpu_pct']} % of a core ({'met' if met['cpu'] else 'NOT met'}), "
        f"{sh['per_venue_pss_mib']} MiB PSS ({'met' if met['pss'] else 'NOT met'}; the "
        f"connector {sh['connector_pss_mib']}); what a venue adds {sh['added_per_venue_cpu_pct']} "
        f"%, {sh['added_per_venue_pss_mib']} MiB; system {sh['total_cpu_pct']} %, "
        f"{sh['total_pss_mib']} MiB"
    )
