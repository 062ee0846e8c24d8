"""The heartbeat and the stops file (`actors.runtime.operator_stops`): a venue whose connector
an operator stopped is excused (no outage, no kill-switch), but one whose connector the
supervisor gave up on (`gave_up`: its state corrupt, or over its restart budget) is not: its
silence is an outage and engages the kill-switch after the tolerance, as ever."""

from __future__ import annotations

import time

from actors.runtime.operator_stops import OperatorStop, write_stops
from protocol.paths import operator_stops_path
from tests.actor_stubs import Harness
from tests.position_heartbeat.test_actor import OUTAGE_S, start  # `h`: the conftest


def _record(h: Harness, gave_up: str | None) -> None:
    stop = OperatorStop("connector.simB", "why", time.time(), "simB", gave_up=gave_up)
    write_stops(operator_stops_path(h.cfg.runtime_path), {"connector.simB": stop})


def test_a_venue_stopped_by_an_operator_is_excused(h: Harness) -> None:
    """The safety net's counterpart: a deliberate stop, silent well past the tolerance, is
    no outage (what the gave-up case below must not inherit)."""
    actor, risk = start(h)
    h.pump(lambda: actor.beats >= 1)
    _record(h, gave_up=None)
    h.connectors["simB"].mode = "silent"
    h.pump_for(OUTAGE_S * 3)
    assert risk.commands == [] and actor.outage.missed_count("simB") == 0


def test_a_venue_whose_connector_the_supervisor_gave_up_on_is_an_outage(h: Harness) -> None:
    """`gave_up` in the stops file (the OMS refuses the venue's orders): the heartbeat still
    asks the venue, counts the missed answers, and engages `connector_outage` after the
    tolerance: a connector given up on is not deliberately offline."""
    actor, risk = start(h)
    h.pump(lambda: actor.beats >= 1)
    _record(h, gave_up="state_corrupt")
    h.connectors["simB"].mode = "silent"  # no connector process answers
    h.pump(lambda: actor.outage.missed_count("simB") >= 2, what="missed beats")
    h.pump(lambda: risk.commands, timeout_s=3.0, what="engage request")
    assert risk.commands[0].reason.startswith("connector_outage: simB")
    assert actor.heartbeat_info()["stopped_venues"] == []  # not shown as an operator's stop
