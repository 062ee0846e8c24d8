"""The run's report: one JSON document (written to var/chaos/<timestamp>/report.json) and a
readable summary. Pure: built from the history, the fault records and the check result.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tests.chaos.checker import CheckResult
from tests.chaos.history import Entry, outcome_counts, summarize_submits
from tests.chaos.nemesis import FaultRecord


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of `values`; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def spread(values: Sequence[float], digits: int = 4) -> dict[str, float | int | None]:
    def r(x: float | None) -> float | None:
        return None if x is None else round(x, digits)

    return {
        "n": len(values),
        "p50": r(percentile(values, 50)),
        "p99": r(percentile(values, 99)),
        "max": r(max(values) if values else None),
    }


def build_report(
    *,
    seed: int,
    options: Mapping[str, Any],
    started_ns: int,
    load_ended_ns: int,
    ended_ns: int,
    history: Sequence[Entry],
    faults: Sequence[FaultRecord],
    restarts: Mapping[str, int],
    supervisor_restarts: int,
    check: CheckResult,
    harness_errors: Sequence[str] = (),
    notes: Sequence[str] = (),
) -> dict[str, Any]:
    submits = summarize_submits(history)
    load_s = max(1e-9, (load_ended_ns - started_ns) / 1e9)
    acked = sum(1 for s in submits.values() if s.result == "acked")
    ok_submit_latency = [
        e.latency_s * 1000 for e in history if e.op == "submit" and e.outcome == "ok"
    ]
    recovery = [f.recovery_s for f in faults if f.recovery_s is not None]
    by_kind: dict[str, list[float]] = defaultdict(list)
    for f in faults:
        if f.recovery_s is not None:
            by_kind[f.kind].append(f.recovery_s)
    unrecovered = [f"{f.kind}:{f.target}#{f.index}" for f in faults if f.recovered_ns is None]
    failed = [f"{f.kind}:{f.target}#{f.index}: {f.error}" for f in faults if f.error]
    valid = check.valid and not harness_errors
    return {
        "valid": valid,
        "seed": seed,
        "duration_s": options.get("duration_s"),
        "wall_s": round((ended_ns - started_ns) / 1e9, 3),
        "load_s": round(load_s, 3),
        "options": dict(options),
        "orders": {
            "submitted": len(submits),
            "by_outcome": dict(sorted(Counter(s.result for s in submits.values()).items())),
            "oms_final_status": check.stats.get("oms_orders_by_status", {}),
            "acked_per_s": round(acked / load_s, 2),
            "operations": outcome_counts(history),
            "attempts": len(history),
            "submit_latency_ms": spread(ok_submit_latency, 3),
        },
        "faults": {
            "injected": len(faults),
            "by_kind": dict(sorted(Counter(f.kind for f in faults).items())),
            "failed_injections": failed,
            "unrecovered": unrecovered,
            "recovery_s": spread(recovery),
            "recovery_s_by_kind": {k: spread(v) for k, v in sorted(by_kind.items())},
            "records": [f.to_dict() for f in faults],
        },
        "restarts": {"by_actor": dict(sorted(restarts.items())), "supervisor": supervisor_restarts},
        "invariants": {k: v.to_dict() for k, v in check.invariants.items()},
        "violations": {k: v.violations for k, v in check.invariants.items() if v.violations},
        "stats": check.stats,
        "harness_errors": list(harness_errors),
        "notes": list(notes),
    }


def write_report(report: Mapping[str, Any], out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "report.json"
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return path


def _fmt(x: Any) -> str:
    return "-" if x is None else (f"{x:.3f}" if isinstance(x, float) else str(x))


def summary_text(report: Mapping[str, Any]) -> str:
    """A readable summary for people (the JSON has everything)."""
    o, f, r = report["orders"], report["faults"], report["restarts"]
    lat = o["submit_latency_ms"]
    rec = f["recovery_s"]
    lines = [
        f"chaos run: seed {report['seed']}, {report['load_s']:.0f} s of load "
        f"({report['wall_s']:.0f} s wall) -> {'VALID' if report['valid'] else 'INVALID'}",
        f"orders: {o['submitted']} submitted {_pairs(o['by_outcome'])}; "
        f"{o['acked_per_s']} acked/s; {o['attempts']} attempts",
        f"  OMS final status: {_pairs(o['oms_final_status'])}",
        f"  submit latency ms: p50 {_fmt(lat['p50'])} p99 {_fmt(lat['p99'])} "
        f"max {_fmt(lat['max'])}",
        *(
            [
                f"  UNKNOWN at the end: {report['stats']['unknown_orders']}, e.g. "
                + "; ".join(report["stats"].get("unknown_examples", [])[:3])
            ]
            if report.get("stats", {}).get("unknown_orders")
            else []
        ),
        *(
            [f"  refused by the venue, no order kept (funds, filters): {_pairs(refused)}"]
            if (refused := {v: n for v, n in _stat(report, "venue_refusals").items() if n})
            else []
        ),
        f"faults: {f['injected']} injected {_pairs(f['by_kind'])}",
        f"  recovery s: p50 {_fmt(rec['p50'])} p99 {_fmt(rec['p99'])} max {_fmt(rec['max'])}"
        f"; unrecovered {len(f['unrecovered'])}; failed injections {len(f['failed_injections'])}",
        f"restarts: {_pairs(r['by_actor'])}; supervisor {r['supervisor']}"
        + (f"; edge supervisor {r['edge_supervisor']}" if "edge_supervisor" in r else ""),
        *(
            [
                f"link ({report.get('topology')}): down {lk['link_down_edge']} times (edge's "
                f"view); dead-man fired {lk['core_lost']} times, cancelled "
                f"{_pairs(lk['dead_man_cancelled'])} at the venues, "
                f"{lk['dead_man_cancelled_oms_cancelled']} CANCELLED at the OMS too; proxy "
                f"{_pairs(lk['proxy'])}"
            ]
            if (lk := report.get("link"))
            else []
        ),
        *(
            [
                f"kill-switch: asked at {ks['requested_at_s']} s, first seen engaged at "
                f"{ks['first_seen_engaged_at_s']} s, engaged at the end: {ks['engaged_at_end']}"
            ]
            if (ks := report.get("kill_switch") or {}).get("first_seen_engaged_at_s") is not None
            or ks.get("requested_at_s") is not None
            else []
        ),
        "invariants:",
    ]
    for name, inv in report["invariants"].items():
        mark = "ok " if not inv["violations"] else "BAD"
        note = f"  ({inv['note']})" if inv.get("note") else ""
        lines.append(f"  [{mark}] {name}: {inv['violations']}{note}")
        lines.extend(f"        - {ex}" for ex in inv["examples"][:5])
    for err in report["harness_errors"]:
        lines.append(f"harness error: {err}")
    for note in report.get("notes", []):
        lines.append(f"note: {note}")
    return "\n".join(lines)


def _stat(report: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = (report.get("stats") or {}).get(key)
    return value if isinstance(value, Mapping) else {}


def _pairs(counts: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> str:
    items = counts.items() if isinstance(counts, Mapping) else counts
    return "(" + ", ".join(f"{k} {v}" for k, v in items) + ")"


def unexpected_exits(lines: list[dict[str, Any]], faults: list[FaultRecord]) -> list[str]:
    """Actor exits the supervisor logged for a pid the nemesis never signalled: crashes."""
    targeted = {f.detail.get("pid") for f in faults if f.detail.get("pid")}
    hung = {e.get("pid"): e for e in lines if e.get("event") == "actor_hung"}
    out = []
    for e in lines:
        if e.get("event") == "actor_exited" and e.get("pid") not in targeted:
            how = f"signal {e['signal']}" if "signal" in e else f"exit_code {e.get('exit_code')}"
            if e.get("pid") in hung:
                how += (
                    f", killed as hung: no heartbeat for {hung[e['pid']].get('heartbeat_age_s')} s"
                )
            out.append(f"{e.get('child')} pid {e.get('pid')} exited ({how}) at {e.get('ts')}")
    return out


def restarts_by_actor(lines: list[dict[str, Any]]) -> dict[str, int]:
    """Actor exits per child, from one supervisor's log."""
    out: dict[str, int] = {}
    for e in lines:
        if e.get("event") == "actor_exited":
            out[str(e.get("child"))] = out.get(str(e.get("child")), 0) + 1
    return out
