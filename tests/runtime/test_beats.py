"""How often an actor beats to the supervisor (`actors.runtime.actor.beat_interval_s`)."""

from __future__ import annotations

from actors.runtime.actor import beat_interval_s
from protocol.config import SupervisorCfg


def test_an_actor_beats_once_per_interval_and_twice_inside_the_hang_limit() -> None:
    assert beat_interval_s(SupervisorCfg(heartbeat_interval_s=0.2, hang_missed_intervals=3)) == 0.2
    assert beat_interval_s(SupervisorCfg(heartbeat_interval_s=5.0, hang_missed_intervals=3)) == 0.2
    # a hang limit of one interval: a beat per interval would be killed by ordinary jitter
    one = SupervisorCfg(heartbeat_interval_s=0.2, hang_missed_intervals=1)
    assert beat_interval_s(one) == 0.1
