"""Host-level preparation before anything imports prometheus_client: child subreaper,
state dir lock, private runtime dir (its own 0700 dir inside a shared one), the
multiprocess metrics dir; then the one metrics endpoint of the host. Kept free of heavy
imports at module level on purpose.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import signal
import stat
from pathlib import Path
from typing import Any

from actors.supervisor.restart_policy import child_specs
from actors.supervisor.tasklimit import threads_refused_raise
from protocol.config import SystemConfig
from protocol.control_binder import write_identity
from protocol.exceptions import ConfigError, StateDirLocked
from protocol.paths import (
    CONTROL,
    EVENTS,
    METRICS_MARKER,
    RISK_EVENTS,
    SHARED_SUBDIR,
    SUPERVISOR,
    fix_dir,
    heartbeat_compared_path,
    is_shared_mode,
    kill_switch_path,
    logs_dir,
    metrics_dir,
    own_state,
    socket_file,
    supervisor_lock,
    venue_state_dir,
)

_PR_SET_CHILD_SUBREAPER = 36


def become_child_subreaper() -> None:
    """Orphaned descendants (the fork server's double-forked actors) are re-parented to this
    process, so their exits reach it as SIGCHLD and it can reap them."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def lock_state_dir(cfg: SystemConfig) -> int:
    """Take the state dir's flock; a second supervisor on the same dir gets StateDirLocked.

    A state dir of ours is made 0700. One we do not own (a volume mounted for root, group
    `fsGroup`: 2770 or 2775) is used as it is, if its owner is trusted (`check_owner`):
    everything we create in it is ours alone (dirs 0700, files 0600: `PRIVATE_UMASK`)."""
    state = cfg.state_path
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    st = state.stat()
    check_owner(st, state, "system.state_dir")
    if st.st_uid == os.geteuid():
        os.chmod(state, 0o700)  # a state dir made before 0700 was the rule: closed now
    venues = [f(state, v.name) for v in cfg.venues for f in (fix_dir, venue_state_dir)]
    for sub in (*own_state(state), kill_switch_path(state).parent, logs_dir(state), *venues):
        if os.path.lexists(sub) and not sub.is_dir():  # else its actor crash-loops on it
            raise ConfigError("system.state_dir", f"{sub} is not a directory")
    return _flock(supervisor_lock(state), f"state dir {state} is locked by another supervisor")


def _flock(lock: Path, held: str) -> int:
    """Take `lock`'s flock for the life of this process (its fd, returned, stays open) and
    write our pid in it; StateDirLocked(`held` and the holder's pid) if another has it."""
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
        raise StateDirLocked(f"{held} (pid {holder or '?'})") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def prepare_runtime_dir(cfg: SystemConfig) -> Path:
    """Make the private (0700) dir of the runtime files and an empty multiprocess metrics
    dir in it; returns that dir (`cfg.runtime_path`).

    `system.runtime_dir` is either private (no group/other write bit), then it is that dir:
    created 0700, or an existing one of ours tightened to 0700; or shared (a Kubernetes
    emptyDir is root-owned 0777, 2777 with an fsGroup), then its `SHARED_SUBDIR` is: a
    0700 dir of ours, created in it. The protection is the same either way: the ipc sockets
    sit in a 0700 dir of ours, so no other user can reach them (connecting to a socket
    needs search permission on its dir). The ZAP gate (runtime/zap.py: same uid, a child of
    the supervisor) is not enough alone: the operator's control socket admits any process
    that can reach it, and a socket file in a dir others can write could be replaced.

    ConfigError (system.runtime_dir) for a dir another user could take over: a symlink,
    not a directory, a private one owned by another uid, a shared one whose owner is neither
    root nor us (`check_owner`), or one we cannot write; likewise for `SHARED_SUBDIR`
    (another user's, say). Only what the system itself puts there is ever removed: the
    socket files of its own endpoints, and the multiprocess files in a metrics dir that
    carries the system's marker, and the heartbeat's compared times (one run's worth, as
    the metrics: `actors.position_heartbeat.compared_file`); a shared dir's other contents
    are never touched."""
    base = cfg.runtime_base
    st = _lstat(base)
    if st is not None and runtime_dir_is_shared(st, base):
        if not os.access(base, os.W_OK | os.X_OK, effective_ids=True):
            raise ConfigError("system.runtime_dir", f"{base} is not writable by uid {os.geteuid()}")
        rt = base / SHARED_SUBDIR
    else:
        rt = base
    _private_dir(rt, "system.runtime_dir")
    _flock(rt / "runtime.lock", f"runtime dir {rt} is in use by another supervisor")
    write_identity(rt)  # before any bind: the CLI takes control answers only from us
    names = [SUPERVISOR, CONTROL, EVENTS, RISK_EVENTS, *(spec.id for spec in child_specs(cfg))]
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
    compared = heartbeat_compared_path(rt)  # one run's worth: a fresh run watches from now
    if stat.S_ISREG(_lstat_mode(compared)):
        compared.unlink(missing_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics)
    return rt


def runtime_dir_is_shared(st: os.stat_result, path: Path, euid: int | None = None) -> bool:
    """Whether the existing `path` (`st`: its lstat) is a shared runtime dir, to hold our
    private `SHARED_SUBDIR`; False for a private one. ConfigError (system.runtime_dir) for
    one refused whatever is in it: a symlink, not a directory, or a shared dir of an
    untrusted owner (`check_owner`). Pure (also `tradepulse preflight`'s check)."""
    key = "system.runtime_dir"
    if stat.S_ISLNK(st.st_mode):
        raise ConfigError(key, f"{path} is a symlink; refusing (it could be swapped)")
    if not stat.S_ISDIR(st.st_mode):
        raise ConfigError(key, f"{path} is not a directory")
    check_owner(st, path, key, euid)
    return is_shared_mode(st.st_mode)


def check_owner(st: os.stat_result, path: Path, key: str, euid: int | None = None) -> None:
    """ConfigError(`key`) for a shared dir (`is_shared_mode`) owned by a user other than
    root or us (`euid`, default ours): its owner could remove or replace anything in it,
    the sticky bit notwithstanding. A shared dir of root's is what a platform mounts (a
    Kubernetes emptyDir, a volume with an fsGroup, /tmp); everyone else who can write it
    is kept out of our files by their modes (0700 dirs, 0600 files)."""
    me = os.geteuid() if euid is None else euid
    if is_shared_mode(st.st_mode) and st.st_uid not in (0, me):
        raise ConfigError(
            key,
            f"{path} is writable by group or others (mode {stat.S_IMODE(st.st_mode):o}) and"
            f" owned by uid {st.st_uid}, who could replace anything in it: use a dir of"
            f" root's or of uid {me}",
        )


def shared_dir_fields(path: Path) -> dict[str, object] | None:
    """What `runtime_dir_shared` / `state_dir_shared` log about the existing dir `path`
    when it is shared or not ours (owner uid, mode, sticky); None for a private dir of
    ours, or one that cannot be read."""
    st = _lstat(path)
    if st is None or not stat.S_ISDIR(st.st_mode):
        return None
    if st.st_uid == os.geteuid() and not is_shared_mode(st.st_mode):
        return None
    return {
        "dir": str(path),
        "owner_uid": st.st_uid,
        "mode": f"{stat.S_IMODE(st.st_mode):o}",
        "sticky": bool(st.st_mode & stat.S_ISVTX),
    }


def log_shared_dirs(cfg: SystemConfig, log: Any) -> None:
    """Once at start: a runtime or state dir that is shared or not ours, and what keeps our
    files private in it (`prepare_runtime_dir`, `lock_state_dir`)."""
    runtime = shared_dir_fields(cfg.runtime_base)
    if runtime is not None:
        log.info("runtime_dir_shared", **runtime, private_dir=str(cfg.runtime_path))
    state = shared_dir_fields(cfg.state_path)
    if state is not None:
        log.info("state_dir_shared", **state, private="dirs 0700, files 0600")


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


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
        with threads_refused_raise("the metrics server"):
            httpd, _ = start_http_server(cfg.metrics.port, addr=cfg.metrics.host, registry=registry)
    except OSError as exc:  # taken since `tradepulse run` checked it: still one clear line
        where = f"{cfg.metrics.host}:{cfg.metrics.port}"
        raise ConfigError("metrics.port", f"cannot listen on {where}: {exc.strerror}") from None
    return f"http://{cfg.metrics.host}:{httpd.server_port}/metrics"
