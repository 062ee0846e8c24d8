"""Health and status in the core+edge topology (no processes: each side's status is a
hand-made reply): the core's status joins the edge's, and the deployment is healthy only
when both supervisors' actors run, the edge's venues are CONNECTED and reconciled at the
OMS, and the link is up at both ends."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.chaos.harness import ChaosOptions
from tests.chaos.system import ChaosSystem

LINK = {
    "bind": "tcp://10.201.1.1:7100",
    "connect": "tcp://127.0.0.1:7101",
    "allow_plaintext": True,
}


class _Canned(ChaosSystem):
    """A ChaosSystem whose own status is a canned reply (None: not answering)."""

    reply: dict[str, Any] | None = None

    def _own_status(self, timeout_s: float) -> dict[str, Any] | None:
        return self.reply


def _actor(actor_id: str, info: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"id": actor_id, "state": "running", "pid": 100, "info": info or {}}


def _link(peer: str, state: str = "up") -> dict[str, Any]:
    return _actor("link", {"link": {peer: {"state": state}}})


def _core_reply(link_state: str = "up") -> dict[str, Any]:
    venues = {"simA": "reconciled", "simB": "reconciled", "bx": "reconciled"}
    return {
        "actors": [
            _actor("risk"),
            _actor("oms", {"venues": venues, "intake": "open"}),
            _link("edge-a", link_state),
            _actor("heartbeat"),
            _actor("exchangesim.bx"),
            _actor("connector.bx"),
        ],
        "venues": {
            "simA": {"state": "remote (link up)"},
            "simB": {"state": "remote (link up)"},
            "bx": {"state": "CONNECTED"},
        },
        "kill_switch": {"engaged": False},
    }


def _edge_reply(link_state: str = "up", sim_b: str = "CONNECTED") -> dict[str, Any]:
    return {
        "actors": [
            _actor("venuesim.simA"),
            _actor("venuesim.simB"),
            _link("core", link_state),
            _actor("connector.simA"),
            _actor("connector.simB"),
        ],
        "venues": {"simA": {"state": "CONNECTED"}, "simB": {"state": sim_b}},
    }


@pytest.fixture
def core(tmp_path: Path) -> Iterator[_Canned]:
    overrides = ChaosOptions(topology="core+edge").config_overrides(link=LINK)
    root = Path(tempfile.mkdtemp(prefix="tph", dir="/tmp"))  # ipc paths must stay short
    try:
        sut = _Canned(root / "c", overrides, tmp_path / "core.log")
        sut.edge = _Canned(root / "e", overrides, tmp_path / "edge.log", host_group="edge-a")
        sut.reply, sut.edge.reply = _core_reply(), _edge_reply()
        yield sut
        sut.close_log()
        sut.edge.close_log()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_the_core_status_joins_the_edges_and_all_up_is_healthy(core: _Canned) -> None:
    """The edge's actors appear as `edge-a/<actor>` (its pids are what the nemesis signals),
    its venues' rows replace the core's `remote (link ...)` rows; everything up: healthy;
    the edge alone is healthy by its own rule (its venues, its link to the core)."""
    st = core.try_status()
    assert st is not None and st["edge"] is not None
    ids = [a["id"] for a in st["actors"]]
    assert "edge-a/connector.simA" in ids and "edge-a/link" in ids and "link" in ids
    assert st["venues"]["simA"]["state"] == "CONNECTED" and st["venues"]["bx"]["state"]
    assert core.healthy(st)
    assert core.edge is not None and core.edge.healthy(core.edge.reply or {})
    assert core.side_of("simA") is core.edge and core.side_of("bx") is core
    assert core.local_venues == ["bx"] and core.edge.local_venues == ["simA", "simB"]


@pytest.mark.parametrize(
    "breakage",
    ["edge_not_answering", "edge_link_down", "core_link_down", "edge_venue_down", "edge_actor"],
)
def test_any_part_of_the_edge_or_link_down_is_unhealthy(core: _Canned, breakage: str) -> None:
    """The edge's supervisor not answering, the link down at either end, a venue on the edge
    not CONNECTED, or an actor of the edge not running: not healthy (the nemesis waits for
    recovery, the settle phase for health)."""
    assert core.edge is not None
    if breakage == "edge_not_answering":
        core.edge.reply = None
    elif breakage == "edge_link_down":
        core.edge.reply = _edge_reply(link_state="down")
    elif breakage == "core_link_down":
        core.reply = _core_reply(link_state="down")
    elif breakage == "edge_venue_down":
        core.edge.reply = _edge_reply(sim_b="DISCONNECTED")
    else:
        edge = _edge_reply()
        edge["actors"][3] = {**edge["actors"][3], "state": "restarting", "pid": None}
        core.edge.reply = edge
    st = core.try_status()
    assert st is not None  # the core answers: the kill-switch is still sampled
    assert not core.healthy(st)
