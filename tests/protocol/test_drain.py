"""`protocol.sockets.drain` reads what is queued, at most `limit`, and stops without a
receive that fails (an `Again` costs twice what asking the socket does)."""

from __future__ import annotations

from typing import Any

import zmq

from protocol.sockets import drain


class _Counting:
    """A socket whose receives are counted (`failed`: those that raised Again)."""

    def __init__(self, sock: zmq.Socket[bytes]) -> None:
        self.sock, self.received, self.failed = sock, 0, 0

    def recv_multipart(self, flags: int, copy: bool = True) -> Any:
        try:
            out = self.sock.recv_multipart(flags, copy=copy)
        except zmq.Again:
            self.failed += 1
            raise
        self.received += 1
        return out

    def get(self, option: int) -> Any:
        return self.sock.get(option)


def test_drain_reads_what_is_queued_and_no_more() -> None:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    try:
        pull, push = ctx.socket(zmq.PULL), ctx.socket(zmq.PUSH)
        pull.bind("inproc://drain")
        push.connect("inproc://drain")  # inproc: queued at the reader once sent
        for i in range(3):
            push.send_multipart([b"m", str(i).encode()])
        assert pull.poll(5000)
        counting = _Counting(pull)
        got = list(drain(counting, 10))  # type: ignore[arg-type]
        assert got == [[b"m", b"0"], [b"m", b"1"], [b"m", b"2"]]
        assert (counting.received, counting.failed) == (3, 0)
        push.send_multipart([b"x"])
        push.send_multipart([b"y"])
        assert pull.poll(5000)
        assert list(drain(pull, 1)) == [[b"x"]]  # the limit still bounds a turn
    finally:
        ctx.destroy(linger=0)
