"""A connecting socket of an actor survives its peer's restart at any point of the
handshake (the core's `link` exited by SIGABRT in a chaos run, CI on e69ce29).

libzmq keeps one session per connect, across reconnects, and the session keeps its ZAP
pipe. A DEALER with a ZAP domain (as every actor's DEALER had: to the supervisor, each
`Peer`, the link's bridges) asked its process's gate about each connection's binder; the
gate answers in the actor's loop, a turn later. When the binder died before the answer,
the DEALER reconnected 2-4 ms later, and the answer reached the NEW connection while it
was still exchanging greetings: `Assertion failed: _mechanism != NULL
(src/stream_engine_base.cpp:487)`, abort. The test makes that order happen for certain: a
`Peer`'s connection is held at its gate's question (or, with no question, has delivered),
its peer process is killed -9, the reconnection is held in its greeting by a bare unix
socket at the endpoint, and only then does the gate answer what it was asked. The
DEALER's process must still be there and talk to a second peer."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.helpers import run_session

# A peer actor's ROUTER: echoes each message back; exits when its stdin closes.
_PEER = """
import sys, zmq
ctx = zmq.Context(); r = ctx.socket(zmq.ROUTER); r.setsockopt(zmq.LINGER, 0)
r.bind(sys.argv[1]); print("bound", flush=True)
poller = zmq.Poller(); poller.register(r, zmq.POLLIN); poller.register(sys.stdin, zmq.POLLIN)
while True:
    ready = dict(poller.poll())
    if sys.stdin.fileno() in ready:
        break
    if r in ready:
        r.send_multipart(r.recv_multipart())
"""

# The actor's side: a real `Peer` (as every actor connects to its peers) and the gate of
# its context. Exit 0: it lived through it; an abort is -SIGABRT.
_ACTOR = """
import os, signal, socket, subprocess, sys, time
import zmq
from actors.runtime.peer import Peer
from actors.runtime.zap import ZapGate
from protocol.sockets import new_context

endpoint, other, peer_script = sys.argv[1], sys.argv[2], sys.argv[3]
path = endpoint.removeprefix("ipc://")
deadline = time.monotonic() + 30.0

def start_peer(at):
    p = subprocess.Popen([sys.executable, "-c", peer_script, at],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert p.stdout.readline() == b"bound\\n"
    return p

class Host:
    ctx = new_context(); actor_id = "oms"; epoch = 1

host = Host()
host.zap = gate = ZapGate(host.ctx, "oms", lambda cred: None)  # first, as in every actor
first = start_peer(endpoint)
peer = Peer(host, "risk", endpoint)
peer.sock.send(b"hello")
poller = zmq.Poller()
poller.register(gate.sock, zmq.POLLIN); poller.register(peer.sock, zmq.POLLIN)
# the first connection: held at the gate's question, or (no question) delivered and echoed
while not (ready := dict(poller.poll(100))):
    assert time.monotonic() < deadline, "the first connection never got anywhere"
asked = gate.sock in ready
os.kill(first.pid, signal.SIGKILL)
first.wait()
# the next connection, held in its greeting: a bare socket at the endpoint that never answers
os.unlink(path)
bare = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); bare.bind(path); bare.listen(1)
bare.settimeout(10.0)
conn, _ = bare.accept()
assert conn.recv(10)  # its greeting's signature: that connection is mid-greeting
gate.on_readable()  # only now: the answer to the question the first connection asked
# the actor goes on: a second peer hears from it (connected after the answer: libzmq's I/O
# thread takes its commands in order, so the answer has reached the held connection first)
second = start_peer(other)
peer.sock.connect(other)
echoed = False
while not echoed:
    assert time.monotonic() < deadline, "the second peer never heard from the actor"
    peer.sock.send(b"again", zmq.NOBLOCK)  # (one of two queued to the held connection)
    for sock in dict(poller.poll(50)):
        if sock is gate.sock:
            gate.on_readable()
        else:
            echoed = echoed or peer.sock.recv_multipart() == [b"again"]
conn.close(); bare.close()
second.stdin.close(); second.wait()
print("asked" if asked else "not asked", flush=True)
host.ctx.destroy(linger=0)
"""


def test_a_peer_whose_binder_dies_mid_handshake_survives_the_late_gate_answer(
    tmp_path: Path,
) -> None:
    """The actor process lives, and its `Peer` still delivers."""
    # its own session: its peer processes go with it, whatever happens
    argv = [sys.executable, "-c", _ACTOR, f"ipc://{tmp_path}/risk.sock"]
    done = run_session([*argv, f"ipc://{tmp_path}/b.sock", _PEER])
    err = done.stderr
    assert done.returncode == 0, (done.returncode, err.decode(errors="replace")[-2000:])
    assert b"Assertion failed" not in err
