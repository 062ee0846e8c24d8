"""The persisted kill-switch: `<state_dir>/risk/kill_switch.json`.

Fail closed without needing disk: the file is created once at a fixed size (`FILE_BYTES`,
written out in full, so its blocks are allocated; the supervisor creates it at start,
`ensure_file`) and every later write goes in place (pwrite of the whole slot + fdatasync),
which needs no new space: an engage still lands when the disk is full. Layout: one header
line `tradepulse-kill-switch v2 crc32=<hex> len=<n>` (the CRC and length of the JSON state
after it), the JSON state, spaces to the fixed size. A torn write (crash or I/O error
mid-write) fails the CRC and reads as ENGAGED, as a truncated file does. A history too long
for the slot keeps its newest entries (the log keeps every event). A file of the older
format (plain JSON, replaced atomically) is still read, and rewritten in the new one.
(Caveat: on a copy-on-write filesystem, btrfs/ZFS, an overwrite can still need space.)

Read at every start: engaged stays engaged across restarts and warm starts. A missing file
means "never engaged"; a file that cannot be read or parsed fails SAFE: it reads as ENGAGED
with reason `state_unreadable`, trading halts rather than trading blind, and only an operator
reset (with a reason) clears it.

Writers (the risk actor, the supervisor) serialise their read-modify-write with an flock on
`kill_switch.json.lock` beside the file, so an engage is never lost to a concurrent reset; a
reader that sees a bad CRC reads again under a shared lock (it caught a write in progress).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import stat
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Final, Literal

import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from actors.runtime.durable import fsync_dir, remove_stale_temps, write_all
from protocol import messages
from protocol.domain import MAX_REASON_CHARS
from protocol.exceptions import TradePulseError

# the file's place is protocol/paths.py's; re-exported for the switch's readers and writers
from protocol.paths import kill_switch_path as kill_switch_path
from protocol.paths import read_regular

FORMAT_VERSION: Final = 1
HISTORY_LIMIT = 1000  # newest entries kept; the log keeps every event
STATE_UNREADABLE = "state_unreadable"
_STALE_TEMP_AGE_S = 60.0
FILE_BYTES: Final = (
    256 * 1024
)  # fixed size, allocated once; the state always fits (history trimmed)
_MAGIC = b"tradepulse-kill-switch v2 "
_HEADER = re.compile(rb"tradepulse-kill-switch v2 crc32=([0-9a-f]{8}) len=(\d{1,7})\n")
_HEADER_MAX = 64

log = structlog.get_logger(__name__)


class KillSwitchResetRefused(TradePulseError, ValueError):
    """A reset needs a non-empty reason and operator."""


class KillSwitchEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    action: Literal["engage", "reset", "cold_reset"]
    reason: str
    source: str
    ts_ns: int
    operator: str = ""  # who, for an operator's action: `alice (uid 1000, pid 42)`


class KillSwitchState(BaseModel):
    """`reason` / `source` / `ts_ns` describe the engagement in force (first cause wins while
    engaged) or, once reset, the reset. `history` is oldest first."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[1] = FORMAT_VERSION
    engaged: bool = False
    reason: str = ""
    source: str = ""
    ts_ns: int = 0
    operator: str = ""  # who engaged (or reset) it, for an operator's action
    history: tuple[KillSwitchEvent, ...] = Field(default_factory=tuple)

    @property
    def unreadable(self) -> bool:
        """True for the fail-safe state that `load` returns for a corrupt file."""
        return self.engaged and self.reason == STATE_UNREADABLE

    def to_message(self) -> messages.KillSwitchState:
        return messages.KillSwitchState(
            engaged=self.engaged, reason=self.reason, source=self.source, ts_ns=self.ts_ns
        )


def _file_stamp(path: str | Path) -> tuple[int, int, int, bytes] | None:
    """(inode, mtime, size, header line) of the state file, None if missing: a cheap "did it
    change" for the processes that follow a switch another process writes (an in-place
    write keeps inode and size, and mtime can be too coarse; the header's CRC changes)."""
    try:  # os.open, not open(): risk reads it before each turn's checks (4 calls, not 7)
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)  # a FIFO: not waited on
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):  # changed, and `load` reads it unreadable (ENGAGED)
            return (st.st_ino, st.st_mtime_ns, -1, b"")
        head = os.read(fd, _HEADER_MAX)
    except OSError:
        return None
    finally:
        os.close(fd)
    return (st.st_ino, st.st_mtime_ns, st.st_size, head)


class KillSwitchWatcher:
    """Follows the state file for a process that reads a switch others may write: `poll`
    costs one stat and re-reads the file only when it changed. The OMS and risk poll it
    every `POLL_S` (the supervisor writes while either may be down or busy).

    A file seen, then gone, reads ENGAGED (`state_unreadable`, `removed` true for that
    poll): no writer removes it (each replaces it atomically or writes in place), so a
    removal is someone's `rm` of the state dir, and "missing = never engaged" would lift an
    engaged switch with no reset and no history (found by reproduction: trading resumed)."""

    POLL_S: Final = 0.1

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fspath = os.fspath(self.path)  # os.open of a Path: 2 Python calls a look
        self._stamp: tuple[int, int, int, bytes] | None = None
        self.removed = False  # the last poll found the file gone since it was seen

    def poll(self, *, force: bool = False) -> KillSwitchState | None:
        """The state if the file changed since the last look (always with `force`), else
        None."""
        stamp = _file_stamp(self._fspath)
        self.removed = False
        if stamp == self._stamp and not force:
            return None
        seen, self._stamp = self._stamp is not None, stamp
        if stamp is None and seen and not os.path.lexists(self._fspath):
            self.removed = True
            return _unreadable(self.path, "removed while running")
        return load(self.path)

    def mark_seen(self) -> None:
        """The file as it is now is known (this process just wrote it): no change."""
        self._stamp = _file_stamp(self._fspath)


def load(path: Path) -> KillSwitchState:
    """The persisted state; missing -> not engaged; unreadable -> ENGAGED (`state_unreadable`)."""
    state = _load(path, quiet=True)
    if state is None:  # a bad CRC: maybe a write in progress; read again once it is done
        try:
            with _lock(path, fcntl.LOCK_SH):
                state = _load(path)
        except OSError as exc:
            state = _unreadable(path, f"lock: {exc}")
    assert state is not None
    return state


def _load(path: Path, *, quiet: bool = False) -> KillSwitchState | None:
    """`load` without the lock; with `quiet`, None for a bad CRC instead of ENGAGED."""
    try:
        raw = read_regular(path)  # a FIFO or a device in its place: unreadable (ENGAGED)
    except FileNotFoundError:
        return KillSwitchState()
    except OSError as exc:
        return _unreadable(path, f"{type(exc).__name__}: {exc}")
    header = _HEADER.match(raw, 0, _HEADER_MAX)
    if header is None and raw.startswith(_MAGIC):  # a header torn mid-write (its length
        # grew or shrank a digit): not the old plain-JSON format
        return None if quiet else _unreadable(path, "header unreadable (torn write)")
    if header is not None:
        start, length = header.end(), int(header.group(2))
        payload = raw[start : start + length]
        if len(payload) != length or f"{zlib.crc32(payload):08x}".encode() != header.group(1):
            return None if quiet else _unreadable(path, "checksum mismatch (torn write)")
        raw = payload
    try:
        return KillSwitchState.model_validate_json(raw)
    except ValidationError as exc:
        return _unreadable(
            path, f"{exc.error_count()} validation error(s): {exc.errors()[0]['msg']}"
        )


def encode_file(state: KillSwitchState) -> bytes:
    """The whole fixed-size file for `state` (reason and source clipped, as an old-format
    file may have them longer; oldest history dropped until it fits). Raises OSError
    (EFBIG) if it still does not fit: never a file over `FILE_BYTES`."""
    clipped = {"reason": _clip(state.reason), "source": _clip(state.source)}
    state = state.model_copy(update=clipped)
    while True:
        payload = state.model_dump_json(indent=2).encode() + b"\n"
        head = f"tradepulse-kill-switch v2 crc32={zlib.crc32(payload):08x} len={len(payload)}\n"
        data = head.encode() + payload
        if len(data) <= FILE_BYTES or not state.history:
            break
        drop = max(1, len(state.history) // 10)
        state = state.model_copy(update={"history": state.history[drop:]})
    if len(data) > FILE_BYTES:
        raise OSError(errno.EFBIG, f"kill-switch state of {len(data)} bytes over {FILE_BYTES}")
    return data + b" " * (FILE_BYTES - len(data))


def save(path: Path, state: KillSwitchState) -> None:
    """Write `state` in place into the pre-allocated file (needs no new disk space); a file
    that is missing or of the old format is first created at its full size. Raises OSError
    if the write cannot be made durable (the file then reads ENGAGED if it was torn)."""
    path = Path(path)
    data = encode_file(state)
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW)
    except FileNotFoundError:
        fd = -1
    if fd >= 0:
        try:
            if os.fstat(fd).st_size == FILE_BYTES and _HEADER.match(os.pread(fd, _HEADER_MAX, 0)):
                os.pwrite(fd, data, 0)
                os.fdatasync(fd)
                return
        finally:
            os.close(fd)
            remove_stale_temps(path, _STALE_TEMP_AGE_S)
    _create(path, data)


def ensure_file(path: Path) -> None:
    """Create the switch file at its full size now (at start, while there is space), keeping
    the state it has; a file already in the fixed-size format is left as it is."""
    path = Path(path)
    with _update_lock(path):
        with contextlib.suppress(OSError):
            with open(path, "rb") as fh:
                if os.fstat(fh.fileno()).st_size == FILE_BYTES and _HEADER.match(
                    fh.read(_HEADER_MAX)
                ):
                    return
        state = _load(path)
        assert state is not None
        if state.unreadable:
            return  # left for the operator's reset (which keeps the bad file aside)
        _create(path, encode_file(state))


def _create(path: Path, data: bytes) -> None:
    """A new file with all of `data` (allocating the fixed size), renamed over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        write_all(fd, data)
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)
    remove_stale_temps(path, _STALE_TEMP_AGE_S)


def engage(
    path: Path, reason: str, source: str, *, who: str = "", ts_ns: int | None = None
) -> KillSwitchState:
    """Engage (idempotent). While engaged the first cause stays in force; every engage is
    recorded in the history, with `who` for an operator's (the kernel's identity of the
    process that sent the command, `actors.supervisor.audit`)."""
    now = time.time_ns() if ts_ns is None else ts_ns
    reason = _clip(reason.strip() or "unspecified")  # an engage is never refused
    source, who = _clip(source), _clip(who)
    with _update_lock(path):
        current = _load_for_update(path, now)
        event = KillSwitchEvent(
            action="engage", reason=reason, source=source, ts_ns=now, operator=who
        )
        if current.engaged:
            new = _with_event(current, event)
        else:
            engaged = {"engaged": True, "reason": reason, "source": source, "ts_ns": now}
            new = _with_event(current.model_copy(update={**engaged, "operator": who}), event)
        save(path, new)
    log.warning(
        "kill_switch",
        action="engage",
        reason=reason,
        source=source,
        operator=who,
        already_engaged=current.engaged,
    )
    return new


def reset(
    path: Path, reason: str, operator: str, *, who: str = "", ts_ns: int | None = None
) -> KillSwitchState:
    """Operator reset; refuses an empty reason or operator (the source). Also clears
    `state_unreadable` (the unreadable file is kept aside as `<name>.corrupt.<ts_ns>`).
    `who`: the identity of the operator's process, kept in the history."""
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
        new = _reset_state(current, "reset", reason.strip(), operator.strip(), now, _clip(who))
        save(path, new)
    log.warning(
        "kill_switch",
        action="reset",
        reason=new.reason,
        source=new.source,
        operator=new.operator,
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


def _update_lock(path: Path) -> contextlib.AbstractContextManager[None]:
    """Exclusive flock on `<name>.lock` for one read-modify-write (blocks other writers)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return _lock(path, fcntl.LOCK_EX)


@contextlib.contextmanager
def _lock(path: Path, how: int) -> Iterator[None]:
    path = Path(path)
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, how)
        yield
    finally:
        os.close(fd)  # releases the lock


def engage_removed(path: Path, state: KillSwitchState) -> KillSwitchState:
    """Write back, engaged, a switch whose file was removed (`KillSwitchWatcher.removed`),
    so a restart reads it engaged as well; `state` (engaged in memory) if that fails."""
    try:
        return engage(path, f"{STATE_UNREADABLE}: {path} removed while running", "risk")
    except OSError as exc:
        log.error("kill_switch_persist_failed", error=str(exc), reason=state.reason)
        return state


def _unreadable(path: Path, detail: str) -> KillSwitchState:
    log.error("kill_switch", action=STATE_UNREADABLE, path=str(path), detail=detail)
    return KillSwitchState(
        engaged=True, reason=STATE_UNREADABLE, source="load", ts_ns=time.time_ns()
    )


def _load_for_update(path: Path, now_ns: int) -> KillSwitchState:
    """Load (under the update lock); if the file is unreadable, keep a copy aside so the next
    save (in place) does not destroy it. The copy needs space: on a full disk it is skipped
    (logged), the save still goes in place."""
    state = _load(path)
    assert state is not None
    if state.unreadable and Path(path).exists():
        aside = Path(path).with_name(f"{Path(path).name}.corrupt.{now_ns}")
        try:
            aside.write_bytes(read_regular(path))
            log.warning("kill_switch", action="corrupt_state_kept", path=str(aside))
        except OSError as exc:
            log.error("kill_switch", action="corrupt_state_not_kept", error=str(exc))
    return state


def _reset_state(
    current: KillSwitchState,
    action: Literal["reset", "cold_reset"],
    reason: str,
    source: str,
    now_ns: int,
    who: str = "",
) -> KillSwitchState:
    event = KillSwitchEvent(action=action, reason=reason, source=source, ts_ns=now_ns, operator=who)
    reset = {"engaged": False, "reason": reason, "source": source, "ts_ns": now_ns}
    base = current.model_copy(update={**reset, "operator": who})
    return _with_event(base, event)


def _with_event(state: KillSwitchState, event: KillSwitchEvent) -> KillSwitchState:
    history = (*state.history, event)[-HISTORY_LIMIT:]
    return state.model_copy(update={"history": history})
