"""The heartbeat actor in the test process against stub connectors, OMS and risk: metrics and
snapshots on every beat, divergence for N beats engages the kill-switch, a short gap does not,
an outage beyond the tolerance does, and the engage request is re-sent until risk confirms."""

from __future__ import annotations

import time
from decimal import Decimal

from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from actors.position_heartbeat.actor import HeartbeatActor
from protocol.codec import Envelope
from protocol.domain import MAX_REASON_CHARS
from protocol.messages import ExecCut, KillSwitchCommand, KillSwitchState, Message, PositionView
from tests.actor_stubs import Harness, Stub
from tests.position_heartbeat.beating import beating

D = Decimal
BEATS = 3
INTERVAL_S = 0.05
OUTAGE_S = 0.4


class RiskStub:
    def __init__(self, h: Harness) -> None:
        self.answering = True
        self.stub: Stub = h.add_stub("risk", self._answer)

    def _answer(self, env: Envelope) -> Message | None:
        if not self.answering or not isinstance(env.body, KillSwitchCommand):
            return None
        return KillSwitchState(engaged=True, reason=env.body.reason, source=env.body.source)

    @property
    def commands(self) -> list[KillSwitchCommand]:
        return self.stub.bodies(KillSwitchCommand)


def pos(venue: str, symbol: str, qty: int) -> PositionView:
    return PositionView(venue=venue, symbol=symbol, qty=D(qty))


def start(h: Harness) -> tuple[HeartbeatActor, RiskStub]:
    risk = RiskStub(h)
    actor = h.start(HeartbeatActor, "heartbeat")
    assert isinstance(actor, HeartbeatActor)
    return actor, risk


def sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def engages_sent(actor: HeartbeatActor) -> list[str]:
    """The engage requests the actor sends, counted where they are sent."""
    sent: list[str] = []
    real = actor._send_engage

    def send(key: str, reason: str) -> None:
        sent.append(key)
        real(key, reason)

    actor._send_engage = send  # type: ignore[method-assign]
    return sent


def test_agreeing_positions_set_metrics_and_stream_snapshots(h: Harness) -> None:
    """Every beat asks each connector and the OMS; positions that agree set the venue's
    position gauges and last-heartbeat time, stream a `position_snapshot` per venue, and
    never ask for the kill-switch."""
    h.connectors["simA"].positions = [pos("simA", "HB1", 7)]
    h.oms.positions = [pos("simA", "HB1", 7)]
    actor, risk = start(h)
    started = time.time()
    h.pump(lambda: actor.beats >= BEATS + 2, what="beats")
    assert sample("tradepulse_open_positions", venue="simA", symbol="HB1") == 7
    for venue in ("simA", "simB"):
        assert (sample("tradepulse_last_heartbeat_timestamp_seconds", venue=venue) or 0) >= started
        assert sample("tradepulse_position_divergence", venue=venue) == 0
    snaps = h.pump(lambda: h.oms.stream_events("position_snapshot"), what="snapshots")
    first = next(s.data for s in snaps if s.data["venue"] == "simA")
    assert first["venue_positions"] == {"HB1": "7"} and first["oms_positions"] == {"HB1": "7"}
    assert first["diff"] == {} and first["latency_s"] >= 0
    assert risk.commands == []


def test_answers_shown_but_not_compared_leave_the_compared_time_where_it_was(
    h: Harness,
) -> None:
    """A venue whose every answer names no consistent cut (a ccxt balance read while fills
    kept arriving: shown, compared by no one) answers every beat, so its last-heartbeat time
    moves, but a real divergence there would go unseen: its compared time stays at the
    heartbeat's start (the PositionsNotCompared alert) while the other venue's moves, until
    an answer is compared again."""
    compared = "tradepulse_position_compared_timestamp_seconds"
    h.connectors["simB"].positions = [pos("simB", "HB6", 4)]  # the OMS has none: a diff
    h.connectors["simB"].cut = ExecCut(connector_epoch=1, exec_seq=3, oms_epoch=None)
    before = time.time()
    actor, risk = start(h)
    started = time.time()
    h.pump(lambda: actor.beats >= BEATS + 2, what="beats")
    assert before <= (sample(compared, venue="simB") or 0) <= started
    assert (sample(compared, venue="simA") or 0) > started
    assert (sample("tradepulse_last_heartbeat_timestamp_seconds", venue="simB") or 0) > started
    assert risk.commands == [] and actor.divergence.consecutive("simB") == 0
    h.connectors["simB"].cut = None  # compared again (as of the OMS's current view)
    h.pump(lambda: (sample(compared, venue="simB") or 0) > started, what="compared")
    assert sample("tradepulse_position_divergence", venue="simB") == 4


def test_answers_compared_by_no_one_leave_the_compared_time_where_it_was(h: Harness) -> None:
    """No OMS answer (`oms_missing`) and an unseeded ledger: answered every beat (the
    last-heartbeat time moves), compared never (the compared time stays)."""
    compared = "tradepulse_position_compared_timestamp_seconds"
    h.connectors["simB"].source = "ledger_unseeded"
    h.oms.answering = False
    actor, _ = start(h)
    started = time.time()
    h.pump(lambda: actor.beats >= BEATS + 2, what="beats")
    for venue in ("simA", "simB"):
        assert (sample(compared, venue=venue) or 0) <= started
        assert (sample("tradepulse_last_heartbeat_timestamp_seconds", venue=venue) or 0) > started
    h.oms.answering = True  # simA compared again; simB's ledger still unseeded
    h.pump(lambda: (sample(compared, venue="simA") or 0) > started, what="simA compared")
    h.pump(lambda: actor.beats >= BEATS * 2 + 4, what="beats")
    assert (sample(compared, venue="simB") or 0) <= started


def test_an_answer_at_a_cut_the_oms_has_no_view_at_is_not_compared(h: Harness) -> None:
    """A fresh answer naming a cut the OMS cannot view at (it restarted, or the cut is
    older than its log): shown, not compared, the compared time stays; once the OMS
    answers at the cut, compared there (the compared time moves)."""
    compared = "tradepulse_position_compared_timestamp_seconds"
    h.connectors["simB"].positions = [pos("simB", "HB7", 2)]
    h.connectors["simB"].cut = ExecCut(connector_epoch=1, exec_seq=3, oms_epoch=1)
    actor, risk = start(h)
    started = time.time()
    h.pump(lambda: actor.beats >= BEATS + 2, what="beats")
    assert (sample(compared, venue="simB") or 0) <= started
    assert risk.commands == [] and actor.divergence.consecutive("simB") == 0
    h.oms.positions_at_cut = [pos("simB", "HB7", 2)]
    h.pump(lambda: (sample(compared, venue="simB") or 0) > started, what="compared at the cut")
    assert sample("tradepulse_position_divergence", venue="simB") == 0


def test_a_heartbeat_restart_does_not_reset_a_never_compared_venue(h: Harness) -> None:
    """A venue never compared (its answers name no consistent cut) must not look compared
    because the heartbeat restarted: each restart would give it another 300 s before
    PositionsNotCompared, so a heartbeat restarted more often never alerts (every 4 min
    stays under ActorFlapping's 3 in 10 min, and operator restarts are not counted)."""
    compared = "tradepulse_position_compared_timestamp_seconds"
    h.connectors["simB"].cut = ExecCut(connector_epoch=1, exec_seq=3, oms_epoch=None)
    actor, _ = start(h)
    h.pump(lambda: actor.beats >= 2, what="beats")
    first = sample(compared, venue="simB")
    actor = h.start(HeartbeatActor, "heartbeat")  # the supervisor restarts it
    assert isinstance(actor, HeartbeatActor)
    h.pump(lambda: actor.beats >= 2, what="beats after the restart")
    assert sample(compared, venue="simB") == first


def test_divergence_for_n_beats_engages_the_kill_switch(h: Harness) -> None:
    """A venue position the OMS does not have (a fill it never got), beat after beat, engages
    the kill-switch (`position_divergence`) on the Nth beat."""
    h.connectors["simB"].positions = [pos("simB", "HB2", 30)]
    actor, risk = start(h)
    h.pump(lambda: risk.commands, what="engage request")
    assert actor.beats == BEATS
    cmd = risk.commands[0]
    assert cmd.action == "engage" and cmd.source == "heartbeat"
    assert cmd.reason.startswith("position_divergence: simB HB2 venue 30 oms 0")
    assert sample("tradepulse_position_divergence", venue="simB") == 30
    assert sample("tradepulse_open_positions", venue="simB", symbol="HB2") == 30
    h.pump(lambda: actor.beats >= BEATS + 3)
    assert len(risk.commands) == 1  # once per episode


def test_transient_difference_is_not_escalated(h: Harness) -> None:
    """A difference shorter than N beats (a fill on its way to the OMS) engages nothing."""
    h.connectors["simA"].positions = [pos("simA", "HB3", 5)]
    actor, risk = start(h)
    h.pump(lambda: actor.beats >= BEATS - 1)
    h.oms.positions = [pos("simA", "HB3", 5)]  # the OMS caught up
    h.pump(lambda: actor.beats >= BEATS + 3)
    assert risk.commands == []
    assert actor.divergence.consecutive("simA") == 0


def test_short_gap_does_not_halt_trading(h: Harness) -> None:
    """A connector answering "venue down" for a few beats (a normal reconnect, shorter than
    the outage tolerance) is logged as missed and alerted, but the kill-switch stays off; the
    gauge of its last heartbeat stops moving meanwhile."""
    actor, risk = start(h)
    h.pump(lambda: actor.beats >= 1)
    h.connectors["simA"].mode = "down"
    h.pump(lambda: actor.outage.missed_count("simA") >= 3, what="missed beats")
    frozen = sample("tradepulse_last_heartbeat_timestamp_seconds", venue="simA")
    h.connectors["simA"].mode = "done"
    h.pump(lambda: actor.outage.missed_count("simA") == 0, what="recovered")
    assert risk.commands == []
    assert (sample("tradepulse_last_heartbeat_timestamp_seconds", venue="simA") or 0) > (
        frozen or 0
    )


def test_outage_beyond_the_tolerance_engages_the_kill_switch(h: Harness) -> None:
    """A connector silent for longer than `oms.outage_tolerance_s` engages the kill-switch
    (`connector_outage`), asked for until risk confirms and not after."""
    actor, risk = start(h)
    sent = engages_sent(actor)
    h.pump(lambda: actor.beats >= 1)
    h.connectors["simB"].mode = "silent"
    # the outage runs from simB's last good beat, which on a loaded machine may be before
    # it fell silent (a late answer is a missed beat): the engage is judged from there
    now = h.now()
    last_ok = now - actor.outage.age_s("simB", now)
    h.pump(lambda: risk.commands, timeout_s=3.0, what="engage request")
    assert h.now() - last_ok >= OUTAGE_S - INTERVAL_S
    cmd = risk.commands[0]
    assert cmd.reason.startswith("connector_outage: simB") and cmd.source == "heartbeat"
    # a beat passing before risk's confirmation arrives (a loaded machine) re-sends the same
    # request; once confirmed, nothing more is sent (counted where it is sent: a re-send
    # sent just before the confirmation came can still reach risk after it)
    h.pump(lambda: not actor._engage_pending, what="confirmed")
    count = len(sent)
    h.pump_for(0.2)
    assert len(sent) == count
    assert all(c.reason == cmd.reason for c in risk.commands)


def test_engage_request_is_resent_until_risk_confirms(h: Harness) -> None:
    """While risk does not answer (restarting), the engage request goes out again every beat;
    once risk confirms it stops."""
    h.connectors["simA"].positions = [pos("simA", "HB4", 1)]
    actor, risk = start(h)
    risk.answering = False
    h.pump(lambda: len(risk.commands) >= 3, what="re-sent engage requests")
    assert all(c.reason.startswith("position_divergence: simA") for c in risk.commands)
    risk.answering = True
    h.pump(lambda: not actor._engage_pending, what="confirmed")
    count = len(risk.commands)
    h.pump_for(0.2)
    assert len(risk.commands) == count


def test_no_oms_answer_means_no_comparison(h: Harness) -> None:
    """If the OMS does not answer, the beat still records the venue (its gauges move) but
    makes no divergence decision."""
    h.connectors["simA"].positions = [pos("simA", "HB5", 9)]
    h.oms.answering = False
    actor, risk = start(h)
    h.pump(lambda: actor.beats >= BEATS + 2)
    assert risk.commands == []
    assert actor.divergence.consecutive("simA") == 0
    assert sample("tradepulse_open_positions", venue="simA", symbol="HB5") == 9


def test_an_unseeded_ledger_is_not_compared_but_warned(h: Harness) -> None:
    """A connector whose fill ledger missed earlier fills (`ledger_unseeded`): its answer
    counts as an answer (no outage), is never compared (no kill-switch on the difference
    it cannot know about), and each such beat warns (`heartbeat_ledger_unseeded`). A
    seeded ledger ("ledger") is compared like venue positions."""
    h.connectors["simB"].positions = [pos("simB", "HB3", 5)]
    h.connectors["simB"].source = "ledger_unseeded"
    h.oms.positions = [pos("simB", "HB3", 40)]
    actor, risk = start(h)
    with capture_logs() as logs:
        h.pump(lambda: actor.beats >= BEATS + 3, what="beats")
    assert risk.commands == []
    warned = [e for e in logs if e["event"] == "heartbeat_ledger_unseeded"]
    assert warned and warned[0]["venue"] == "simB" and warned[0]["diff"] == {"HB3": "-35"}
    h.connectors["simB"].source = "ledger"
    h.pump(lambda: risk.commands, what="engage request")
    assert risk.commands[0].reason.startswith("position_divergence: simB HB3 venue 5 oms 40")


def test_a_divergence_over_many_symbols_engages_with_a_bounded_reason(h: Harness) -> None:
    """50 symbols diverging at once (the case that matters most): the engage reaches risk
    with a reason within the kill-switch's bound, naming a few symbols and how many more.
    Before: the reason grew past 256 characters, building the command raised inside the
    reply callback, the heartbeat crashed at every engage and risk got nothing (found by
    review)."""
    h.connectors["simB"].positions = [pos("simB", f"SYMBOL{i:02d}", 1000 + i) for i in range(50)]
    actor, risk = start(h)
    h.pump(lambda: risk.commands, what="engage request")
    cmd = risk.commands[0]
    assert cmd.action == "engage" and len(cmd.reason) <= MAX_REASON_CHARS
    assert "position_divergence: simB SYMBOL00" in cmd.reason and "+47 more symbols" in cmd.reason


def test_a_venue_out_of_session_is_logged_at_info_on_change_and_every_nth_beat() -> None:
    """Overnight (the connector answers OUT_OF_SESSION every beat) the heartbeat does not
    write an info line per beat: the first beat out of session is at info, then one every
    `log_every_n` beats (with the quiet count), the rest at debug; no outage counted."""
    with beating(INTERVAL_S, log_every_n=5, oms={"outage_tolerance_s": OUTAGE_S}) as harness:
        harness.connectors["simA"].mode = "closed"
        actor, risk = start(harness)
        with capture_logs() as logs:
            first = actor.beats
            harness.pump(lambda: actor.beats >= first + 16, what="beats")
        beats = actor.beats - first
        info = [
            e for e in logs if e["event"] == "heartbeat_out_of_session" and e["log_level"] == "info"
        ]
        assert 2 <= len(info) <= beats // 5 + 2, (len(info), beats)
        assert [e["quiet_beats"] for e in info[1:]] == [4] * (len(info) - 1)
        assert risk.commands == []
