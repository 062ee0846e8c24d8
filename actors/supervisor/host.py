"""Host-level preparation before anything imports prometheus_client: child subreaper,
state dir lock, private runtime dir, the multiprocess metrics dir; then the one metrics
endpoint of the host. Kept free of heavy imports at module level on purpose.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import signal
import stat
from pathlib import Path

from actors.supervisor.restart_policy import child_specs
from protocol.config import SystemConfig
from protocol.exceptions import ConfigError, StateDirLocked
from protocol.paths import (
    CONTROL,
    EVENTS,
    METRICS_MARKER,
    SUPERVISOR,
    metrics_dir,
    socket_file,
    supervisor_lock,
)

_PR_SET_CHILD_SUBREAPER = 36


def become_child_subreaper() -> None:
    """Orphaned descendants (the fork server's double-forked actors) are re-parented to this
    process, so their exits reach it as SIGCHLD and it can reap them."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def lock_state_dir(cfg: SystemConfig) -> int:
    """Take the state dir's flock; a second supervisor on the same dir gets StateDirLocked."""
    state = cfg.state_path
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    if state.stat().st_uid == os.geteuid():
        os.chmod(state, 0o700)  # a state dir made before 0700 was the rule: closed now
    lock = supervisor_lock(state)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        holder = ""
        try:
            holder = lock.read_text().strip()
        except OSError:
            pass
        raise StateDirLocked(
            f"state dir {state} is locked by another supervisor (pid {holder or '?'})"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def prepare_runtime_dir(cfg: SystemConfig) -> Path:
    """Create the private (0700) runtime dir and an empty multiprocess metrics dir in it.

    ConfigError (system.runtime_dir) for a dir another user could touch: a symlink, not a
    directory, owned by another uid, or group/other-writable (e.g. /tmp itself): another
    local user could swap the control socket in it. Only what the system itself puts there
    is ever removed: the socket files of its own endpoints, and the multiprocess files in a
    metrics dir that carries the system's marker."""
    rt = cfg.runtime_path
    _private_dir(rt, "system.runtime_dir")
    names = [SUPERVISOR, CONTROL, EVENTS, *(spec.id for spec in child_specs(cfg))]
    for name in names:
        sock = socket_file(rt, name)
        if stat.S_ISSOCK(_lstat_mode(sock)):
            sock.unlink(missing_ok=True)
    metrics = metrics_dir(rt)
    marker = metrics / METRICS_MARKER
    if _lstat_mode(metrics) == 0:
        metrics.mkdir(mode=0o700)
        marker.touch(mode=0o600)
    _private_dir(metrics, "system.runtime_dir")
    if not marker.is_file():
        raise ConfigError(
            "system.runtime_dir",
            f"{metrics} was not created by tradepulse (no {METRICS_MARKER}); if an older"
            f" tradepulse left it (no tradepulse running), remove it: rm -r {metrics}",
        )
    for db in metrics.glob("*.db"):  # prometheus_client's multiprocess files
        db.unlink(missing_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics)
    return rt


def _lstat_mode(path: Path) -> int:
    """st_mode of `path` itself (a symlink is not followed); 0 if it does not exist."""
    try:
        return os.lstat(path).st_mode
    except FileNotFoundError:
        return 0


def _private_dir(path: Path, key: str) -> None:
    """Create `path` 0700, or check that the existing one is a real directory owned by us
    and writable by nobody else (then make it 0700); ConfigError(`key`) otherwise."""
    if _lstat_mode(path) == 0:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass  # raced: checked below like any existing dir
    # checked and tightened through one descriptor opened without following a symlink: no
    # window to swap the path, and fchmod works where chmod(follow_symlinks=False) does not
    # (glibc < 2.32, no /proc)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        if stat.S_ISLNK(_lstat_mode(path)):
            raise ConfigError(key, f"{path} is a symlink; refusing (it could be swapped)") from None
        raise ConfigError(key, f"{path} is not a directory") from None
    try:
        check_private(os.fstat(fd), path, key)
        os.fchmod(fd, 0o700)
    finally:
        os.close(fd)


def check_private(st: os.stat_result, path: Path, key: str) -> None:
    """ConfigError(`key`) unless `st` (of the dir `path`) is owned by us and writable by
    nobody else (also `tradepulse preflight`'s check)."""
    if st.st_uid != os.geteuid():
        raise ConfigError(key, f"{path} is owned by uid {st.st_uid}, not by us ({os.geteuid()})")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ConfigError(
            key, f"{path} is writable by group or others (mode {stat.S_IMODE(st.st_mode):o})"
        )


def signal_wakeup_fd(*signals: signal.Signals) -> int:
    """Route `signals` to a non-blocking pipe and return its read end, for the event loop to
    poll (the handlers do nothing else: the loop reads the signal numbers)."""
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    os.set_blocking(write_fd, False)
    signal.set_wakeup_fd(write_fd)
    for sig in signals:
        signal.signal(sig, lambda *_: None)
    return read_fd


def start_metrics_server(cfg: SystemConfig) -> str:
    """Serve every process's metrics (the multiprocess dir) on one port; returns its URL.
    Call after `prepare_runtime_dir`."""
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # its __init__ has no annotations
    try:
        httpd, _ = start_http_server(cfg.metrics.port, addr=cfg.metrics.host, registry=registry)
    except OSError as exc:  # taken since `tradepulse run` checked it: still one clear line
        where = f"{cfg.metrics.host}:{cfg.metrics.port}"
        raise ConfigError("metrics.port", f"cannot listen on {where}: {exc.strerror}") from None
    return f"http://{cfg.metrics.host}:{httpd.server_port}/metrics"
