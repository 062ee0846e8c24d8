"""The supervisor records a connector it gives up on in the stops file (`gave_up`, what the
OMS reads to refuse the venue's orders) and removes the record on every path that spawns it
again: an operator `restart`, `start`, the backoff's respawn of one over its restart budget.
The real daemon's `_on_exit` / `_spawn` with a fake spawner (no process is started; the
process-group kill is a no-op), and `OperatorStops` alone for its edge cases."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import structlog

from actors.runtime.operator_stops import OperatorStop, StopsWatcher, parse_stops
from actors.runtime.process import EXIT_STATE_CORRUPT
from actors.supervisor import daemon, operator_stop
from actors.supervisor.daemon import Supervisor
from actors.supervisor.operator_stop import OperatorStops, realign
from actors.supervisor.restart_policy import ChildState
from protocol.codec import Envelope, Sender
from protocol.config import load_config
from protocol.messages import ActorHeartbeat, Ready
from protocol.paths import operator_stops_path
from tests.helpers import make_config, to_toml
from tests.supervisor.test_operator_stop import _child, _running

B = "connector.simB"


class _Spawner:
    def __init__(self) -> None:
        self.spawned: list[str] = []
        self._pid = 900_000

    def spawn(self, args: object) -> int:
        self.spawned.append(getattr(args, "actor_id", ""))
        self._pid += 1
        return self._pid

    def close(self) -> None:
        pass


@pytest.fixture
def sup(short_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Supervisor]:
    tmp_path = short_tmp  # ipc:// paths under the runtime dir
    monkeypatch.setattr(daemon, "kill_group", lambda *_a, **_k: None)  # no real process
    config = tmp_path / "c.toml"
    overrides = {"supervisor": {"restart": {"max_restarts": 1, "window_s": 60.0}}}
    config.write_text(to_toml(make_config(overrides=overrides)))
    cfg = load_config(config, state_dir=str(tmp_path / "st"), runtime_dir=str(tmp_path / "rt"))
    cfg.runtime_path.mkdir(parents=True)
    s = Supervisor(cfg, config_path=str(config), cold=False, overrides={})
    s.spawner = _Spawner()  # type: ignore[assignment]
    yield s
    s.ctx.destroy(linger=0)


def _exit(sup: Supervisor, actor: str, code: int) -> None:
    child = sup.children[actor]
    if child.pid is None:
        sup._spawn(child)
    assert child.pid is not None
    sup._on_exit(child, (code & 0xFF) << 8)  # a waitpid status of exit `code`


def _ready(sup: Supervisor, actor: str) -> None:
    child = sup.children[actor]
    assert child.pid is not None
    sup._on_ready(child, Ready(actor=actor, pid=child.pid), 1.0)


def _on_disk(sup: Supervisor) -> dict[str, object]:
    path = operator_stops_path(sup.cfg.runtime_path)
    if not path.exists():  # a fresh run: nothing written yet
        return {}
    return {a: s.gave_up for a, s in parse_stops(path.read_bytes()).items()}


def test_a_corrupt_connector_is_recorded_and_restart_removes_it(sup: Supervisor) -> None:
    _exit(sup, B, EXIT_STATE_CORRUPT)
    assert sup.children[B].state is ChildState.GAVE_UP
    assert _on_disk(sup) == {B: "state_corrupt"}
    venue = StopsWatcher(operator_stops_path(sup.cfg.runtime_path)).venues()["simB"]
    assert venue.reason.startswith("its state is corrupt") and venue.describe() == (
        "gave up (state_corrupt)"
    )
    assert sup.operator_stops.held(B) is None  # no operator's stop: `restart` is allowed
    assert sup.status()["venues"]["simB"]["state"] == "DOWN"  # the board's, not "stopped"
    assert sup.request_restart(B, force=False) is True  # the operator's, after a repair
    assert _on_disk(sup) == {B: "state_corrupt"}  # spawned, not READY: still refused
    _ready(sup, B)
    assert _on_disk(sup) == {}


def test_start_of_a_gave_up_connector_spawns_it_and_removes_the_record(sup: Supervisor) -> None:
    _exit(sup, B, EXIT_STATE_CORRUPT)
    ok, text = sup.operator_stops.start(B)
    assert ok and text == f"{B} starting" and sup.children[B].pid is not None
    _ready(sup, B)
    assert _on_disk(sup) == {}


def test_over_its_budget_recorded_until_a_respawn_is_ready(sup: Supervisor) -> None:
    """`restart_intensity`: retried at the longest backoff. A respawn that dies starting
    leaves the record in place (orders stay refused: the venue is DOWN throughout); one
    that gets READY removes it; a crash after that (still over its budget) records it
    again. (Removed at the spawn, the record came and went at every retry, and orders were
    taken for a venue the supervisor still showed DOWN.)"""
    spawner = sup.spawner
    assert isinstance(spawner, _Spawner)
    _exit(sup, B, 1)
    assert _on_disk(sup) == {}  # within its budget: an ordinary restart
    _exit(sup, B, 1)
    assert _on_disk(sup) == {B: "restart_intensity"}
    child = sup.children[B]
    sup._restart_if_due(child, child.epoch)  # the backoff timer fires
    assert spawner.spawned[-1] == B and _on_disk(sup) == {B: "restart_intensity"}
    sup._on_exit(child, 1 << 8)  # died starting
    assert _on_disk(sup) == {B: "restart_intensity"}
    sup._restart_if_due(child, child.epoch)
    _ready(sup, B)
    assert _on_disk(sup) == {}
    sup._on_exit(child, 1 << 8)
    assert _on_disk(sup) == {B: "restart_intensity"}


def test_a_record_whose_removal_failed_goes_at_a_later_heartbeat(
    sup: Supervisor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file could not be written at READY: the record stays (fail closed: the venue's
    orders refused), and a heartbeat of the running connector removes it once it can."""
    _exit(sup, B, EXIT_STATE_CORRUPT)
    assert sup.request_restart(B, force=False) is True

    def refused(*_a: object) -> None:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(operator_stop, "write_stops", refused)  # the write fails at READY
        _ready(sup, B)
    assert _on_disk(sup) == {B: "state_corrupt"} and sup.children[B].running
    control = SimpleNamespace(on_heartbeat=lambda *_a: None)  # set up by run()
    monkeypatch.setattr(sup, "control", control, raising=False)
    sup._on_actor_message(sup.children[B], _heartbeat(sup, B))
    assert _on_disk(sup) == {}


def _heartbeat(sup: Supervisor, actor: str) -> Envelope:
    return Sender(actor, 1).envelope(ActorHeartbeat(loop_lag_s=0.0))


def test_other_actors_and_operator_stops_are_left_alone(sup: Supervisor) -> None:
    """An operator's stop stays an operator's stop at a later give-up and at a spawn; a
    non-connector actor (a venue simulator) is never recorded."""
    _exit(sup, "venuesim.simA", EXIT_STATE_CORRUPT)
    assert _on_disk(sup) == {}
    ok, _ = sup.operator_stops.stop(B, "maintenance", force=True)
    assert ok
    sup.operator_stops.gave_up(sup.children[B], "state_corrupt")
    sup.operator_stops.revived(sup.children[B])
    assert _on_disk(sup) == {B: None}


def test_an_operator_stop_of_a_gave_up_connector_replaces_the_record(tmp_path: Path) -> None:
    child = _running(_child(B))
    children = {B: child}
    stops = OperatorStops(
        children, tmp_path, lambda c, r: None, lambda c: None, lambda c: None,
        structlog.get_logger(),
    )  # fmt: skip
    child.exited(EXIT_STATE_CORRUPT, 1.0, shutting_down=False)
    stops.gave_up(child, "state_corrupt")
    ok, text = stops.stop(B, "leave it off", force=True)
    assert ok and "is already" not in text
    held = stops.held(B)
    assert held is not None and held.gave_up is None and held.reason == "leave it off"


def test_the_core_follows_an_edge_whose_record_changed_kind() -> None:
    """An edge reports a gave-up record where the core holds an operator's stop (or back):
    the core's record is replaced (its OMS refuses VENUE_DOWN / its heartbeat counts)."""
    stop = _op(B)
    gave = _op(B, gave_up="state_corrupt")
    hold, drop = realign({B: stop}, {B: gave}, lambda a: True, ())
    assert hold == {B: gave} and drop == set()
    hold, _ = realign({B: gave}, {B: gave}, lambda a: True, ())
    assert hold == {}


def _op(actor: str, gave_up: str | None = None) -> OperatorStop:
    return OperatorStop(actor, "r", 1.0, actor.split(".")[1], None, gave_up)
