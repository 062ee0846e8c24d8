"""The heartbeat at a consistent cut (actors/position_heartbeat/cut.py): a venue answer that
names its execution cut is compared with the OMS's positions as of that cut, so executions
in flight never count as a divergence at `position_tolerance = 0`, and a real one does."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from protocol.messages import ExecCut
from tests.actor_stubs import Harness
from tests.position_heartbeat.beating import beating
from tests.position_heartbeat.test_actor import BEATS, INTERVAL_S, pos, start

CUT = ExecCut(connector_epoch=7, exec_seq=41, since=40, oms_epoch=1)


@pytest.fixture
def h() -> Iterator[Harness]:
    with beating(INTERVAL_S, divergence_beats=BEATS, position_tolerance="0") as harness:
        yield harness


def test_executions_in_flight_never_count_when_the_venue_names_its_cut(h: Harness) -> None:
    """The venue reflects 10 (through execution 41); the OMS has applied two more fills
    since (12 now) but had 10 as of execution 41: no divergence, beat after beat. (Before
    the cut the heartbeat compared 10 with 12 and engaged the kill-switch.)"""
    h.connectors["simA"].positions = [pos("simA", "HB1", 10)]
    h.connectors["simA"].cut = CUT
    h.oms.positions = [pos("simA", "HB1", 12)]
    h.oms.positions_at_cut = [pos("simA", "HB1", 10)]
    actor, risk = start(h)
    h.pump(lambda: actor.beats >= 2 * BEATS + 2, what="beats")
    assert risk.commands == []
    assert actor.divergence.consecutive("simA") == 0


def test_a_real_divergence_at_the_cut_engages_at_tolerance_zero(h: Harness) -> None:
    """The OMS as of the venue's cut lacks one fill the venue reflects (a fill it never
    got): the kill-switch engages after `divergence_beats` beats."""
    h.connectors["simA"].positions = [pos("simA", "HB2", 10)]
    h.connectors["simA"].cut = CUT
    h.oms.positions = [pos("simA", "HB2", 10)]  # now: equal by chance of later fills
    h.oms.positions_at_cut = [pos("simA", "HB2", 9)]
    actor, risk = start(h)
    h.pump(lambda: risk.commands, what="engage request")
    assert risk.commands[0].reason.startswith("position_divergence: simA HB2 venue 10 oms 9")


def test_an_answer_without_a_consistent_cut_is_shown_not_counted(h: Harness) -> None:
    """A cut naming no OMS incarnation (the connector's wait for the OMS's acks ran out),
    or one the OMS has no view at: never counted towards a divergence."""
    h.connectors["simA"].positions = [pos("simA", "HB3", 10)]
    h.connectors["simA"].cut = CUT.model_copy(update={"oms_epoch": None})
    h.connectors["simB"].positions = [pos("simB", "HB3", 10)]
    h.connectors["simB"].cut = CUT  # the OMS stub answers NOT_READY at any cut
    actor, risk = start(h)
    h.pump(lambda: actor.beats >= 2 * BEATS + 2, what="beats")
    assert risk.commands == []
    assert actor.divergence.consecutive("simA") == actor.divergence.consecutive("simB") == 0
