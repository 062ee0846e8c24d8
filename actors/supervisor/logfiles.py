"""The log files: every JSON line of the supervisor and its actors, also written to
`state_dir/logs/tradepulse.log` (rotated by size: `.1`, `.2`, ... `keep_files` in all,
0600), for the post-mortem bundle and for audit.

Every process of the system logs to its stdout (actors/runtime/logs.py) and tracebacks go
to stderr; actors inherit both from the supervisor (the fork server too). `LogCapture`
puts a pipe under the supervisor's fd 1 and fd 2 before anything is spawned, so every
line of every process passes through it: a reader thread per stream copies the bytes to
the original stdout/stderr at once (the console and journald see what they always saw)
and queues whole lines for a writer thread, which appends them to the file. A line that is
not JSON (a traceback) is wrapped in one (`raw_output`) so that it has a time.

Never blocking, never crashing: the readers never wait for the disk (a bounded queue; a
line that does not fit is dropped and counted); the writer's failures (disk full, I/O
error) drop the lines, count them in `tradepulse_log_lines_dropped_total` and say so on
stderr at most once per `_WARN_EVERY_S`; the file resumes when space returns. A line the
last run left torn is ended before the first new one; an exception out of the run is
written as `supervisor_crashed` before the capture closes. (The pipes
hold 1 MiB: while the supervisor process is stopped, SIGSTOP, actors can write that much
before their logging waits.)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import json
import os
import re
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Iterator
from pathlib import Path

from actors.runtime.rotated import open_consistent
from actors.supervisor.tasklimit import ThreadsRefused, threads_refused_raise
from protocol import paths
from protocol.config import SystemConfig
from protocol.exceptions import ConfigError

_PIPE_BYTES = 1 << 20
_QUEUE_BYTES = 16 << 20  # lines waiting for the disk; beyond: dropped (counted)
_LINE_MAX = 1 << 20  # a longer run of bytes without a newline is cut into a line
_WARN_EVERY_S = 10.0
_F_SETPIPE_SZ = 1031
_TS = re.compile(rb'"ts": ?"([^"]{10,40})"')


class RotatingFile:
    """`path`, rotated to `path.1` ... `path.{keep-1}` before a write would take it past
    `max_bytes`. `write` raises OSError (the caller counts the loss); a write cut short
    (ENOSPC mid-line) makes the next one start on a new line."""

    def __init__(self, path: Path, max_bytes: int, keep: int) -> None:
        self.path = path
        self._max = max_bytes
        self._keep = keep
        self._fd: int | None = None
        self._size = 0
        self._torn = False

    def write(self, data: bytes) -> None:
        if self._fd is None:
            self._open()
        if self._size and self._size + len(data) > self._max:
            self._rotate()
            self._open()
        assert self._fd is not None
        if self._torn:
            data = b"\n" + data
        view, wrote = memoryview(data), False
        try:
            while view:
                n = os.write(self._fd, view)
                if n == 0:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                self._size += n
                wrote = True
                view = view[n:]
        except OSError:
            self._torn = self._torn or wrote  # part of a line went out: end it next time
            raise
        self._torn = False

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _open(self) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
        self._fd = os.open(self.path, flags, 0o600)
        self._size = os.fstat(self._fd).st_size
        # a line torn by the last run (kill -9, disk full): our first line starts anew
        self._torn = self._size > 0 and os.pread(self._fd, 1, self._size - 1) != b"\n"

    def _rotate(self) -> None:
        self.close()
        for i in range(self._keep - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{i - 1}") if i > 1 else self.path
            with contextlib.suppress(FileNotFoundError):
                os.replace(older, self.path.with_name(f"{self.path.name}.{i}"))
        with contextlib.suppress(FileNotFoundError):  # keep == 1: start the file again
            os.unlink(self.path)


class LogCapture:
    """The pipes under fd 1 and fd 2 and the threads that empty them (see the module)."""

    def __init__(self, file: RotatingFile, *, count_dropped: bool = True) -> None:
        self.file = file
        self.dropped = 0
        self._count_dropped = count_dropped
        self._queue: deque[bytes] = deque()
        self._queued_bytes = 0
        self._cond = threading.Condition()
        self._closing = False
        self._saved: list[tuple[int, int]] = []  # (fd, a dup of what it was)
        self._threads: list[threading.Thread] = []
        self._out_lock = threading.Lock()
        self._warned_at = -_WARN_EVERY_S

    def start(self) -> None:
        """OSError (EMFILE, ...) or ThreadsRefused (the host's task limit) with the original
        fds in place: a reader thread refused left its pipe under fd 1 or 2 with no one to
        empty it, and the error that ended `run` was written into it, unseen."""
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            self._install()
            writer = threading.Thread(target=self._write_loop, name="log-file", daemon=True)
            self._threads.append(writer)
            with threads_refused_raise("the log file's capture"):
                for t in self._threads:
                    t.start()
        except (OSError, ThreadsRefused):
            for fd, original in self._saved:
                os.dup2(original, fd)  # a reader started meets the end of its pipe
            raise

    def _install(self) -> None:
        for fd, stream in ((1, "stdout"), (2, "stderr")):
            original = os.dup(fd)
            r, w = os.pipe()
            with contextlib.suppress(OSError):  # a smaller pipe only means less headroom
                fcntl.fcntl(w, _F_SETPIPE_SZ, _PIPE_BYTES)
            os.dup2(w, fd)  # inheritable: every child writes into the pipe
            os.close(w)
            self._saved.append((fd, original))
            t = threading.Thread(
                target=self._read, args=(r, original, stream), name=f"log-{stream}", daemon=True
            )
            self._threads.append(t)

    def close(self, timeout_s: float = 2.0) -> None:
        """Put the original fds back; the rest of the pipes' lines still reach the file
        (within `timeout_s`, unless a process that inherited a pipe still runs)."""
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, original in self._saved:
            os.dup2(original, fd)
        deadline = time.monotonic() + timeout_s
        for t in self._threads[:-1]:
            t.join(max(0.0, deadline - time.monotonic()))
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._threads[-1].join(max(0.0, deadline - time.monotonic()))
        self.file.close()

    # ------------------------------------------------------------------ threads

    def _read(self, r: int, original: int, stream: str) -> None:
        carry = b""
        try:
            while chunk := os.read(r, 65536):
                self._echo(original, chunk)
                try:
                    carry = self._take_lines(carry + chunk, stream)
                except Exception:  # noqa: BLE001 - never stop emptying the pipe
                    carry = b""
            if carry:
                self._enqueue([wrap_line(carry, stream)])
        finally:
            os.close(r)

    def _take_lines(self, data: bytes, stream: str) -> bytes:
        """Queue the whole lines of `data`; returns the unfinished rest."""
        lines = data.split(b"\n")
        carry = lines.pop()
        if len(carry) > _LINE_MAX:
            lines.append(carry)
            carry = b""
        self._enqueue([wrap_line(line, stream) for line in lines if line])
        return carry

    def _echo(self, fd: int, data: bytes) -> None:
        view = memoryview(data)
        with self._out_lock:
            try:
                while view:
                    view = view[os.write(fd, view) :]
            except OSError:  # the console is gone (a closed terminal): the file still gets it
                pass

    def _enqueue(self, lines: list[bytes]) -> None:
        with self._cond:
            for line in lines:
                if self._queued_bytes + len(line) > _QUEUE_BYTES:
                    self._drop(1, "backlog")
                    continue
                self._queue.append(line)
                self._queued_bytes += len(line)
            self._cond.notify()

    def _write_loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if not self._queue:
                    return
                batch = list(self._queue)
                self._queue.clear()
                self._queued_bytes = 0
            try:
                self.file.write(b"\n".join(batch) + b"\n")
            except Exception as exc:  # noqa: BLE001 - disk full, I/O error: drop, count, go on
                with self._cond:
                    self._drop(len(batch), f"{type(exc).__name__}: {exc}")

    def _drop(self, lines: int, why: str) -> None:
        """Count `lines` lost (called with the condition held) and say so now and then."""
        self.dropped += lines
        if self._count_dropped:
            from actors.runtime import metrics

            metrics.LOG_LINES_DROPPED.inc(lines)
        now = time.monotonic()
        if now - self._warned_at < _WARN_EVERY_S:
            return
        self._warned_at = now
        line = json.dumps(
            {
                "ts": utc_stamp(time.time()),
                "level": "warning",
                "actor": "supervisor",
                "event": "log_file_write_failed",
                "path": str(self.file.path),
                "error": why,
                "dropped_total": self.dropped,
            }
        )
        original_stderr = next(o for fd, o in self._saved if fd == 2)
        self._echo(original_stderr, line.encode() + b"\n")


def wrap_line(line: bytes, stream: str) -> bytes:
    """A JSON log line as it is; anything else (a traceback line) as a `raw_output` event."""
    if line.startswith(b"{") and line.endswith(b"}"):
        return line
    event = {
        "event": "raw_output",
        "stream": stream,
        "line": line.decode("utf-8", "replace"),
        "level": "error" if stream == "stderr" else "info",
        "ts": utc_stamp(time.time()),  # last, as structlog has it
    }
    return json.dumps(event).encode()


def utc_stamp(ts_s: float) -> str:
    """The time as structlog's TimeStamper(fmt="iso", utc=True) writes it."""
    return dt.datetime.fromtimestamp(ts_s, dt.UTC).isoformat().replace("+00:00", "Z")


@contextlib.contextmanager
def capture_logs(cfg: SystemConfig) -> Iterator[LogCapture | None]:
    """`run`: every process's lines also go to the log file, unless `logging.file` is off."""
    if not cfg.logging.file:
        yield None
        return
    path = paths.logs_dir(cfg.state_path) / paths.LOG_FILE_NAME
    capture = LogCapture(RotatingFile(path, cfg.logging.max_file_bytes, cfg.logging.keep_files))
    try:
        capture.start()
    except OSError as exc:  # no fds left, ...: the system runs, without the file
        print(json.dumps({"event": "log_file_unavailable", "error": str(exc)}), file=sys.stderr)
        yield None
        return
    try:
        yield capture
    except (ThreadsRefused, ConfigError) as exc:  # no crash: `run` says it in one line
        _log_event("start_refused", error=str(exc))  # (exit 2): the task limit, a port taken
        raise
    except Exception:  # Python prints the traceback after fd 2 is restored: log it first
        _log_event("supervisor_crashed", traceback=traceback.format_exc())
        raise
    finally:
        capture.close()


def _log_event(name: str, **fields: str) -> None:
    """`supervisor_crashed` with the traceback (or `start_refused` with the error), on
    stderr (the capture's pipe)."""
    event = {"level": "critical", "actor": "supervisor", "event": name}
    event |= {**fields, "ts": utc_stamp(time.time())}
    with contextlib.suppress(Exception):  # the exception that got us here is what matters
        sys.stderr.write(json.dumps(event) + "\n")
        sys.stderr.flush()


# ---------------------------------------------------------------------- reading


def log_files(directory: Path) -> list[Path]:
    """The log's files that exist, oldest first (`tradepulse.log.N` ... `tradepulse.log`)."""
    name = paths.LOG_FILE_NAME
    rotated = [
        (int(p.name[len(name) + 1 :]), p)
        for p in directory.glob(name + ".*")
        if p.name[len(name) + 1 :].isdigit()
    ]
    current = directory / name
    files = [p for _, p in sorted(rotated, reverse=True)]
    return [*files, current] if current.exists() else files


def line_time(line: bytes) -> float | None:
    """A log line's `ts` as seconds since the epoch; None if it has none."""
    # structlog's TimeStamper puts `ts` last: look at the end first (a value may quote one)
    match = _TS.search(line, max(0, len(line) - 80)) or _TS.search(line)
    if match is None:
        return None
    try:
        when = dt.datetime.fromisoformat(match.group(1).decode())
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=dt.UTC)).timestamp()


def lines_between(directory: Path, since_s: float, until_s: float) -> Iterator[bytes]:
    """The lines (without newline) stamped in [since_s, until_s], oldest file first; a
    line without a time (torn) goes with the line before it. Every file is opened before
    the first is read: the capture rotating meanwhile cannot hide one (runtime/rotated)."""
    handles = open_consistent(lambda: log_files(directory))
    try:
        for fh in handles:
            if os.fstat(fh.fileno()).st_mtime < since_s:  # its last line is older still
                continue
            last: float | None = None
            for raw in fh:
                line = raw.rstrip(b"\n")
                if not line:
                    continue
                ts = line_time(line)
                last = ts if ts is not None else last
                if last is not None and since_s <= last <= until_s:
                    yield line
    finally:
        for fh in handles:
            fh.close()
