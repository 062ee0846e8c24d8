"""An actor with `trims_heap` (the connectors, venue simulators, risk) gives the C heap's
free pages back every TRIM_EVERY_S while its loop has work, and not again and again while
it is idle (`actors.runtime.actor.Actor`, `actors.runtime.heap_trim`)."""

from __future__ import annotations

from actors.connector.actor import ConnectorActor
from actors.oms.actor import OmsActor
from actors.position_heartbeat.actor import HeartbeatActor
from actors.risk.actor import RiskActor
from actors.runtime.heap_trim import TRIM_EVERY_S
from actors.venuesim.actor import VenueSimActor
from protocol.messages import GetPositions
from tests.actor_stubs import Client, Harness


class _StubTrim:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, pad: int) -> int:
        self.calls += 1
        return 1


def test_the_actors_whose_rss_grew_trim_their_heap() -> None:
    """The connectors, the venue simulators and risk trim on the runtime's timer; the OMS
    trims on its own (its journal's position, `actors.oms.retention`); the heartbeat actor,
    flat without it, does not."""
    assert ConnectorActor.trims_heap and VenueSimActor.trims_heap and RiskActor.trims_heap
    assert not OmsActor.trims_heap and not HeartbeatActor.trims_heap


def test_risk_trims_after_work_and_not_while_idle() -> None:
    """Risk's timer trims at its first tick, then only after a loop turn that had something
    to read: an idle loop adds no trims over several intervals; a request brings one."""
    h = Harness()
    try:
        actor = h.start(RiskActor, "risk")
        heap = actor.heap_trim
        assert heap is not None
        stub = _StubTrim()
        heap._trim = stub  # the real glibc trim replaced: counted, not run
        h.pump(lambda: stub.calls >= 1, timeout_s=10 * TRIM_EVERY_S, what="the first trim")
        h.pump_for(0.1)  # the turns of the start-up (READY, the peers' connects) settle
        idle_at = stub.calls
        turns = actor.busy_turns
        h.pump_for(3 * TRIM_EVERY_S)
        assert actor.busy_turns == turns, "an idle loop's turns had nothing to read"
        assert stub.calls <= idle_at + 1  # at most the tick after the start-up's turns
        idle_at = stub.calls
        h.pump_for(2 * TRIM_EVERY_S)
        assert stub.calls == idle_at
        Client(h, "risk").send(GetPositions())
        h.pump(lambda: actor.busy_turns > turns, what="the request's turn")
        h.pump(lambda: stub.calls > idle_at, timeout_s=10 * TRIM_EVERY_S, what="a trim")
    finally:
        h.close()
