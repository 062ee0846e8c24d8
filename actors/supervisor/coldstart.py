"""The cold-start runbook step, done by the supervisor before any actor starts.

Archive the OMS journal, our FIX session stores and risk's trading day (its daily-loss
baseline is a figure of the book archived with the journal: the new book starts at 0) to
`state/archive/<timestamp>/`, leave a marker so the OMS knows its first reconciliation is a
cold one (open venue orders from before are cancelled or adopted, by config), and reset the
kill-switch (logged). The simulated venues' own state (`state/venues/`) is the outside world
and is never touched.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import structlog

from actors.risk import killswitch
from actors.runtime.durable import fsync_dir
from protocol.paths import (
    archive_dir,
    cold_marker,
    kill_switch_path,
    oms_dir,
    own_state,
    trading_day_path,
)


def cold_start(state_dir: Path) -> Path:
    """Archive our own state; returns the archive dir. Idempotent enough to rerun after a crash."""
    log = structlog.get_logger().bind(actor="supervisor")
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{time.time_ns() % 1_000_000:06d}"
    archive = archive_dir(state_dir, stamp)
    archive.mkdir(parents=True, exist_ok=False)
    moved = []
    for src in (*own_state(state_dir), trading_day_path(state_dir)):
        if src.exists():
            (archive / src.relative_to(state_dir)).parent.mkdir(parents=True, exist_ok=True)
            name = str(src.relative_to(state_dir))
            os.replace(src, archive / name)  # the archive keeps the state dir's layout
            moved.append(name)
    oms = oms_dir(state_dir)
    oms.mkdir(parents=True, exist_ok=True)
    cold_marker(state_dir).write_text(stamp + "\n")
    fsync_dir(oms)
    fsync_dir(state_dir)
    if trading_day_path(state_dir).parent.is_dir():  # the trading day moved out of it
        fsync_dir(trading_day_path(state_dir).parent)
    ks = killswitch.cold_reset(kill_switch_path(state_dir))
    log.info("cold_start", archive=str(archive), archived=moved, kill_switch_engaged=ks.engaged)
    return archive
