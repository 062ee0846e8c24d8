"""Host-level preparation before anything imports prometheus_client: child subreaper,
state dir lock, private runtime dir, the multiprocess metrics dir; then the one metrics
endpoint of the host. Kept free of heavy imports at module level on purpose.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import shutil
import signal
from pathlib import Path

from protocol.config import SystemConfig
from protocol.exceptions import StateDirLocked
from protocol.paths import SOCKET_SUFFIX, metrics_dir, supervisor_lock

_PR_SET_CHILD_SUBREAPER = 36


def become_child_subreaper() -> None:
    """Orphaned descendants (the fork server's double-forked actors) are re-parented to this
    process, so their exits reach it as SIGCHLD and it can reap them."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def lock_state_dir(cfg: SystemConfig) -> int:
    """Take the state dir's flock; a second supervisor on the same dir gets StateDirLocked."""
    state = cfg.state_path
    state.mkdir(parents=True, exist_ok=True)
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
    """Create the private (0700) runtime dir and an empty multiprocess metrics dir in it."""
    rt = cfg.runtime_path
    rt.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(rt, 0o700)
    for sock in rt.glob(f"*{SOCKET_SUFFIX}"):
        sock.unlink(missing_ok=True)
    metrics = metrics_dir(rt)
    shutil.rmtree(metrics, ignore_errors=True)
    metrics.mkdir(mode=0o700)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics)
    return rt


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
    httpd, _ = start_http_server(cfg.metrics.port, addr=cfg.metrics.host, registry=registry)
    return f"http://{cfg.metrics.host}:{httpd.server_port}/metrics"
