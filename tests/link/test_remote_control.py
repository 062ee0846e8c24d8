"""Operator commands across the link: the edge takes only `restart`, `stop`, `start` and
`fix-seq` of its own venues' actors from the core and relays its supervisor's answer; the
core answers the control plane with it, or says the edge did not answer."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

import structlog
import zmq
from structlog.testing import capture_logs

import supervisor
from actors.link.remote_control import (
    ANSWER_TIMEOUT_S,
    CONTROL,
    CONTROL_REPLY,
    EDGE_BUDGET_S,
    CoreControl,
    EdgeControl,
)
from actors.runtime.zap import ZapGate
from actors.supervisor import control_plane
from protocol.codec import Envelope, Sender, decode, encode
from protocol.commands import FixSeq, KillSwitch, OperatorId, Restart, Stop
from protocol.domain import MAX_REASON_CHARS
from protocol.messages import ControlReply, ControlRequest
from protocol.sockets import Socket


class _Host:
    def __init__(self, name: str, ctx: zmq.Context[zmq.Socket[bytes]] | None = None) -> None:
        self.sender = Sender(name, 1)
        if ctx is not None:  # an edge's: it reads its supervisor's answers (a test's ROUTER)
            self.zap = ZapGate(ctx, name, lambda cred: None)
        self.later: list[Callable[[], None]] = []
        self.drops: list[tuple[str, str]] = []
        self.delays: list[float] = []
        self.log = structlog.get_logger()

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> None:
        self.delays.append(delay_s)
        self.later.append(fn)

    def decode_or_count(self, frames: list[bytes], source: str) -> Envelope | None:
        return decode(frames)

    def dropped(self, peer: str, reason: str) -> None:
        self.drops.append((peer, reason))


@dataclass
class _EdgeRig:
    edge: EdgeControl
    host: _Host
    sup: zmq.Socket[bytes]  # the edge's supervisor, played by the test
    dealer: zmq.Socket[bytes]
    back: list[list[bytes]]  # what the edge sent back towards the core


@contextmanager
def _edge_rig() -> Iterator[_EdgeRig]:
    """An `EdgeControl` owning connector.simA, its supervisor a ROUTER of the test's own."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    try:
        sup = ctx.socket(zmq.ROUTER)
        port = sup.bind_to_random_port("tcp://127.0.0.1")
        dealer = ctx.socket(zmq.DEALER)
        dealer.connect(f"tcp://127.0.0.1:{port}")
        back: list[list[bytes]] = []
        host = _Host("link", ctx)
        edge = EdgeControl(
            host, cast(Socket, dealer), {"connector.simA"}, lambda f: back.append(f) or True
        )
        yield _EdgeRig(edge, host, sup, dealer, back)
    finally:
        ctx.destroy(linger=0)


def test_core_forwards_and_relays_the_answer_or_a_timeout() -> None:
    host, sent = _Host("link"), []
    core = CoreControl(host, lambda group, frames: sent.append((group, frames)) or True)
    answers: list[ControlReply] = []
    who = OperatorId(uid=1000, user="ops")
    core.forward("edge-a", Restart(actor="connector.simA"), who, answers.append)
    group, frames = sent[0]
    assert group == "edge-a" and frames[0] == CONTROL
    request = decode(frames[2:])
    assert isinstance(request.body, ControlRequest) and request.body.operator == who
    reply = Sender("edge", 2).envelope(ControlReply(status="ok", reason="restarting"))
    core.on_answer("edge-a", [frames[1], *encode(reply)])
    assert [a.reason for a in answers] == ["restarting"]
    core.forward("edge-a", Restart(actor="connector.simA"), who, answers.append)
    host.later[-1]()  # no answer in time
    assert answers[-1].status == "error" and "did not answer" in answers[-1].reason


def test_core_answers_link_down_when_the_tunnel_does_not_take_the_command() -> None:
    core = CoreControl(_Host("link"), lambda group, frames: False)
    answers: list[ControlReply] = []
    core.forward("edge-a", Stop(actor="connector.simA"), None, answers.append)
    [down] = answers
    assert down.status == "error" and down.data["unreachable"]["host_group"] == "edge-a"
    assert down.reason.startswith("connector.simA runs on host group edge-a")


def test_edge_takes_only_the_across_commands_of_its_own_actors() -> None:
    core = Sender("link", 9)

    def command(body: Any) -> list[bytes]:
        env = core.envelope(ControlRequest(command=body, operator=OperatorId(user="ops")))
        return [b"c1", *encode(env)]

    with _edge_rig() as rig:
        edge, sup, dealer, back = rig.edge, rig.sup, rig.dealer, rig.back
        edge.on_command(command(KillSwitch(action="engage", reason="x")))
        edge.on_command(command(Restart(actor="connector.simB")))
        edge.on_command(command(Stop(actor="connector.simB")))
        edge.on_command(command(FixSeq(venue="simB", next_in=3, reason="x")))
        refused = [decode(f[2:]).body for f in back]
        assert len(refused) == 4
        assert all(isinstance(r, ControlReply) and r.status == "error" for r in refused)
        assert all(f[0] == CONTROL_REPLY and f[1] == b"c1" for f in back)
        edge.on_command(command(Restart(actor="connector.simA", reason="flaky")))
        assert sup.poll(5000)
        ident, *frames = sup.recv_multipart()
        got = decode(frames)
        assert isinstance(got.body, ControlRequest) and isinstance(got.body.command, Restart)
        assert got.body.command.reason == "flaky (from the core operator ops)"
        answer = Sender("supervisor", 3).envelope(
            ControlReply(status="ok", reason="ok!"), got.msg_id
        )
        sup.send_multipart([ident, *encode(answer)])
        assert dealer.poll(5000)
        edge.on_readable()
        last = decode(back[-1][2:]).body
        assert back[-1][1] == b"c1" and isinstance(last, ControlReply) and last.reason == "ok!"
        edge.on_command(command(Stop(actor="connector.simA", force=True)))
        edge.on_command(command(FixSeq(venue="simA", next_out=9, reason="reset")))
        for expected in (
            Stop(actor="connector.simA", force=True, reason="(from the core operator ops)"),
            FixSeq(venue="simA", next_out=9, reason="reset (from the core operator ops)"),
        ):
            assert sup.poll(5000)
            _, *frames = sup.recv_multipart()
            body = decode(frames).body
            assert isinstance(body, ControlRequest) and body.command == expected


def test_core_takes_an_answer_only_from_the_edge_asked_and_only_what_an_edge_may_say() -> None:
    """An answer to a command sent to edge-a that comes from edge-b is dropped and counted
    (ids are guessable); an edge's answer cannot mark itself unreachable (the CLI's exit 3
    and the core's stop record are the core's to decide) and its `stopped` must be a bool;
    the right edge's answer then goes through."""
    host, sent = _Host("link"), []
    core = CoreControl(host, lambda group, frames: sent.append((group, frames)) or True)
    answers: list[ControlReply] = []
    core.forward("edge-a", Stop(actor="connector.simA", force=True), None, answers.append)
    msg_id = sent[0][1][1]

    def answer(data: dict[str, Any]) -> list[bytes]:
        reply = ControlReply(status="ok", reason="stopping", data=data)
        return [msg_id, *encode(Sender("edge", 2).envelope(reply))]

    core.on_answer("edge-b", answer({"stopped": False}))
    core.on_answer("edge-a", answer({"stopped": "yes"}))
    core.on_answer("edge-b", [b"link:9:9:9", *answer({})[1:]])
    assert answers == []
    assert host.drops == [
        ("edge-b", "not_allowed"),
        ("edge-a", "malformed"),
        ("edge-b", "unexpected"),
    ]
    core.on_answer("edge-a", answer({"stopped": True, "unreachable": {"host_group": "x"}}))
    assert [a.data for a in answers] == [{"stopped": True}]
    core.on_answer("edge-a", answer({"stopped": False}))  # answered already
    assert len(answers) == 1 and host.drops[-1] == ("edge-a", "unexpected")


def test_timeouts_nest_each_inside_the_one_that_waits_for_it() -> None:
    """The edge gives up first (the deadline it is sent), then the core's link, then the
    core's control plane, then the CLI: no side answers "no answer" while the one it waits
    for may still act."""
    cli_default = supervisor.build_parser().parse_args(["status"]).timeout_s
    assert EDGE_BUDGET_S < ANSWER_TIMEOUT_S < control_plane.ACROSS_TIMEOUT_S < cli_default


def test_a_command_carries_a_deadline_and_the_edge_refuses_it_once_expired() -> None:
    """The core sends each command with a deadline (wall clock, EDGE_BUDGET_S ahead); the
    edge refuses one past it (logged `control_expired`, answered `expired`: the core has
    given up on it) and waits for its supervisor no longer than what is left."""
    host, sent = _Host("link"), []
    core = CoreControl(host, lambda group, frames: sent.append((group, frames)) or True)
    before = time.time_ns()
    core.forward("edge-a", Stop(actor="connector.simA", force=True), None, lambda r: None)
    request = decode(sent[0][1][2:]).body
    assert isinstance(request, ControlRequest) and request.deadline_ns is not None
    assert 0 < request.deadline_ns - before <= EDGE_BUDGET_S * 1e9 + 1e9
    assert host.delays == [ANSWER_TIMEOUT_S]

    late = ControlRequest(
        command=Stop(actor="connector.simA"), deadline_ns=time.time_ns() - 2 * 10**9
    )
    with _edge_rig() as rig:
        edge, edge_host, sup, back = rig.edge, rig.host, rig.sup, rig.back
        with capture_logs() as logs:
            edge.on_command([b"c1", *encode(Sender("link", 9).envelope(late))])
        [(kind, core_id, *frames)] = back
        answer = decode(frames).body
        assert isinstance(answer, ControlReply) and answer.data == {"expired": True}
        assert "expired" in answer.reason and answer.status == "error"
        assert [e["event"] for e in logs] == ["control_expired"] and logs[0]["late_s"] >= 2
        assert not sup.poll(50)  # the supervisor never saw it
        fresh = late.model_copy(update={"deadline_ns": time.time_ns() + 3 * 10**9})
        edge.on_command([b"c2", *encode(Sender("link", 9).envelope(fresh))])
        assert sup.poll(5000)
        assert 0 < edge_host.delays[-1] <= 3.0  # what is left, not EDGE_BUDGET_S


def test_a_long_reason_is_cut_but_keeps_who_sent_it_from_the_core() -> None:
    """A reason of the longest length the core takes reaches the edge's supervisor within
    the limit, cut before the core operator's name, never the name."""
    with _edge_rig() as rig:
        edge, sup = rig.edge, rig.sup
        who = OperatorId(uid=1000, user="mallory")
        stop = Stop(actor="connector.simA", reason="x" * MAX_REASON_CHARS, force=True)
        env = Sender("link", 1).envelope(ControlRequest(command=stop, operator=who))
        edge.on_command([b"c1", *encode(env)])
        assert sup.poll(5000)
        body = decode(sup.recv_multipart()[1:]).body
        assert isinstance(body, ControlRequest) and isinstance(body.command, Stop)
        reason = body.command.reason
        assert reason.endswith(" (from the core operator mallory)") and reason.startswith("xxx")
        assert len(reason) == MAX_REASON_CHARS
