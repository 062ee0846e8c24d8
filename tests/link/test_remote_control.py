"""Operator commands across the link: the edge takes only `restart`, `stop`, `start` and
`fix-seq` of its own venues' actors from the core and relays its supervisor's answer; the
core answers the control plane with it, or says the edge did not answer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import zmq

from actors.link.remote_control import CONTROL, CONTROL_REPLY, CoreControl, EdgeControl
from protocol.codec import Envelope, Sender, decode, encode
from protocol.commands import FixSeq, KillSwitch, OperatorId, Restart, Stop
from protocol.messages import ControlReply, ControlRequest
from protocol.sockets import Socket


class _Host:
    def __init__(self, name: str) -> None:
        self.sender = Sender(name, 1)
        self.later: list[Callable[[], None]] = []
        self.drops: list[tuple[str, str]] = []

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> None:
        self.later.append(fn)

    def decode_or_count(self, frames: list[bytes], source: str) -> Envelope | None:
        return decode(frames)

    def dropped(self, peer: str, reason: str) -> None:
        self.drops.append((peer, reason))


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
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sup = ctx.socket(zmq.ROUTER)
    port = sup.bind_to_random_port("tcp://127.0.0.1")
    dealer = ctx.socket(zmq.DEALER)
    dealer.connect(f"tcp://127.0.0.1:{port}")
    back: list[list[bytes]] = []
    host = _Host("link")
    edge = EdgeControl(
        host, cast(Socket, dealer), {"connector.simA"}, lambda f: back.append(f) or True
    )
    core = Sender("link", 9)

    def command(body: Any) -> list[bytes]:
        env = core.envelope(ControlRequest(command=body, operator=OperatorId(user="ops")))
        return [b"c1", *encode(env)]

    try:
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
    finally:
        dealer.close(0)
        sup.close(0)
        ctx.term()


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
