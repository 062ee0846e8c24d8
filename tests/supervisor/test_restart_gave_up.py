"""`tradepulse restart` of a connector that gave up because its state is corrupt (the
control plane with a stub supervisor: tests/supervisor/test_control_plane.py)."""

from __future__ import annotations

import pytest

from actors.supervisor import control_plane
from actors.supervisor.restart_policy import ChildState
from protocol import commands as wire
from tests.supervisor.test_control_plane import Rig, rig  # noqa: F401  # the fixture

CONNECTOR = "connector.simA"


def test_risk_does_not_respawn_a_connector_whose_state_is_corrupt(
    rig: Rig,  # noqa: F811  # the fixture imported above
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the kill-switch engaged, risk restarts a connector that does not confirm its
    mass cancel, every `restart_cooldown_s`; one that gave up on corrupt state would be
    spawned into the same bytes each time (a `state_corrupt` line and a stderr line every
    10 s). Refused for risk; an operator's restart (after a repair) still starts it."""
    monkeypatch.setattr(
        control_plane, "operator_from_peer",
        lambda _addr: wire.OperatorId(uid=0, user="svc", pid=4321),
    )  # fmt: skip
    rig.host.pids = {4321: "risk"}
    rig.host.states[CONNECTOR] = ChildState.GAVE_UP
    by_risk = wire.Restart(actor=CONNECTOR, force=True, reason="mass cancel", override_stop=True)
    reply = rig.ask(by_risk)
    assert reply.status == "error" and "corrupt" in reply.reason, reply
    assert rig.host.restarts == []
    rig.host.pids = {}  # the operator's CLI
    assert rig.ask(wire.Restart(actor=CONNECTOR)).status == "ok"
    assert rig.host.restarts == [(CONNECTOR, False)]
