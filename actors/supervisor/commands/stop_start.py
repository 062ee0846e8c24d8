"""`tradepulse stop ACTOR [--reason "..."]` / `tradepulse start ACTOR` (the supervisor answers).

`stop` stops a supervised actor and keeps it stopped: no restart, no restart budget used,
not counted as a crash; `status` shows it `stopped (by operator: <reason>)`. A venue's
connector stopped this way is no outage (no `connector_outage` kill-switch) and the OMS
refuses orders for that venue saying it is stopped. `start` starts it again with a fresh
restart budget. Risk, the OMS and the heartbeat cannot be stopped (use `shutdown`); a
connector whose venue has orders open needs `--force` (`actors.supervisor.stop_guard`); who
stopped it is recorded and shown. A supervisor restart forgets the stops. See
`actors.supervisor.operator_stop`.

A venue's connector or simulator placed on an edge, stopped or started from the core: the
edge's supervisor does it (`actors.link.remote_control`); the core first counts the venue's
open orders (its OMS does) and records the stop for its own OMS and heartbeat, and drops
that record when the edge answers that the actor is not stopped (a refusal, a `start`).
The reply's `data.stopped` says whether the actor is stopped now. The edge is the source
of truth: its link reports its stops with each ping, and the core's records follow them
while the link is up (`ControlPlane.on_link_info`: after a restart of either side).
"""

from __future__ import annotations

import argparse

from actors.runtime.operator_stops import OperatorStop
from actors.supervisor.commands.base import ControlCommand, ControlHost
from actors.supervisor.stop_guard import open_orders_refusal
from protocol import commands as wire
from protocol.messages import ControlReply


class Stop(ControlCommand[wire.Stop]):
    """stop one actor and keep it stopped until `start` (not a crash, no restart)"""

    name = "stop"
    model = wire.Stop

    def __init__(self) -> None:
        # a stop on its way to an edge (the command sent) -> the core's record before it
        self._before: dict[int, OperatorStop | None] = {}

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("actor", help="the actor id, as `status` lists it (connector.simA)")
        parser.add_argument("--reason", default="", help="why: shown by status and logged")
        parser.add_argument(
            "--force",
            action="store_true",
            help="stop a connector even with orders open at its venue (their fills go unseen "
            "until `start`)",
        )

    def to_wire(self, ns: argparse.Namespace) -> wire.Stop:
        return wire.Stop(actor=ns.actor, reason=ns.reason, force=ns.force)

    def execute_by(
        self, command: wire.Stop, host: ControlHost, operator: wire.OperatorId | None
    ) -> ControlReply:
        by = operator.describe() if operator else None
        stops = host.operator_stops
        ok, text = stops.stop(command.actor, command.reason.strip(), by=by, force=command.force)
        return _reply(ok, text, host, command.actor)

    def execute(self, command: wire.Stop, host: ControlHost) -> ControlReply:
        return self.execute_by(command, host, None)

    def before_across(
        self, command: wire.Stop, host: ControlHost, operator: wire.OperatorId | None
    ) -> wire.Stop | ControlReply:
        """The core counts the venue's open orders (the edge runs no OMS) and records the
        stop before the edge is asked; the edge is told `force` (counted here)."""
        kind, _, venue = command.actor.partition(".")
        connector_venue = venue if kind == "connector" else None
        if connector_venue is not None:
            info = host.actor_info("oms")
            refused = open_orders_refusal(command.actor, venue, info, force=command.force)
            if refused is not None:
                return ControlReply(status="error", reason=refused)
        by = operator.describe() if operator else None
        why = command.reason.strip()
        before = host.operator_stops.held(command.actor)
        failed = host.operator_stops.hold_elsewhere(command.actor, connector_venue, why, by)
        if failed is not None:
            return ControlReply(status="error", reason=failed)
        sent = command.model_copy(update={"force": True})
        self._before[id(sent)] = before  # `after_across` gets `sent` back
        return sent

    def after_across(self, command: wire.Stop, host: ControlHost, reply: ControlReply) -> None:
        """The core keeps its record only when the edge answers that the actor is stopped;
        an answer `stopped: false` drops it; any other (refused, not taken, not sent, no
        answer in time) puts back the record it had before this stop: none (the edge's next
        report brings it back if the edge did stop it after all), or the stop the edge
        still holds from an earlier `stop` (a second `stop` while the link is down)."""
        before = self._before.pop(id(command), None)
        stopped = reply.data.get("stopped")
        if stopped is True:
            return
        if stopped is False:
            host.operator_stops.follow_elsewhere(command.actor)
        else:
            host.operator_stops.restore_elsewhere(command.actor, before)

    def format(self, reply: ControlReply) -> str:
        return brief(reply)


class Start(ControlCommand[wire.Start]):
    """start an actor an operator stopped"""

    name = "start"
    model = wire.Start

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("actor", help="the actor id, as `status` lists it (connector.simA)")
        parser.add_argument("--reason", default="", help="why (logged and audited)")

    def to_wire(self, ns: argparse.Namespace) -> wire.Start:
        return wire.Start(actor=ns.actor, reason=ns.reason)

    def execute_by(
        self, command: wire.Start, host: ControlHost, operator: wire.OperatorId | None
    ) -> ControlReply:
        by = operator.describe() if operator else None
        ok, text = host.operator_stops.start(command.actor, by=by)
        return _reply(ok, text, host, command.actor)

    def execute(self, command: wire.Start, host: ControlHost) -> ControlReply:
        return self.execute_by(command, host, None)

    def after_across(self, command: wire.Start, host: ControlHost, reply: ControlReply) -> None:
        follow_across(command.actor, host, reply)

    def format(self, reply: ControlReply) -> str:
        return brief(reply)


def _reply(ok: bool, text: str, host: ControlHost, actor: str) -> ControlReply:
    stopped = host.operator_stops.held(actor) is not None
    return ControlReply(status="ok" if ok else "error", reason=text, data={"stopped": stopped})


def follow_across(actor: str, host: ControlHost, reply: ControlReply) -> None:
    """After a `start` or `restart` of an edge's actor: the core's record of its stop goes
    only when the edge answers that the actor is not stopped; a command that never got there
    (the link down, its queue full) leaves the actor as it was, stopped."""
    if reply.data.get("stopped") is False:
        host.operator_stops.follow_elsewhere(actor)


def brief(reply: ControlReply) -> str:
    """`status: reason` (the data, for scripts, with `--json`)."""
    return f"{reply.status}: {reply.reason}" if reply.reason else reply.status
