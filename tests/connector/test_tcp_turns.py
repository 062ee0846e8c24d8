"""The connector's TCP client (actors/connector/tcp.py) on the order path: a write the
socket takes whole leaves the loop's poll registration alone (it changes only when bytes
are left over, and back once they are written), and a plain TCP read that gets less than
it asked for returns without another recv (which would only hear EAGAIN)."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import zmq

from actors.connector.tcp import TcpClient


class _Loop:
    def __init__(self) -> None:
        self.events: dict[int, int] = {}
        self.modified: list[int] = []

    def add_fd(self, fd: int, handler: Callable[[], None], events: int = zmq.POLLIN) -> None:
        self.events[fd] = int(events)

    def modify_fd(self, fd: int, events: int) -> None:
        self.events[fd] = int(events)
        self.modified.append(int(events))

    def remove(self, fd: int) -> None:
        self.events.pop(fd, None)

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> None:
        pass


class _CountingSocket:
    """The client's socket, its recv calls counted."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock, self.recvs = sock, 0

    def recv(self, n: int) -> bytes:
        self.recvs += 1
        return self._sock.recv(n)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


@pytest.fixture
def connected() -> Iterator[tuple[TcpClient, _Loop, socket.socket]]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    loop = _Loop()
    tcp = TcpClient(loop, lambda: None)
    tcp.connect(server.getsockname())
    peer, _ = server.accept()
    server.close()
    assert tcp.finish_connect()
    try:
        yield tcp, loop, peer
    finally:
        tcp.close()
        peer.close()


def test_a_write_taken_whole_changes_no_poll_registration(connected: Any) -> None:
    tcp, loop, peer = connected
    assert loop.modified == [zmq.POLLIN]  # connected: read interest only
    for i in range(3):
        tcp.write(b"8=FIX.4.4\x01%d" % i)
    assert loop.modified == [zmq.POLLIN]
    peer.settimeout(5)
    assert peer.recv(100).startswith(b"8=FIX.4.4\x010")


def test_bytes_left_over_ask_for_pollout_until_written(connected: Any) -> None:
    tcp, loop, peer = connected
    tcp.write(b"x" * (64 << 20))  # more than the socket buffers take
    assert loop.modified[-1] == zmq.POLLIN | zmq.POLLOUT and tcp.pending_out
    peer.settimeout(5)
    while tcp.pending_out:
        peer.recv(1 << 20)
        tcp.write()
    assert loop.modified[-1] == zmq.POLLIN
    assert loop.modified.count(zmq.POLLIN | zmq.POLLOUT) == 1  # asked once, not per write


def test_a_short_plain_read_is_one_recv(connected: Any) -> None:
    tcp, _loop, peer = connected
    counting = tcp._sock = _CountingSocket(tcp._sock)
    peer.sendall(b"8=FIX.4.4\x01")
    socket_readable = [tcp._fd]
    assert zmq.select(socket_readable, [], [], 5)[0]
    chunks, lost = tcp.read()
    assert (chunks, lost) == ([b"8=FIX.4.4\x01"], "") and counting.recvs == 1
    chunks, lost = tcp.read()  # nothing there: one recv, EAGAIN, still open
    assert (chunks, lost) == ([], "") and counting.recvs == 2
