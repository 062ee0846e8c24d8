"""An edge's link is up while its pings are answered: the core's other traffic reaching it
(requests for its connectors, the position heartbeat's) says nothing of the way back. A
connection whose edge -> core half went silent (a stateful firewall or NAT that lost the
flow one way, a cut that leaves tcp up) must still end in a re-dial (actors/link/tunnel.py:
no ZMTP heartbeat drops it any more), while the dead-man switch, which asks only whether
the core is alive, counts anything it sends."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any, cast

import pytest
import structlog
import zmq

from actors.link import actor as link_actor
from actors.link.actor import FORWARD, PONG, LinkActor
from actors.link.deadman import DeadMan
from protocol.link_config import CORE

DOWN_AFTER_S = 0.3


def _edge_link(tunnel: zmq.Socket[bytes]) -> LinkActor:
    link = LinkActor.__new__(LinkActor)  # liveness alone: its tunnel, no loop
    state = cast(Any, link)
    state.is_core, state.group, state.peers, state.tunnel = False, "edge-a", [CORE], tunnel
    state.cfg = SimpleNamespace(link=SimpleNamespace(down_after_s=DOWN_AFTER_S, connect="x"))
    state._up, state._heard, state._was_up, state._rtt_s = {CORE: True}, {}, {CORE}, {}
    state._heard[CORE] = time.monotonic()
    state.edge_stops, state.edge_control = {}, None
    state.deadman = DeadMan(60.0, time.monotonic())
    state.log = structlog.get_logger()
    state._ping = lambda: None  # sent, never answered: the way back is cut
    state._forward = lambda *args: None  # handed to a connector (actors.link.bridge)
    return link


def _run(link: LinkActor, core: zmq.Socket[bytes], seconds: float, *, pong: bool) -> None:
    """The core sends a request every 50 ms (and answers pings: `pong`); the edge's loop
    reads its tunnel and ticks."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        core.send_multipart([b"edge-a", FORWARD, b"connector.simA", b"oms:1", b"{}"])
        if pong:
            core.send_multipart([b"edge-a", PONG, time.monotonic_ns().to_bytes(8, "big")])
        if link.tunnel.poll(50):
            link._on_tunnel()
        link._tick()


def test_an_edge_whose_pings_go_unanswered_redials_though_the_core_still_sends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    redials: list[str] = []
    monkeypatch.setattr(link_actor, "redial", lambda sock, endpoint: redials.append(endpoint))
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    core = ctx.socket(zmq.ROUTER)
    core.bind("inproc://tunnel")
    edge = ctx.socket(zmq.DEALER)
    edge.setsockopt(zmq.ROUTING_ID, b"edge-a")
    edge.connect("inproc://tunnel")
    try:
        link = _edge_link(edge)
        _run(link, core, 3 * DOWN_AFTER_S, pong=True)  # answered: up, no re-dial
        assert link._up[CORE] and redials == []
        _run(link, core, 3 * DOWN_AFTER_S, pong=False)  # requests still come, no answers
        assert not link._up[CORE]
        assert redials == ["x"]  # once, for this silence
        assert not link.deadman.due(time.monotonic())  # the core is alive: no mass cancel
        _run(link, core, 2 * DOWN_AFTER_S, pong=True)
        assert link._up[CORE] and redials == ["x"]
    finally:
        for sock in (edge, core):
            sock.close(0)
        ctx.term()
