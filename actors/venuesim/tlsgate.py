"""Server-side TLS for the simulated venue (`[venues.sim] tls_cert_file / tls_key_file`).

Every accepted connection is wrapped and handshakes here first, nonblocking, one step per
readiness event, cut after `timeout_s`, so a client that stalls the handshake never blocks
the venue's loop. A finished one (an `ssl.SSLSocket` on the same descriptor) goes on to
`done` (the acceptor's usual path: adopted, or on probation); a failed one (a plain-TCP
client, a client certificate missing or not signed by `tls_client_ca_file`) is logged as
`sim_tls_failed` with the reason and closed.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable
from typing import Any

import zmq

from protocol.tls import failure_reason

TIMEOUT_S = 10.0
MAX_PENDING = 16
# A nonblocking socket has nothing now (TLS: the read or write must wait for readiness)
WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


def pending_bytes(sock: socket.socket) -> int:
    """Decrypted bytes inside a TLS socket that the poller cannot see (0 for plain TCP)."""
    return sock.pending() if isinstance(sock, ssl.SSLSocket) else 0


class _Handshake:
    __slots__ = ("sock", "peer", "since_s")

    def __init__(self, sock: ssl.SSLSocket, peer: str) -> None:
        self.sock = sock
        self.peer = peer
        self.since_s = time.monotonic()


class TlsGate:
    def __init__(
        self,
        context: ssl.SSLContext,
        loop: Any,
        log: Any,
        done: Callable[[socket.socket], None],
        timeout_s: float = TIMEOUT_S,
    ) -> None:
        self._ctx = context
        self._loop = loop
        self._log = log
        self._done = done
        self._timeout_s = timeout_s
        self._pending: list[_Handshake] = []

    def add(self, sock: socket.socket, peer: str) -> None:
        if len(self._pending) >= MAX_PENDING:
            self._log.warning("sim_tls_failed", peer=peer, reason="too many handshakes at once")
            sock.close()
            return
        try:
            tls = self._ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        except (ssl.SSLError, OSError) as exc:
            self._log.warning("sim_tls_failed", peer=peer, reason=failure_reason(exc))
            sock.close()
            return
        h = _Handshake(tls, peer)
        self._pending.append(h)
        self._loop.add_fd(tls.fileno(), lambda: self._step(h), zmq.POLLIN)

    def expire(self) -> None:
        now = time.monotonic()
        for h in [h for h in self._pending if now - h.since_s >= self._timeout_s]:
            self._fail(h, "handshake not finished in time")

    def pause(self) -> None:
        """Stop handshaking (the venue hangs)."""
        for h in self._pending:
            self._loop.remove(h.sock.fileno())

    def resume(self) -> None:
        for h in self._pending:
            self._loop.add_fd(h.sock.fileno(), lambda h=h: self._step(h), zmq.POLLIN | zmq.POLLOUT)
            h.since_s = time.monotonic()

    def close(self) -> None:
        for h in list(self._pending):
            self._release(h)
            h.sock.close()

    def _step(self, h: _Handshake) -> None:
        try:
            h.sock.do_handshake()
        except ssl.SSLWantReadError:
            self._loop.modify_fd(h.sock.fileno(), zmq.POLLIN)
            return
        except ssl.SSLWantWriteError:
            self._loop.modify_fd(h.sock.fileno(), zmq.POLLOUT)
            return
        except OSError as exc:  # ssl.SSLError is one
            self._fail(h, failure_reason(exc))
            return
        self._release(h)
        self._log.info("sim_tls_established", peer=h.peer, version=h.sock.version())
        self._done(h.sock)

    def _release(self, h: _Handshake) -> None:
        self._pending.remove(h)
        self._loop.remove(h.sock.fileno())

    def _fail(self, h: _Handshake, reason: str) -> None:
        self._log.warning("sim_tls_failed", peer=h.peer, reason=reason)
        self._release(h)
        h.sock.close()
