"""Where everything lives on disk: the one definition of the state dir's and the runtime
dir's layout, shared by the supervisor, the actors, the tools and the tests.

State dir (`system.state_dir`, durable)::

    oms/                       the OMS journal and snapshots
    oms/cold_start_pending     marker: the OMS's first reconciliation is a cold one
    fix/<venue>/               our FIX session store for a venue
    fix/<venue>/outbox.log     the connector's exec outbox (archived with the session)
    fix/<venue>/messages/      the FIX message log (messages.log, messages.log.1, ...)
    risk/kill_switch.json      the persisted kill-switch
    risk/trading_day.json      risk's trading day and its realised P&L baseline (the
                               daily loss); a cold start moves it to the archive
    venues/<venue>/            a simulated venue's own state (the outside world; fix/ inside,
                               and its side's message log in fix/messages/)
    archive/<stamp>/           a cold start moves `oms/`, `fix/` and `risk/trading_day.json`
                               here, layout kept
    faults/                    crash-point markers (fault injection in tests and chaos runs)
    supervisor.lock            the running supervisor's flock
    audit/operator.jsonl       the audit log of operator actions (JSON lines; rotated to
                               operator.jsonl.1, .2, ...)
    logs/                      every process's JSON log lines (tradepulse.log, .1, ...)
    postmortem/                bundles written when the kill-switch engaged
    intake.json                the OMS's intake pauses, global and per venue (operator
                               intent: kept across restarts and cold starts)

The state dir is 0700 and everything in it is created under `PRIVATE_UMASK` (journal,
FIX stores, message logs, ledgers, the kill-switch file, snapshots: nothing readable by
another local user).

Runtime dir (`system.runtime_dir`, private 0700, short for the ~107-char ipc:// limit; in
a shared dir, its `SHARED_SUBDIR`)::

    <actor>.sock               each actor's ROUTER (only the system's own processes
                               connect); also supervisor.sock, control.sock (the
                               operator CLI), client.sock (the OMS's client endpoint),
                               events.sock (the OMS's PUB), risk-events.sock (its
                               copy for risk: an order's PENDING_SUBMIT and ACCEPTED
                               up to 5 ms later)
    venuesim.<venue>.port      the port a simulated venue listens on
    metrics/                   prometheus_client multiprocess files (*.db) and the
                               `METRICS_MARKER` that says the system created it
    operator_stops.json        the actors an operator stopped (`tradepulse stop`), written
                               by the supervisor, read by the OMS and the heartbeat
    heartbeat_compared.json    per venue, when the heartbeat last compared its positions
                               (or first watched it): kept across heartbeat restarts,
                               removed at supervisor start

A shared runtime dir (group- or other-writable: a Kubernetes emptyDir is root-owned 0777, or
2777 with an fsGroup) holds only `SHARED_SUBDIR`, a 0700 dir of ours with the layout above:
`runtime_files_dir` says where the files are. The supervisor refuses a runtime dir that is
a symlink, a private one owned by another user, or a shared one owned by a user other than
root or us, and removes only its own files in it (see supervisor host).

Every function takes the dir it is relative to; none touches the disk but
`runtime_files_dir` (one lstat).
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from protocol.exceptions import ConfigError

COLD_MARKER = "cold_start_pending"
KILL_SWITCH_NAME = "kill_switch.json"
TRADING_DAY_NAME = "trading_day.json"
OUTBOX_NAME = "outbox.log"
MESSAGE_LOG_DIR = "messages"
LOG_FILE_NAME = "tradepulse.log"
SOCKET_SUFFIX = ".sock"
METRICS_MARKER = ".tradepulse-metrics"
# Our own 0700 dir inside a shared runtime dir; short, for the ipc:// path limit.
SHARED_SUBDIR = "tp"
# Every process of the system runs with this umask: state and runtime files are the
# owner's alone (dirs 0700, files 0600), whichever writer creates them.
PRIVATE_UMASK = 0o077

SUPERVISOR = "supervisor"  # the supervisor's ROUTER for its actors
CONTROL = "control"  # the supervisor's ROUTER for the operator CLI
EVENTS = "events"  # the OMS's PUB for the client event stream
RISK_EVENTS = "risk-events"  # the OMS's PUB of the same stream for risk (trails it)
CLIENT = "client"  # the OMS's ROUTER for clients (protocol.client); oms.sock is internal

# ---------------------------------------------------------------------- state dir


def oms_dir(state_dir: Path) -> Path:
    """The OMS journal's directory (also inside an archive: `oms_dir(archive)`)."""
    return state_dir / "oms"


def cold_marker(state_dir: Path) -> Path:
    return oms_dir(state_dir) / COLD_MARKER


def fix_root(state_dir: Path) -> Path:
    """The parent of every venue's FIX session store."""
    return state_dir / "fix"


def fix_dir(state_dir: Path, venue: str) -> Path:
    """Our FIX session store for `venue` (the exec outbox lives in it)."""
    return fix_root(state_dir) / venue


def exec_outbox(state_dir: Path, venue: str) -> Path:
    return fix_dir(state_dir, venue) / OUTBOX_NAME


def fix_message_log_dir(state_dir: Path, venue: str) -> Path:
    """Our FIX message log for `venue` (`tradepulse fix log`)."""
    return fix_dir(state_dir, venue) / MESSAGE_LOG_DIR


def own_state(state_dir: Path) -> tuple[Path, ...]:
    """Our own state, what a cold start archives (simulated venues' state is not ours)."""
    return (oms_dir(state_dir), fix_root(state_dir))


def kill_switch_path(state_dir: Path) -> Path:
    return state_dir / "risk" / KILL_SWITCH_NAME


def trading_day_path(state_dir: Path) -> Path:
    """Risk's trading day and the realised P&L it started at (`actors.risk.trading_day`)."""
    return state_dir / "risk" / TRADING_DAY_NAME


def venue_state_dir(state_dir: Path, venue: str) -> Path:
    """Where a simulated venue keeps its book."""
    return state_dir / "venues" / venue


def venue_fix_dir(state_dir: Path, venue: str) -> Path:
    """A simulated venue's FIX session store (its side of the session)."""
    return venue_state_dir(state_dir, venue) / "fix"


def venue_message_log_dir(state_dir: Path, venue: str) -> Path:
    """A simulated venue's FIX message log (its side of the session)."""
    return venue_fix_dir(state_dir, venue) / MESSAGE_LOG_DIR


def archive_root(state_dir: Path) -> Path:
    return state_dir / "archive"


def archive_dir(state_dir: Path, stamp: str) -> Path:
    """One cold start's archive; it mirrors the state dir's layout."""
    return archive_root(state_dir) / stamp


def crash_marker(state_dir: Path, actor: str, point: str) -> Path:
    """Present once the crash point `actor:point` has fired (it fires once)."""
    return state_dir / "faults" / f"{actor}.{point}.fired"


def supervisor_lock(state_dir: Path) -> Path:
    return state_dir / "supervisor.lock"


def audit_log_path(state_dir: Path) -> Path:
    """The audit log of operator actions (`actors.supervisor.audit`)."""
    return state_dir / "audit" / "operator.jsonl"


def logs_dir(state_dir: Path) -> Path:
    """The log files (`LOG_FILE_NAME`, rotated to `.1`, `.2`, ...: actors/supervisor/logfiles)."""
    return state_dir / "logs"


def postmortem_dir(state_dir: Path) -> Path:
    """Post-mortem bundles the supervisor writes when the kill-switch engages."""
    return state_dir / "postmortem"


def intake_state_path(state_dir: Path) -> Path:
    """The OMS's persisted intake pauses (`actors.oms.intake_state`)."""
    return state_dir / "intake.json"


# ---------------------------------------------------------------------- runtime dir


def operator_stops_path(runtime_dir: Path) -> Path:
    """What an operator stopped (`actors.runtime.operator_stops`); one run's worth."""
    return runtime_dir / "operator_stops.json"


def heartbeat_compared_path(runtime_dir: Path) -> Path:
    """The heartbeat's compared times (`actors.position_heartbeat.compared_file`); one
    run's worth: the supervisor removes it at start."""
    return runtime_dir / "heartbeat_compared.json"


def is_shared_mode(mode: int) -> bool:
    """A dir with this st_mode is shared: someone besides its owner may create files in it."""
    return bool(mode & (stat.S_IWGRP | stat.S_IWOTH))


def runtime_files_dir(runtime_dir: Path) -> Path:
    """Where the runtime files of `runtime_dir` (`system.runtime_dir`) are: the dir itself,
    or its `SHARED_SUBDIR` when it is a shared dir (`is_shared_mode`; a symlink is not
    followed, and is not shared: the supervisor refuses it). Decided from the dir's mode
    alone, so every process (the supervisor, its actors, the CLI run as the service user
    or as root) finds the same sockets. Reads the disk: one lstat."""
    try:
        mode = os.lstat(runtime_dir).st_mode
    except OSError:  # absent (the supervisor creates it private), or not reachable
        return runtime_dir
    if stat.S_ISDIR(mode) and is_shared_mode(mode):
        return runtime_dir / SHARED_SUBDIR
    return runtime_dir


def default_runtime_dir(state_dir: Path) -> Path:
    """The runtime dir when the config names none: short, and one per state dir."""
    digest = hashlib.sha1(str(state_dir).encode()).hexdigest()[:10]
    return Path("/tmp") / f"tp-{digest}"


def socket_file(runtime_dir: Path, name: str) -> Path:
    """The ipc socket file behind `endpoint(runtime_dir, name)`."""
    return runtime_dir / f"{name}{SOCKET_SUFFIX}"


def endpoint(runtime_dir: Path, name: str) -> str:
    """The ROUTER endpoint an actor (or SUPERVISOR, CONTROL, EVENTS) binds."""
    return f"ipc://{socket_file(runtime_dir, name)}"


def ipc_file(address: str) -> Path | None:
    """The socket file of an ipc:// endpoint; None for another transport."""
    if address.startswith("ipc://"):
        return Path(address[len("ipc://") :])
    return None


def sim_port_file(runtime_dir: Path, venue: str) -> Path:
    """Where a simulated venue publishes its listening port (written atomically)."""
    return runtime_dir / f"venuesim.{venue}.port"


def read_sim_port(runtime_dir: Path, venue: str) -> int | None:
    """The port a simulated venue's previous incarnation published, None if none (or
    unreadable)."""
    try:
        return int(sim_port_file(runtime_dir, venue).read_text().strip())
    except (OSError, ValueError):
        return None


def metrics_dir(runtime_dir: Path) -> Path:
    """prometheus_client's multiprocess dir (PROMETHEUS_MULTIPROC_DIR)."""
    return runtime_dir / "metrics"


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """`path` opened for reading if it is a regular file; OSError otherwise (ENOENT as
    `open`'s, else a message saying what it is): a FIFO, a pipe (`--config <(...)`) or a
    device is refused, never waited on (O_NONBLOCK) nor read whole (/dev/zero)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise OSError("it is a directory")
        if not stat.S_ISREG(mode):
            raise OSError("not a regular file (a pipe, a FIFO or a device)")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def regular_opener(path: str, flags: int) -> int:
    """`open(path, opener=regular_opener)`: `open_regular`'s refusal (a FIFO is not waited
    on, a device not read) for a file object that keeps its name; the OSError names `path`."""
    fd = os.open(path, flags | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise OSError(errno.EISDIR, "it is a directory", path)
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, "not a regular file (a pipe, a FIFO or a device)", path)
        os.set_blocking(fd, True)
        return fd
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str | os.PathLike[str]) -> bytes:
    """The bytes of `path` if it is a regular file (`regular_opener`): a FIFO in a state
    file's place is an OSError naming it, not an open() that waits for a writer for good."""
    with open(path, "rb", opener=regular_opener) as fh:
        return fh.read()


def os_error(exc: OSError) -> str:
    """`path: reason` of an OSError, without the errno noise: the one line a CLI prints
    for a dir it cannot use."""
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{exc.strerror or exc}"


def check_sim_dirs(open_state: Callable[[], None], runtime_dir: Path) -> None:
    """A standalone simulator's start check, before it binds its ROUTER (which would steal
    the endpoint of a running one): its state opens (`open_state` opens and closes it) and
    its runtime dir exists; else `ConfigError` naming the key (under a regular file, on a
    read-only file system...)."""
    try:
        open_state()
    except OSError as exc:
        raise ConfigError("system.state_dir", f"cannot use it: {os_error(exc)}") from None
    try:
        runtime_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise ConfigError("system.runtime_dir", f"cannot use it: {os_error(exc)}") from None
