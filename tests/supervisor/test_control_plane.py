"""The control plane and its command table, against a stub supervisor (`ControlHost`): the
supervisor answers its own commands, routed ones are forwarded to their actor while it runs
(its reply relayed), the kill-switch is written to its file while risk is down, and a
request that is not a valid command gets an error reply. The CLI is built from the same
table."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import msgpack
import pytest
import structlog
import zmq
from structlog.testing import capture_logs

import supervisor
from actors.link.remote_control import link_down
from actors.risk import killswitch
from actors.runtime.timers import Timers
from actors.supervisor import control_plane
from actors.supervisor.commands import BY_NAME, TABLE, ControlCommand, for_request
from actors.supervisor.control_plane import ControlPlane
from actors.supervisor.restart_policy import ChildState
from protocol import commands as wire
from protocol.codec import Sender, decode, encode
from protocol.config import parse_config
from protocol.messages import ControlReply, ControlRequest, Message
from protocol.paths import audit_log_path
from tests.helpers import REPO_ROOT

RUNNING, BACKOFF = ChildState.RUNNING, ChildState.BACKOFF


class _NoStops:
    """No actor stopped by an operator (`actors.supervisor.operator_stop`)."""

    def __init__(self, host: StubHost) -> None:
        self._host = host

    def held(self, actor: str) -> None:
        return None

    def unknown(self, actor: str) -> str:
        return f"unknown actor {actor!r}; actors: {', '.join(self._host.actor_ids())}"


class StubHost:
    """The few things the control plane may ask of the supervisor, recorded."""

    def __init__(self, state_dir: Path) -> None:
        self.kill_switch_path = killswitch.kill_switch_path(state_dir)
        self.state_path = state_dir
        self.config_path = str(state_dir / "config.toml")
        self.overrides: dict[str, Any] = {}
        self.cfg = parse_config({"venues": [{"name": "simA"}]})
        self.states: dict[str, ChildState] = {"risk": RUNNING, "oms": RUNNING}
        self.restarts: list[tuple[str, bool]] = []
        self.restart_reasons: list[str] = []
        self.pids: dict[int, str] = {}  # supervised actors' processes
        self.forwarded: list[tuple[str, ControlRequest]] = []
        self.shutdown = False
        self.operator_stops = _NoStops(self)
        self.infos: dict[str, dict[str, Any]] = {}  # actors' last heartbeat info

    def actor_ids(self) -> list[str]:
        return list(self.states)

    def actor_state(self, actor: str) -> ChildState | None:
        return self.states.get(actor)

    def status(self) -> dict[str, Any]:
        return {"actors": [{"id": a} for a in self.states]}

    def request_restart(self, actor: str, *, force: bool, reason: str = "operator") -> bool:
        self.restarts.append((actor, force))
        self.restart_reasons.append(reason)
        return self.states[actor] is not RUNNING

    def request_shutdown(self) -> None:
        self.shutdown = True

    @property
    def shutting_down(self) -> bool:
        return self.shutdown

    def actor_of_pid(self, pid: int) -> str | None:
        return self.pids.get(pid)

    def actor_info(self, actor: str) -> dict[str, Any]:
        return dict(self.infos.get(actor, {}))

    def forward(self, actor: str, request: ControlRequest) -> str:
        self.forwarded.append((actor, request))
        return f"forwarded-{len(self.forwarded)}"


class Rig:
    def __init__(self, state_dir: Path) -> None:
        self.ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        endpoint = f"inproc://control-{uuid.uuid4().hex}"
        router = self.ctx.socket(zmq.ROUTER)
        router.bind(endpoint)
        self.operator = self.ctx.socket(zmq.DEALER)
        self.operator.connect(endpoint)
        self.host = StubHost(state_dir)
        self.timers = Timers()
        log = structlog.get_logger().bind(actor="supervisor")
        self.plane = ControlPlane(router, Sender("supervisor", 1), self.host, self.timers, log)

    def send(self, body: Message) -> None:
        self.send_raw(encode(Sender("ctl", 0).envelope(body))[0])

    def send_raw(self, frame: bytes) -> None:
        self.operator.send_multipart([frame])
        assert self.plane.sock.poll(2000), "the request did not arrive"
        self.plane.on_readable()

    def reply(self, timeout_ms: int = 2000) -> ControlReply | None:
        if not self.operator.poll(timeout_ms):
            return None
        body = decode(self.operator.recv_multipart()).body
        assert isinstance(body, ControlReply)
        return body

    def ask(self, command: wire.Command) -> ControlReply:
        self.send(ControlRequest(command=command))
        reply = self.reply()
        assert reply is not None, "no reply"
        return reply

    def close(self) -> None:
        self.ctx.destroy(linger=0)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = Rig(tmp_path)
    yield r
    r.close()


def test_status_and_shutdown_are_answered_by_the_supervisor(rig: Rig) -> None:
    status = rig.ask(wire.Status())
    assert status.status == "ok" and status.data == rig.host.status()
    done = rig.ask(wire.Shutdown())
    assert (done.status, done.reason, rig.host.shutdown) == ("ok", "shutting down", True)


def test_status_is_logged_at_debug_and_a_command_that_acts_at_info(rig: Rig) -> None:
    """`status` is read-only and polled (`tradepulse top` every second): it must not fill
    the log at info; a command that changes something is logged at info."""
    saved = structlog.get_config()  # an earlier test may have configured the info filter
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    try:
        plane_log, audit_log = rig.plane._log, rig.plane.audit._log
        rig.plane._log = rig.plane.audit._log = structlog.get_logger(actor="supervisor")
        with structlog.testing.capture_logs() as logs:
            rig.ask(wire.Status())
            rig.ask(wire.Shutdown())
    finally:
        structlog.configure(**saved)
        rig.plane._log, rig.plane.audit._log = plane_log, audit_log
    levels = {e["command"]: e["log_level"] for e in logs if e["event"] == "operator_command"}
    assert levels == {"status": "debug", "shutdown": "info"}


def test_restart_a_known_actor_and_refuse_an_unknown_one(rig: Rig) -> None:
    assert rig.ask(wire.Restart(actor="oms", force=True)).reason == "oms restarting"
    rig.host.states["oms"] = BACKOFF
    assert rig.ask(wire.Restart(actor="oms")).reason == "oms starting"
    bad = rig.ask(wire.Restart(actor="nosuchactor"))
    assert bad.status == "error" and bad.reason == "unknown actor 'nosuchactor'; actors: risk, oms"
    assert rig.host.restarts == [("oms", True), ("oms", False)]


class _EdgeStops(_NoStops):
    """The core's records of stops of an edge's actors (`OperatorStops.hold_elsewhere`)."""

    def __init__(self, host: StubHost) -> None:
        super().__init__(host)
        self.held_elsewhere: dict[str, tuple[str | None, str]] = {}

    def hold_elsewhere(self, actor: str, venue: str | None, reason: str, by: str | None) -> None:
        self.held_elsewhere[actor] = (venue, reason)

    def follow_elsewhere(self, actor: str) -> None:
        self.held_elsewhere.pop(actor, None)

    def held(self, actor: str) -> tuple[str | None, str] | None:
        return self.held_elsewhere.get(actor)

    def restore_elsewhere(self, actor: str, before: tuple[str | None, str] | None) -> None:
        if before is None:
            self.held_elsewhere.pop(actor, None)
        else:
            self.held_elsewhere[actor] = before


def _on_an_edge(rig: Rig) -> _EdgeStops:
    rig.host.cfg = parse_config(
        {
            "link": {"bind": "tcp://*:7100", "connect": "tcp://c:7100", "allow_plaintext": True},
            "venues": [{"name": "simA", "host_group": "edge-a"}, {"name": "simB"}],
        }
    )
    stops = _EdgeStops(rig.host)
    rig.host.operator_stops = stops  # type: ignore[assignment]
    return stops


def test_commands_for_an_edge_venues_actor_go_to_the_link_or_say_it_is_not_running(
    rig: Rig,
) -> None:
    """restart, stop, start and fix-seq of simA's actors (placed on edge-a) go to the link
    actor while it runs; while it does not, the answer names the group and the link's state,
    marked unreachable (the CLI's exit 3), and nothing is done here."""
    _on_an_edge(rig)
    far = rig.ask(wire.Restart(actor="connector.simA"))
    assert far.status == "error" and far.data["unreachable"]["host_group"] == "edge-a"
    assert far.reason == (
        "connector.simA runs on host group edge-a, and the link actor is not running "
        "(missing): not sent"
    )
    near = rig.ask(wire.Restart(actor="connector.simB"))  # placed here but not running
    assert near.reason.startswith("unknown actor 'connector.simB'")
    assert rig.host.restarts == [] and rig.host.forwarded == []
    rig.host.states["link"] = RUNNING
    commands: list[wire.Command] = [
        wire.Restart(actor="venuesim.simA", reason="r"),
        wire.Start(actor="connector.simA"),
        wire.FixSeq(venue="simA", next_out=7, reason="venue reset"),
    ]
    for command in commands:
        rig.send(ControlRequest(command=command))
        assert rig.reply(timeout_ms=20) is None  # until the link answers
    assert [(t, r.command) for t, r in rig.host.forwarded] == [("link", c) for c in commands]
    rig.plane.on_actor_reply("forwarded-3", ControlReply(status="ok", reason="set"))
    assert rig.reply() == ControlReply(status="ok", reason="set")


def test_a_stop_of_an_edge_connector_is_counted_and_recorded_here_first(rig: Rig) -> None:
    """The core's OMS counts the venue's open orders (the edge runs none): a stop is refused
    while orders are open unless --force; a stop that goes is recorded here (the OMS and the
    heartbeat read it) and sent with force; the record follows the edge's answer: it goes
    when the edge says the actor is not stopped or the link could not take it."""
    stops = _on_an_edge(rig)
    rig.host.states["link"] = RUNNING
    rig.host.infos = {"oms": {"open_at_venue": {"simA": 2}}}
    refused = rig.ask(wire.Stop(actor="connector.simA", reason="maint"))
    assert refused.status == "error" and "2 order(s) open at simA" in refused.reason
    assert rig.host.forwarded == [] and stops.held_elsewhere == {}
    rig.send(ControlRequest(command=wire.Stop(actor="connector.simA", reason="maint", force=True)))
    assert stops.held_elsewhere == {"connector.simA": ("simA", "maint")}
    [(target, sent)] = rig.host.forwarded
    assert target == "link" and sent.command == wire.Stop(
        actor="connector.simA", reason="maint", force=True
    )
    stopped = ControlReply(status="ok", reason="stopping", data={"stopped": True})
    rig.plane.on_actor_reply("forwarded-1", stopped)
    assert rig.reply() == stopped and "connector.simA" in stops.held_elsewhere
    rig.host.infos = {"oms": {"open_at_venue": {}}}
    rig.send(ControlRequest(command=wire.Start(actor="connector.simA")))
    started = ControlReply(status="ok", reason="starting", data={"stopped": False})
    rig.plane.on_actor_reply("forwarded-2", started)
    assert rig.reply() == started and stops.held_elsewhere == {}
    rig.send(ControlRequest(command=wire.Stop(actor="connector.simA")))  # none open: goes
    assert "connector.simA" in stops.held_elsewhere
    down = ControlReply(status="error", reason="down", data={"unreachable": {}})
    rig.plane.on_actor_reply("forwarded-3", down)
    assert rig.reply() == down and stops.held_elsewhere == {}


def test_a_routed_command_is_forwarded_and_its_answer_relayed(rig: Rig) -> None:
    """kill-switch goes to risk while it runs; nothing is answered until risk answers, and
    then the operator gets risk's reply."""
    command = wire.KillSwitch(action="engage", reason="desk halt")
    rig.send(ControlRequest(command=command))
    assert rig.reply(timeout_ms=50) is None
    [(target, request)] = rig.host.forwarded
    assert target == "risk" and request.command == command
    rig.plane.on_actor_reply("someone-else", ControlReply(status="ok", reason="not this one"))
    rig.plane.on_actor_reply("forwarded-1", ControlReply(status="ok", reason="engaged"))
    assert rig.reply() == ControlReply(status="ok", reason="engaged")
    assert not killswitch.load(rig.host.kill_switch_path).engaged  # risk writes it, not us


def test_a_forwarded_command_without_an_answer_expires(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(control_plane, "FORWARD_TIMEOUT_S", 0.0)
    rig.send(ControlRequest(command=wire.Intake(action="pause", reason="test")))
    rig.timers.run_due()
    reply = rig.reply()
    assert reply is not None and reply.reason == "oms did not answer in time"
    rig.plane.on_actor_reply("forwarded-1", ControlReply(status="ok"))  # too late: dropped
    assert rig.reply(timeout_ms=50) is None


def test_the_kill_switch_is_written_to_its_file_while_risk_is_down(rig: Rig) -> None:
    rig.host.states["risk"] = BACKOFF
    engaged = rig.ask(wire.KillSwitch(action="engage", reason="risk is down"))
    assert engaged.status == "ok" and "risk is not running" in engaged.reason
    assert engaged.data["engaged"] is True and engaged.data["source"] == "operator"
    assert killswitch.load(rig.host.kill_switch_path).reason == "risk is down"
    # a reset needs a reason: the CLI never sends one without (a usage error); one that
    # comes anyway (another client) is refused at decode, not written
    env = Sender("ctl", 0).envelope(ControlRequest(command=wire.Status()))
    obj = msgpack.unpackb(encode(env)[0], raw=False)
    obj["body"]["command"] = {"command": "kill-switch", "action": "reset", "reason": ""}
    rig.send_raw(msgpack.packb(obj, use_bin_type=True))
    refused = rig.reply()
    assert refused is not None and refused.status == "error"
    assert "a reset needs a reason" in refused.reason
    assert killswitch.load(rig.host.kill_switch_path).engaged
    assert not rig.host.forwarded


def test_while_shutting_down_the_supervisor_answers_itself_and_refuses_the_rest(
    rig: Rig,
) -> None:
    """During the stop the actors' replies are not read (`daemon._stop_and_wait`): nothing
    is forwarded. A repeated shutdown is "already shutting down" (ok), `status` is
    answered, an engage is written to the kill-switch file even though risk still runs
    (kept for the next start); anything else is refused at once, saying why."""
    rig.ask(wire.Shutdown())
    again = rig.ask(wire.Shutdown())
    assert (again.status, again.reason) == ("ok", "already shutting down")
    assert rig.ask(wire.Status()).data == rig.host.status()
    engaged = rig.ask(wire.KillSwitch(action="engage", reason="3 a.m."))
    assert engaged.status == "ok" and "the system is shutting down" in engaged.reason
    assert killswitch.load(rig.host.kill_switch_path).reason == "3 a.m."
    for command in (
        wire.Restart(actor="oms"),
        wire.Reload(reason="x"),
        wire.Intake(action="status"),
    ):
        refused = rig.ask(command)
        reason = f"the supervisor is shutting down: {command.command} not done"
        assert (refused.status, refused.reason) == ("error", reason)
    assert not rig.host.forwarded and not rig.host.restarts


def test_a_command_for_a_stopped_actor_says_so(rig: Rig) -> None:
    rig.host.states["oms"] = BACKOFF
    reply = rig.ask(wire.Reconcile(venue="simA", dry_run=True))
    assert (reply.status, reply.reason) == ("error", "oms is not running (backoff)")


def test_a_venue_fault_is_not_a_supervisor_command(rig: Rig) -> None:
    reply = rig.ask(wire.VenueFault(command="hang", value=1))
    assert (reply.status, reply.reason) == ("error", "'hang' is not a supervisor command")


def test_an_invalid_command_gets_an_error_reply_naming_it(rig: Rig) -> None:
    """A control request whose command this supervisor does not know (another CLI version)
    is answered with the decode error, instead of leaving the operator to time out."""
    env = Sender("ctl", 0).envelope(ControlRequest(command=wire.Status()))
    obj = msgpack.unpackb(encode(env)[0], raw=False)
    obj["body"]["command"] = {"command": "no-such"}
    rig.send_raw(msgpack.packb(obj, use_bin_type=True))
    reply = rig.reply()
    assert reply is not None and reply.status == "error"
    assert "control_request: field 'command'" in reply.reason and "'no-such'" in reply.reason
    rig.send_raw(b"\xc1 garbage")  # anything else is only counted and logged
    assert rig.reply(timeout_ms=50) is None


# --------------------------------------------------------------------------- the table


def test_every_supervisor_command_model_has_one_unit() -> None:
    """Each command model of the wire (but the simulated venue's and exchange's faults,
    sent to the simulator itself, and the supervisor's own apply-config to an actor) is
    handled by exactly one unit of the table."""
    not_operator = (wire.VenueFault, wire.ExchangeFault, wire.ApplyConfig)
    models = [m for m in get_args(get_args(wire.Command)[0]) if m not in not_operator]
    units = [c for c in TABLE if isinstance(c, ControlCommand)]
    assert sorted(u.model.__name__ for u in units) == sorted(m.__name__ for m in models)
    for unit in units:
        assert for_request(unit.to_wire(_namespace(unit.name))) is unit


def test_the_cli_offers_run_and_every_command_of_the_table() -> None:
    parser = supervisor.build_parser()
    sub = next(a for a in parser._actions if a.dest == "cmd")
    assert list(sub.choices) == ["run", *BY_NAME]  # type: ignore[arg-type]


def test_an_argument_the_wire_model_refuses_is_a_usage_error_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`tradepulse restart ""` names the argument and exits 2 (usage), before any socket:
    the wire model's validation error is the CLI's message, never a traceback."""
    config = str(REPO_ROOT / "deploy" / "config" / "demo.toml")
    code = supervisor.main(["restart", "", "--config", config, "--state-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("tradepulse restart: actor: ") and "Traceback" not in err


def _namespace(name: str) -> Any:
    args = {
        "restart": ["oms"],
        "kill-switch": ["status"],
        "intake": ["status"],
        "stop": ["connector.simA"],
        "start": ["connector.simA"],
        "reconcile": ["--venue", "simA"],
        "cancel": ["o-1"],
        "fix": ["seq", "--venue", "simA", "--next-in", "5", "--reason", "test"],
    }.get(name, [])
    return supervisor.build_parser().parse_args([name, *args])


def test_the_cli_table_loads_without_prometheus_client() -> None:
    """`supervisor.py run` builds its parser from the table before it prepares the metrics
    dir; prometheus_client must not be imported by then (it picks its multiprocess mode from the
    environment at import)."""
    code = (
        "import sys, supervisor; supervisor.build_parser(); "
        "sys.exit('prometheus_client' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=False)
    assert done.returncode == 0


def test_a_command_whose_handling_raises_is_answered_and_the_plane_keeps_serving(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No handler exception may stop the supervisor: a `status` that raises is answered
    `internal error`, and the next request is served (issue 15, section 1)."""

    def broken() -> dict[str, Any]:
        raise RuntimeError("boom")

    monkeypatch.setattr(rig.host, "status", broken)
    bad = rig.ask(wire.Status())
    assert (bad.status, bad.reason) == ("error", "internal error: RuntimeError")
    monkeypatch.undo()
    assert rig.ask(wire.Status()).status == "ok"


def test_a_reply_too_deep_to_encode_becomes_an_error_reply(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Data nested 1,010 deep (msgpack refuses to pack it) in a reply: the operator gets an
    error reply, the plane keeps serving."""
    nested: Any = "x"
    for _ in range(1010):
        nested = {"a": nested}
    monkeypatch.setattr(rig.host, "status", lambda: {"deep": nested})
    bad = rig.ask(wire.Status())
    assert (bad.status, bad.reason) == ("error", "internal error: ValueError")
    monkeypatch.undo()
    assert rig.ask(wire.Status()).status == "ok"


def test_an_engage_risk_cannot_take_is_written_to_the_file_by_the_supervisor(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Risk runs but its queue is full (frozen, not reading): the forward fails at once,
    so the supervisor engages through the state file risk and the OMS watch, as while risk
    is down. Risk runs but does not answer in time: the same at the deadline. Before, the
    operator got "risk unreachable" / "did not answer" and the switch stayed off (found by
    review)."""

    def full(actor: str, request: ControlRequest) -> str:
        raise zmq.Again("queue full")

    monkeypatch.setattr(rig.host, "forward", full)
    engaged = rig.ask(wire.KillSwitch(action="engage", reason="risk frozen"))
    assert engaged.status == "ok" and engaged.data["engaged"] is True
    assert killswitch.load(rig.host.kill_switch_path).reason == "risk frozen"


def test_an_engage_risk_does_not_answer_is_written_at_the_deadline(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(control_plane, "FORWARD_TIMEOUT_S", 0.0)
    rig.send(ControlRequest(command=wire.KillSwitch(action="engage", reason="silent risk")))
    rig.timers.run_due()
    reply = rig.reply()
    assert reply is not None and reply.status == "ok" and reply.data["engaged"] is True
    assert killswitch.load(rig.host.kill_switch_path).reason == "silent risk"


def test_the_operator_identity_is_the_supervisors_never_the_clients(rig: Rig) -> None:
    """A forwarded command carries the identity the supervisor found on the connection
    (none on inproc: all unknown), not the uid, user and pid the client put in it."""
    forged = wire.OperatorId(uid=0, user="root", pid=1)
    rig.send(ControlRequest(command=wire.KillSwitch(action="engage"), operator=forged))
    (actor, forwarded) = rig.host.forwarded[-1]
    assert actor == "risk"
    assert forwarded.operator == wire.OperatorId()


def test_an_engage_the_supervisor_writes_names_the_operator(rig: Rig) -> None:
    """Risk down: the supervisor's own engage and reset keep who asked in the history."""
    unit = BY_NAME["kill-switch"]
    assert isinstance(unit, ControlCommand)
    alice = wire.OperatorId(uid=1000, user="alice", pid=5)
    engage = wire.KillSwitch(action="engage", reason="drill")
    reply = unit.execute_by(engage, rig.host, alice)
    assert reply.status == "ok" and reply.data["operator"] == "alice (uid 1000, pid 5)"
    reset = wire.KillSwitch(action="reset", reason="over")
    unit.execute_by(reset, rig.host, wire.OperatorId())
    history = killswitch.load(rig.host.kill_switch_path).history
    assert [(e.action, e.operator) for e in history] == [
        ("engage", "alice (uid 1000, pid 5)"),
        ("reset", "unknown"),
    ]


def test_a_sighup_reload_that_raises_is_logged_and_ends_the_reload_for_systemd(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGHUP is handled in the loop like a control request: a reload that raises is logged
    `handler_failed` (source sighup), systemd is told the reload ended, nothing propagates."""

    class Notify:
        def __init__(self) -> None:
            self.calls: list[str] = []

        def reloading(self) -> None:
            self.calls.append("reloading")

        def reloaded(self, status: dict[str, Any]) -> None:
            self.calls.append("reloaded")

    def broken(*args: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(rig.plane.reloader, "reload", broken)
    notify = Notify()
    with capture_logs() as logs:
        rig.plane.reload_by_signal(notify)  # type: ignore[arg-type]
    assert notify.calls == ["reloading", "reloaded"]
    assert [e["source"] for e in logs if e["event"] == "handler_failed"] == ["sighup"]
    assert rig.ask(wire.Status()).status == "ok"


def test_a_restart_from_a_supervised_actors_process_is_recorded_as_that_actor(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Risk restarting a connector for the kill-switch's mass cancel connects from risk's
    pid: recorded `via: actor:risk` (log, audit) and counted as a kill_switch restart; the
    same request from any other process is an operator's."""
    peer = {"pid": 4321}
    monkeypatch.setattr(
        control_plane, "operator_from_peer",
        lambda _addr: wire.OperatorId(uid=1000, user="svc", pid=peer["pid"]),
    )  # fmt: skip
    rig.host.pids = {4321: "risk"}
    restart = wire.Restart(actor="oms", force=True, reason="mass cancel", override_stop=True)
    with capture_logs() as logs:
        assert rig.ask(restart).status == "ok"
        peer["pid"] = 999
        assert rig.ask(restart).status == "ok"
    assert rig.host.restart_reasons == ["kill_switch", "operator"]
    lines = [e for e in logs if e["event"] == "operator_command"]
    assert [(e["via"], e["pid"]) for e in lines] == [("actor:risk", 4321), ("control", 999)]
    records = rig.plane.audit.path.read_text().splitlines()
    assert '"via":"actor:risk"' in records[0] and '"via":"control"' in records[1]
    assert wire.OperatorId(pid=4321, via="actor:risk").describe() == "actor risk (pid 4321)"


def _edge_stop_recorded(rig: Rig, stops: _EdgeStops) -> None:
    rig.host.states["link"] = RUNNING
    rig.host.infos = {"oms": {"open_at_venue": {}}}
    rig.send(ControlRequest(command=wire.Stop(actor="connector.simA", reason="maint")))
    stopped = ControlReply(status="ok", reason="stopping", data={"stopped": True})
    rig.plane.on_actor_reply(f"forwarded-{len(rig.host.forwarded)}", stopped)
    assert rig.reply() == stopped and "connector.simA" in stops.held_elsewhere


def test_a_start_or_restart_that_never_reached_the_edge_keeps_the_cores_stop_record(
    rig: Rig,
) -> None:
    """A `start` or `restart` of a stopped edge connector that was not sent (the link down,
    or its queue full: `link_down`, exit 3) or that the edge did not answer leaves the
    connector stopped over there, so the core keeps its record (its OMS goes on refusing
    the venue's orders, its heartbeat counts no outage); an answer `stopped: false` drops
    it."""
    stops = _on_an_edge(rig)
    not_sent = [
        link_down("connector.simA", "edge-a", "the link to edge-a is down (silent 3.0 s)"),
        link_down("connector.simA", "edge-a", "the link to edge-a did not take it"),
        ControlReply(status="error", reason="host group edge-a did not answer"),
    ]
    for command in (wire.Start(actor="connector.simA"), wire.Restart(actor="connector.simA")):
        for answer in not_sent:
            _edge_stop_recorded(rig, stops)
            rig.send(ControlRequest(command=command))
            rig.plane.on_actor_reply(f"forwarded-{len(rig.host.forwarded)}", answer)
            assert rig.reply() == answer
            assert "connector.simA" in stops.held_elsewhere, (command, answer.reason)
        rig.send(ControlRequest(command=command))
        started = ControlReply(status="ok", reason="starting", data={"stopped": False})
        rig.plane.on_actor_reply(f"forwarded-{len(rig.host.forwarded)}", started)
        assert rig.reply() == started and stops.held_elsewhere == {}


def test_a_stop_the_edge_did_not_answer_stopped_is_not_kept_at_the_core(rig: Rig) -> None:
    """The core keeps its record of an edge connector's stop only when the edge answers
    `stopped: true`: an edge whose link cannot reach its supervisor, one that does not take
    the command, one that does not answer, or the link actor's silence drop it."""
    stops = _on_an_edge(rig)
    rig.host.states["link"] = RUNNING
    rig.host.infos = {"oms": {"open_at_venue": {}}}
    for answer in (
        ControlReply(status="error", reason="supervisor unreachable"),
        ControlReply(status="error", reason="stop connector.simA is not taken across the link"),
        ControlReply(status="error", reason="host group edge-a did not answer"),
        ControlReply(status="error", reason="link did not answer in time"),
        ControlReply(status="ok", reason="odd", data={"stopped": "yes"}),
    ):
        rig.send(ControlRequest(command=wire.Stop(actor="connector.simA", reason="m")))
        assert "connector.simA" in stops.held_elsewhere  # recorded before it is sent
        rig.plane.on_actor_reply(f"forwarded-{len(rig.host.forwarded)}", answer)
        assert rig.reply() == answer
        assert stops.held_elsewhere == {}, answer.reason
    _edge_stop_recorded(rig, stops)  # stopped: true keeps it


def test_a_second_stop_that_never_reached_the_edge_keeps_the_stop_the_edge_holds(
    rig: Rig,
) -> None:
    """A second `stop` of an edge connector the edge already holds stopped, not sent (the
    link down) or not answered: the core's record goes back to the first stop's (with the
    link down no report would restore it); the edge answering `stopped: false` drops it."""
    stops = _on_an_edge(rig)
    _edge_stop_recorded(rig, stops)  # stopped at the edge, answered stopped: true
    first = stops.held_elsewhere["connector.simA"]
    for answer in (
        link_down("connector.simA", "edge-a", "the link to edge-a is down (silent 3.0 s)"),
        ControlReply(status="error", reason="host group edge-a did not answer"),
    ):
        rig.send(ControlRequest(command=wire.Stop(actor="connector.simA", reason="again")))
        assert stops.held_elsewhere["connector.simA"] == ("simA", "again")  # before it is sent
        rig.plane.on_actor_reply(f"forwarded-{len(rig.host.forwarded)}", answer)
        assert rig.reply() == answer
        assert stops.held_elsewhere["connector.simA"] == first, answer.reason
    rig.send(ControlRequest(command=wire.Stop(actor="connector.simA", reason="again")))
    not_stopped = ControlReply(status="error", reason="refused", data={"stopped": False})
    rig.plane.on_actor_reply(f"forwarded-{len(rig.host.forwarded)}", not_stopped)
    assert rig.reply() == not_stopped and stops.held_elsewhere == {}


def test_a_command_across_expires_before_the_cli_gives_up(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A command for an edge's actor is answered at ACROSS_TIMEOUT_S (inside the CLI's
    10 s), not at the 30 s of a command for a local actor."""
    _on_an_edge(rig)
    rig.host.states["link"] = RUNNING
    monkeypatch.setattr(control_plane, "ACROSS_TIMEOUT_S", 0.0)
    rig.send(ControlRequest(command=wire.Restart(actor="connector.simA")))
    rig.timers.run_due()
    reply = rig.reply()
    assert reply is not None and reply.reason == "link did not answer in time"


def test_the_core_audits_a_stop_across_as_the_operator_gave_it(rig: Rig, tmp_path: Path) -> None:
    """The edge is sent the stop with force (the core counted the open orders), but the
    core's audit records what the operator asked: no --force."""
    stops = _on_an_edge(rig)
    _edge_stop_recorded(rig, stops)
    [(_, sent)] = rig.host.forwarded
    assert isinstance(sent.command, wire.Stop) and sent.command.force is True
    lines = [json.loads(x) for x in audit_log_path(tmp_path).read_text().splitlines()]
    [stop] = [x for x in lines if x.get("command") == "stop"]
    assert stop["args"]["force"] is False and stop["result"] == "ok", stop


def test_on_an_edge_a_command_for_another_groups_actor_is_answered_where_it_runs(
    rig: Rig,
) -> None:
    """Only the core sends commands across: an edge's supervisor asked to stop the core's
    connector answers in one line where it runs, records nothing and forwards nothing
    (before, it recorded the stop and sent it to its own link, which refused it)."""
    stops = _on_an_edge(rig)  # simA on edge-a, simB on the core
    rig.host.overrides["host_group"] = "edge-a"
    rig.host.states["link"] = RUNNING
    for command in (
        wire.Stop(actor="connector.simB", reason="m", force=True),
        wire.Start(actor="connector.simB"),
        wire.Restart(actor="connector.simB"),
    ):
        reply = rig.ask(command)
        assert reply.status == "error"
        assert reply.reason == (
            "connector.simB runs on host group core: give the command to its supervisor"
        )
    assert stops.held_elsewhere == {} and rig.host.forwarded == []


class _AligningStops(_EdgeStops):
    def __init__(self, host: StubHost) -> None:
        super().__init__(host)
        self.aligned: list[tuple[str, set[str], set[str], set[str]]] = []

    def align_elsewhere(
        self, group: str, reported: dict[str, Any], placed_there: Any, busy: Any = ()
    ) -> None:
        actors = {"connector.simA", "connector.simB", "venuesim.simA"}
        there = {a for a in actors if placed_there(a)}
        self.aligned.append((group, set(reported), there, set(busy)))


def test_the_cores_stop_records_follow_the_links_report_of_each_edge(rig: Rig) -> None:
    """The core's link heartbeat carries each edge's reported stops: the supervisor aligns
    its records with those of an edge whose link is up and whose report is known (only that
    edge's actors; a command on its way leaves its actor alone); not on an edge, not from
    another actor, not while a link is down."""
    _on_an_edge(rig)
    stops = _AligningStops(rig.host)
    rig.host.operator_stops = stops  # type: ignore[assignment]
    rig.host.states["link"] = RUNNING
    stop = {"reason": "m", "since": 1.0, "venue": "simA", "by": None}
    info = {
        "link": {
            "edge-a": {"state": "up", "stopped": {"connector.simA": stop}},
            "edge-b": {"state": "down", "stopped": None},
        }
    }
    rig.plane.on_heartbeat("oms", info)
    assert stops.aligned == []
    rig.plane.on_heartbeat("link", info)
    assert stops.aligned == [
        ("edge-a", {"connector.simA"}, {"connector.simA", "venuesim.simA"}, set())
    ]
    rig.send(ControlRequest(command=wire.Start(actor="connector.simA")))  # on its way
    rig.plane.on_heartbeat("link", info)
    assert stops.aligned[-1][3] == {"connector.simA"}
    rig.plane.on_actor_reply("forwarded-1", ControlReply(status="ok", data={"stopped": False}))
    assert rig.reply() is not None
    rig.plane.on_heartbeat("link", info)
    assert stops.aligned[-1][3] == set()
    rig.host.overrides["host_group"] = "edge-a"
    rig.plane.on_heartbeat("link", info)
    assert len(stops.aligned) == 3


@pytest.mark.parametrize(
    "view",
    [
        wire.Orders(open_only=True, venue="SimA"),
        wire.Fills(venue="SimA"),
        wire.Positions(venue="SimA"),
        wire.Exposure(venue="SimA"),
    ],
    ids=lambda c: c.command,
)
def test_a_view_of_a_venue_not_configured_is_refused_not_answered_empty(
    rig: Rig, view: wire.Command
) -> None:
    """A typo in a view's venue filter is an error naming the venues, never sent on: the
    view matched nothing, so `orders --open --venue SimA` said "0 orders" and `positions
    --venue SimA --compare desk.csv` "desk records match" (exit 0) with simA's positions
    differing from the desk's. A configured venue, or none, is asked as before."""
    reply = rig.ask(view)
    assert (reply.status, reply.reason) == ("error", "unknown venue 'SimA'; venues: simA")
    assert not rig.host.forwarded
    rig.send(ControlRequest(command=view.model_copy(update={"venue": "simA"})))
    rig.send(ControlRequest(command=view.model_copy(update={"venue": None})))
    assert [request.command.venue for _, request in rig.host.forwarded] == ["simA", None]
