"""The ZeroMQ socket options of every process: actors, the supervisor and the client library.

Every socket closes without lingering (a dead peer never holds a process at exit), has
explicit high-water marks, and reconnects within milliseconds of a restarted peer's rebind
(the default backs off to 100 ms, which a restart-time budget notices). A ROUTER that
serves requests is `ROUTER_MANDATORY` (an unroutable reply is an error, not silence) and
`ROUTER_HANDOVER` (a restarted peer with the same identity takes over its route).

A hostile peer must not cost memory or freeze a loop: every socket refuses frames over
`MAX_MSG_BYTES` at the transport (ZMQ_MAXMSGSIZE: libzmq drops the connection before the
frame is buffered whole), and every send on a loop is non-blocking (`send_nowait`): a peer
that does not read gets nothing more once its high-water mark is reached.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final, Literal, overload

import zmq

from protocol.codec import MAX_FRAME_BYTES
from protocol.paths import ipc_file

LINGER_MS = 0
HWM = 100_000  # messages, each way
UNBOUNDED = 0  # a high-water mark of 0: no limit
RECONNECT_IVL_MS = 2
RECONNECT_IVL_MAX_MS = 50
MAX_MSG_BYTES = MAX_FRAME_BYTES + 64 * 1024  # the codec's limit + headroom for identity frames
MAX_SOCKETS = 256  # per process context; an actor uses a handful

# zmq's flags as ints: `flags & zmq.POLLIN` or `zmq.SNDMORE | flags` builds an enum member
# (~0.6-1 us a call on the order path)
POLLIN: Final = int(zmq.POLLIN)
POLLOUT: Final = int(zmq.POLLOUT)
_NOBLOCK: Final = int(zmq.NOBLOCK)
_SNDMORE: Final = int(zmq.SNDMORE)

Context = zmq.Context[zmq.Socket[bytes]]
Socket = zmq.Socket[bytes]


def tune_socket(sock: Socket, *, hwm: int = HWM) -> None:
    """Linger, high-water marks and reconnect interval: the options every socket gets."""
    sock.setsockopt(zmq.LINGER, LINGER_MS)
    sock.setsockopt(zmq.SNDHWM, hwm)
    sock.setsockopt(zmq.RCVHWM, hwm)
    sock.setsockopt(zmq.RECONNECT_IVL, RECONNECT_IVL_MS)
    sock.setsockopt(zmq.RECONNECT_IVL_MAX, RECONNECT_IVL_MAX_MS)
    sock.setsockopt(zmq.MAXMSGSIZE, MAX_MSG_BYTES)


def new_context() -> Context:
    """The one zmq context of a process, with a bounded socket count."""
    ctx: Context = zmq.Context()
    ctx.set(zmq.MAX_SOCKETS, MAX_SOCKETS)
    return ctx


def send_frames(sock: Socket, frames: list[bytes], flags: int = 0) -> None:
    """`sock.send_multipart(frames, flags, copy=False)`, each frame sent with int flags:
    pyzmq's `zmq.SNDMORE | flags` builds an enum member for every frame but the last
    (~0.6 us of a ~2 us send). A frame other than bytes goes to `send_multipart`, which
    checks every frame before it sends any."""
    for frame in frames:
        if type(frame) is not bytes:
            sock.send_multipart(frames, flags, copy=False)
            return
    flags = int(flags)
    more = flags | _SNDMORE
    for frame in frames[:-1]:
        sock.send(frame, more, copy=False)
    sock.send(frames[-1], flags, copy=False)


def send_nowait(sock: Socket, frames: list[bytes]) -> str | None:
    """Send without blocking. None: sent; otherwise why not ("hwm": the peer is not reading
    or not there and its queue is full; "unroutable": a ROUTER has no such peer)."""
    try:
        send_frames(sock, frames, _NOBLOCK)
        return None
    except zmq.Again:
        return "hwm"
    except zmq.ZMQError as exc:
        if exc.errno == zmq.EHOSTUNREACH:
            return "unroutable"
        raise


@overload
def drain(sock: Socket, limit: int) -> Iterator[list[bytes]]: ...
@overload
def drain(sock: Socket, limit: int, *, frames: Literal[True]) -> Iterator[list[zmq.Frame]]: ...
def drain(sock: Socket, limit: int, *, frames: bool = False) -> Iterator[list[Any]]:
    """The messages already queued on `sock`, at most `limit` (a loop turn reads a bounded
    batch, so one busy peer cannot starve the others), never blocking. `frames=True`: as
    zmq Frames (for their metadata, e.g. Peer-Address), else as bytes."""
    for _ in range(limit):
        try:
            yield sock.recv_multipart(_NOBLOCK, copy=not frames)
        except zmq.Again:
            return
        if not int(sock.get(zmq.EVENTS)) & POLLIN:
            return  # none left: a recv would raise Again (~2x the cost of asking; 3 % of risk)


def bind_router(
    ctx: Context, endpoint: str, *, zap_domain: bytes | None = None, handover: bool = True
) -> Socket:
    """A tuned, mandatory, handover ROUTER bound at `endpoint` (a dead incarnation's ipc
    socket file is removed first). With `zap_domain`, each new connection is accepted or
    refused by the ZAP handler of `ctx` (bound before this; see actors.runtime.zap).
    `handover=False` where anyone may connect (the client endpoint): a connection with a
    routing id already in use is ignored instead of taking over that peer's replies."""
    sock = ctx.socket(zmq.ROUTER)
    tune_socket(sock)
    if zap_domain is not None:
        sock.setsockopt(zmq.ZAP_DOMAIN, zap_domain)
    sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
    sock.setsockopt(zmq.ROUTER_HANDOVER, int(handover))
    stale = ipc_file(endpoint)
    if stale is not None:
        stale.unlink(missing_ok=True)
    sock.bind(endpoint)
    return sock


def connect_dealer(ctx: Context, endpoint: str, identity: str) -> Socket:
    """A tuned DEALER with routing id `identity`, connected to a ROUTER at `endpoint`. A
    connect that fails closes the socket before the error goes on.

    Never with a ZAP domain: libzmq keeps one session per connect across reconnects, and
    the session keeps its ZAP pipe, so an answer to a question one connection asked can
    reach the next one. Mid-greeting, that next connection aborts the process
    (`Assertion failed: _mechanism != NULL`, src/stream_engine_base.cpp:487, libzmq 4.3.5:
    the core's link, SIGABRT in a chaos run); after it, the next connection takes the
    answer about the previous binder as its own (a stranger that binds the endpoint then is
    admitted). Only a bound socket's connections are judged by a gate (`bind_router`): each
    accepted connection has a session of its own. (tests/runtime/test_zap_reconnect.py)"""
    sock = ctx.socket(zmq.DEALER)
    try:
        tune_socket(sock)
        sock.setsockopt(zmq.ROUTING_ID, identity.encode())
        sock.connect(endpoint)
    except BaseException:  # not left open against the context's sockets (a bridge retries)
        sock.close(linger=0)
        raise
    return sock


def connect_subscriber(ctx: Context, endpoint: str, *, hwm: int = HWM) -> Socket:
    """A tuned SUB subscribed to everything, connected to a PUB at `endpoint`."""
    sock = ctx.socket(zmq.SUB)
    tune_socket(sock, hwm=hwm)
    sock.setsockopt(zmq.SUBSCRIBE, b"")
    sock.connect(endpoint)
    return sock
