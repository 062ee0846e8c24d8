"""A peer whose socket lost its connection for good connects again (`Peer._revive`).

Seen in tests/integration/test_oms_kill_stream.py: an OMS killed 19 ms after its start was
refused by the connector's check of the process that bound the OMS's endpoint ("pid 23551
(parent None)"); from then on libzmq had no connection for the connector's socket to the
OMS and never made one: every send was refused `hwm` (the venue state, the executions),
every reconcile pass of the next OMS failed without a consistent cut, and intake stayed
closed for the rest of the test. Here the lost session is made by disconnecting the socket
from its endpoint (what libzmq's ending of the session leaves: no connection, no retry)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
import zmq

from actors.risk.actor import RiskActor
from actors.runtime.peer import REVIVE_EVERY_S
from protocol.messages import StreamEvent
from tests.actor_stubs import Harness


@pytest.fixture
def h() -> Iterator[Harness]:
    harness = Harness()
    yield harness
    harness.close()


def _probe(n: int) -> StreamEvent:
    return StreamEvent(event_seq=0, event=f"probe-{n}", data={})


def test_a_peer_left_without_a_connection_connects_again(h: Harness) -> None:
    actor = h.start(RiskActor, "risk")
    oms = actor.oms
    oms.sock.disconnect(oms.endpoint)  # the session gone for good
    assert oms.send(_probe(1)) is None  # no room: refused `hwm`, and connected again
    assert oms.revived == 1

    def delivered() -> bool:
        # a message can be lost on the way (one sent while the old session ends: requests
        # are asked again at their deadline); sends go out again and one arrives
        oms.send(_probe(2))
        return any(e.event == "probe-2" for e in h.oms.stub.bodies(StreamEvent))

    h.pump(delivered, timeout_s=5.0, what="sends reach the OMS again")
    assert oms.revived == 1


def test_a_peer_connects_again_at_most_every_revive_interval(h: Harness) -> None:
    """A peer that stays unreachable is not reconnected at every send (a stuck peer with a
    full queue keeps its queue for REVIVE_EVERY_S at least)."""
    actor = h.start(RiskActor, "risk")
    oms = actor.oms
    for n in range(50):  # each time left without a connection again
        with contextlib.suppress(zmq.ZMQError):
            oms.sock.disconnect(oms.endpoint)
        assert oms.send(_probe(n)) is None
    assert oms.revived == 1 and REVIVE_EVERY_S >= 1.0
