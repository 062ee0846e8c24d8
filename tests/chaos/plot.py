"""The PNG timeline of a chaos run: faults and restarts, order throughput, latency.

matplotlib is a dev/chaos extra, never a runtime dependency: it is imported here, lazily,
with the Agg backend (no display). Without it, `plot_timeline` returns None.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.chaos.history import Entry
from tests.chaos.nemesis import FaultRecord

_COLORS = {
    "sigkill": "tab:red",
    "sigterm": "tab:orange",
    "sigstop": "tab:purple",
    "supervisor_kill": "black",
    "drop_session": "tab:blue",
    "refuse_logons": "tab:cyan",
    "delay_execs": "tab:olive",
    "duplicate_execs": "tab:brown",
    "reorder_execs": "tab:pink",
    "reject_burst": "tab:gray",
    "venue_hang": "tab:green",
    "venue_kill": "crimson",
    "kill_switch": "gold",
    "link_delay": "khaki",
    "link_spike": "salmon",
    "link_stall": "teal",
    "link_cut": "navy",
    "partition": "darkred",
    "edge_supervisor_kill": "dimgray",
}


def _bins(entries: Sequence[Entry], t0_ns: int, width_s: float) -> dict[str, dict[int, int]]:
    out: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for e in entries:
        b = int((e.end_ns - t0_ns) / 1e9 / width_s)
        key = (
            "acked"
            if e.op == "submit" and e.outcome == "ok"
            else (
                "timeout"
                if e.outcome == "timeout"
                else ("error" if e.outcome == "error" else "other ok")
            )
        )
        out[key][b] += 1
    return out


def plot_timeline(
    path: Path,
    *,
    t0_ns: int,
    history: Sequence[Entry],
    faults: Sequence[FaultRecord],
    restarts: Sequence[tuple[int, str]],  # (ts_ns, actor)
    title: str = "",
) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        return None

    def t(ns: int) -> float:
        return (ns - t0_ns) / 1e9

    fig, (ax_f, ax_tp, ax_lat) = plt.subplots(
        3, 1, figsize=(14, 9), sharex=True, gridspec_kw={"height_ratios": [1.3, 1, 1]}
    )
    kinds = sorted({f.kind for f in faults})
    rows = {k: i for i, k in enumerate(kinds)}
    for f in faults:
        y = rows[f.kind]
        end = f.recovered_ns or f.healed_ns
        color = _COLORS.get(f.kind, "tab:gray")
        ax_f.plot([t(f.start_ns), t(end)], [y, y], color=color, lw=4, solid_capstyle="butt")
        ax_f.plot([t(f.start_ns)], [y], "o", color=color, ms=4)
        if f.recovered_ns is None:
            ax_f.plot([t(f.start_ns)], [y], "x", color="red", ms=9)
    actors = sorted({a for _, a in restarts})
    for i, actor in enumerate(actors):
        ys = len(kinds) + 0.5 + i
        xs = [t(ts) for ts, a in restarts if a == actor]
        ax_f.plot(xs, [ys] * len(xs), "|", color="tab:red", ms=10)
    labels = kinds + [f"restart {a}" for a in actors]
    ax_f.set_yticks(list(range(len(kinds))) + [len(kinds) + 0.5 + i for i in range(len(actors))])
    ax_f.set_yticklabels(labels, fontsize=7)
    ax_f.set_title(title or "faults (bar: injection to recovery) and actor restarts")

    width = 1.0
    bins = _bins(history, t0_ns, width)
    for key, color in (
        ("acked", "tab:green"),
        ("other ok", "tab:blue"),
        ("error", "tab:orange"),
        ("timeout", "tab:red"),
    ):
        series: dict[int, int] = bins.get(key) or {}
        if series:
            bins_sorted = sorted(series)
            ax_tp.plot(
                [b * width for b in bins_sorted],
                [series[b] / width for b in bins_sorted],
                label=key,
                color=color,
                lw=0.8,
            )
    ax_tp.set_ylabel("ops / s")
    ax_tp.legend(loc="upper right", fontsize=7)

    ok = [
        (t(e.end_ns), e.latency_s * 1000) for e in history if e.op == "submit" and e.outcome == "ok"
    ]
    if ok:
        ax_lat.scatter([x for x, _ in ok], [y for _, y in ok], s=1, alpha=0.3, color="tab:blue")
        ax_lat.set_yscale("log")
        ax_lat.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax_lat.set_ylabel("submit ack latency ms")
    ax_lat.set_xlabel("seconds since start")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def restart_events(lines: Sequence[dict[str, Any]]) -> list[tuple[int, str]]:
    """(ts_ns, actor) of every actor exit the supervisor logged."""
    return [
        (int(e["_ts_ns"]), str(e.get("child")))
        for e in lines
        if e.get("event") == "actor_exited" and "_ts_ns" in e
    ]
