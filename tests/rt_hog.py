"""A real-time busy loop that keeps one core from every normal process for a while: how
the hang tests make the machine keep an actor waiting, for real."""

from __future__ import annotations

import subprocess
import sys

import pytest

HOG = """
import os, sys, time
os.sched_setaffinity(0, {int(sys.argv[1])})
try:
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
except PermissionError:
    sys.stdout.write("no-rt\\n"); sys.stdout.flush(); sys.exit(0)
sys.stdout.write("up\\n"); sys.stdout.flush()
end = time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    pass
"""


def hold_core(core: int, seconds: float) -> None:
    """`core` held by a SCHED_FIFO loop for `seconds`, returning when it ends (the test
    skipped where real-time scheduling is not allowed: no CAP_SYS_NICE). The kernel still
    gives normal processes a few percent of it (RT throttling, its fair server)."""
    hog = subprocess.Popen(
        [sys.executable, "-c", HOG, str(core), str(seconds)], stdout=subprocess.PIPE
    )
    try:
        assert hog.stdout is not None
        if hog.stdout.readline() == b"no-rt\n":
            pytest.skip("no real-time scheduling here (CAP_SYS_NICE)")
        assert hog.wait(timeout=30.0 + seconds) == 0
    finally:
        hog.kill()
        hog.wait()
        assert hog.stdout is not None
        hog.stdout.close()
