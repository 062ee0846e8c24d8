"""A partition longer than `down_after_s` leaves the core's tunnel holding no connection
but the edge's new one. The edge re-dials (actors/link/tunnel.py `redial`); its old
connection's end at the core hears nothing more (the edge's FIN is lost in the partition,
or reaches the core with the pings behind it after the route was handed to the new
connection, to an engine that has no pipe and stops reading): with no ZMTP heartbeat, and
nothing sent on it, the core kept it open for good, one connection (fd, libzmq engine) per
partition. Two namespaces joined by a veth pair taken down for the partition, the link's
own sockets (`open_tunnel`, Curve and the ZAP gate as in the link), the edge pinging and
re-dialling as the link does."""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zmq

from tests.helpers import REPO_ROOT, eventually
from tests.netfault.netns import net_pair, netns_unavailable

pytestmark = pytest.mark.skipif(netns_unavailable() is not None, reason=str(netns_unavailable()))

PORT = 24_561
DOWN_AFTER_S = 1.0
_SIDE = """
import sys, time
import zmq
from zmq.utils import z85
from actors.link.tunnel import open_tunnel, redial
from actors.runtime.zap import ZapGate
from protocol.curve_keys import LinkKeys
from protocol.link_config import CORE, LinkCfg
from protocol.sockets import new_context

side, endpoint, down_after_s = sys.argv[1], sys.argv[2], float(sys.argv[3])
core_pub, core_sec, edge_pub, edge_sec = (k.encode() for k in sys.argv[4:8])
cfg = dict(ping_interval_s=0.1, down_after_s=down_after_s)
ctx = new_context()
if side == "core":  # answers each ping, sends nothing else (an idle core)
    gate = ZapGate(ctx, "link", lambda cred: "not a link peer")
    gate.link = lambda mech, creds: (
        ("edge-a", None) if creds and z85.encode(creds[0]) == edge_pub else ("", "unknown key")
    )
    keys = LinkKeys(core_pub, core_sec, {edge_pub: "edge-a"})
    tunnel = open_tunnel(ctx, LinkCfg(bind=endpoint, **cfg), keys, CORE)
    poller = zmq.Poller()
    poller.register(gate.sock, zmq.POLLIN)
    poller.register(tunnel, zmq.POLLIN)
    while True:
        for sock, _ in poller.poll(100):
            if sock is gate.sock:
                gate.on_readable()
            while sock is tunnel and tunnel.poll(0):
                frames = tunnel.recv_multipart()
                if frames[1] == b"P":
                    tunnel.send_multipart([frames[0], b"Q"], zmq.NOBLOCK)
else:  # pings; down after down_after_s unanswered: re-dials (LinkActor._set_up)
    keys = LinkKeys(edge_pub, edge_sec, {core_pub: CORE})
    tunnel = open_tunnel(ctx, LinkCfg(connect=endpoint, **cfg), keys, "edge-a")
    heard, up, dials = time.monotonic(), False, 0
    while True:
        try:
            tunnel.send(b"P", zmq.NOBLOCK)
        except zmq.Again:
            pass
        if tunnel.poll(100):
            while tunnel.poll(0):
                tunnel.recv()
            heard = time.monotonic()
            if not up:
                up = True
                print("up", dials, flush=True)
        if up and time.monotonic() - heard > down_after_s:
            up, dials = False, dials + 1
            redial(tunnel, endpoint)
"""


def _connections(pid: int) -> list[str]:
    """The tcp states of process `pid`'s connections on the tunnel's port."""
    inodes: dict[str, str] = {}
    for row in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
        cols = row.split()
        if int(cols[1].split(":")[1], 16) == PORT and cols[3] != "0A":  # not the listener
            inodes[cols[9]] = cols[3]
    states = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            m = re.fullmatch(r"socket:\[(\d+)\]", os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            continue
        if m and m.group(1) in inodes:
            states.append(inodes[m.group(1)])
    return states


def _line(proc: subprocess.Popen[str], timeout_s: float = 15.0) -> list[str]:
    """The next line `proc` prints, split (within `timeout_s`)."""
    assert proc.stdout is not None
    assert select.select([proc.stdout], [], [], timeout_s)[0], "no line in time"
    return proc.stdout.readline().split()


def test_a_partition_leaves_the_core_no_connection_but_the_edges_new_one() -> None:
    core_pub, core_sec = zmq.curve_keypair()
    edge_pub, edge_sec = zmq.curve_keypair()
    keys = [k.decode() for k in (core_pub, core_sec, edge_pub, edge_sec)]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    with net_pair() as pair:
        endpoint = f"tcp://{pair.core_ip}:{PORT}"
        argv = [sys.executable, "-c", _SIDE]
        args = [endpoint, str(DOWN_AFTER_S), *keys]
        core = subprocess.Popen(pair.launcher("core") + argv + ["core", *args], env=env)
        edge = subprocess.Popen(
            pair.launcher("edge") + argv + ["edge", *args], env=env, stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        try:
            assert _line(edge) == ["up", "0"]
            eventually(lambda: _connections(core.pid) == ["01"], 5.0)
            for dials in (1, 2):
                pair.link_down()
                time.sleep(10 * DOWN_AFTER_S)  # the partition: the edge re-dials meanwhile
                pair.link_up()
                assert _line(edge) == ["up", str(dials)]
                eventually(  # the edge's new connection alone
                    lambda: _connections(core.pid) == ["01"], 10.0,
                    message=lambda n=dials: f"partition {n}: {_connections(core.pid)}",
                )  # fmt: skip
        finally:
            for proc in (edge, core):
                proc.kill()
                proc.wait()
            assert edge.stdout is not None
            edge.stdout.close()
