"""Operator commands across the link: a command for a venue's connector or simulator placed
on an edge (`restart`, `stop`, `start`, `fix seq`: `protocol.commands.acted_on`), given to
the core, is done by that edge's supervisor.

The core's control plane forwards the command to its link actor (as it forwards a
kill-switch command to risk); the link sends it to the edge as `C <id> <ControlRequest>`,
or, while the link to that edge is down, answers at once `link_down` (no traceback, one
line naming the group and the link state; the CLI exits 3). The edge's link checks it (a
command of `ACROSS` for an actor of a venue placed on that edge) and sends it to its own
supervisor's control socket, which stamps it `via="actor:link"` and audits it; the core
operator's name goes with the reason. The answer comes back as `R <id> <ControlReply>`
and the core's link answers the control plane with it (the core audits it too), taken
only from the edge the command went to. Each command carries a deadline
(`ControlRequest.deadline_ns`): the edge refuses one that arrives after it (`expired`).
The edge's link also reports its supervisor's operator stops of its actors with each ping
(`stops_report`): the core's records follow them (`ControlPlane.on_link_info`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING, Protocol

import structlog

from actors.runtime.operator_stops import (
    OperatorStop,
    bounded_stop,
    stops_as_data,
    stops_from_data,
)
from protocol.codec import Envelope, Sender, encode
from protocol.commands import Command, OperatorId, acted_on
from protocol.domain import MAX_REASON_CHARS
from protocol.messages import ControlReply, ControlRequest
from protocol.sockets import Socket, drain, send_nowait

if TYPE_CHECKING:  # not at run time: it imports the metrics (the CLI loads this module)
    from actors.runtime.zap import ZapGate

CONTROL, CONTROL_REPLY = b"C", b"R"
# nested, each inside the one that waits for it: the CLI (10 s) > the core's control plane
# (`ACROSS_TIMEOUT_S`, 8 s) > the core's link (6 s) > the edge (the deadline sent, 5 s)
ANSWER_TIMEOUT_S = 6.0
EDGE_BUDGET_S = 5.0  # the command's deadline: the edge refuses it after, and stops waiting
ACROSS = frozenset({"restart", "stop", "start", "fix-seq"})  # what an edge takes from the core
UNREACHABLE = "unreachable"  # the reply's data key: {host_group, link}; the CLI exits 3
# an edge's stops report: a few hundred bytes per stop of one of its actors (reason and who
# cut at MAX_REASON_CHARS); anything bigger is not read
MAX_STOPS_REPORT_BYTES = 64 * 1024


def link_down(actor: str, group: str, state: str) -> ControlReply:
    """The answer to a command for `actor` (run by host group `group`) that cannot cross:
    `state` says why (the link down for how long, the link actor not running)."""
    reason = f"{actor} runs on host group {group}, and {state}: not sent"
    return ControlReply(
        status="error", reason=reason, data={UNREACHABLE: {"host_group": group, "link": state}}
    )


def stops_report(stops: Mapping[str, OperatorStop] | None, local: set[str]) -> bytes:
    """An edge's report of the operator stops its supervisor holds of this edge's own actors
    (`local`), sent with each ping and before each answer to the core; b"": not known (the
    stops file unreadable). The core takes from it only that edge's actors."""
    if stops is None:
        return b""
    mine = {a: s for a, s in stops.items() if a in local}
    return json.dumps(stops_as_data(mine), sort_keys=True).encode()


def read_stops_report(raw: bytes, actors: Collection[str]) -> dict[str, OperatorStop] | None:
    """`stops_report` back, from the edge that runs `actors` (None: not known): only those
    actors' stops, bounded (a connector's venue from its actor id, as the config names it;
    the reason and who cut at `MAX_REASON_CHARS`). ValueError if it is not one: over
    `MAX_STOPS_REPORT_BYTES`, not JSON (or nested too deep), not stops, a `since` that is no
    finite number, more stops than the edge runs actors."""
    if not raw:
        return None
    if len(raw) > MAX_STOPS_REPORT_BYTES:
        raise ValueError(f"a stops report of {len(raw)} bytes (at most {MAX_STOPS_REPORT_BYTES})")
    try:
        stops = stops_from_data(json.loads(raw))
    except (RecursionError, TypeError) as exc:
        raise ValueError(f"not a stops report ({type(exc).__name__})") from exc
    if len(stops) > len(actors):
        raise ValueError(f"{len(stops)} stops reported, for {len(actors)} actors")
    return {a: bounded_stop(s) for a, s in stops.items() if a in actors}


class LinkHost(Protocol):
    sender: Sender
    zap: ZapGate  # judges who bound the supervisor's control socket (`from_binders`)
    log: structlog.typing.FilteringBoundLogger

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> None: ...

    def decode_or_count(self, frames: list[bytes], source: str) -> Envelope | None: ...

    def dropped(self, peer: str, reason: str) -> None: ...


Respond = Callable[[ControlReply], None]


class CoreControl:
    """The core's half: commands out to an edge, its answers back to the control plane."""

    def __init__(self, host: LinkHost, send: Callable[[str, list[bytes]], bool]) -> None:
        self._host = host
        self._send = send
        self._waiting: dict[str, tuple[str, Respond]] = {}  # our id -> (its group, who asked)

    def forward(
        self, group: str, command: Command, operator: OperatorId | None, respond: Respond
    ) -> None:
        deadline_ns = time.time_ns() + int(EDGE_BUDGET_S * 1e9)
        request = ControlRequest(command=command, operator=operator, deadline_ns=deadline_ns)
        env = self._host.sender.envelope(request)
        if not self._send(group, [CONTROL, env.msg_id.encode(), *encode(env)]):
            actor = acted_on(command) or command.command
            respond(link_down(actor, group, f"the link to {group} did not take it"))
            return
        self._waiting[env.msg_id] = (group, respond)
        self._host.call_later(ANSWER_TIMEOUT_S, lambda: self._expire(env.msg_id, group))

    def on_answer(self, peer: str, rest: list[bytes]) -> None:
        """An answer from edge `peer`: only the edge a command was sent to may answer it
        (any other is dropped and counted, `not_allowed`); what an edge cannot say (that it
        is unreachable) is taken out, and one whose `stopped` is not a bool is dropped
        (`malformed`): the command then times out."""
        msg_id = rest[0].decode(errors="replace")
        waiting = self._waiting.get(msg_id)
        if waiting is None or waiting[0] != peer:
            self._host.dropped(peer, "not_allowed" if waiting is not None else "unexpected")
            return
        env = self._host.decode_or_count(rest[1:], "link:control")
        if env is None:
            return
        reply = env.body
        if not isinstance(reply, ControlReply) or not isinstance(
            reply.data.get("stopped", False), bool
        ):
            self._host.dropped(peer, "malformed")
            return
        del self._waiting[msg_id]
        if UNREACHABLE in reply.data:
            data = {k: v for k, v in reply.data.items() if k != UNREACHABLE}
            reply = reply.model_copy(update={"data": data})
        waiting[1](reply)

    def _expire(self, msg_id: str, group: str) -> None:
        if (waiting := self._waiting.pop(msg_id, None)) is not None:
            waiting[1](ControlReply(status="error", reason=f"host group {group} did not answer"))


class EdgeControl:
    """The edge's half: a command from the core, checked, to this host's supervisor."""

    def __init__(
        self,
        host: LinkHost,
        sock: Socket,
        local_actors: set[str],
        send_back: Callable[[list[bytes]], bool],
        before_answer: Callable[[], None] = lambda: None,
    ) -> None:
        self._host = host
        self.sock = sock  # a DEALER to this supervisor's control socket
        self.local = local_actors
        self._before_answer = before_answer  # the link's ping: its stops report goes first
        self._send_back = send_back
        self._waiting: dict[str, bytes] = {}  # our request id -> the core's

    def on_command(self, rest: list[bytes]) -> None:
        core_id, env = rest[0], self._host.decode_or_count(rest[1:], "link:control")
        if env is None or not isinstance(env.body, ControlRequest):
            return
        command, who, deadline_ns = env.body.command, env.body.operator, env.body.deadline_ns
        actor = acted_on(command)
        if command.command not in ACROSS or actor not in self.local:
            why = f"{command.command} {actor or ''} is not taken across the link"
            self._answer(core_id, ControlReply(status="error", reason=why.strip()))
            return
        left_s = EDGE_BUDGET_S if deadline_ns is None else (deadline_ns - time.time_ns()) / 1e9
        if left_s <= 0:  # the core has given up (or the clocks disagree): not done
            self._host.log.warning(
                "control_expired", command=command.command, actor=actor, late_s=round(-left_s, 3)
            )
            why = (
                f"{command.command} {actor} expired before this host took it ({-left_s:.1f} s"
                " late; are the hosts' clocks in sync?): not done"
            )
            self._answer(core_id, ControlReply(status="error", reason=why, data={"expired": True}))
            return
        by = f"core operator {who.user or who.uid}" if who is not None else "core"
        suffix = f" (from the {by})"
        given = str(getattr(command, "reason", ""))[: max(MAX_REASON_CHARS - len(suffix), 0)]
        reason = f"{given}{suffix}".strip()[:MAX_REASON_CHARS]  # who, kept: the reason is cut
        # every field as the core sent it (risk's kill-switch restart lifts a stop), and who
        request = command.model_copy(update={"reason": reason})
        out = self._host.sender.envelope(ControlRequest(command=request))
        if send_nowait(self.sock, encode(out)) is not None:
            self._answer(core_id, ControlReply(status="error", reason="supervisor unreachable"))
            return
        self._waiting[out.msg_id] = core_id
        wait_s = min(left_s, EDGE_BUDGET_S)
        self._host.call_later(wait_s, lambda: self._forget(out.msg_id))

    def _forget(self, msg_id: str) -> None:
        self._waiting.pop(msg_id, None)  # the supervisor never answered: the core times out

    def on_readable(self) -> None:
        for frames in self._host.zap.from_binders(drain(self.sock, 100, frames=True)):
            env = self._host.decode_or_count(frames, "link:supervisor_control")
            if env is None or not isinstance(env.body, ControlReply):
                continue
            core_id = self._waiting.pop(env.corr_id, None)
            if core_id is not None:
                self._before_answer()  # the supervisor wrote its stops before it answered
                self._answer(core_id, env.body)

    def _answer(self, core_id: bytes, reply: ControlReply) -> None:
        self._send_back([CONTROL_REPLY, core_id, *encode(self._host.sender.envelope(reply))])
