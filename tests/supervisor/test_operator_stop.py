"""Operator stops (`tradepulse stop` / `start`) without processes: a held child stays stopped
at its exit (no restart, no budget, not a crash) and `release` starts it with a fresh
budget; `OperatorStops` refuses critical and unknown actors, writes the stop file BEFORE
asking the actor to stop (what the OMS and the heartbeat read), shows the venue as
stopped, and `start` removes it; status prints `stopped (by operator: reason)`."""

from __future__ import annotations

import json
from pathlib import Path
from unittest import mock

import structlog
import structlog.testing

from actors.runtime.operator_stops import OperatorStop, StopsWatcher, parse_stops
from actors.supervisor.child import Child, ExitAction
from actors.supervisor.commands.restart import Restart
from actors.supervisor.commands.status import format_status
from actors.supervisor.operator_stop import OperatorStops
from actors.supervisor.restart_policy import ChildSpec, ChildState
from actors.supervisor.stop_guard import stop_refusal
from protocol import commands as wire
from protocol.config import RestartCfg
from protocol.domain import MAX_REASON_CHARS
from protocol.paths import operator_stops_path

POLICY = RestartCfg(initial_s=0.1, factor=2.0, max_s=5.0, jitter=0.0, max_restarts=2, window_s=60)


def _child(actor: str = "connector.simB", *, critical: bool = False) -> Child:
    kind = actor.split(".")[0]
    venue = actor.split(".")[1] if "." in actor else None
    return Child(ChildSpec(id=actor, kind=kind, venue=venue, critical=critical), POLICY)


def _running(child: Child, now: float = 0.0, pid: int = 4242) -> Child:
    child.spawned(pid, epoch=int(now * 1000) + 1, now=now)
    assert child.ready(now, {}) is not None
    return child


def test_a_held_child_stays_stopped_at_its_exit_and_uses_no_budget() -> None:
    child = _running(_child())
    assert child.hold("maintenance") is True  # it has a process to stop
    decision = child.exited(-15, 1.0, shutting_down=False)
    assert decision.action is ExitAction.STAY_STOPPED
    assert child.state is ChildState.STOPPED and child.restarts == 0 and child.held
    assert not child.restart_due(child.epoch)  # a backoff timer set earlier does nothing
    assert child.status(2.0)["stopped_by_operator"] == "maintenance"


def test_a_hold_wins_over_a_pending_operator_restart() -> None:
    child = _running(_child())
    assert child.restart_requested() is False  # a restart under way
    child.hold("stop instead")
    assert child.exited(0, 1.0, shutting_down=False).action is ExitAction.STAY_STOPPED


def test_holding_a_child_between_restarts_stops_it_for_good() -> None:
    """A crash-looping connector in BACKOFF: the hold leaves nothing to stop, and the
    pending backoff timer does not restart it."""
    child = _running(_child())
    epoch = child.epoch
    assert child.exited(1, 1.0, shutting_down=False).action is ExitAction.RESTART_LATER
    assert child.hold("stop the loop") is False
    assert child.state is ChildState.STOPPED and not child.restart_due(epoch)


def test_release_starts_it_now_or_after_its_stop_completes() -> None:
    stopped = _running(_child())
    stopped.hold("x")
    stopped.exited(-15, 1.0, shutting_down=False)
    assert stopped.release() is True and not stopped.held  # spawn now
    stopping = _running(_child())
    stopping.hold("x")
    assert stopping.release() is False  # its exit respawns it at once
    assert stopping.exited(-15, 1.0, shutting_down=False).action is ExitAction.RESTART_NOW


class _Rig:
    def __init__(self, runtime: Path) -> None:
        oms = _running(_child("oms", critical=True))
        oms.heard(0.0, 0.0, {"open_at_venue": {}})  # no order open at any venue
        children = (_running(_child()), _child("risk", critical=True), oms, _child("heartbeat"))
        self.children = {c.id: c for c in children}
        self.path = operator_stops_path(runtime)
        self.stopped: list[tuple[str, str, dict[str, object]]] = []
        self.spawned: list[str] = []
        self.left_queue: list[str] = []
        self.stops = OperatorStops(
            self.children,
            runtime,
            self._stop,
            self.spawned_child,
            lambda child: self.left_queue.append(child.id),
            structlog.get_logger(),
        )

    def _stop(self, child: Child, reason: str) -> None:
        on_disk = json.loads(self.path.read_bytes())["stops"]  # written before the stop
        self.stopped.append((child.id, reason, on_disk))

    def spawned_child(self, child: Child) -> None:
        self.spawned.append(child.id)


def test_stop_writes_the_file_first_then_stops_and_start_removes_it(tmp_path: Path) -> None:
    rig = _Rig(tmp_path)
    ok, text = rig.stops.stop("connector.simB", "maintenance")
    assert ok and text.startswith("connector.simB stopping (by operator: maintenance); ")
    assert "never sent are rejected" in text and "already at simB stay live" in text
    [(actor, reason, on_disk)] = rig.stopped
    assert (actor, reason) == ("connector.simB", "operator_stop")
    assert rig.left_queue == ["connector.simB"]  # a start in progress goes on past it
    assert on_disk["connector.simB"]["venue"] == "simB"
    assert StopsWatcher(rig.path).venues()["simB"].reason == "maintenance"
    board = {"simA": {"state": "CONNECTED", "detail": ""}, "simB": {"state": "DOWN", "detail": ""}}
    view = rig.stops.venues(board)
    assert view["simB"] == {"state": "stopped", "detail": "stopped (by operator: maintenance)"}
    assert view["simA"] == board["simA"]
    ok, text = rig.stops.stop("connector.simB", "again")
    assert ok and "already stopped (by operator: maintenance)" in text and len(rig.stopped) == 1

    rig.children["connector.simB"].exited(-15, 1.0, shutting_down=False)
    ok, text = rig.stops.start("connector.simB")
    assert ok and text == "connector.simB starting" and rig.spawned == ["connector.simB"]
    assert parse_stops(rig.path.read_bytes()) == {} and rig.stops.held("connector.simB") is None


def test_critical_unknown_and_not_stopped_actors_are_refused(tmp_path: Path) -> None:
    rig = _Rig(tmp_path)
    for actor in ("risk", "oms"):
        ok, text = rig.stops.stop(actor, "no")
        assert not ok and "critical" in text and "tradepulse shutdown" in text
    ok, text = rig.stops.stop("nope", "")
    assert not ok and "unknown actor 'nope'" in text
    ok, text = rig.stops.start("connector.simB")
    assert not ok and "was not stopped by an operator" in text
    assert rig.stopped == [] and rig.spawned == [] and not rig.path.exists()


def test_a_fresh_supervisor_forgets_the_stops_of_the_last_run(tmp_path: Path) -> None:
    first = _Rig(tmp_path)
    first.stops.stop("connector.simB", "x")
    assert first.path.exists()
    _Rig(tmp_path)
    assert not first.path.exists() and StopsWatcher(first.path).venues() == {}


class _Host:
    """What `restart` asks of the supervisor, over a rig's real `OperatorStops`."""

    def __init__(self, rig: _Rig) -> None:
        self.rig = rig
        self.operator_stops = rig.stops
        self.restarts: list[str] = []

    def actor_state(self, actor: str) -> ChildState | None:
        child = self.rig.children.get(actor)
        return None if child is None else child.state

    def actor_ids(self) -> list[str]:
        return list(self.rig.children)

    def request_restart(self, actor: str, *, force: bool, reason: str = "operator") -> bool:
        self.restarts.append(actor)
        return False


def test_an_operator_restart_of_a_stopped_actor_is_refused_but_risk_lifts_the_stop(
    tmp_path: Path,
) -> None:
    """`restart` must not undo an operator stop by accident; risk's restart for the
    kill-switch's mass cancel (`override_stop`) does, on purpose: the stop is lifted and the
    connector started, so the cancel reaches the venue."""
    rig = _Rig(tmp_path)
    host = _Host(rig)
    rig.stops.stop("connector.simB", "maintenance")
    rig.children["connector.simB"].exited(-15, 1.0, shutting_down=False)
    reply = Restart().execute(wire.Restart(actor="connector.simB"), host)  # type: ignore[arg-type]
    assert reply.status == "error" and "tradepulse start connector.simB" in (reply.reason or "")
    assert rig.spawned == [] and host.restarts == []
    risk = wire.Restart(
        actor="connector.simB", force=True, reason="mass cancel unanswered", override_stop=True
    )
    reply = Restart().execute(risk, host)  # type: ignore[arg-type]
    assert reply.status == "ok" and rig.spawned == ["connector.simB"]
    assert rig.stops.held("connector.simB") is None and parse_stops(rig.path.read_bytes()) == {}


def test_status_shows_the_operator_stop_and_the_intake_pauses() -> None:
    row = {
        "id": "connector.simB", "pid": None, "state": "stopped", "epoch": 3, "restarts": 0,
        "uptime_s": 0.0, "heartbeat_age_s": None, "rss_bytes": 0, "cpu_percent": 0.0,
        "stopped_by_operator": "maintenance",
    }  # fmt: skip
    pauses = {"global": {"reason": "lunch"}, "venues": {"simA": {"reason": "review"}}}
    text = format_status({"actors": [row], "intake": "paused", "intake_pauses": pauses})
    assert "stopped (by operator: maintenance)" in text
    assert "intake paused globally: lunch" in text and "intake paused for simA: review" in text


def test_the_kill_switch_starts_a_stopped_connector_even_if_the_stops_file_cannot_be_written(
    tmp_path: Path,
) -> None:
    """Risk's override restart (the kill-switch's mass cancel) must reach the venue: a failed
    write of the stops file is logged but the stop is still lifted and the connector spawned.
    An operator's `start` with the same failure is refused (nothing changes)."""
    rig = _Rig(tmp_path)
    host = _Host(rig)
    rig.stops.stop("connector.simB", "maintenance")
    rig.children["connector.simB"].exited(-15, 1.0, shutting_down=False)
    full = OSError(28, "No space left on device")
    with mock.patch("actors.supervisor.operator_stop.write_stops", side_effect=full):
        ok, text = rig.stops.start("connector.simB")
        assert not ok and "cannot write" in text and rig.spawned == []
        risk = wire.Restart(
            actor="connector.simB", force=True, reason="mass cancel unanswered", override_stop=True
        )
        with structlog.testing.capture_logs() as logs:
            reply = Restart().execute(risk, host)  # type: ignore[arg-type]
    assert reply.status == "ok" and rig.spawned == ["connector.simB"]
    assert rig.stops.held("connector.simB") is None
    assert [e["event"] for e in logs if e["log_level"] == "error"] == [
        "operator_stops_write_failed"
    ]


def test_stopping_the_heartbeat_or_a_connector_with_orders_open_at_its_venue_is_refused(
    tmp_path: Path,
) -> None:
    """The heartbeat (divergence and outage detection) is refused like risk and the OMS. A
    connector whose venue has orders open (the OMS's last count) is refused naming the
    count unless forced; while the OMS has no process (its count unknown) too."""
    rig = _Rig(tmp_path)
    ok, text = rig.stops.stop("heartbeat", "quiet please")
    assert not ok and "divergence" in text and "tradepulse shutdown" in text
    oms = rig.children["oms"]
    oms.heard(1.0, 0.0, {"open_at_venue": {"simB": 3, "simA": 1}})
    ok, text = rig.stops.stop("connector.simB", "maintenance")
    assert not ok and "3 order(s) open at simB" in text and "--force" in text
    assert rig.stopped == [] and not rig.path.exists()
    oms.exited(-9, 2.0, shutting_down=False)  # its view died with it
    assert oms.info == {}
    ok, text = rig.stops.stop("connector.simB", "maintenance")
    assert not ok and "the OMS is not running" in text
    ok, text = rig.stops.stop("connector.simB", "maintenance", by="alice (uid 1000, pid 7)",
                              force=True)  # fmt: skip
    assert ok and [a for a, _, _ in rig.stopped] == ["connector.simB"]
    held = rig.stops.held("connector.simB")
    assert held is not None and held.describe() == "stopped (by operator alice: maintenance)"
    assert parse_stops(rig.path.read_bytes())["connector.simB"].by == "alice (uid 1000, pid 7)"


def test_status_shows_who_stopped_an_actor() -> None:
    row = {
        "id": "connector.simB", "pid": None, "state": "stopped", "epoch": 3, "restarts": 0,
        "uptime_s": 0.0, "heartbeat_age_s": None, "rss_bytes": 0, "cpu_percent": 0.0,
        "stopped_by_operator": "maintenance", "stopped_by": "alice (uid 1000, pid 7)",
    }  # fmt: skip
    text = format_status({"actors": [row]})
    assert "stopped (by operator alice: maintenance)" in text


def test_the_core_records_a_stop_of_an_edge_connector_and_drops_it_when_told(
    tmp_path: Path,
) -> None:
    """`hold_elsewhere`: the stop of connector.lse (run by an edge) is written to the core's
    stops file (what its OMS and heartbeat read) and shown on the venue's row; the edge's
    answer that it is not stopped (`follow_elsewhere`) removes it; a local actor's stop is
    not touched by it."""
    rig = _Rig(tmp_path)
    assert rig.stops.hold_elsewhere("connector.lse", "lse", "maint", "ops (uid 1)") is None
    assert StopsWatcher(rig.path).venues()["lse"].reason == "maint"
    assert rig.stopped == []  # nothing to stop here: the edge's supervisor does it
    rows = {"lse": {"state": "remote (link up)", "host_group": "edge-a", "link": {}}}
    assert rig.stops.venues(rows)["lse"]["state"] == "stopped"
    assert rig.stops.venues(rows)["lse"]["host_group"] == "edge-a"
    rig.stops.stop("connector.simB", "local")
    rig.stops.follow_elsewhere("connector.simB")  # not another host's: kept
    rig.stops.follow_elsewhere("connector.lse")
    assert set(StopsWatcher(rig.path).venues()) == {"simB"}


def test_an_edge_refuses_a_stop_of_its_connector_without_force_the_core_counts(
    tmp_path: Path,
) -> None:
    """An edge runs no OMS: a stop given to it needs --force (the core counts the venue's
    open orders before it has the edge stop it, and sends it with force)."""
    child = _running(_child("connector.lse"))
    children = {child.id: child}
    refused = stop_refusal(child, children, force=False)
    assert refused is not None and "counted by the core's OMS" in refused
    assert stop_refusal(child, children, force=True) is None


def test_the_cores_records_of_an_edges_stops_follow_that_edges_report(tmp_path: Path) -> None:
    """`align_elsewhere`: the stops edge-a reports are recorded at the core (file and venue
    row) and the ones it no longer reports go; another group's actors, local actors and an
    actor with a command on its way (`busy`) are left as they are."""
    rig = _Rig(tmp_path)
    edge_a = {"connector.lse", "connector.xetra"}.__contains__
    rig.stops.stop("connector.simB", "local")
    assert rig.stops.hold_elsewhere("connector.cme", "cme", "theirs", None) is None  # edge-b
    assert rig.stops.hold_elsewhere("connector.xetra", "xetra", "old", None) is None
    lse = OperatorStop("connector.lse", "maint (from the core)", 1.0, "lse", "ops (uid 1)")
    with structlog.testing.capture_logs() as logs:
        rig.stops.align_elsewhere("edge-a", {"connector.lse": lse}, edge_a)
    assert [e for e in logs if e["event"] == "operator_stops_aligned"] == [
        {
            "event": "operator_stops_aligned",
            "log_level": "warning",
            "host_group": "edge-a",
            "held": ["connector.lse"],
            "dropped": ["connector.xetra"],
        }
    ]
    on_disk = parse_stops(rig.path.read_bytes())
    assert set(on_disk) == {"connector.simB", "connector.cme", "connector.lse"}
    assert on_disk["connector.lse"] == lse
    assert rig.stops.venues({"lse": {"state": "remote (link up)"}})["lse"]["state"] == "stopped"
    rig.stops.align_elsewhere("edge-a", {}, edge_a, busy={"connector.lse"})
    assert rig.stops.held("connector.lse") == lse  # its command's answer settles it
    rig.stops.align_elsewhere("edge-a", {}, edge_a)
    assert set(parse_stops(rig.path.read_bytes())) == {"connector.simB", "connector.cme"}


def test_an_edges_report_never_stops_a_venue_it_does_not_run(tmp_path: Path) -> None:
    """An edge reports its own connector with another venue (the core's): the core records
    the connector's own venue (from its actor id), so the core's OMS keeps trading its own
    venue; an actor not placed on that edge is ignored; reason and who are cut."""
    rig = _Rig(tmp_path)
    edge_a = {"connector.edgevenue"}.__contains__
    reported = {
        "connector.edgevenue": OperatorStop(
            "connector.edgevenue", "x" * 5000, 1.0, "corevenue", "e" * 5000
        ),
        "connector.corevenue": OperatorStop("connector.corevenue", "x", 1.0, "corevenue", None),
    }
    rig.stops.align_elsewhere("edge-a", reported, edge_a)
    assert list(StopsWatcher(rig.path).venues()) == ["edgevenue"]
    held = rig.stops.held("connector.edgevenue")
    assert held is not None
    assert (len(held.reason), len(held.by or "")) == (MAX_REASON_CHARS, MAX_REASON_CHARS)
    assert rig.stops.held("connector.corevenue") is None


def test_a_stop_across_that_got_no_answer_puts_back_the_record_it_replaced(
    tmp_path: Path,
) -> None:
    """`restore_elsewhere`: the core's record (file and memory) goes back to the stop held
    before a second `stop` that never got an answer, or goes if there was none."""
    rig = _Rig(tmp_path)
    assert rig.stops.hold_elsewhere("connector.lse", "lse", "first", "alice") is None
    first = rig.stops.held("connector.lse")
    assert rig.stops.hold_elsewhere("connector.lse", "lse", "again", "bob") is None
    assert first is not None and rig.stops.held("connector.lse") != first
    rig.stops.restore_elsewhere("connector.lse", first)
    assert rig.stops.held("connector.lse") == first
    assert parse_stops(rig.path.read_bytes())["connector.lse"] == first
    rig.stops.restore_elsewhere("connector.lse", None)
    assert rig.stops.held("connector.lse") is None and parse_stops(rig.path.read_bytes()) == {}
