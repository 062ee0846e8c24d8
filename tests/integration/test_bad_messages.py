"""Garbage on the wire. The sockets open to the outside - the OMS's client endpoint, a
simulated venue's control socket, the supervisor's control socket - are fed malformed
frames; each frame is counted and logged `bad_message`, and every process keeps serving.
The internal sockets (every other actor ROUTER, the supervisor's actor socket) do not even
take the connection of a process that is not the system's own: refused at connect,
counted (`tradepulse_peers_refused_total`), and none of its frames arrives."""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import msgpack
import pytest
import zmq

from protocol.codec import Envelope, Sender, decode, encode
from protocol.commands import Status
from protocol.messages import Ack, ControlReply, ControlRequest
from tests.helpers import SystemUnderTest, eventually, metric_value

pytestmark = pytest.mark.integration

_rng = random.Random(20261126)
SEND_TIMEOUT_MS = 10_000  # a send that cannot be queued by then fails the test, never hangs it
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
    """A DEALER whose every send is bounded: one to a connection the gate refused has no
    peer left and would otherwise wait forever (it hung a run for 120 s once)."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDTIMEO, SEND_TIMEOUT_MS)
    sock.connect(endpoint)
    try:
        yield sock
    finally:
        sock.close(0)
        ctx.term()


def _send_to_refused(sock: zmq.Socket[bytes], frames: list[bytes]) -> None:
    """Queue without blocking to a socket whose gate refuses us: once refused there is no
    peer, and what is not queued by then is simply not sent."""
    with contextlib.suppress(zmq.Again):
        sock.send_multipart(frames, zmq.NOBLOCK)


def _request(sock: zmq.Socket[bytes], timeout_s: float = 5.0) -> Envelope:
    """Send a request no actor serves; any reply (a RequestRejected) shows it still serves."""
    env = Sender("garbage-test", 1).envelope(Ack(ref="probe"))
    sock.send_multipart(encode(env))
    assert sock.poll(int(timeout_s * 1000)), "no reply"
    reply = decode(sock.recv_multipart())
    assert reply.corr_id == env.msg_id
    return reply


def _open_endpoints(sut: SystemUnderTest, actors: list[dict[str, Any]]) -> dict[str, str]:
    """actor id -> the endpoint of it a stranger may connect to: the OMS's client endpoint,
    each simulated venue's control socket."""
    open_ = {a["id"]: a["endpoints"]["router"] for a in actors if a["kind"] == "venuesim"}
    return {**open_, "oms": sut.cfg.client_endpoint}


def test_garbage_frames_to_the_open_endpoints_are_counted_and_survived(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """Random bytes, empty frames, msgpack of the wrong shape, near-miss envelopes and
    multi-frame messages sent to the OMS's client endpoint and to each simulated venue:
    the actor answers a valid request afterwards (same pid, same epoch),
    `tradepulse_bad_messages_total{actor}` went up by at least the number of bad frames,
    and each was logged `bad_message`."""
    sut = start_system()
    actors = sut.status()["actors"]
    targets = _open_endpoints(sut, actors)
    before_text = sut.metrics_text()
    before = {
        a: metric_value(before_text, "tradepulse_bad_messages_total", actor=a) or 0.0
        for a in targets
    }
    epochs = {a["id"]: a["epoch"] for a in actors}
    for actor_id, endpoint in targets.items():
        with _dealer(endpoint) as sock:
            for frames in GARBAGE:
                sock.send_multipart(frames)
            reply = _request(sock)
        assert reply.sender == actor_id and reply.epoch == epochs[actor_id]

    def counted() -> bool:
        text = sut.metrics_text()
        return all(
            (metric_value(text, "tradepulse_bad_messages_total", actor=a) or 0.0)
            >= before[a] + len(GARBAGE)
            for a in targets
        )

    eventually(counted, 10.0, interval_s=0.05)
    for actor_id in targets:  # counted first, logged after: wait for the lines
        logged = sut.wait_events("bad_message", len(GARBAGE), actor=actor_id)
        assert all(e["source"] in ("router", "client") and e["error"] for e in logged)
    after = sut.status()
    assert [(a["id"], a["pid"], a["epoch"], a["state"]) for a in after["actors"]] == [
        (a["id"], a["pid"], a["epoch"], "running") for a in actors
    ]
    assert not sut.events("actor_exited")


def test_garbage_to_an_internal_actor_socket_never_arrives(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """The test process is no process of the system: each internal actor ROUTER refuses its
    connection (counted, `peer_refused` logged with its pid), so neither the garbage nor a
    valid request behind it is ever read - no `bad_message`, no reply - and nothing
    restarts."""
    sut = start_system()
    actors = [a for a in sut.status()["actors"] if a["kind"] != "venuesim"]
    for actor in actors:
        with _dealer(actor["endpoints"]["router"]) as sock:
            for frames in GARBAGE:
                _send_to_refused(sock, frames)
            _send_to_refused(sock, encode(Sender("garbage-test", 1).envelope(Ack(ref="probe"))))
            eventually(
                lambda: (sut.metric("tradepulse_peers_refused_total", actor=actor["id"]) or 0) > 0,  # noqa: B023
                10.0,
                interval_s=0.05,
            )
            assert not sock.poll(0), "a refused connection got a reply"
        refused = sut.wait_event("peer_refused", actor=actor["id"])
        assert refused["pid"] == os.getpid(), actor["id"]
        assert not sut.events("bad_message", actor=actor["id"])
    now = {a["id"]: (a["pid"], a["state"]) for a in sut.status()["actors"]}
    assert all(now[a["id"]] == (a["pid"], "running") for a in actors)


def test_garbage_to_the_supervisor_sockets_is_survived(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """The supervisor's control socket (the operator's) counts garbage as bad messages and
    keeps serving; its actor socket refuses the test's connection outright (it is not one
    of the supervisor's children), so nothing of that garbage is read. Status still answers
    and no actor is disturbed."""
    sut = start_system()
    pids = sut.pids()
    with (
        _dealer(sut.cfg.supervisor_endpoint) as actors_sock,
        _dealer(sut.cfg.control_endpoint) as ctl,
    ):
        for frames in GARBAGE:
            _send_to_refused(actors_sock, frames)
            ctl.send_multipart(frames)
        status = Sender("garbage-test", 1).envelope(ControlRequest(command=Status()))
        ctl.send_multipart(encode(status))
        assert ctl.poll(5000), "control socket did not answer after garbage"
        reply = decode(ctl.recv_multipart())
        assert isinstance(reply.body, ControlReply) and reply.body.status == "ok"
        eventually(  # the sockets stay open until the frames have arrived
            lambda: (
                (sut.metric("tradepulse_bad_messages_total", actor="supervisor") or 0)
                >= len(GARBAGE)
                and (sut.metric("tradepulse_peers_refused_total", actor="supervisor") or 0) > 0
            ),
            10.0,
            interval_s=0.05,
        )
    sut.wait_event("bad_message", actor="supervisor")  # counted, then logged: wait
    sut.wait_event("peer_refused", actor="supervisor")
    assert {e["source"] for e in sut.events("bad_message", actor="supervisor")} == {"control"}
    assert sut.pids() == pids
    assert sut.cli("status").returncode == 0
