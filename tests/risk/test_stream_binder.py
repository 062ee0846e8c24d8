"""Risk takes an order event only from a process of the system (`ZapGate.from_binders` on
its SUB to the OMS's event stream).

Found in review: risk's SUB never had a ZAP domain, nor any check of who bound the socket
it reads. A same-uid stranger that bound its own PUB at the OMS's event-stream socket
file (once the OMS's went: a restart) fed risk's exposure what it liked - a false fill
that raises a position refuses real orders, a false cancel or a smaller fill lets orders
past the limits.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from protocol.messages import OrderEvent, OrderStatus
from tests.actor_stubs import Harness
from tests.helpers import REPO_ROOT
from tests.risk.test_actor import order, sample, start

# A PUB at argv[1] that publishes the message of frames argv[2:] (hex) every 20 ms until its
# stdin closes; says "bound" once bound.
_STRANGER = """
import sys, zmq
ctx = zmq.Context(); pub = ctx.socket(zmq.PUB); pub.setsockopt(zmq.LINGER, 0)
pub.bind(sys.argv[1]); print("bound", flush=True)
frames = [bytes.fromhex(f) for f in sys.argv[2:]]
poller = zmq.Poller(); poller.register(sys.stdin, zmq.POLLIN)
while not poller.poll(20):
    pub.send_multipart(frames)
"""
# its parent: a process of neither the system nor the test (the test's children are ours)
_RELAY = "import subprocess, sys; sys.exit(subprocess.call(sys.argv[1:]))"


def test_an_event_from_a_stranger_bound_at_the_stream_is_not_taken(
    h: Harness, tmp_path: Path
) -> None:
    """A stranger's PUB publishes a false fill of 50 AAPL, in the OMS's epoch and next in
    its sequence; risk's SUB connected to it (as it reconnects to whatever bound the
    stream's socket file) drops it, counted as refused: the position stays 0."""
    actor = start(h)
    forged = OrderEvent(event_seq=h.oms.event_seq + 1,
                        order=order("forged", OrderStatus.FILLED, "50", "50"))  # fmt: skip
    frames = [f.hex() for f in h.oms.sender.encode(forged)]
    endpoint = f"ipc://{tmp_path}/stranger.sock"
    refused = sample("tradepulse_peers_refused_total", actor="risk")
    stranger = subprocess.Popen(
        [sys.executable, "-c", _RELAY, sys.executable, "-c", _STRANGER, endpoint, *frames],
        cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert stranger.stdout is not None and stranger.stdout.readline() == b"bound\n"
        actor.sync.sub.connect(endpoint)
        h.pump(
            lambda: (
                sample("tradepulse_peers_refused_total", actor="risk") > refused
                or actor.gate.exposure.position("AAPL") != 0
            ),
            timeout_s=20.0,
            what="the stranger's event read",
        )
        assert actor.gate.exposure.position("AAPL") == 0
    finally:
        assert stranger.stdin is not None and stranger.stdout is not None
        stranger.stdin.close()
        stranger.wait(10)
        stranger.stdout.close()
