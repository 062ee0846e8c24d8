"""Garbage on the wire: every actor's ROUTER (and the supervisor's sockets) is fed malformed
frames; each frame is counted and logged `bad_message`, and every process keeps serving."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import msgpack
import pytest
import zmq

from protocol.codec import Envelope, Sender, decode, encode
from protocol.commands import Status
from protocol.messages import Ack, ControlReply, ControlRequest
from tests.helpers import SystemUnderTest, eventually, metric_value

pytestmark = pytest.mark.integration

_rng = random.Random(20261126)
VALID_SHAPE = {"v": 1, "type": "ack", "sender": "x", "epoch": 1, "seq": 1, "id": "i", "corr": "",
               "ts_ns": 1, "body": {}}  # fmt: skip
GARBAGE: list[list[bytes]] = [
    [bytes(_rng.getrandbits(8) for _ in range(64))],  # random bytes
    [b"\xc1\xc1\xc1"],  # never-used msgpack bytes
    [b""],  # an empty frame
    [msgpack.packb([1, 2, 3])],  # valid msgpack, wrong shape
    [msgpack.packb({"v": 1})],  # a map with most of the envelope missing
    [msgpack.packb({**VALID_SHAPE, "type": "no_such_type"})],  # unknown type
    [msgpack.packb({**VALID_SHAPE, "v": 99})],  # wrong version
    [msgpack.packb({**VALID_SHAPE, "body": {"ref": 5}})],  # mistyped body field
    [b"one", b"two"],  # two frames where one is expected
]


@contextmanager
def _dealer(endpoint: str) -> Iterator[zmq.Socket[bytes]]:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    try:
        yield sock
    finally:
        sock.close(0)
        ctx.term()


def _request(sock: zmq.Socket[bytes], timeout_s: float = 5.0) -> Envelope:
    """Send a request no actor serves; any reply (a RequestRejected) shows it still serves."""
    env = Sender("garbage-test", 1).envelope(Ack(ref="probe"))
    sock.send_multipart(encode(env))
    assert sock.poll(int(timeout_s * 1000)), "no reply"
    reply = decode(sock.recv_multipart())
    assert reply.corr_id == env.msg_id
    return reply


def test_garbage_frames_to_every_actor_are_counted_and_survived(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """Random bytes, empty frames, msgpack of the wrong shape, near-miss envelopes and
    multi-frame messages sent to each actor's ROUTER: the actor answers a valid request
    afterwards (same pid, same epoch), `tradepulse_bad_messages_total{actor}` went up by
    at least the number of bad frames, and each was logged `bad_message`."""
    sut = start_system()
    status = sut.status()
    actors = status["actors"]
    before_text = sut.metrics_text()
    before = {
        a["id"]: metric_value(before_text, "tradepulse_bad_messages_total", actor=a["id"]) or 0.0
        for a in actors
    }
    for actor in actors:
        with _dealer(actor["endpoints"]["router"]) as sock:
            for frames in GARBAGE:
                sock.send_multipart(frames)
            reply = _request(sock)
        assert reply.sender == actor["id"] and reply.epoch == actor["epoch"]

    def counted() -> bool:
        text = sut.metrics_text()
        return all(
            (metric_value(text, "tradepulse_bad_messages_total", actor=a["id"]) or 0.0)
            >= before[a["id"]] + len(GARBAGE)
            for a in actors
        )

    eventually(counted, 10.0, interval_s=0.05)
    for actor in actors:
        logged = sut.events("bad_message", actor=actor["id"])
        assert len(logged) >= len(GARBAGE), actor["id"]
        assert all(e["source"] == "router" and e["error"] for e in logged)
    after = sut.status()
    assert [(a["id"], a["pid"], a["epoch"], a["state"]) for a in after["actors"]] == [
        (a["id"], a["pid"], a["epoch"], "running") for a in actors
    ]
    assert not sut.events("actor_exited")


def test_garbage_to_the_supervisor_sockets_is_survived(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """The supervisor's actor socket and control socket also count garbage as bad messages
    and keep serving: status still answers and no actor is disturbed."""
    sut = start_system()
    pids = sut.pids()
    with (
        _dealer(sut.cfg.supervisor_endpoint) as actors_sock,
        _dealer(sut.cfg.control_endpoint) as ctl,
    ):
        for sock in (actors_sock, ctl):
            for frames in GARBAGE:
                sock.send_multipart(frames)
        status = Sender("garbage-test", 1).envelope(ControlRequest(command=Status()))
        ctl.send_multipart(encode(status))
        assert ctl.poll(5000), "control socket did not answer after garbage"
        reply = decode(ctl.recv_multipart())
        assert isinstance(reply.body, ControlReply) and reply.body.status == "ok"
        eventually(  # the sockets stay open until the frames have arrived
            lambda: (
                (sut.metric("tradepulse_bad_messages_total", actor="supervisor") or 0)
                >= 2 * len(GARBAGE)
            ),
            10.0,
            interval_s=0.05,
        )
    assert {e["source"] for e in sut.events("bad_message", actor="supervisor")} == {
        "actors",
        "control",
    }
    assert sut.pids() == pids
    assert sut.cli("status").returncode == 0
