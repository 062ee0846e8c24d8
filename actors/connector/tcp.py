"""One nonblocking TCP client connection driven by the actor loop (no threads, no blocking),
optionally TLS (`[venues.tls]`, contexts in `protocol.tls`).

    tcp = TcpClient(loop, on_ready)     # on_ready(): the socket is readable or writable
    tcp.connect(("127.0.0.1", port))    # OSError when it fails at once
    on_ready while tcp.connecting: tcp.finish_connect()  # True: ready; OSError: failed
    tcp.timed_out()                     # the caller's connect deadline passed: the reason
    chunks, lost = tcp.read()           # lost: why the connection ended, "" while open
    tcp.write(data)                     # buffered; POLLOUT interest while bytes are left
    tcp.close(last=b"...")              # best effort write of what is left, then close

Errors are `OSError`s for the caller to turn into a lost connection. Poll events are the
zmq.Poller ones (zmq.POLLIN / zmq.POLLOUT), as the actor loop uses.

TLS: once TCP is connected, `finish_connect` runs the handshake one step per readiness
event (False while it goes on; `connecting` stays True, so the caller's connect deadline
also cuts a stalled handshake). A failed handshake (unknown CA, name mismatch, a plain
TCP server) logs `fix_tls_failed` with the reason and raises `TlsFailed`. A TLS socket
can want a read to write or a write to read (SSLWantRead/WantWrite), and may hold
decrypted bytes the poller cannot see (`pending()`): `read` drains them, or asks the loop
for another turn.
"""

from __future__ import annotations

# socket.getaddrinfo encodes the host with the "idna" codec, whose first use imports
# encodings.idna and stringprep: imported here, they are in the fork server's preload, not
# imported anew in every connector (an import after the fork unshared ~1 MiB; issue 16)
import encodings.idna  # noqa: F401
import errno
import os
import socket
import ssl
from collections.abc import Callable
from typing import Any

from actors.connector.adapter import Loop
from protocol.exceptions import ConfigError
from protocol.fix_config import TlsCfg
from protocol.sockets import POLLIN, POLLOUT  # ints: no enum arithmetic at each write
from protocol.tls import client_context, failure_reason

READ_BYTES = 1 << 17  # one recv takes what a readable event usually has (TLS: a record)
READ_BUDGET = 1 << 16  # per readable event: ~250 FIX 8s, ~40 ms of session and mapping work
WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


class TlsFailed(OSError):
    """The TLS handshake failed: the text is the reason (also logged as fix_tls_failed)."""


class TcpClient:
    def __init__(
        self,
        loop: Loop,
        on_ready: Callable[[], None],
        *,
        tls: TlsCfg | None = None,
        log: Any = None,
    ) -> None:
        self._loop = loop
        self._on_ready = on_ready
        self._sock: socket.socket | None = None
        self._fd = -1
        self._registered = False
        self._watching = 0  # the poll events the loop has for the socket now
        self.connecting = False
        self._out = bytearray()
        self._tls = tls
        self._log = log
        self._host = ""
        self._handshaking = False
        self._read_wants_write = False  # a TLS read needs the socket writable first
        self._conn_id = 0  # which connection a deferred drain belongs to

    @property
    def is_open(self) -> bool:
        return self._sock is not None

    @property
    def pending_out(self) -> int:
        return len(self._out)

    def connect(self, addr: tuple[str, int]) -> None:
        """Start connecting; OSError when the address or the socket fails at once."""
        if self._sock is not None:
            raise RuntimeError("connect() on an open connection")
        family, kind, proto, _, sockaddr = socket.getaddrinfo(*addr, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        code = sock.connect_ex(sockaddr)
        if code not in (0, errno.EINPROGRESS):
            sock.close()
            raise OSError(code, os.strerror(code))
        self._sock, self._fd, self.connecting = sock, sock.fileno(), True
        self._host, self._conn_id = addr[0], self._conn_id + 1
        self._loop.add_fd(self._fd, self._on_ready, POLLOUT)
        self._registered, self._watching = True, POLLOUT

    def finish_connect(self) -> bool:
        """Readiness while connecting: True once the connection is ready (TCP connected,
        TLS handshake done), False while the handshake goes on; OSError if it failed."""
        assert self._sock is not None
        if not self._handshaking:
            code = self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code != 0:
                raise OSError(code, os.strerror(code))
            if self._tls is None:
                self.connecting = False
                self._interest()
                return True
            self._start_tls()
        return self._handshake()

    def timed_out(self) -> str:
        """The caller's connect deadline passed while connecting: why (a stalled TLS
        handshake is logged as fix_tls_failed)."""
        if not self._handshaking:
            return "connect timeout"
        self._tls_failed("handshake not finished in time (is the venue serving TLS?)")
        return "tls: handshake timeout"

    def _start_tls(self) -> None:
        assert self._sock is not None and self._tls is not None
        hostname = self._tls.server_hostname or self._host
        try:  # per connection: a rotated CA / client certificate is used at the next one
            ctx = client_context(self._tls)
        except ConfigError as exc:  # `run` checked the files; they went away since
            raise self._tls_failed(str(exc)) from exc
        try:  # the same file descriptor: the loop's registration stays valid
            self._sock = ctx.wrap_socket(
                self._sock, server_hostname=hostname, do_handshake_on_connect=False
            )
        except (ssl.SSLError, OSError, ValueError) as exc:
            raise self._tls_failed(failure_reason(exc)) from exc
        self._handshaking = True

    def _handshake(self) -> bool:
        sock = self._sock
        assert isinstance(sock, ssl.SSLSocket)
        try:
            sock.do_handshake()
        except ssl.SSLWantReadError:
            self._watch(POLLIN)
            return False
        except ssl.SSLWantWriteError:
            self._watch(POLLOUT)
            return False
        except OSError as exc:  # ssl.SSLError is one: bad certificate, protocol, peer gone
            raise self._tls_failed(failure_reason(exc)) from exc
        self._handshaking = self.connecting = False
        if self._log is not None:
            cipher = sock.cipher()
            self._log.info(
                "fix_tls_established", version=sock.version(), cipher=cipher and cipher[0]
            )
        self._interest()
        return True

    def _tls_failed(self, reason: str) -> TlsFailed:
        if self._log is not None:
            assert self._tls is not None
            name = self._tls.server_hostname or self._host
            self._log.warning("fix_tls_failed", reason=reason, server_hostname=name)
        return TlsFailed(f"tls: {reason}")

    def read(self) -> tuple[list[bytes], str]:
        """What the socket has now, and why the connection ended ("" while it is open)."""
        assert self._sock is not None
        chunks: list[bytes] = []
        if self._read_wants_write:
            self._read_wants_write = False
            self._interest()
        left = READ_BUDGET  # bounded work per loop turn: the rest is read on the next one
        while left > 0:
            want = min(READ_BYTES, left)
            try:
                data = self._sock.recv(want)
            except ssl.SSLWantWriteError:  # TLS: the read must write first (POLLOUT)
                self._read_wants_write = True
                self._interest()
                break
            except WOULD_BLOCK:
                break
            except ssl.SSLError as exc:  # e.g. TLS 1.3: the venue refuses our certificate now
                return chunks, str(self._tls_failed(failure_reason(exc)))
            except OSError as exc:
                return chunks, f"recv: {exc}"
            if not data:
                return chunks, "connection closed by the peer"
            chunks.append(data)
            if len(data) < want and self._tls is None:
                break  # plain TCP: the socket is empty (no recv just to hear EAGAIN)
            left -= len(data)
        else:
            self._drain_pending()
        return chunks, ""

    def write(self, data: bytes = b"") -> None:
        """Queue `data` and write what the socket takes; OSError when the connection broke."""
        self._out += data
        if self._sock is None or self.connecting or not self._out:
            return
        try:
            while self._out:
                sent = self._sock.send(self._out)
                del self._out[:sent]
        except WOULD_BLOCK:  # TLS SSLWantRead: POLLIN is always wanted, then write() again
            pass
        except ssl.SSLError as exc:  # the venue ended TLS (e.g. refused our certificate)
            raise self._tls_failed(failure_reason(exc)) from exc
        self._drain_pending()  # a TLS write may have read (and decrypted) incoming bytes
        self._interest()

    def close(self, last: bytes = b"") -> None:
        """Write what is left (best effort, no waiting), unregister and close."""
        sock = self._sock
        if sock is None:
            return
        if not self.connecting:
            try:
                sock.send(self._out + last)
            except OSError:
                pass
        if self._registered:
            self._loop.remove(self._fd)
        sock.close()
        self._sock, self._fd, self._registered, self.connecting = None, -1, False, False
        self._watching = 0
        self._handshaking = self._read_wants_write = False
        self._out.clear()

    def _interest(self) -> None:
        self._watch(POLLIN | POLLOUT if self._out or self._read_wants_write else POLLIN)

    def _watch(self, events: int) -> None:
        """Tell the loop which events to poll for, when they change (not at every write)."""
        if events != self._watching:
            self._watching = events
            self._loop.modify_fd(self._fd, events)

    def _drain_pending(self) -> None:
        """Decrypted bytes inside the SSL object: the poller cannot see them, so ask the
        loop for another turn to read them (this connection's, never a later one's)."""
        sock = self._sock
        if isinstance(sock, ssl.SSLSocket) and not self.connecting and sock.pending():
            conn_id = self._conn_id
            self._loop.call_later(0, lambda: self._drained(conn_id))

    def _drained(self, conn_id: int) -> None:
        if conn_id == self._conn_id and self._sock is not None and not self.connecting:
            self._on_ready()
