"""Small helpers shared by the benchmark sections: statistics, the host a result was
measured on, and the bytecode every entry point writes before it measures."""

from __future__ import annotations

import compileall
import os
import platform
import statistics
from collections.abc import Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


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


def precompile() -> None:
    """Write the project's bytecode, as `pip install .` does for a deployment: the checkout
    runs from source, and with PYTHONDONTWRITEBYTECODE set (as on CI) every start would
    compile every module again and the start-up sections would measure the compiler."""
    for top in ("actors", "protocol"):
        compileall.compile_dir(REPO_ROOT / top, quiet=1)
    compileall.compile_file(REPO_ROOT / "supervisor.py", quiet=1)
