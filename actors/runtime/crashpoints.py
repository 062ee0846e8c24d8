"""Fault injection for crash-point tests and chaos runs, driven by environment variables
(unset in production, where every function here is a no-op).

`TP_FAULT_CRASH_AT=oms:after_journal_before_send,...` (comma-separated `actor:point`): the
actor kills itself with SIGKILL the first time it passes the named point; a marker file in
the state dir (`protocol.paths.crash_marker`) makes each point fire once.
`TP_FAULT_CRASH_ON_START=oms,...`: the named actors exit before READY, every time (a crash
loop for the restart policy).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from structlog.typing import FilteringBoundLogger

from protocol.paths import crash_marker

CRASH_AT_ENV = "TP_FAULT_CRASH_AT"
CRASH_ON_START_ENV = "TP_FAULT_CRASH_ON_START"
CRASH_ON_START_EXIT = 3


def armed() -> bool:
    """True when fault injection asks for crash points at all: read once per process (an
    environment read per crash point cost ~2 us, four times an order in the OMS);
    `forget()` reads it again (tests that change the environment in-process), and so does
    every forked child: an actor is forked from the fork server, which sets the child's
    environment after the fork (its spawn request's `env`)."""
    global _armed
    if _armed is None:
        _armed = bool(os.environ.get(CRASH_AT_ENV))
    return _armed


def forget() -> None:
    global _armed
    _armed = None


_armed: bool | None = None
os.register_at_fork(after_in_child=forget)  # a child never inherits its parent's answer


def crash_point(state_dir: Path, actor_id: str, name: str, log: FilteringBoundLogger) -> None:
    """SIGKILL this process if `actor_id:name` is armed and has not fired yet."""
    spec = os.environ.get(CRASH_AT_ENV)
    if not spec or f"{actor_id}:{name}" not in spec.split(","):
        return
    marker = crash_marker(state_dir, actor_id, name)
    if marker.exists():
        return
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(str(os.getpid()))
    log.error("injected_crash", point=name)
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def crash_on_start(actor_id: str, log: FilteringBoundLogger) -> None:
    """Exit now (before READY) if `actor_id` is named in TP_FAULT_CRASH_ON_START."""
    if actor_id in os.environ.get(CRASH_ON_START_ENV, "").split(","):
        log.error("injected_crash_on_start")
        os._exit(CRASH_ON_START_EXIT)
