"""The core's link lives through a reset of a tunnel connection whose input libzmq stopped
(the core's `link` exited by SIGABRT in a chaos run, seed 381331: `Assertion failed:
!_io_error (src/stream_engine_base.cpp:310)`, libzmq 4.3.5).

An engine stops reading when it cannot hand a message on, and a reset then leaves it with
`_io_error` set (its fd out of the I/O thread's epoll set) until there is room again. With
ZMTP heartbeats on the tunnel, a write on it aborts the process: its own heartbeat timer,
or a PING of the peer's read later from its buffer. Both orders are made to happen for
certain, the engine's state read from the kernel (its fd's epoll mask), with the link's
own sockets (`actors.link.tunnel.open_tunnel`, Curve and the ZAP gate as in the link):

- handover: an edge's connection through a fault proxy is stalled with a message on it,
  the edge dials again directly (the ROUTER hands the route to the new connection, the
  old one has no pipe), the stall lifts (the old engine stops reading), the proxy resets;
- full: the core's loop does not read while the edge sends until the engine stops reading
  (pipe at `hwm`), the proxy resets, the loop reads again.

Then the core must still be there, and take a message from a new connection."""

from __future__ import annotations

import sys

import pytest

from tests.helpers import run_session

_SCENARIO = """
import contextlib, os, re, sys, time
import zmq
from zmq.utils import z85
from actors.link.tunnel import open_tunnel
from actors.runtime.zap import ZapGate
from protocol.curve_keys import LinkKeys
from protocol.link_config import CORE, LinkCfg
from protocol.sockets import new_context
from tests.netfault.proxy import FaultProxy

scenario = sys.argv[1]
PING_S = 0.001 if scenario == "full" else 0.1  # a heartbeat's interval, were there one
core_pub, core_sec = zmq.curve_keypair()
edge_pub, edge_sec = zmq.curve_keypair()
cfg = dict(ping_interval_s=PING_S, down_after_s=30.0, hwm=10)
core_ctx, edge_ctx = new_context(), new_context()
gate = ZapGate(core_ctx, "link", lambda cred: "not a link peer")
gate.link = lambda mech, creds: (
    ("edge-a", None) if creds and z85.encode(creds[0]) == edge_pub else ("", "unknown key")
)
keys = LinkKeys(core_pub, core_sec, {edge_pub: "edge-a"})
tunnel = open_tunnel(core_ctx, LinkCfg(bind="tcp://127.0.0.1:*", **cfg), keys, CORE)
port = int(tunnel.getsockopt(zmq.LAST_ENDPOINT).decode().rsplit(":", 1)[1])
got = []
poller = zmq.Poller()
poller.register(gate.sock, zmq.POLLIN)
poller.register(tunnel, zmq.POLLIN)

def turn(read=True):
    for sock in dict(poller.poll(5)):
        if sock is gate.sock:
            gate.on_readable()
        elif read:
            while tunnel.poll(0):
                got.append(tunnel.recv_multipart()[1])

def until(what, predicate, timeout_s=10.0, read=True):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, what
        turn(read)

def deliver(sock, payload, what):
    # sent until the core has it (IMMEDIATE: nothing is queued before a connection is up)
    def arrived():
        try:
            sock.send(payload, zmq.NOBLOCK)
        except zmq.Again:
            pass
        return payload in got
    until(what, arrived)

def edge(endpoint, group="edge-a"):
    edge_keys = LinkKeys(edge_pub, edge_sec, {core_pub: CORE})
    return open_tunnel(edge_ctx, LinkCfg(connect=endpoint, **cfg), edge_keys, group)

def conns():
    # the core's tcp connections on the tunnel's port: {fd: rx queue}
    inodes = {}
    with open("/proc/net/tcp") as f:
        for row in f.readlines()[1:]:
            cols = row.split()
            if int(cols[1].split(":")[1], 16) == port and cols[3] == "01":
                inodes[cols[9]] = int(cols[4].split(":")[1], 16)
    out = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            m = re.fullmatch(r"socket:\\[(\\d+)\\]", os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:  # the listing's own fd, gone
            continue
        if m and m.group(1) in inodes:
            out[int(fd)] = inodes[m.group(1)]
    return out

def polled(fd):
    # the events libzmq's I/O threads poll `fd` for; None: in no epoll set (rm_fd)
    for epfd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{epfd}") != "anon_inode:[eventpoll]":
                continue
            with open(f"/proc/self/fdinfo/{epfd}") as f:
                for m in re.finditer(r"tfd:\\s+(\\d+) events:\\s+([0-9a-f]+)", f.read()):
                    if int(m.group(1)) == fd:
                        return int(m.group(2), 16)
        except OSError:
            continue
    return None

stopped = lambda fd: lambda: polled(fd) is not None and not polled(fd) & 1  # no EPOLLIN

with FaultProxy(("127.0.0.1", port)) as proxy:
    first = edge(f"tcp://127.0.0.1:{proxy.port}")
    deliver(first, b"first", "the first connection never delivered")
    (old,) = conns()
    if scenario == "handover":
        proxy.stall(True)
        first.send(b"stale")  # held by the proxy
        second = edge(f"tcp://127.0.0.1:{port}")
        deliver(second, b"second", "the second connection never delivered")
        sent = proxy.stats["bytes_up"]
        proxy.stall(False)
        until("the stale message never came", lambda: proxy.stats["bytes_up"] > sent)
        until("the old connection's engine went on reading", stopped(old))
    else:  # the loop reads nothing now: the pipe fills at hwm and the engine stops
        def more():
            with contextlib.suppress(zmq.Again):  # the edge's own queue full for a moment
                first.send(b"x" * 100, zmq.NOBLOCK)
            return stopped(old)()
        until("the engine never stopped reading", more, read=False)
        for _ in range(25):  # kept by the kernel, with the edge's PINGs (were there any)
            with contextlib.suppress(zmq.Again):  # in between: this pace lets them in
                first.send(b"x" * 100, zmq.NOBLOCK)
            time.sleep(0.003)
        until("nothing was kept", lambda: conns()[old] > 0, read=False)
        kept = conns()[old]
        for _ in range(cfg["hwm"]):  # room: the engine reads what was kept (< 8 KiB) at
            got.append(tunnel.recv_multipart()[1])  # once and stops again at hwm, the
        until("the engine never read", lambda: conns()[old] < kept, read=False)  # rest
        until("the engine never stopped again", stopped(old), read=False)  # in its buffer
        second = edge(f"tcp://127.0.0.1:{port}", "edge-b")  # a route of its own
    first.close(0)  # gone, as a restarted edge's old socket is (else it dials again)
    proxy.cut()
    until("the reset engine is still polled", lambda: polled(old) is None, read=False)
    # a heartbeat would write on it now: its timer (every PING_S), or a PING buffered
    # behind what the loop reads now
    hold = time.monotonic() + 20 * PING_S
    until("held", lambda: time.monotonic() > hold)
    deliver(second, b"after", "the core took nothing more")
second.close(0)
core_ctx.destroy(0); edge_ctx.destroy(0)
print("alive", flush=True)
"""


@pytest.mark.parametrize("scenario", ["handover", "full"])
def test_the_core_link_survives_a_reset_of_a_connection_it_stopped_reading(scenario: str) -> None:
    """The process lives (no SIGABRT) and its tunnel takes a new connection's message."""
    done = run_session([sys.executable, "-c", _SCENARIO, scenario])
    err = done.stderr.decode(errors="replace")
    assert b"Assertion failed" not in done.stderr, err[-2000:]
    assert done.returncode == 0, (done.returncode, err[-2000:])
    assert done.stdout.strip().endswith(b"alive")
