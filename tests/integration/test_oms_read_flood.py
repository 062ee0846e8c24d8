"""A flood of reads of many orders never stops the OMS's beat (found by the integration
review): the turn budget counts items, not their cost, and a client `snapshot_request` is
one item but O(open orders) in the OMS's turn (~0.1 s at 5,000, `actors/oms/reads.py`). Any
client may send them back to back; a turn served up to 256 of them and the supervisor
killed the OMS as hung. Now a turn reads at most two (`SNAPSHOT_COST`).

The bound on the beat gap scales with what one snapshot takes on this machine now, measured
alone before the flood: a busy machine stretches every turn (a CI runner at load 7 saw a
0.97 s gap with the fix, restarts 0), but only a turn that serves many of them stretches
the gap by the flood's size. Without the fix the gap is ~16 snapshots' time; with it ~2."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
import zmq

from protocol.client import OrderSpec
from protocol.codec import Sender, decode
from protocol.messages import OrderView, SnapshotRequest
from protocol.wire_out import dump
from tests.integration.oms_support import overrides, start, systems
from tests.system_ops import VENUE, client, submit_when_open

pytestmark = pytest.mark.integration


OPEN = 4000
ASKS = 16  # 16 suffice at the tests' 0.6 s hang limit (64: 4 of 64 answered, same restart)
HANG_LIMIT_S = 0.6


def test_a_flood_of_snapshot_requests_does_not_stop_the_oms_beating(short_tmp: Path) -> None:
    with systems() as started:
        sut = start(started, root=short_tmp, overrides=overrides())
        with client(sut) as c:
            submit_when_open(c, VENUE, client_order_id="probe-0")
            specs = [
                OrderSpec(VENUE, "AAPL", "BUY", "1", price="90.00", client_order_id=f"rest-{i}")
                for i in range(OPEN)
            ]
            out = c.submit_many(specs, timeout_s=120.0)
            assert sum(isinstance(o, OrderView) for o in out) > 3900
        gap_before = sut.actor("oms")["heartbeat_gap_max_s"]
        ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(sut.cfg.client_endpoint)
        sender = Sender("snapflood", 1)

        def ask() -> None:
            sock.send_multipart(sender.encode_body("snapshot_request", dump(SnapshotRequest()))[1])

        got = 0
        try:
            alone = sorted(_one_snapshot_s(sock, ask) for _ in range(3))[1]
            bound_s = max(HANG_LIMIT_S, ASKS * alone / 4)
            started_at = time.monotonic()
            for _ in range(ASKS):
                ask()
            deadline = time.monotonic() + 60
            while got < ASKS and time.monotonic() < deadline:
                if sock.poll(500):
                    decode(sock.recv_multipart())
                    got += 1
        finally:
            sock.close(0)
            ctx.term()
        took = time.monotonic() - started_at
        gap_s = sut.actor("oms")["heartbeat_gap_max_s"]
        restarts = sut.metric("tradepulse_actor_restarts_total", actor="oms") or 0.0
        print(
            f"{ASKS} snapshot_requests at {OPEN} open: {got} answered in {took:.2f} s;"
            f" the OMS's longest beat gap {gap_s} s (before the flood {gap_before} s);"
            f" one snapshot alone {alone:.3f} s, the bound {bound_s:.2f} s; restarts {restarts}"
        )
        assert restarts == 0
        assert gap_s < bound_s, f"the OMS went {gap_s} s without a beat"


def _one_snapshot_s(sock: zmq.Socket[bytes], ask: Callable[[], None]) -> float:
    """Seconds from asking one snapshot to its answer, nothing else asked meanwhile."""
    started_at = time.monotonic()
    ask()
    assert sock.poll(30_000), "no answer to a lone snapshot_request within 30 s"
    decode(sock.recv_multipart())
    return time.monotonic() - started_at
