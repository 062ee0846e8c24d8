"""The persisted kill-switch: `<state_dir>/risk/kill_switch.json`.

Written atomically (temp file, fsync, rename over, fsync the directory), so a crash leaves
either the old state or the new one. Read at every start: engaged stays engaged across
restarts and warm starts. A missing file means "never engaged"; a file that cannot be read or
parsed fails SAFE: it reads as ENGAGED with reason `state_unreadable`, trading halts rather
than trading blind, and only an operator reset (with a reason) clears it.

Writers (the risk actor, the supervisor) serialise their read-modify-write with an flock on
`kill_switch.json.lock` beside the file, so an engage is never lost to a concurrent reset.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final, Literal

import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from actors.runtime.durable import remove_stale_temps, write_atomic
from protocol import messages
from protocol.domain import MAX_REASON_CHARS
from protocol.exceptions import TradePulseError

# the file's place is protocol/paths.py's; re-exported for the switch's readers and writers
from protocol.paths import kill_switch_path as kill_switch_path

FORMAT_VERSION: Final = 1
HISTORY_LIMIT = 1000  # newest entries kept; the log keeps every event
STATE_UNREADABLE = "state_unreadable"
_STALE_TEMP_AGE_S = 60.0

log = structlog.get_logger(__name__)


class KillSwitchResetRefused(TradePulseError, ValueError):
    """A reset needs a non-empty reason and operator."""


class KillSwitchEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    action: Literal["engage", "reset", "cold_reset"]
    reason: str
    source: str
    ts_ns: int


class KillSwitchState(BaseModel):
    """`reason` / `source` / `ts_ns` describe the engagement in force (first cause wins while
    engaged) or, once reset, the reset. `history` is oldest first."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[1] = FORMAT_VERSION
    engaged: bool = False
    reason: str = ""
    source: str = ""
    ts_ns: int = 0
    history: tuple[KillSwitchEvent, ...] = Field(default_factory=tuple)

    @property
    def unreadable(self) -> bool:
        """True for the fail-safe state that `load` returns for a corrupt file."""
        return self.engaged and self.reason == STATE_UNREADABLE

    def to_message(self) -> messages.KillSwitchState:
        return messages.KillSwitchState(
            engaged=self.engaged, reason=self.reason, source=self.source, ts_ns=self.ts_ns
        )


def _file_stamp(path: Path) -> tuple[int, int, int] | None:
    """(inode, mtime, size) of the state file, None if missing: a cheap "did it change"
    for the processes that follow a switch another process writes."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


class KillSwitchWatcher:
    """Follows the state file for a process that reads a switch others may write: `poll`
    costs one stat and re-reads the file only when it changed. The OMS and risk poll it
    every `POLL_S` (the supervisor writes while either may be down or busy)."""

    POLL_S: Final = 0.1

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._stamp: tuple[int, int, int] | None = None

    def poll(self, *, force: bool = False) -> KillSwitchState | None:
        """The state if the file changed since the last look (always with `force`), else
        None."""
        stamp = _file_stamp(self.path)
        if stamp == self._stamp and not force:
            return None
        self._stamp = stamp
        return load(self.path)

    def mark_seen(self) -> None:
        """The file as it is now is known (this process just wrote it): no change."""
        self._stamp = _file_stamp(self.path)


def load(path: Path) -> KillSwitchState:
    """The persisted state; missing -> not engaged; unreadable -> ENGAGED (`state_unreadable`)."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        return KillSwitchState()
    except OSError as exc:
        return _unreadable(path, f"{type(exc).__name__}: {exc}")
    try:
        return KillSwitchState.model_validate_json(raw)
    except ValidationError as exc:
        return _unreadable(
            path, f"{exc.error_count()} validation error(s): {exc.errors()[0]['msg']}"
        )


def save(path: Path, state: KillSwitchState) -> None:
    """Atomic replace (`actors.runtime.durable.write_atomic`); the supervisor and risk may both
    write, so only old temp files are tidied."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, state.model_dump_json(indent=2).encode() + b"\n")
    remove_stale_temps(path, _STALE_TEMP_AGE_S)


def engage(path: Path, reason: str, source: str, *, ts_ns: int | None = None) -> KillSwitchState:
    """Engage (idempotent). While engaged the first cause stays in force; every engage is
    recorded in the history."""
    now = time.time_ns() if ts_ns is None else ts_ns
    reason = _clip(reason.strip() or "unspecified")  # an engage is never refused
    source = _clip(source)
    with _update_lock(path):
        current = _load_for_update(path, now)
        event = KillSwitchEvent(action="engage", reason=reason, source=source, ts_ns=now)
        if current.engaged:
            new = _with_event(current, event)
        else:
            engaged = {"engaged": True, "reason": reason, "source": source, "ts_ns": now}
            new = _with_event(current.model_copy(update=engaged), event)
        save(path, new)
    log.warning(
        "kill_switch",
        action="engage",
        reason=reason,
        source=source,
        already_engaged=current.engaged,
    )
    return new


def reset(path: Path, reason: str, operator: str, *, ts_ns: int | None = None) -> KillSwitchState:
    """Operator reset; refuses an empty reason or operator. Also clears `state_unreadable`
    (the unreadable file is kept aside as `<name>.corrupt.<ts_ns>`)."""
    if not reason or not reason.strip():
        raise KillSwitchResetRefused("kill-switch reset refused: a reason is required")
    if len(reason.strip()) > MAX_REASON_CHARS or len(operator) > MAX_REASON_CHARS:
        raise KillSwitchResetRefused(
            f"kill-switch reset refused: reason and operator are at most {MAX_REASON_CHARS}"
            " characters"
        )
    if not operator or not operator.strip():
        raise KillSwitchResetRefused("kill-switch reset refused: an operator is required")
    now = time.time_ns() if ts_ns is None else ts_ns
    with _update_lock(path):
        current = _load_for_update(path, now)
        new = _reset_state(current, "reset", reason.strip(), operator.strip(), now)
        save(path, new)
    log.warning(
        "kill_switch",
        action="reset",
        reason=new.reason,
        source=new.source,
        was_engaged=current.engaged,
        previous_reason=current.reason,
    )
    return new


def cold_reset(path: Path, *, ts_ns: int | None = None) -> KillSwitchState:
    """The cold-start runbook step: reset whatever the state, recorded in the history."""
    now = time.time_ns() if ts_ns is None else ts_ns
    with _update_lock(path):
        current = _load_for_update(path, now)
        new = _reset_state(current, "cold_reset", "cold start", "cold_start", now)
        save(path, new)
    log.warning(
        "kill_switch",
        action="cold_reset",
        was_engaged=current.engaged,
        previous_reason=current.reason,
    )
    return new


# --------------------------------------------------------------------------- internals


def _clip(text: str) -> str:
    """At most MAX_REASON_CHARS of `text`: the file (and its history of HISTORY_LIMIT
    entries) is re-read on every change, so what it keeps is bounded."""
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 3] + "..."


@contextlib.contextmanager
def _update_lock(path: Path) -> Iterator[None]:
    """Exclusive flock on `<name>.lock` for one read-modify-write (blocks other writers)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _unreadable(path: Path, detail: str) -> KillSwitchState:
    log.error("kill_switch", action=STATE_UNREADABLE, path=str(path), detail=detail)
    return KillSwitchState(
        engaged=True, reason=STATE_UNREADABLE, source="load", ts_ns=time.time_ns()
    )


def _load_for_update(path: Path, now_ns: int) -> KillSwitchState:
    """Load; if the file is unreadable, move it aside so the next save does not destroy it."""
    state = load(path)
    if state.unreadable and Path(path).exists():
        aside = Path(path).with_name(f"{Path(path).name}.corrupt.{now_ns}")
        with contextlib.suppress(OSError):
            os.replace(path, aside)
            log.warning("kill_switch", action="corrupt_state_kept", path=str(aside))
    return state


def _reset_state(
    current: KillSwitchState,
    action: Literal["reset", "cold_reset"],
    reason: str,
    source: str,
    now_ns: int,
) -> KillSwitchState:
    event = KillSwitchEvent(action=action, reason=reason, source=source, ts_ns=now_ns)
    base = current.model_copy(
        update={"engaged": False, "reason": reason, "source": source, "ts_ns": now_ns}
    )
    return _with_event(base, event)


def _with_event(state: KillSwitchState, event: KillSwitchEvent) -> KillSwitchState:
    history = (*state.history, event)[-HISTORY_LIMIT:]
    return state.model_copy(update={"history": history})
