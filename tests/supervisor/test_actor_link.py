"""The supervisor's actor socket (actors.supervisor.actor_link): a message speaks for actor
X only if it comes from the pid spawned as X, whatever name and epoch it claims."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from prometheus_client import REGISTRY

from actors.supervisor.actor_link import ActorLink
from actors.supervisor.child import Child
from actors.supervisor.restart_policy import ChildSpec
from protocol.codec import Envelope
from protocol.config import RestartCfg
from protocol.messages import ActorHeartbeat
from protocol.sockets import new_context
from tests.helpers import REPO_ROOT

EPOCH = 7
_HEARTBEATS = """
import sys, zmq
from protocol.codec import Sender
from protocol.messages import ActorHeartbeat
ctx = zmq.Context(); s = ctx.socket(zmq.DEALER); s.setsockopt(zmq.LINGER, 0)
s.setsockopt(zmq.ROUTING_ID, b"risk"); s.connect(sys.argv[1])
s.send_multipart(Sender("risk", int(sys.argv[2])).encode(ActorHeartbeat(loop_lag_s=0.0)))
sys.stdin.read()
"""


def _heartbeat_from_a_child(tmp_path: Path, risk_pid: int | None) -> tuple[list[Envelope], int]:
    """A child of the test process (the gate admits it: the test is its "supervisor") sends a
    heartbeat as risk. `risk_pid`: the pid the supervisor spawned as risk (None: the child
    itself). Returns what the link let through and the child's pid."""
    ctx = new_context()
    link = ActorLink(ctx, f"ipc://{tmp_path}/supervisor.sock")
    child = subprocess.Popen(
        [sys.executable, "-c", _HEARTBEATS, f"ipc://{tmp_path}/supervisor.sock", str(EPOCH)],
        cwd=REPO_ROOT, stdin=subprocess.PIPE,
    )  # fmt: skip
    risk = Child(ChildSpec(id="risk", kind="risk"), RestartCfg())
    risk.spawned(child.pid if risk_pid is None else risk_pid, EPOCH, time.monotonic())
    got: list[Envelope] = []
    try:
        deadline = time.monotonic() + 20.0
        while time.monotonic() < deadline:
            if link.gate.sock.poll(10):
                link.gate.on_readable()
            if link.sock.poll(10):
                got = [env for _child, env in link.receive({"risk": risk})]
                break
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(10)
        ctx.destroy(linger=0)
    return got, child.pid


def test_a_heartbeat_from_the_pid_spawned_as_risk_is_taken(tmp_path: Path) -> None:
    got, _pid = _heartbeat_from_a_child(tmp_path, None)
    assert len(got) == 1 and isinstance(got[0].body, ActorHeartbeat)


def test_a_heartbeat_in_risks_name_from_another_child_is_refused(tmp_path: Path) -> None:
    """Another of the supervisor's children (it passed the connection gate) claims to be
    risk, with risk's id, epoch and routing id: not risk's pid, refused."""
    labels = {"actor": "supervisor", "type": "actor_heartbeat"}
    before = REGISTRY.get_sample_value("tradepulse_messages_refused_total", labels) or 0.0
    got, _pid = _heartbeat_from_a_child(tmp_path, risk_pid=1)
    assert got == []
    assert REGISTRY.get_sample_value("tradepulse_messages_refused_total", labels) == before + 1
