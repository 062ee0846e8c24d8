"""A small userspace TCP fault proxy (threads, no asyncio) for delay, jitter, stalls and
cuts: this kernel has no tc netem.

`FaultProxy(upstream)` listens on (listen_host, an ephemeral port) and forwards each
accepted connection to `upstream`. One thread accepts; each connection has one thread that
moves bytes both ways with non-blocking sockets and `select` (a wake-up socket pair per
connection tells it about a new setting, a cut or the close). Every chunk read is held
until `read time + delay + uniform(0, jitter)`, never before the chunk read ahead of it in
the same direction (netem delay without reordering); a stall holds everything until it is
lifted; a cut resets every open connection (SO_LINGER 0: both peers see RST); `refuse`
closes new connections at once.

With `netns`, the accepting thread enters that network namespace first, so the listening
socket and every upstream socket (made by that thread) live there: an edge in namespace E
reaches tcp://127.0.0.1:<port> and the proxy the core over the veth.
"""

from __future__ import annotations

import errno
import math
import random
import select
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from types import TracebackType

from tests.netfault.netns import enter_netns

CHUNK = 65536
MAX_HELD = 4 << 20  # bytes held per direction before the proxy stops reading (backpressure)
CONNECT_TIMEOUT_S = 5.0
_EOF = b""


def _wait(
    readers: list[socket.socket], writers: list[socket.socket], timeout_s: float | None
) -> tuple[list[socket.socket], list[socket.socket]]:
    """`select.select(readers, writers, [], timeout_s)[:2]` with poll(): select() refuses
    an fd past 1023, which a test worker holding many fds gives out."""
    poller = select.poll()
    masks: dict[int, int] = {}
    for sock in readers:
        masks[sock.fileno()] = masks.get(sock.fileno(), 0) | select.POLLIN
    for sock in writers:
        masks[sock.fileno()] = masks.get(sock.fileno(), 0) | select.POLLOUT
    for fd, mask in masks.items():
        poller.register(fd, mask)
    ms = None if timeout_s is None else max(0, math.ceil(timeout_s * 1000))
    ready = dict(poller.poll(ms))
    error = select.POLLERR | select.POLLHUP | select.POLLNVAL  # as select: readable/writable
    r = [x for x in readers if ready.get(x.fileno(), 0) & (select.POLLIN | error)]
    w = [x for x in writers if ready.get(x.fileno(), 0) & (select.POLLOUT | error)]
    return r, w


def _reset(sock: socket.socket) -> None:
    """Close with an RST (SO_LINGER on, 0 s)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


@dataclass
class _Direction:
    src: socket.socket
    dst: socket.socket
    stat: str  # "bytes_up" | "bytes_down"
    held: deque[tuple[float, bytes]] = field(default_factory=deque)  # (due, chunk); b"": EOF
    held_bytes: int = 0
    last_due: float = 0.0
    reading: bool = True  # until src's EOF
    done: bool = False  # EOF passed on to dst


class _Conn:
    """One proxied connection and the thread that moves its bytes."""

    def __init__(self, proxy: FaultProxy, client: socket.socket, upstream: socket.socket) -> None:
        self.proxy = proxy
        self.client, self.upstream = client, upstream
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self.cut_requested = False
        self.closing = False
        self.thread = threading.Thread(target=self._run, name="faultproxy-conn", daemon=True)

    def wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:  # full (a wake-up is pending anyway) or closed (the thread is done)
            pass

    # ------------------------------------------------------------------ the thread

    def _run(self) -> None:
        try:
            if self._connect():
                self._pump()
        finally:
            self.proxy._forget(self)
            self._wake_r.close()
            self._wake_w.close()

    def _connect(self) -> bool:
        """The non-blocking connect to upstream; False (client reset) if it fails."""
        self.upstream.setblocking(False)
        err = self.upstream.connect_ex(self.proxy.upstream)
        if err not in (0, errno.EINPROGRESS):
            return self._fail()
        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.closing or self.cut_requested:
                return self._fail()
            _, w = _wait([self._wake_r], [self.upstream], remaining)
            self._drain_wake()
            if w:
                if self.upstream.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
                    return self._fail()
                self.client.setblocking(False)
                return True

    def _fail(self) -> bool:
        _reset(self.client)
        _reset(self.upstream)
        return False

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(256):
                pass
        except OSError:
            pass

    def _pump(self) -> None:
        dirs = [
            _Direction(self.client, self.upstream, "bytes_up"),
            _Direction(self.upstream, self.client, "bytes_down"),
        ]
        try:
            while not (dirs[0].done and dirs[1].done):
                if self.cut_requested or self.closing:
                    break
                now = time.monotonic()
                stalled = self.proxy._settings()[0]
                blocked: list[socket.socket] = []
                for d in dirs:
                    if not stalled and not self._send_due(d, now):
                        blocked.append(d.dst)
                readers: list[socket.socket] = [self._wake_r]
                readers += [d.src for d in dirs if d.reading and d.held_bytes < MAX_HELD]
                timeout = self._next_due(dirs, now, stalled, blocked)
                r, w = _wait(readers, blocked, timeout)
                if self._wake_r in r:
                    self._drain_wake()
                _, delay_s, jitter_s = self.proxy._settings()  # as of the read
                for d in dirs:
                    if d.src in r:
                        self._read(d, delay_s, jitter_s)
        except OSError:  # reset by a peer: the other one is reset too
            self.cut_requested = True
        if self.cut_requested:
            _reset(self.client)
            _reset(self.upstream)
        else:
            self.client.close()
            self.upstream.close()

    def _read(self, d: _Direction, delay_s: float, jitter_s: float) -> None:
        try:
            chunk = d.src.recv(CHUNK)
        except BlockingIOError:
            return
        now = time.monotonic()
        due = max(now + delay_s + (random.uniform(0, jitter_s) if jitter_s else 0.0), d.last_due)
        d.last_due = due
        d.held.append((due, chunk))
        d.held_bytes += len(chunk)
        if chunk == _EOF:
            d.reading = False

    def _send_due(self, d: _Direction, now: float) -> bool:
        """Send what is due; False when the destination would block."""
        while d.held and d.held[0][0] <= now:
            due, chunk = d.held[0]
            if chunk == _EOF:
                d.held.popleft()
                d.dst.shutdown(socket.SHUT_WR)
                d.done = True
                continue
            try:
                sent = d.dst.send(chunk)
            except BlockingIOError:
                return False
            self.proxy._count(d.stat, sent)
            d.held_bytes -= sent
            if sent < len(chunk):
                d.held[0] = (due, chunk[sent:])
                return False
            d.held.popleft()
        return True

    @staticmethod
    def _next_due(
        dirs: list[_Direction], now: float, stalled: bool, blocked: list[socket.socket]
    ) -> float | None:
        if stalled:
            return None  # a wake-up lifts it
        dues = [d.held[0][0] for d in dirs if d.held and d.dst not in blocked]
        return max(min(dues) - now, 0.0) if dues else None


class FaultProxy:
    def __init__(
        self,
        upstream: tuple[str, int],
        *,
        listen_host: str = "127.0.0.1",
        netns: str | None = None,
    ) -> None:
        """Listens on (listen_host, ephemeral port) and forwards each accepted connection to
        upstream. With netns, the listening socket and every upstream socket are created
        inside that network namespace (a thread that setns()es via ctypes
        libc.setns(fd, CLONE_NEWNET)), so an edge in namespace E connects to
        tcp://127.0.0.1:<port> and the proxy reaches the core over the veth."""
        self.upstream = upstream
        self.listen_host = listen_host
        self.netns = netns
        self.port = 0
        self._lock = threading.Lock()
        self._stalled = False
        self._refusing = False
        self._delay_s = 0.0
        self._jitter_s = 0.0
        self._stats = {"connections": 0, "cuts": 0, "bytes_up": 0, "bytes_down": 0, "refused": 0}
        self._conns: set[_Conn] = set()
        self._all: list[_Conn] = []  # every connection thread ever started (joined by close)
        self._closed = False
        self._started = False
        self._wake: tuple[socket.socket, socket.socket] | None = None  # close() -> acceptor
        self._acceptor: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FaultProxy:
        assert not self._started, "already started"
        self._started = True
        self._wake = socket.socketpair()
        ready = threading.Event()
        failed: list[BaseException] = []
        self._acceptor = threading.Thread(
            target=self._accept_loop, args=(ready, failed), name="faultproxy-accept", daemon=True
        )
        self._acceptor.start()
        ready.wait(10.0)
        if failed:
            self._acceptor.join(5.0)
            raise failed[0]
        if not ready.is_set():
            raise TimeoutError("fault proxy did not start listening within 10 s")
        return self

    def close(self) -> None:
        """Stop accepting, close every connection, join every thread. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            conns = list(self._all)
        for c in conns:
            c.closing = True
            c.wake()
        if self._wake is not None:
            self._wake[1].send(b"x")
        if self._acceptor is not None:
            self._acceptor.join(10.0)
        for c in conns:
            c.thread.join(10.0)
        with self._lock:
            late = [c for c in self._all if c not in conns]  # accepted while closing
        for c in late:
            c.closing = True
            c.wake()
            c.thread.join(10.0)
        for s in self._wake or ():
            s.close()

    def __enter__(self) -> FaultProxy:
        return self if self._started else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ faults

    def set_delay(self, delay_s: float, jitter_s: float = 0.0) -> None:
        """Every chunk, each direction, is held delay + uniform(0, jitter) before it is sent;
        byte order within a connection preserved (like netem delay without reorder)."""
        assert delay_s >= 0 and jitter_s >= 0, (delay_s, jitter_s)
        with self._lock:
            self._delay_s, self._jitter_s = delay_s, jitter_s
        self._wake_all()

    def stall(self, on: bool) -> None:
        """Hold all bytes (connections stay open) until off."""
        with self._lock:
            self._stalled = on
        self._wake_all()

    def cut(self) -> int:
        """Reset (SO_LINGER 0) every open connection; returns how many. Done on return."""
        with self._lock:
            conns = list(self._conns)
            self._stats["cuts"] += len(conns)
        for c in conns:
            c.cut_requested = True
            c.wake()
        for c in conns:
            c.thread.join(10.0)
        return len(conns)

    def refuse(self, on: bool) -> None:
        """New connections are accepted and closed at once."""
        with self._lock:
            self._refusing = on

    @property
    def stats(self) -> dict[str, int]:
        """connections (forwarded), cuts, bytes_up (client -> upstream), bytes_down,
        refused."""
        with self._lock:
            return dict(self._stats)

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._conns)

    # ------------------------------------------------------------------ internals

    def _settings(self) -> tuple[bool, float, float]:
        with self._lock:
            return self._stalled, self._delay_s, self._jitter_s

    def _count(self, stat: str, n: int) -> None:
        with self._lock:
            self._stats[stat] += n

    def _forget(self, conn: _Conn) -> None:
        with self._lock:
            self._conns.discard(conn)

    def _wake_all(self) -> None:
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            c.wake()

    def _accept_loop(self, ready: threading.Event, failed: list[BaseException]) -> None:
        try:
            if self.netns is not None:
                enter_netns(self.netns)
            family = socket.AF_INET6 if ":" in self.listen_host else socket.AF_INET
            listener = socket.socket(family, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((self.listen_host, 0))
            listener.listen(64)
            self.port = listener.getsockname()[1]
        except BaseException as exc:  # noqa: BLE001 - handed to start()
            failed.append(exc)
            ready.set()
            return
        ready.set()
        assert self._wake is not None
        try:
            while True:
                r, _ = _wait([listener, self._wake[0]], [], None)
                if self._wake[0] in r:
                    return  # only close() wakes the acceptor
                client, _ = listener.accept()
                self._take(client)
        finally:
            listener.close()

    def _take(self, client: socket.socket) -> None:
        with self._lock:
            refusing = self._refusing or self._closed
            if refusing:
                self._stats["refused"] += 1
        if refusing:
            client.close()
            return
        family = socket.AF_INET6 if ":" in self.upstream[0] else socket.AF_INET
        upstream = socket.socket(family, socket.SOCK_STREAM)  # in this thread's namespace
        for s in (client, upstream):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = _Conn(self, client, upstream)
        with self._lock:  # started under the lock: close() joins only started threads
            self._stats["connections"] += 1
            self._conns.add(conn)
            self._all.append(conn)
            conn.thread.start()
