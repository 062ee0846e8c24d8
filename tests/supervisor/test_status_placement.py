"""`status` across hosts: the core lists every venue with its host group, an edge venue
with the link to its edge (unknown before the link actor reports); an edge lists only its
own venues."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import structlog

from actors.supervisor.operator_stop import OperatorStops
from actors.supervisor.status_data import system_status
from protocol.config import parse_config
from tests.supervisor.test_operator_stop import _child, _running

CFG = parse_config(
    {
        "link": {"bind": "tcp://*:7100", "connect": "tcp://c:7100", "allow_plaintext": True},
        "venues": [{"name": "simA", "host_group": "edge-a"}, {"name": "simB"}],
    }
)


def _sup(tmp_path: Path, group: str, link_info: dict[str, Any] | None) -> SimpleNamespace:
    children = {}
    if link_info is not None:
        link = _running(_child("link"))
        link.heard(0.0, 0.0, link_info)
        children["link"] = link
    stops = OperatorStops(
        children, tmp_path, lambda c, r: None, lambda c: None, lambda c: None,
        structlog.get_logger(),
    )  # fmt: skip
    local = "simB" if group == "core" else "simA"
    board = {local: {"state": "CONNECTED", "detail": ""}}
    return SimpleNamespace(
        children=children, order=list(children), started_at=0.0, metrics_url="",
        state_path=tmp_path, kill_switch_path=tmp_path / "ks.json", operator_stops=stops,
        venues=SimpleNamespace(view=lambda: board), overrides={"host_group": group}, cfg=CFG,
    )  # fmt: skip


def test_core_lists_edge_venues_with_their_link(tmp_path: Path) -> None:
    info = {"link": {"edge-a": {"state": "up", "rtt_ms": 0.4, "heard_s_ago": 0.1}}}
    venues = system_status(_sup(tmp_path, "core", info))["venues"]
    assert venues["simB"] == {"state": "CONNECTED", "detail": "", "host_group": "core"}
    assert venues["simA"]["state"] == "remote (link up)"
    assert venues["simA"]["host_group"] == "edge-a" and venues["simA"]["link"]["rtt_ms"] == 0.4
    early = system_status(_sup(tmp_path, "core", {}))["venues"]
    assert early["simA"]["state"] == "remote (link unknown)"


def test_an_edge_lists_only_its_own_venues(tmp_path: Path) -> None:
    info = {"link": {"core": {"state": "up", "rtt_ms": 0.4, "heard_s_ago": 0.1}}}
    st = system_status(_sup(tmp_path, "edge-a", info))
    assert st["host_group"] == "edge-a"
    assert st["venues"] == {"simA": {"state": "CONNECTED", "detail": "", "host_group": "edge-a"}}
