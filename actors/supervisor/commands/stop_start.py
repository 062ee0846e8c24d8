"""`tradepulse stop ACTOR [--reason "..."]` / `tradepulse start ACTOR` (the supervisor answers).

`stop` stops a supervised actor and keeps it stopped: no restart, no restart budget used,
not counted as a crash; `status` shows it `stopped (by operator: <reason>)`. A venue's
connector stopped this way is no outage (no `connector_outage` kill-switch) and the OMS
refuses orders for that venue saying it is stopped. `start` starts it again with a fresh
restart budget. Risk, the OMS and the heartbeat cannot be stopped (use `shutdown`); a
connector whose venue has orders open needs `--force` (`actors.supervisor.stop_guard`); who
stopped it is recorded and shown. A supervisor restart forgets the stops. See
`actors.supervisor.operator_stop`.
"""

from __future__ import annotations

import argparse

from actors.supervisor.commands.base import ControlCommand, ControlHost
from protocol import commands as wire
from protocol.messages import ControlReply


class Stop(ControlCommand[wire.Stop]):
    """stop one actor and keep it stopped until `start` (not a crash, no restart)"""

    name = "stop"
    model = wire.Stop

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
        return ControlReply(status="ok" if ok else "error", reason=text)

    def execute(self, command: wire.Stop, host: ControlHost) -> ControlReply:
        return self.execute_by(command, host, None)


class Start(ControlCommand[wire.Start]):
    """start an actor an operator stopped"""

    name = "start"
    model = wire.Start

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("actor", help="the actor id, as `status` lists it (connector.simA)")

    def to_wire(self, ns: argparse.Namespace) -> wire.Start:
        return wire.Start(actor=ns.actor)

    def execute_by(
        self, command: wire.Start, host: ControlHost, operator: wire.OperatorId | None
    ) -> ControlReply:
        by = operator.describe() if operator else None
        ok, text = host.operator_stops.start(command.actor, by=by)
        return ControlReply(status="ok" if ok else "error", reason=text)

    def execute(self, command: wire.Start, host: ControlHost) -> ControlReply:
        return self.execute_by(command, host, None)
