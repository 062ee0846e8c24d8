"""The cold-start runbook step, done by the supervisor before any actor starts.

Archive the OMS journal and our FIX session stores to `state/archive/<timestamp>/`, leave a
marker so the OMS knows its first reconciliation is a cold one (open venue orders from
before are cancelled or adopted, by config), and reset the kill-switch (logged). The
simulated venues' own state (`state/venues/`) is the outside world and is never touched.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import structlog

from actors.risk import killswitch
from actors.runtime.durable import fsync_dir

COLD_MARKER = "cold_start_pending"
_ARCHIVED = ("oms", "fix")


def oms_dir(state_dir: Path) -> Path:
    return state_dir / "oms"


def fix_dir(state_dir: Path, venue: str) -> Path:
    return state_dir / "fix" / venue


def cold_start(state_dir: Path) -> Path:
    """Archive our own state; returns the archive dir. Idempotent enough to rerun after a crash."""
    log = structlog.get_logger().bind(actor="supervisor")
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{time.time_ns() % 1_000_000:06d}"
    archive = state_dir / "archive" / stamp
    archive.mkdir(parents=True, exist_ok=False)
    moved = []
    for name in _ARCHIVED:
        src = state_dir / name
        if src.exists():
            os.replace(src, archive / name)
            moved.append(name)
    oms = oms_dir(state_dir)
    oms.mkdir(parents=True, exist_ok=True)
    (oms / COLD_MARKER).write_text(stamp + "\n")
    fsync_dir(oms)
    fsync_dir(state_dir)
    ks = killswitch.cold_reset(killswitch.kill_switch_path(state_dir))
    log.info("cold_start", archive=str(archive), archived=moved, kill_switch_engaged=ks.engaged)
    return archive
