"""Small helpers shared by the benchmark sections: statistics, and the host a result was
measured on."""

from __future__ import annotations

import os
import platform
import statistics
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation between closest ranks."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def describe(values: Sequence[float], *, scale: float = 1.0, digits: int = 3) -> dict[str, float]:
    """median, p90, min, max, mean and n of `values` multiplied by `scale` (e.g. 1e3 for ms)."""
    scaled = [v * scale for v in values]
    return {
        "median": round(statistics.median(scaled), digits),
        "p90": round(percentile(scaled, 90), digits),
        "min": round(min(scaled), digits),
        "max": round(max(scaled), digits),
        "mean": round(statistics.fmean(scaled), digits),
        "n": len(scaled),
    }


def host_info() -> dict[str, object]:
    """CPUs, Python version and machine: what a result's numbers depend on."""
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
