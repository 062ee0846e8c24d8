"""`status` while the OMS has no process (between restarts): the dead incarnation's intake
view is gone with it (`Child.exited` clears its info), and status shows the persisted
pauses (`<state>/intake.json`, what the next OMS loads) instead."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import structlog

from actors.oms.intake_state import IntakePauses, Pause, save_pauses
from actors.supervisor.operator_stop import OperatorStops
from actors.supervisor.status_data import system_status
from protocol.paths import intake_state_path
from tests.supervisor.test_operator_stop import _child, _running


def _sup(tmp_path: Path, oms_info: dict[str, object]) -> SimpleNamespace:
    oms = _running(_child("oms", critical=True))
    oms.heard(0.0, 0.0, oms_info)
    children = {"oms": oms}
    stops = OperatorStops(
        children, tmp_path, lambda c, r: None, lambda c: None, lambda c: None,
        structlog.get_logger(),
    )  # fmt: skip
    return SimpleNamespace(
        children=children, order=["oms"], started_at=0.0, metrics_url="", state_path=tmp_path,
        kill_switch_path=tmp_path / "kill_switch.json", operator_stops=stops,
        venues=SimpleNamespace(view=dict), overrides={}, cfg=SimpleNamespace(venues=[]),
    )  # fmt: skip


def test_status_shows_the_persisted_pauses_once_the_oms_exits(tmp_path: Path) -> None:
    live = {"intake": "open", "intake_pauses": {"global": None, "venues": {}}, "queues": {}}
    sup = _sup(tmp_path, live)
    assert system_status(sup)["intake"] == "open"
    # while it is down, an operator pauses simA (the supervisor writes the file)
    save_pauses(
        intake_state_path(tmp_path),
        IntakePauses(venues={"simA": Pause(reason="venue incident", since=1.0, by="alice")}),
    )
    sup.children["oms"].exited(-9, 5.0, shutting_down=False)
    status = system_status(sup)
    assert status["intake"] == "down (the OMS is not running)"
    assert status["intake_pauses"]["venues"]["simA"]["reason"] == "venue incident"
    assert status["queues"] == {}
