"""A binder's verdict is not handed on with its pid (`ZapGate.from_binders`).

The verdict on who bound a connecting socket's far end is kept per Peer-Address,
`localhost:<uid>:<gid>:<pid>`. Pids come round again (pid_max is 32,768 on many hosts: a
same-uid process that forks in a loop gets any pid it waits for in seconds), so a peer that
dies leaves its address to whoever gets its pid next. Found by review: a stranger that got
the dead peer's pid and bound its endpoint was taken for the peer (the kept "ours"), and
its forged answers passed. The verdict now lasts as long as the process judged does.

The test makes the pid come round for certain: it runs in a pid namespace of its own
(`unshare`, unprivileged through a user namespace) and sets the namespace's last pid
(`ns_last_pid`) so that the stranger is given the dead peer's pid.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import run_session

# A ROUTER at argv[1] that answers each message with argv[2]; says "bound <pid>", exits
# when its stdin closes.
_BINDER = """
import os, sys, zmq
ctx = zmq.Context(); r = ctx.socket(zmq.ROUTER); r.setsockopt(zmq.LINGER, 0)
path = sys.argv[1].removeprefix("ipc://")
if os.path.exists(path):
    os.unlink(path)
r.bind(sys.argv[1]); print("bound", os.getpid(), flush=True)
poller = zmq.Poller(); poller.register(r, zmq.POLLIN); poller.register(sys.stdin, zmq.POLLIN)
while True:
    ready = dict(poller.poll())
    if sys.stdin.fileno() in ready:
        break
    if r in ready:
        r.send_multipart([r.recv_multipart()[0], sys.argv[2].encode()])
"""

# Inside the namespace (pid 1: whatever it started goes with it): an actor's gate, a
# DEALER to a peer of ours, then to a stranger with the same pid. Prints what passed.
_SCENARIO = """
import json, os, subprocess, sys, time
from prometheus_client import REGISTRY
from actors.runtime.zap import ZapGate, admit
from protocol.sockets import connect_dealer, drain, new_context

endpoint, binder = sys.argv[1], sys.argv[2]
ctx = new_context()
gate = ZapGate(ctx, "pidreuse", lambda c: admit(c, uid=os.getuid(), trusted={os.getpid()}))
sock = connect_dealer(ctx, endpoint, "oms:1")

def refused():
    labels = {"actor": "pidreuse"}
    return REGISTRY.get_sample_value("tradepulse_peers_refused_total", labels) or 0.0

def exchange():
    before, deadline = refused(), time.monotonic() + 20.0
    while time.monotonic() < deadline:
        sock.send(b"?")
        if sock.poll(50):
            passed = list(gate.from_binders(drain(sock, 100, frames=True)))
            if passed or refused() > before:
                return [[f.decode() for f in m] for m in passed]
    raise AssertionError("no answer")

def start(cmd):
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    word, pid = p.stdout.readline().split()
    assert word == b"bound"
    return p, int(pid)

def last_pid(pid):  # the namespace's next new process (or thread) is given pid + 1, if free
    with open("/proc/sys/kernel/ns_last_pid", "w") as f:
        f.write(str(pid))

last_pid(1000)  # clear of this process's threads
ours, pid = start([sys.executable, "-c", binder, endpoint, "ours"])  # our child: admitted
first = exchange()
ours.kill(); ours.wait()
last_pid(pid - 2)  # the next two: the stranger's parent, then the stranger
# a grandchild of ours (its parent is no process of the system): a stranger
relay = "import subprocess, sys; sys.exit(subprocess.call(sys.argv[1:]))"
stranger, again = start([sys.executable, "-c", relay, sys.executable, "-c", binder,
                         endpoint, "forged"])
second = exchange()
result = {"pids": [pid, again], "reused": again == pid, "first": first, "second": second}
print(json.dumps(result), flush=True)
stranger.stdin.close(); stranger.wait()
"""


def _unshare() -> list[str]:
    """The command that runs the rest in new user, pid and mount (/proc) namespaces, or
    skip where the host does not allow that (or setting the next pid) without privileges."""
    tool = shutil.which("unshare")
    if tool is None:
        pytest.skip("no unshare(1)")
    cmd = [tool, "--user", "--map-root-user", "--pid", "--fork", "--mount-proc"]
    write = "echo 500 > /proc/sys/kernel/ns_last_pid"  # what the scenario does
    probe = subprocess.run([*cmd, "sh", "-c", write], capture_output=True, timeout=30, check=False)
    if probe.returncode != 0:
        pytest.skip(f"no unprivileged pid namespace: {probe.stderr.decode()[:200]}")
    return cmd


def test_a_stranger_given_a_dead_peers_pid_is_judged_anew(tmp_path: Path) -> None:
    """A peer of ours answers and is taken; it dies, and a stranger (not a child of the
    system) is given its pid and binds its endpoint: the stranger's answer, on an address
    equal to the peer's, is refused, not passed on the peer's kept verdict."""
    done = run_session(
        [*_unshare(), sys.executable, "-c", _SCENARIO, f"ipc://{tmp_path}/risk.sock", _BINDER]
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    result = json.loads(done.stdout.decode().splitlines()[-1])
    assert result["reused"], f"the stranger was not given the peer's pid: {result}"
    assert result["first"] == [["ours"]]
    assert result["second"] == [], "a stranger's answer was taken on a dead peer's verdict"
