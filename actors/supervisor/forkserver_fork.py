"""The fork server forked from the supervisor after the imports both need (issue 16).

A launched fork server (`forkserver_launch`) is a second interpreter: pydantic, zmq,
structlog, msgspec and the protocol modules (~21 MiB once imported) are private memory
twice, in the supervisor and in the fork server (whose actors share its copy). `run`
therefore imports them once (`forkserver.WARM_MODULES`, which load no prometheus_client),
freezes them (`gc.freeze()`: no collection writes their headers) and forks the fork server
before it creates any thread, ZeroMQ context or socket: those pages are shared by the
supervisor, the fork server and every actor, and the fork server has nothing to import but
its actor modules.

The fork server must hold no credential, in its environment block or in its memory, and
the supervisor's block names every variable of the operator's shell. So `run` first
re-executes itself (`protocol.start_env.reexec`, same pid and argv, before it imports
anything heavy) with the environment the early fork server may have (`early_environ`); the
rest of its environment travels in a memfd, read back (`_restore`) only after the fork. The
forked child retitles itself (`/proc/PID/cmdline` reads as the launched fork server's) and
runs `forkserver.serve`.
Where any step cannot be taken (no memfd, no /proc to find it again, a program that
cannot be read again, a thread already running, `main` called with another argv), the
fork server is launched as before; a re-execution that cannot read its environment back
exits 2 (`supervisor.main`), never runs without it.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Collection, Iterator, Mapping, Sequence

from actors.supervisor import forkserver_launch as launch
from protocol import start_env
from protocol.exceptions import ConfigError
from protocol.start_env import MARKER

PROC_FD = "/proc/self/fd"

TITLE = "tradepulse-forkserver\0-m\0actors.supervisor.forkserver"
# besides `forkserver.WARM_MODULES`: what the supervisor imports later that actors import
# too and that loads no prometheus_client (~2.7 MiB; a stale entry only costs its import)
SHARED_MODULES = (
    "simplefix", "actors.connector.fix.store", "actors.connector.fix.msglog",
    "actors.connector.fix.sent", "actors.connector.fix.seqadmin", "actors.connector.fix.events",
    "actors.oms.journal", "actors.risk.killswitch", "actors.runtime.backoff",
    "actors.runtime.crashpoints", "actors.runtime.fdlimit", "actors.runtime.frames",
    "actors.runtime.live_config", "actors.runtime.operator_stops", "actors.runtime.ratelog",
    "actors.runtime.senders", "protocol.sockets", "http.server", "http.client",
    "urllib.request", "email.parser", "wsgiref.simple_server", "socketserver", "mimetypes",
    "gzip", "mmap", "timeit", "resource",
)  # fmt: skip


class ForkedChild:
    """The part of `subprocess.Popen` the spawner uses, for a forked child (which the
    daemon's `waitpid(-1)` may reap first: then its exit status is unknown, -1)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                self.returncode = -1
            else:
                if pid == self.pid:
                    self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(["forkserver"], timeout or 0.0)
            time.sleep(0.005)
        return code

    def kill(self) -> None:
        if self.poll() is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


class ForkedServer(launch.ForkServerProcess):
    """A fork server forked from this process; its pipes as a launched one's."""

    def __init__(self, expected: Collection[str]) -> None:
        """The fork server keeps no fd of this process but its pipes and stdout, stderr."""
        self.env = dict(os.environ)
        self.setup_sent = None
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        self._fds, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the fork server: never returns into the supervisor's code
            code = 1
            try:
                signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor owns Ctrl-C
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # `_sigint_held`
                _close_all_but({0, 1, 2, req_r, resp_w, theirs.fileno()})  # as close_fds
                null = os.open(os.devnull, os.O_RDONLY)  # as launched: stdin=DEVNULL
                os.dup2(null, 0)
                os.close(null)
                _retitle(TITLE)
                from actors.supervisor.forkserver import serve

                code = serve(req_r, resp_w, theirs.fileno(), expected)
            except BaseException:  # noqa: BLE001 - report it, exit non-zero
                traceback.print_exc()
            finally:
                os._exit(code)
        theirs.close()
        os.close(req_r)
        os.close(resp_w)
        self.proc = ForkedChild(pid)
        self.resp = os.fdopen(resp_r, "r")
        self.req = os.fdopen(req_w, "w", buffering=1)


def start(argv: Sequence[str], environ: Mapping[str, str]) -> None:
    """For `run` (`argv`: its `--config` and `--host-group`): in a process `reexec`
    (`protocol.start_env`) re-executed without credentials, the fork server forked after
    the shared imports; else (or when that fails) launched (`launch_early`). Raises
    ConfigError when the re-execution cannot read its environment back (never runs without
    it: its credentials)."""
    fd = _marker_fd()
    if fd is None:
        launch.launch_early(argv, environ)
        return
    with _sigint_held():  # a Ctrl-C during the fork: raised once the server is adopted
        server = None
        try:
            server = _fork(launch.expected_kinds(argv))
        finally:
            try:
                _restore(fd)  # the supervisor's whole environment, whatever happened
            except ConfigError:
                if server is not None:
                    server.kill()
                raise
        if server is None:
            launch.launch_early(argv, os.environ)
        else:
            launch.adopt_forked(server)


@contextlib.contextmanager
def _sigint_held() -> Iterator[None]:
    """SIGINT blocked, then as it was: a Ctrl-C meanwhile raises KeyboardInterrupt as it is
    unblocked (the fork server adopted: `supervisor.main` then discards it). Unblocked, one
    that comes during `os.fork` raises it in an at-fork hook (logging's `_releaseLock`),
    where Python prints it as "Exception ignored" and drops it: the supervisor starts."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _marker_fd() -> int | None:
    """The memfd `reexec` left, if this process is its re-execution (the marker is popped);
    ConfigError when /proc cannot tell (`reexec` checked that it could)."""
    value = os.environ.pop(MARKER, None)
    # ASCII digits int() takes: "²" is a digit to isdigit, and 5000 digits are past int's
    if value is None or not (value.isascii() and value.isdigit()) or len(value) > 9:
        return None
    if start_env.memfd_readable(int(value)):
        _blank_marker()  # popped (unset): no pointer of `environ` left to its bytes
        return int(value)
    if not os.path.isdir(PROC_FD):
        raise ConfigError(MARKER, f"cannot read the environment back: no {PROC_FD}")
    return None  # an inherited variable of that name, not ours: ignored


def _fork(expected: Collection[str]) -> ForkedServer | None:
    """Import what the supervisor and every actor share, freeze it, fork the fork server
    (which closes every fd but its own: the memfd of the whole environment among them)."""
    if threading.active_count() != 1:  # a thread would not be forked: not safe
        return None
    from actors.supervisor import forkserver

    forkserver.warm((), SHARED_MODULES)
    gc.collect()
    gc.freeze()
    try:
        return ForkedServer(expected)
    except OSError:
        return None


def _close_all_but(keep: Collection[int]) -> None:
    """Close every fd of this process not in `keep` (what `Popen(close_fds=True)` does for
    a launched fork server: the memfd of the whole environment among them)."""
    for name in os.listdir("/proc/self/fd"):
        if int(name) not in keep:
            try:
                os.close(int(name))
            except OSError:
                pass  # the listing's own fd, closed already


def _restore(fd: int) -> None:
    """This process's environment becomes the one `reexec` saved in `fd` (then closed);
    ConfigError when it cannot be read."""
    try:
        with os.fdopen(fd, "rb") as fh:
            fh.seek(0)
            data = fh.read()
    except OSError as exc:
        raise ConfigError(MARKER, f"cannot read the environment back: {exc}") from None
    saved = dict(item.split(b"=", 1) for item in data.split(b"\0") if b"=" in item)
    os.environ.clear()
    os.environb.update(saved)


def _blank_marker() -> None:
    """Overwrite the marker, the last variable of this process's original environment block
    (`reexec` puts it last), with NULs: /proc/PID/environ of this process and of every one
    forked from it (the fork server, its actors) then does not name it."""
    try:
        start, end = _stat_fields(47, 48)  # env_start, env_end: stat fields 50, 51
        with open("/proc/self/mem", "r+b", buffering=0) as mem:
            mem.seek(start)
            block = mem.read(end - start)
            at = block.rfind(b"\0" + MARKER.encode() + b"=") + 1
            if at and b"\0" not in block[at:].rstrip(b"\0"):  # only the marker after it
                mem.seek(start + at)
                mem.write(bytes(len(block) - at))
    except (OSError, ValueError, IndexError):
        pass  # then it shows, naming an fd closed everywhere but here until the restore


def _stat_fields(*indexes: int) -> list[int]:
    """Fields of /proc/self/stat after the command name (index 0: field 3, the state)."""
    with open("/proc/self/stat", "rb") as fh:
        fields = fh.read().rsplit(b")", 1)[1].split()
    return [int(fields[i]) for i in indexes]


def _retitle(title: str) -> None:
    """Write `title` (NUL-separated words) over this process's argv area, so that
    /proc/PID/cmdline and ps show it (truncated to the area)."""
    try:
        start, end = _stat_fields(45, 46)  # arg_start, arg_end: stat fields 48, 49
        data = title.encode()[: end - start - 1].ljust(end - start, b"\0")
        with open("/proc/self/mem", "r+b", buffering=0) as mem:
            mem.seek(start)
            mem.write(data)
    except (OSError, ValueError, IndexError):
        pass  # the supervisor's command line then
