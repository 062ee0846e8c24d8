"""The heartbeat's two clocks, against stub connectors, OMS and risk: the OMS is asked every
beat (`heartbeat.interval_s`), each venue only every `venue_positions_interval_s` (a FIX AN
per request); between venue requests a beat compares the last venue answer, which never
counts towards a divergence; a fresh divergence is confirmed on the next beats and engages
after N of them; an outage is counted in unanswered venue requests."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from actors.position_heartbeat.actor import HeartbeatActor
from protocol.messages import GetPositions
from tests.actor_stubs import Harness
from tests.position_heartbeat.beating import beating
from tests.position_heartbeat.test_actor import RiskStub, engages_sent, pos, start

D = Decimal
BEATS = 3
INTERVAL_S = 0.05
VENUE_EVERY_S = 0.5  # ten beats
OUTAGE_S = 1.0  # two venue intervals (the config's lower bound)
SLACK_S = 0.5


@pytest.fixture
def h() -> Iterator[Harness]:
    with beating(
        INTERVAL_S,
        venue_positions_interval_s=VENUE_EVERY_S,
        divergence_beats=BEATS,
        missing_intervals=2,
        oms={"outage_tolerance_s": OUTAGE_S},
        clock=True,  # answer windows of 0.8 x INTERVAL_S: on the wall clock, load missed them
    ) as harness:
        yield harness


def venue_requests(h: Harness, venue: str) -> int:
    return len(h.connectors[venue].stub.bodies(GetPositions))


def engaged_once(h: Harness, actor: HeartbeatActor, risk: RiskStub) -> None:
    """One engagement: a beat passing before risk's confirmation arrives (a loaded machine)
    re-sends the same request (the same reason), and once confirmed nothing more is sent.
    (Counted where sent: a re-send sent just before the confirmation can reach risk after
    it; `len(risk.commands) == 1` failed so under load.)"""
    sent = engages_sent(actor)
    h.pump(lambda: not actor._engage_pending, what="confirmed")
    count, beat = len(sent), actor.beats
    h.pump(lambda: actor.beats >= beat + 5, what="five beats after the confirmation")
    assert len(sent) == count
    assert all(c.reason == risk.commands[0].reason for c in risk.commands)


def last_heartbeat(venue: str) -> float:
    return (
        REGISTRY.get_sample_value("tradepulse_last_heartbeat_timestamp_seconds", {"venue": venue})
        or 0.0
    )


def test_venues_are_asked_at_their_own_interval_the_oms_every_beat(h: Harness) -> None:
    """Over 40 beats (2 s) each venue gets at most one position request per venue interval
    (+1 for the first beat), not one per beat; the OMS is asked every beat, and the
    last-heartbeat gauge keeps moving between venue requests (liveness)."""
    h.connectors["simA"].positions = [pos("simA", "IV1", 4)]
    h.oms.positions = [pos("simA", "IV1", 4)]
    actor, risk = start(h)
    started = h.now()
    h.pump(lambda: actor.beats >= 2, what="two beats")
    first = last_heartbeat("simA")
    h.pump(lambda: actor.beats >= 40, timeout_s=10.0, what="40 beats")
    # what the actor sent and what the venues and the OMS received agree once none is in
    # flight (one OMS request a beat; counted without the wait, two were on their way once)
    h.pump(
        lambda: (
            actor.venue_requests == venue_requests(h, "simA") + venue_requests(h, "simB")
            and len(h.oms.stub.bodies(GetPositions)) == actor.beats
        ),
        what="every venue and OMS request received",
    )
    elapsed = h.now() - started
    bound = int(elapsed / VENUE_EVERY_S) + 1
    for venue in ("simA", "simB"):
        assert 2 <= venue_requests(h, venue) <= bound, (venue_requests(h, venue), bound)
    assert len(h.oms.stub.bodies(GetPositions)) >= 40
    assert last_heartbeat("simA") > first
    snaps = [s.data for s in h.oms.stream_events("position_snapshot") if s.data["venue"] == "simA"]
    assert any(s["venue_age_s"] > 0 for s in snaps)  # compared against an older answer
    # a beat whose OMS answer came too late (a loaded machine) compares nothing: diff None
    compared = [s for s in snaps if s["diff"] is not None]
    assert len(compared) >= len(snaps) // 2 and all(s["diff"] == {} for s in compared)
    assert risk.commands == []


def test_an_answer_older_than_the_oms_view_never_counts_as_a_divergence(h: Harness) -> None:
    """A fill after the venue's last answer: the OMS has it at once, the venue's (old)
    answer does not. The beats until the next venue request show the difference, but it
    never counts (no escalation however many beats); the next fresh answer agrees."""
    h.connectors["simA"].positions = [pos("simA", "IV2", 5)]
    h.oms.positions = [pos("simA", "IV2", 5)]
    actor, risk = start(h)
    h.pump(lambda: venue_requests(h, "simA") >= 1 and actor.beats >= 2, what="first answer")
    asked = venue_requests(h, "simA")
    h.connectors["simA"].positions = [pos("simA", "IV2", 8)]  # the venue filled 3 more
    h.oms.positions = [pos("simA", "IV2", 8)]  # and the OMS applied the fill
    beat = actor.beats
    h.pump(lambda: actor.beats >= beat + BEATS + 2, what="beats on the old answer")
    assert venue_requests(h, "simA") == asked  # still between two venue requests
    stale = [
        s.data for s in h.oms.stream_events("position_snapshot")
        if s.data["venue"] == "simA" and s.data["beat"] > beat
    ]  # fmt: skip
    assert stale and all(s["venue_age_s"] > 0 for s in stale)
    # a beat whose OMS answer came too late (a loaded machine) compares nothing: diff None
    compared = [s for s in stale if s["diff"] is not None]
    assert compared and all(s["diff"] == {"IV2": "-3"} for s in compared)
    assert actor.divergence.consecutive("simA") == 0
    h.pump(lambda: venue_requests(h, "simA") > asked, what="the next venue request")

    def fresh() -> list[dict[str, Any]]:
        return [
            s.data for s in h.oms.stream_events("position_snapshot")
            if s.data["venue"] == "simA" and s.data["venue_age_s"] == 0 and s.data["beat"] > beat
        ]  # fmt: skip

    # its beat's snapshot waited for (a fixed 0.2 s of turns, none on a stalled process)
    h.pump(fresh, what="a beat on the fresh answer")
    assert actor.divergence.consecutive("simA") == 0 and risk.commands == []
    assert fresh()[0]["diff"] == {}


def test_a_fresh_divergence_is_confirmed_beat_by_beat_and_engages(h: Harness) -> None:
    """A fill the OMS never gets: the next venue request shows it, the following beats ask
    the venue again (not at its interval) and the Nth consecutive fresh divergent answer
    engages the kill-switch, within one venue interval and N beats; then the venue goes
    back to its interval."""
    h.connectors["simB"].positions = [pos("simB", "IV3", 2)]
    h.oms.positions = [pos("simB", "IV3", 2)]
    actor, risk = start(h)
    h.pump(lambda: venue_requests(h, "simB") >= 1 and actor.beats >= 2, what="first answer")
    h.connectors["simB"].positions = [pos("simB", "IV3", 12)]  # the fill the OMS never gets
    lost_at = h.now()
    asked = venue_requests(h, "simB")
    h.pump(lambda: risk.commands, timeout_s=5.0, what="engage request")
    assert h.now() - lost_at <= VENUE_EVERY_S + (BEATS + 1) * INTERVAL_S + SLACK_S
    assert risk.commands[0].reason.startswith("position_divergence: simB IV3 venue 12 oms 2")
    assert venue_requests(h, "simB") == asked + BEATS  # one per divergent beat
    assert actor.divergence.consecutive("simB") == BEATS
    engaged = venue_requests(h, "simB")
    beat = actor.beats
    h.pump(lambda: actor.beats >= beat + 5)
    assert venue_requests(h, "simB") == engaged  # back to the venue interval
    engaged_once(h, actor, risk)


def test_an_outage_counts_unanswered_venue_requests_and_engages_after_the_tolerance(
    h: Harness,
) -> None:
    """A silent connector: each unanswered venue request (not each beat) is a miss, the
    venue is asked again at its interval, and once no answer came for the tolerance the
    kill-switch engages (`connector_outage`), once."""
    actor, risk = start(h)
    h.pump(lambda: venue_requests(h, "simA") >= 1 and actor.beats >= 2, what="first answer")
    h.connectors["simA"].mode = "silent"
    silent_at = h.now()
    asked = venue_requests(h, "simA")
    h.pump(lambda: actor.outage.missed_count("simA") >= 1, timeout_s=3.0, what="first miss")
    beat = actor.beats
    h.pump(lambda: actor.beats >= beat + 5)
    assert actor.outage.missed_count("simA") == 1  # beats between requests are no misses
    h.pump(lambda: risk.commands, timeout_s=5.0, what="engage request")
    waited = h.now() - silent_at
    assert OUTAGE_S - VENUE_EVERY_S <= waited <= OUTAGE_S + VENUE_EVERY_S + SLACK_S, waited
    assert risk.commands[0].reason.startswith("connector_outage: simA")
    assert venue_requests(h, "simA") - asked <= waited / VENUE_EVERY_S + 1
    engaged_once(h, actor, risk)


def test_one_unanswered_venue_request_only_alerts(h: Harness) -> None:
    """A connector down across one venue request (a reconnect): one miss, no kill-switch,
    and the next request's answer recovers the venue."""
    actor, risk = start(h)
    h.pump(lambda: venue_requests(h, "simB") >= 1 and actor.beats >= 2, what="first answer")
    h.connectors["simB"].mode = "down"
    h.pump(lambda: actor.outage.missed_count("simB") >= 1, timeout_s=3.0, what="a miss")
    h.connectors["simB"].mode = "done"
    h.pump(lambda: actor.outage.missed_count("simB") == 0, timeout_s=3.0, what="recovered")
    assert risk.commands == []


STALL_S = 0.06  # more than the answer window, 0.8 x INTERVAL_S


def turn_with_stalls(h: Harness, actor: HeartbeatActor) -> None:
    """`h.turn`, but a turn that sends a venue request is followed by a stall of STALL_S
    (the machine gave no CPU to the stubs, other processes in production) and another turn
    of the actor alone, before the stubs read it: the order a loaded machine can produce."""
    sent = actor.venue_requests
    actor._iterate(max_wait_s=0.002)
    if actor.venue_requests > sent:
        time.sleep(STALL_S)  # the stall itself, not a wait for anything
        actor._iterate(max_wait_s=0.002)
    h.turn()


def test_a_stalled_machine_makes_no_answered_request_a_miss(h: Harness) -> None:
    """The harness's clock (`Harness(clock=True)`): every venue request is followed by a
    stall longer than its answer window before the stub reads it; each is answered, so
    none is a miss and nothing engages. (On the wall clock each timed out: the misses
    behind test_one_unanswered_venue_request_only_alerts's failures under CPU load.)"""
    actor, risk = start(h)
    with capture_logs() as logs:
        h.pump(lambda: actor.beats >= 2, what="two beats")
        asked = actor.venue_requests
        while actor.venue_requests < asked + 4:  # two more requests of each venue
            turn_with_stalls(h, actor)
        h.pump(lambda: h.in_flight() == 0, what="the last answers read")
    assert [e for e in logs if e["event"] == "heartbeat_missed"] == []
    fresh = [s for s in h.oms.stream_events("position_snapshot") if s.data["venue_age_s"] == 0]
    assert len(fresh) == actor.venue_requests  # each answer came in its window
    assert risk.commands == []
