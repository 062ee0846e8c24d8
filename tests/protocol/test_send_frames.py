"""`protocol.sockets.send_frames` / `send_nowait`: the same multipart message as
`send_multipart`, sent with int flags (no enum arithmetic per frame)."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import zmq

from protocol.sockets import send_frames, send_nowait


@pytest.fixture
def pair() -> Iterator[tuple[zmq.Socket[bytes], zmq.Socket[bytes]]]:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    a, b = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
    address = f"inproc://send-frames-{uuid.uuid4().hex}"
    a.bind(address)
    b.connect(address)
    try:
        yield a, b
    finally:
        ctx.destroy(linger=0)


def _received(sock: zmq.Socket[bytes]) -> list[bytes]:
    assert sock.poll(5000), "nothing arrived"
    return sock.recv_multipart()


@pytest.mark.parametrize("frames", [[b"one"], [b"id", b"", b"header", b"x" * 70_000]])
def test_the_message_arrives_whole_and_in_order(pair: Any, frames: list[bytes]) -> None:
    a, b = pair
    assert send_nowait(a, frames) is None
    send_frames(a, frames)
    assert _received(b) == frames
    assert _received(b) == frames


def test_no_enum_member_is_built_for_the_flags(pair: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """pyzmq's send_multipart computes `zmq.SNDMORE | flags`, an enum call per frame."""
    a, b = pair
    calls = []
    real = enum.EnumType.__call__

    def counted(cls: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(cls)
        return real(cls, *args, **kwargs)

    monkeypatch.setattr(enum.EnumType, "__call__", counted)
    assert send_nowait(a, [b"a", b"b", b"c"]) is None
    monkeypatch.undo()
    assert _received(b) == [b"a", b"b", b"c"]
    assert [c for c in calls if issubclass(c, enum.Flag)] == []


def test_a_frame_that_is_not_bytes_goes_through_send_multipart(pair: Any) -> None:
    """Its checks before any frame leaves: an unsendable part raises, nothing is sent."""
    a, b = pair
    with pytest.raises(TypeError):
        send_frames(a, [b"head", 42])  # type: ignore[list-item]
    send_frames(a, [b"x", memoryview(b"y")])  # type: ignore[list-item]
    assert _received(b) == [b"x", b"y"]


def test_a_full_queue_is_hwm_not_an_error() -> None:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    try:
        sock = ctx.socket(zmq.DEALER)
        assert send_nowait(sock, [b"a", b"b"]) == "hwm"  # no peer: a DEALER cannot queue
    finally:
        ctx.destroy(linger=0)
