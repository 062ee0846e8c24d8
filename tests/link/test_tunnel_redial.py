"""An edge whose link goes down dials the core again (no ZMTP heartbeat drops a silent
connection any more: actors/link/tunnel.py): the core sees the old connection close and a
new one come, and the edge's messages go on the new one."""

from __future__ import annotations

import time
from collections import Counter
from types import SimpleNamespace

import structlog
import zmq
from zmq.utils.monitor import recv_monitor_message

from actors.link.actor import LinkActor
from actors.link.tunnel import open_tunnel
from protocol.link_config import CORE, LinkCfg
from tests.helpers import eventually


def _events(monitor: zmq.Socket[bytes], edge: zmq.Socket[bytes], wanted: Counter[int]) -> None:
    """Wait (5 s) until the monitor has shown `wanted`, in any order; the edge's socket
    takes its commands meanwhile, as the link's loop polling it does (libzmq ends a
    disconnected connection only then)."""
    seen: Counter[int] = Counter()
    deadline = time.monotonic() + 5.0
    while seen & wanted != wanted:
        assert time.monotonic() < deadline, (seen, wanted)
        edge.getsockopt(zmq.EVENTS)
        if monitor.poll(10):
            seen[int(recv_monitor_message(monitor)["event"])] += 1


def _sent(sock: zmq.Socket[bytes], payload: bytes) -> bool:
    try:
        sock.send(payload, zmq.NOBLOCK)
    except zmq.Again:
        return False
    return True


def test_an_edge_going_down_drops_its_connection_and_dials_again() -> None:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    core = open_tunnel(ctx, LinkCfg(bind="tcp://127.0.0.1:*"), None, CORE)
    monitor = core.get_monitor_socket(zmq.EVENT_ACCEPTED | zmq.EVENT_DISCONNECTED)
    endpoint = core.getsockopt(zmq.LAST_ENDPOINT).decode()
    edge = open_tunnel(ctx, LinkCfg(connect=endpoint), None, "edge-a")
    try:
        _events(monitor, edge, Counter([zmq.EVENT_ACCEPTED]))
        link = SimpleNamespace(
            is_core=False, tunnel=edge, cfg=SimpleNamespace(link=SimpleNamespace(connect=endpoint)),
            _up={CORE: True}, _heard={}, _was_up={CORE}, edge_stops={},
            log=structlog.get_logger(),
        )  # fmt: skip
        LinkActor._set_up(link, CORE, False)  # type: ignore[arg-type]
        _events(monitor, edge, Counter([zmq.EVENT_DISCONNECTED, zmq.EVENT_ACCEPTED]))
        # IMMEDIATE: sent once the new connection is up (not queued before)
        eventually(lambda: _sent(edge, b"after"), 5.0)
        assert core.poll(5000)
        assert core.recv_multipart() == [b"edge-a", b"after"]
    finally:
        for sock in (edge, monitor, core):
            sock.close(0)
        ctx.term()
