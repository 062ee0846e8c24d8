"""The supervisor's start-up (`Supervisor._start_next`, `_leave_start_queue`, the real
methods over a stand-in of the daemon) when a simulator process runs several venues
(`sim.runs_in`): whatever becomes of that process before its READY (an operator's stop,
DOWN over its restart budget, restarts), every connector waiting for it goes on, once,
and the system gets to `system_ready`. No processes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from actors.supervisor.daemon import Supervisor
from actors.supervisor.restart_policy import ChildState, child_specs, start_plan
from protocol.config import load_config
from tests.log_stub import RecordingLog

SIM = '[venues.sim]\nreference_prices = { AAPL = "100" }\n'
LINK = '[link]\nbind = "tcp://*:7100"\nconnect = "tcp://core:7100"\nkeys_dir = "k"\n'


class _Child:
    def __init__(self, cid: str) -> None:
        self.id, self.state, self.held = cid, ChildState.STOPPED, False


class _Daemon:
    """What `_start_next` and `_leave_start_queue` use of the Supervisor; spawns recorded."""

    _start_next = Supervisor._start_next
    _leave_start_queue = Supervisor._leave_start_queue

    def __init__(self, cfg_text: str, tmp: Path, group: str = "core") -> None:
        (tmp / "c.toml").write_text(cfg_text)
        specs = child_specs(load_config(tmp / "c.toml"), group)
        self.children = {s.id: _Child(s.id) for s in specs}
        self.spawned: list[str] = []
        self.log, self.metrics_url = RecordingLog(), ""
        self._all_ready_fired, self._on_all_ready = False, None
        at_once, self._start_queue = start_plan(specs)
        for cid in at_once:
            self._spawn(self.children[cid])
        self._start_next()

    def _spawn(self, child: _Child) -> None:
        child.state = ChildState.STARTING
        self.spawned.append(child.id)

    def status(self) -> dict[str, Any]:
        return {}

    def ready(self, *cids: str) -> None:
        for cid in cids:
            self.children[cid].state = ChildState.RUNNING
            self._leave_start_queue(self.children[cid])  # type: ignore[arg-type]

    def gone(self, cid: str, *, held: bool) -> None:
        """An operator's stop (held) before its READY, or DOWN over its budget."""
        child = self.children[cid]
        child.held, child.state = held, ChildState.STOPPED if held else ChildState.DOWN
        self._leave_start_queue(child)  # type: ignore[arg-type]

    @property
    def system_ready(self) -> bool:
        return "system_ready" in self.log.names()


def _venues(*names: str, runs_in: dict[str, str], extra: str = "") -> str:
    text = ""
    for name in names:
        text += f'[[venues]]\nname = "{name}"\n{extra}{SIM}'
        text += f'runs_in = "{runs_in[name]}"\n' if name in runs_in else ""
    return text


@pytest.mark.parametrize("held", [True, False], ids=["operator-stop", "down"])
def test_a_shared_sim_gone_before_ready_lets_every_waiting_connector_start(
    short_tmp: Path, held: bool
) -> None:
    """simB and simC run in simA's process, simD in its own. venuesim.simA is stopped by an
    operator (or goes DOWN) before its READY: connector.simA, .simB and .simC start then,
    each once, connector.simD after its own sim; the heartbeat once every chain is through."""
    runs_in = {"simB": "simA", "simC": "simA"}
    d = _Daemon(_venues("simA", "simB", "simC", "simD", runs_in=runs_in), short_tmp)
    assert d.spawned == ["venuesim.simA", "venuesim.simD", "risk"]
    d.ready("risk", "oms", "venuesim.simD")
    assert d.spawned[-2:] == ["oms", "connector.simD"]
    d.gone("venuesim.simA", held=held)
    shared = ["connector.simA", "connector.simB", "connector.simC"]
    assert d.spawned[-3:] == shared and len(d.spawned) == len(set(d.spawned))
    d.ready("connector.simD", *shared[:2])
    assert not d.system_ready and "heartbeat" not in d.spawned
    d.ready(shared[2])
    assert d.spawned[-1] == "heartbeat" and not d.system_ready
    d.ready("heartbeat")
    assert d.system_ready


def test_a_shared_sim_restarting_before_ready_holds_its_connectors_only(
    short_tmp: Path,
) -> None:
    """venuesim.simA (simB's process too) crash-loops before its READY (BACKOFF, then
    STARTING again): connector.simA and .simB wait; the rest of the start goes on."""
    d = _Daemon(_venues("simA", "simB", "simC", runs_in={"simB": "simA"}), short_tmp)
    d.children["venuesim.simA"].state = ChildState.BACKOFF
    d.ready("risk", "oms", "venuesim.simC", "connector.simC")
    assert not {"connector.simA", "connector.simB"} & set(d.spawned)
    d.ready("venuesim.simA")
    assert d.spawned[-2:] == ["connector.simA", "connector.simB"]


def test_with_a_link_a_shared_sim_is_one_step_of_the_one_chain(short_tmp: Path) -> None:
    """An edge (a link: one chain) with simB in simA's process: the chain names
    venuesim.simA once; stopped by an operator before its READY, the chain goes on to both
    connectors."""
    text = LINK + _venues("simA", "simB", runs_in={"simB": "simA"}, extra='host_group = "e"\n')
    d = _Daemon(text, short_tmp, group="e")
    assert d._start_queue.stages == [[["link", "venuesim.simA", "connector.simA",
                                       "connector.simB"]]]  # fmt: skip
    d.ready("link")
    d.gone("venuesim.simA", held=True)
    assert d.spawned[-1] == "connector.simA"
    d.ready("connector.simA")
    assert d.spawned[-1] == "connector.simB"
    d.ready("connector.simB")
    assert d.system_ready
