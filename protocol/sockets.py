"""The ZeroMQ socket options of every process: actors, the supervisor and the client library.

Every socket closes without lingering (a dead peer never holds a process at exit), has
explicit high-water marks, and reconnects within milliseconds of a restarted peer's rebind
(the default backs off to 100 ms, which a restart-time budget notices). A ROUTER that
serves requests is `ROUTER_MANDATORY` (an unroutable reply is an error, not silence) and
`ROUTER_HANDOVER` (a restarted peer with the same identity takes over its route).
"""

from __future__ import annotations

import zmq

from protocol.paths import ipc_file

LINGER_MS = 0
HWM = 100_000  # messages, each way
UNBOUNDED = 0  # a high-water mark of 0: no limit
RECONNECT_IVL_MS = 2
RECONNECT_IVL_MAX_MS = 50

Context = zmq.Context[zmq.Socket[bytes]]
Socket = zmq.Socket[bytes]


def tune_socket(sock: Socket, *, hwm: int = HWM) -> None:
    """Linger, high-water marks and reconnect interval: the options every socket gets."""
    sock.setsockopt(zmq.LINGER, LINGER_MS)
    sock.setsockopt(zmq.SNDHWM, hwm)
    sock.setsockopt(zmq.RCVHWM, hwm)
    sock.setsockopt(zmq.RECONNECT_IVL, RECONNECT_IVL_MS)
    sock.setsockopt(zmq.RECONNECT_IVL_MAX, RECONNECT_IVL_MAX_MS)


def bind_router(ctx: Context, endpoint: str) -> Socket:
    """A tuned, mandatory, handover ROUTER bound at `endpoint` (a dead incarnation's ipc
    socket file is removed first)."""
    sock = ctx.socket(zmq.ROUTER)
    tune_socket(sock)
    sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
    sock.setsockopt(zmq.ROUTER_HANDOVER, 1)
    stale = ipc_file(endpoint)
    if stale is not None:
        stale.unlink(missing_ok=True)
    sock.bind(endpoint)
    return sock


def connect_dealer(ctx: Context, endpoint: str, identity: str) -> Socket:
    """A tuned DEALER with routing id `identity`, connected to a ROUTER at `endpoint`."""
    sock = ctx.socket(zmq.DEALER)
    tune_socket(sock)
    sock.setsockopt(zmq.ROUTING_ID, identity.encode())
    sock.connect(endpoint)
    return sock


def connect_subscriber(ctx: Context, endpoint: str, *, hwm: int = HWM) -> Socket:
    """A tuned SUB subscribed to everything, connected to a PUB at `endpoint`."""
    sock = ctx.socket(zmq.SUB)
    tune_socket(sock, hwm=hwm)
    sock.setsockopt(zmq.SUBSCRIBE, b"")
    sock.connect(endpoint)
    return sock
