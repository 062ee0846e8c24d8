"""The link's tcp socket between hosts (the tunnel): the core's ROUTER, an edge's DEALER.

No ZMTP heartbeats (`ZMQ_HEARTBEAT_IVL`) on either end: libzmq 4.3.5 (pyzmq 27's) aborts
the process when a heartbeat meets a connection whose input it has stopped
(`Assertion failed: !_io_error (src/stream_engine_base.cpp:310)`, the core's link by
SIGABRT in a chaos run, seed 381331). An engine stops reading when it cannot hand a
message on: no pipe (the ROUTER gave the edge's routing id to the edge's newer connection,
`ROUTER_HANDOVER`, while the old one still had bytes on the way) or a full one (the link's
loop behind by `hwm`). A reset then (EPOLLERR) leaves the engine alive with `_io_error`
set, waiting for room; its own heartbeat timer (`timer_event` -> `out_event`), or a peer's
PING read later from its buffer (`restart_input` -> `process_heartbeat_message` ->
`out_event`), writes on it and hits the assertion. Open upstream (libzmq issues #4364,
#4767; no release fixes it). tests/link/test_tunnel_reset.py drives both. Without
heartbeats such an engine is still never closed when it has no pipe (nothing restarts
it): its fd stays open until the link restarts, one per such reset. The kernel's own
timeouts (keepalive, `TCP_MAXRT`, `open_tunnel`) close a silent connection before the
edge's new one can take its route, so an engine rarely gets there
(tests/link/test_tunnel_partition.py: without them, one connection kept per partition).

Liveness is the link's own ping instead (`P`/`Q` every `ping_interval_s`, `down_after_s`
of silence is `link_down`); an edge that goes down dials the core again (`redial`), which
drops its silent connection and what was queued on it, as the heartbeat timeout did, and
hands its route at the core over to the new connection (the core's queue for the old one
goes with it). What the core queued for an edge that went silent without a new
connection stays queued (at most `hwm`) until the edge dials again or tcp gives up (its
data unacknowledged, or its window shut, for `down_after_s`: `TCP_MAXRT`).
"""

from __future__ import annotations

import math

import zmq

from actors.runtime.zap import LINK_DOMAIN
from protocol.curve_keys import LinkKeys
from protocol.link_config import CORE, LinkCfg
from protocol.sockets import Context, Socket, tune_socket


def open_tunnel(ctx: Context, link: LinkCfg, keys: LinkKeys | None, group: str) -> Socket:
    """Host group `group`'s end: the core's ROUTER bound at `link.bind`, or an edge's
    DEALER (routing id: its group) connected to `link.connect`; Curve with `keys` (None:
    plaintext)."""
    core = group == CORE
    if core:
        sock = ctx.socket(zmq.ROUTER)
        tune_socket(sock, hwm=link.hwm)
        sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        sock.setsockopt(zmq.ROUTER_HANDOVER, 1)  # a restarted edge takes its route over
        # the gate judges each accepted connection (its own session); never set on the
        # edge's DEALER (protocol.sockets.connect_dealer: a connecting socket's late
        # ZAP answer aborts the process)
        sock.setsockopt(zmq.ZAP_DOMAIN, LINK_DOMAIN)
    else:
        sock = ctx.socket(zmq.DEALER)
        tune_socket(sock, hwm=link.hwm)
        sock.setsockopt(zmq.ROUTING_ID, group.encode())
        sock.setsockopt(zmq.IMMEDIATE, 1)  # nothing queued while the core is away
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)  # across hosts, back off to 1 s
    # a connection whose peer went silently (its FIN or RST lost in a partition, its host
    # gone) is closed by the kernel about `down_after_s` after it last heard from it, as the
    # heartbeat timeout did: idle, by tcp keepalive; with data unacknowledged (a pong, a
    # request), by the user timeout (`TCP_MAXRT`). Else the core kept it for good, one per
    # partition (the edge re-dials on a new one, and the old one's pings, arriving after the
    # route went to it, stop its engine: no pipe). A stalled peer's kernel answers probes.
    idle_s = max(1, int(link.down_after_s) // 2)
    sock.setsockopt(zmq.TCP_KEEPALIVE, 1)
    sock.setsockopt(zmq.TCP_KEEPALIVE_IDLE, idle_s)
    sock.setsockopt(zmq.TCP_KEEPALIVE_INTVL, 1)
    sock.setsockopt(zmq.TCP_KEEPALIVE_CNT, max(1, math.ceil(link.down_after_s) - idle_s))
    sock.setsockopt(zmq.TCP_MAXRT, int(link.down_after_s * 1000))
    if keys is not None:
        sock.curve_publickey = keys.public
        sock.curve_secretkey = keys.secret
        if core:
            sock.curve_server = True
        else:
            sock.curve_serverkey = next(iter(keys.peers))  # the core's key alone
    if core:
        sock.bind(link.bind)
    else:
        sock.connect(link.connect)
    return sock


def redial(sock: Socket, endpoint: str) -> None:
    """An edge's DEALER: drop its connection to `endpoint` (and what is queued on it) and
    dial again."""
    try:
        sock.disconnect(endpoint)
    except zmq.ZMQError:  # not connected there (already dropped): only dial
        pass
    sock.connect(endpoint)
