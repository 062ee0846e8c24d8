"""A `[heartbeat]` reload applied to the running heartbeat actor (`apply-config`)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from actors.position_heartbeat.actor import HeartbeatActor
from actors.runtime.live_config import apply_live
from protocol.codec import Envelope
from protocol.commands import ApplyConfig
from protocol.messages import KillSwitchCommand, KillSwitchState, Message, PositionView
from tests.actor_stubs import Harness
from tests.position_heartbeat.beating import beating

INTERVAL_S = 0.05


@pytest.fixture
def h() -> Iterator[Harness]:
    with beating(INTERVAL_S, divergence_beats=50, log_every_n=60) as harness:
        yield harness


def _reload(actor: HeartbeatActor, **changes: Any) -> None:
    values = actor.cfg.heartbeat.model_copy(update=changes).model_dump(mode="json")
    reply = apply_live(actor, ApplyConfig(section="heartbeat", values=values))
    assert reply.status == "ok", reply.reason


def test_lowering_divergence_beats_mid_divergence_engages_the_kill_switch(h: Harness) -> None:
    """A divergence at 3 beats of 50; the operator reloads `divergence_beats = 2`: the
    kill-switch is engaged at the next beat, once."""
    risk = h.add_stub("risk", _risk_answer)
    h.connectors["simB"].positions = [PositionView(venue="simB", symbol="HB9", qty=Decimal(7))]
    actor = h.start(HeartbeatActor, "heartbeat")
    assert isinstance(actor, HeartbeatActor)
    h.pump(lambda: actor.divergence.consecutive("simB") >= 3, what="a running divergence")
    _reload(actor, divergence_beats=2)
    h.pump(lambda: risk.bodies(KillSwitchCommand), what="engage after the reload")
    assert risk.bodies(KillSwitchCommand)[0].reason.startswith("position_divergence: simB")
    beats = actor.beats
    h.pump(lambda: actor.beats >= beats + 3)
    assert len(risk.bodies(KillSwitchCommand)) == 1


def test_log_every_n_reload_is_applied_to_the_beat_log(h: Harness) -> None:
    """`heartbeat.log_every_n` is live: after the reload a quiet venue logs at info every
    Nth beat of the new value."""
    h.add_stub("risk", _risk_answer)
    actor = h.start(HeartbeatActor, "heartbeat")
    assert isinstance(actor, HeartbeatActor)
    _reload(actor, log_every_n=2)
    assert actor.beatlog.every_n == 2
    gate = actor.beatlog
    assert [gate.observe("quiet", "same") is not None for _ in range(5)] == [
        True, False, True, False, True,
    ]  # fmt: skip


def _risk_answer(env: Envelope) -> Message | None:
    body = env.body
    if not isinstance(body, KillSwitchCommand):
        return None
    return KillSwitchState(engaged=True, reason=body.reason, source=body.source)
