"""The ZAP gate's link domain: a CURVE client whose public key the link lists is accepted
with its host group as the connection's User-Id (on every message it sends); a client with
another key is refused before any of its frames is delivered."""

from __future__ import annotations

import time

import zmq
from zmq.utils import z85

from actors.runtime.zap import LINK_DOMAIN, ZapGate
from protocol.sockets import new_context


def test_listed_key_gets_its_group_as_user_id_and_another_key_gets_nothing() -> None:
    ctx = new_context()
    server_public, server_secret = zmq.curve_keypair()
    listed_public, listed_secret = zmq.curve_keypair()
    other_public, other_secret = zmq.curve_keypair()
    gate = ZapGate(ctx, "link-test", lambda cred: "not a process of ours")
    asked: list[tuple[bytes, str | None]] = []

    def decide(mechanism: bytes, credentials: list[bytes]) -> tuple[str, str | None]:
        key = z85.encode(credentials[0]) if credentials else b""
        verdict = ("edge-a", None) if key == listed_public else ("", "unknown public key")
        asked.append((mechanism, verdict[1]))
        return verdict

    gate.link = decide
    server = ctx.socket(zmq.ROUTER)
    server.setsockopt(zmq.LINGER, 0)
    server.curve_server = True
    server.curve_secretkey = server_secret
    server.setsockopt(zmq.ZAP_DOMAIN, LINK_DOMAIN)
    port = server.bind_to_random_port("tcp://127.0.0.1")
    clients = []
    for public, secret, name in (
        (other_public, other_secret, b"stranger"),
        (listed_public, listed_secret, b"edge-a"),
    ):
        c = ctx.socket(zmq.DEALER)
        c.setsockopt(zmq.LINGER, 0)
        c.setsockopt(zmq.ROUTING_ID, name)
        c.curve_serverkey, c.curve_publickey, c.curve_secretkey = server_public, public, secret
        c.connect(f"tcp://127.0.0.1:{port}")
        c.send(b"hello from " + name)
        clients.append(c)
    poller = zmq.Poller()
    poller.register(gate.sock, zmq.POLLIN)
    poller.register(server, zmq.POLLIN)
    got: list[tuple[bytes, bytes, str]] = []
    deadline = time.monotonic() + 10
    try:
        while not (got and any(reason for _, reason in asked)):
            assert time.monotonic() < deadline, (got, asked)
            for sock, _ in poller.poll(100):
                if sock is gate.sock:
                    gate.on_readable()
                else:
                    frames = server.recv_multipart(copy=False)
                    got.append((frames[0].bytes, frames[1].bytes, frames[1].get("User-Id")))
        while server.poll(0):  # whatever else arrived: never the stranger's
            frames = server.recv_multipart(copy=False)
            got.append((frames[0].bytes, frames[1].bytes, frames[1].get("User-Id")))
        assert got == [(b"edge-a", b"hello from edge-a", "edge-a")]
        assert (b"CURVE", "unknown public key") in asked
    finally:
        for s in (*clients, server):
            s.close(linger=0)
        gate.sock.close(linger=0)
        ctx.term()
