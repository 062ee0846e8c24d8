"""One nonblocking TCP client connection driven by the actor loop (no threads, no blocking).

    tcp = TcpClient(loop, on_ready)     # on_ready(): the socket is readable or writable
    tcp.connect(("127.0.0.1", port))    # OSError when it fails at once
    on_ready while tcp.connecting: tcp.finish_connect()  # OSError: the attempt failed
    chunks, lost = tcp.read()           # lost: why the connection ended, "" while open
    tcp.write(data)                     # buffered; POLLOUT interest while bytes are left
    tcp.close(last=b"...")              # best effort write of what is left, then close

Errors are `OSError`s for the caller to turn into a lost connection. Poll events are the
zmq.Poller ones (zmq.POLLIN / zmq.POLLOUT), as the actor loop uses.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Callable

import zmq

from actors.connector.adapter import Loop

READ_BYTES = 1 << 16
MAX_READS = 64  # per readable event, so one busy peer cannot starve the loop


class TcpClient:
    def __init__(self, loop: Loop, on_ready: Callable[[], None]) -> None:
        self._loop = loop
        self._on_ready = on_ready
        self._sock: socket.socket | None = None
        self._fd = -1
        self._registered = False
        self.connecting = False
        self._out = bytearray()

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
        self._loop.add_fd(self._fd, self._on_ready, zmq.POLLOUT)
        self._registered = True

    def finish_connect(self) -> None:
        """The socket became writable while connecting: OSError if the connect failed."""
        assert self._sock is not None
        code = self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code != 0:
            raise OSError(code, os.strerror(code))
        self.connecting = False
        self._interest()

    def read(self) -> tuple[list[bytes], str]:
        """What the socket has now, and why the connection ended ("" while it is open)."""
        assert self._sock is not None
        chunks: list[bytes] = []
        for _ in range(MAX_READS):
            try:
                data = self._sock.recv(READ_BYTES)
            except BlockingIOError:
                break
            except OSError as exc:
                return chunks, f"recv: {exc}"
            if not data:
                return chunks, "connection closed by the peer"
            chunks.append(data)
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
        except BlockingIOError:
            pass
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
        self._out.clear()

    def _interest(self) -> None:
        self._loop.modify_fd(self._fd, zmq.POLLIN | (zmq.POLLOUT if self._out else 0))
