"""Fail closed across a critical exit, even on a full or failing disk.

At start (`prepare_switch`) the kill-switch file is created at its fixed size
(`killswitch.ensure_file`), so later engages write in place and need no new space. A
critical exit (an actor over its restart budget) engages the switch (`engage_critical`); if
even that write fails, it leaves an `unclean_critical_exit` marker beside the switch file (an
empty file: an inode, no data blocks) and logs `kill_switch_write_failed`; it never raises.
The next start finds the marker and engages the switch before any actor starts, so it never
trades with the switch OFF after such an exit; the operator clears it with the usual
`tradepulse kill-switch reset --reason ...` (docs/runbook.md, "Disk full").
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Final

from actors.risk import killswitch
from actors.runtime.durable import fsync_dir

UNCLEAN_REASON: Final = "unclean_critical_exit"
EXIT_SWITCH_UNAVAILABLE: Final = 1  # as any other critical exit


def marker_path(state_dir: Path) -> Path:
    return killswitch.kill_switch_path(state_dir).with_name(UNCLEAN_REASON)


def prepare_switch(state_dir: Path, log: Any) -> None:
    """Engage for an unclean critical exit the last run left, then pre-allocate the switch
    file. Failing either: one stderr line, exit EXIT_SWITCH_UNAVAILABLE (never trade without
    a switch that can be engaged)."""
    path, marker = killswitch.kill_switch_path(state_dir), marker_path(state_dir)
    try:
        if marker.exists():
            detail = marker.read_text(errors="replace")[:200].strip()
            killswitch.engage(path, f"{UNCLEAN_REASON}: {detail}".strip(": "), "supervisor")
            marker.unlink()
            fsync_dir(marker.parent)
            log.error("kill_switch_engaged_for_unclean_exit", detail=detail)
        killswitch.ensure_file(path)
    except OSError as exc:
        print(f"error: kill-switch file {path}: cannot prepare it: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_SWITCH_UNAVAILABLE) from exc


def engage_critical(state_dir: Path, reason: str, log: Any) -> bool:
    """Engage the switch for a critical exit; never raises. False: not recorded in the
    switch file (the marker, if it could be written, engages it at the next start)."""
    try:
        killswitch.engage(killswitch.kill_switch_path(state_dir), reason, "supervisor")
        return True
    except OSError as exc:
        log.critical("kill_switch_write_failed", reason=reason, error=str(exc))
    marker = marker_path(state_dir)
    try:
        fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, reason.encode()[:200])  # best effort: the marker's existence counts
        except OSError:
            pass
        finally:
            os.close(fd)
        fsync_dir(marker.parent)
        log.critical("unclean_exit_marked", marker=str(marker))
    except OSError as exc:
        log.critical("unclean_exit_unrecorded", marker=str(marker), error=str(exc))
    return False
