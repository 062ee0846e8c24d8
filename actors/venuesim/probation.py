"""Connections that arrive while a client session is live wait here for their first frame.

A restarted client reconnects before the venue has noticed that its old connection is
dead; a stray or hostile connection must not end the live session. So a newcomer is
adopted (replacing the live connection) only when its first frame is a well-formed Logon
from our client's CompID to ours; garbage, anything else, silence for `timeout_s` or too
many newcomers at once get the connection closed, and the live session never notices.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

from actors.connector.fix import codec as fc
from actors.venuesim.tlsgate import WOULD_BLOCK, pending_bytes

MAX_PENDING = 8
TIMEOUT_S = 10.0
_MAX_JUNK_BYTES = 4096
_READ_BYTES = 1 << 16


def is_logon_for(frame: fc.Frame, client_comp_id: bytes, our_comp_id: bytes) -> bool:
    """Is `frame` an intact Logon from `client_comp_id` to `our_comp_id`?"""
    if frame.error is not None:
        return False
    try:
        hdr = dict(fc.split_fields(frame.raw))
    except ValueError:
        return False
    return (
        hdr.get(b"35") == b"A" and hdr.get(b"49") == client_comp_id
        and hdr.get(b"56") == our_comp_id
    )  # fmt: skip


class _Pending:
    __slots__ = ("sock", "reader", "data", "since_s")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader = fc.FrameReader()
        self.data = bytearray()
        self.since_s = time.monotonic()


class Probation:
    def __init__(
        self,
        loop: Any,
        log: Any,
        client_comp_id: str,
        our_comp_id: str,
        adopt: Callable[[socket.socket, bytes], None],
        timeout_s: float = TIMEOUT_S,
    ) -> None:
        self._loop = loop
        self._log = log
        self._client = client_comp_id.encode()
        self._us = our_comp_id.encode()
        self._adopt = adopt
        self._timeout_s = timeout_s
        self._pending: list[_Pending] = []

    def add(self, sock: socket.socket) -> None:
        if len(self._pending) >= MAX_PENDING:
            self._log.warning("sim_connection_refused", reason="too many pending connections")
            sock.close()
            return
        p = _Pending(sock)
        self._pending.append(p)
        self._loop.add_fd(sock.fileno(), lambda: self._on_readable(p))

    def pause(self) -> None:
        """Stop reading the newcomers (the venue hangs)."""
        for p in self._pending:
            self._loop.remove(p.sock.fileno())

    def resume(self) -> None:
        for p in self._pending:
            self._loop.add_fd(p.sock.fileno(), lambda p=p: self._on_readable(p))
            p.since_s = time.monotonic()

    def expire(self) -> None:
        if not self._pending:  # the usual turn: nobody on probation
            return
        now = time.monotonic()
        for p in [p for p in self._pending if now - p.since_s >= self._timeout_s]:
            self._refuse(p, "no Logon in time")

    def close(self) -> None:
        for p in list(self._pending):
            self._release(p)
            p.sock.close()

    def _on_readable(self, p: _Pending) -> None:
        frame = None
        while frame is None:  # TLS: until no decrypted bytes are left inside the socket
            try:
                data = p.sock.recv(_READ_BYTES)
            except WOULD_BLOCK:
                return
            except OSError:
                data = b""
            if not data:
                self._refuse(p, "closed before logon")
                return
            p.data += data
            p.reader.feed(data)
            frame = p.reader.next_frame()
            if frame is None and p.reader.junk_bytes > _MAX_JUNK_BYTES:
                self._refuse(p, "garbage before logon")
                return
            if frame is None and not pending_bytes(p.sock):
                return
        if is_logon_for(frame, self._client, self._us):
            self._release(p)
            self._adopt(p.sock, bytes(p.data))
        else:
            self._refuse(p, "first message is not our client's Logon")

    def _release(self, p: _Pending) -> None:
        self._pending.remove(p)
        self._loop.remove(p.sock.fileno())

    def _refuse(self, p: _Pending, reason: str) -> None:
        self._log.warning("sim_connection_refused", reason=reason)
        self._release(p)
        p.sock.close()
