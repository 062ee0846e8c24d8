"""`tradepulse restart ACTOR [--force]` (the supervisor answers).

A running actor is stopped (a polite STOP, or SIGKILL of its group with `--force`) and its
exit respawns it at once; one that is not running (given up, or waiting out a backoff)
starts now with a fresh restart budget. One an operator stopped (`tradepulse stop`) is
refused (`start` it), except risk's restart of a connector for the kill-switch's mass
cancel (`override_stop`), which lifts the stop. A restart is counted
(`tradepulse_actor_restarts_total{reason}`) `kill_switch` when risk's process asked for it
(`via="actor:risk"`), else `operator`. Risk's restart of a connector that gave up (its
state is corrupt: docs/runbook.md "Corrupt state files") is refused: it would only meet
the same bytes again, every `restart_cooldown_s` while the switch is engaged.
"""

from __future__ import annotations

import argparse

from actors.supervisor.commands.base import ControlCommand, ControlHost
from actors.supervisor.commands.stop_start import brief, follow_across
from actors.supervisor.restart_policy import ChildState
from protocol import commands as wire
from protocol.messages import ControlReply


class Restart(ControlCommand[wire.Restart]):
    """restart one actor"""

    name = "restart"
    model = wire.Restart

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("actor", help="the actor id, as `status` lists it (e.g. oms)")
        parser.add_argument("--force", action="store_true", help="SIGKILL now (unresponsive actor)")
        parser.add_argument("--reason", default="", help="why (logged and audited)")

    def to_wire(self, ns: argparse.Namespace) -> wire.Restart:
        return wire.Restart(actor=ns.actor, force=ns.force, reason=ns.reason)

    def execute_by(
        self, command: wire.Restart, host: ControlHost, operator: wire.OperatorId | None
    ) -> ControlReply:
        """Counted by why: risk's restart of a connector is the kill-switch's, not an
        operator's (`ActorFlapping` leaves operator restarts out)."""
        by_risk = operator is not None and operator.via == "actor:risk"
        return self._execute(command, host, "kill_switch" if by_risk else "operator")

    def execute(self, command: wire.Restart, host: ControlHost) -> ControlReply:
        return self._execute(command, host, "operator")

    def after_across(self, command: wire.Restart, host: ControlHost, reply: ControlReply) -> None:
        follow_across(command.actor, host, reply)  # risk's restart lifts a stop over there

    def format(self, reply: ControlReply) -> str:
        return brief(reply)

    def _execute(self, command: wire.Restart, host: ControlHost, why: str) -> ControlReply:
        actor = command.actor
        if host.actor_state(actor) is None:  # (one of another host group's: the link's)
            return ControlReply(status="error", reason=host.operator_stops.unknown(actor))
        if (held := host.operator_stops.held(actor)) is not None:
            if not command.override_stop:
                return ControlReply(
                    status="error",
                    reason=f"{actor} is {held.describe()}: `tradepulse start {actor}` starts it",
                )
            ok, text = host.operator_stops.start(actor, why=command.reason or "restart")
            stopped = host.operator_stops.held(actor) is not None
            return ControlReply(
                status="ok" if ok else "error", reason=text, data={"stopped": stopped}
            )
        if why == "kill_switch" and host.actor_state(actor) is ChildState.GAVE_UP:
            return ControlReply(  # a connector gives up only on corrupt state: the same again
                status="error", reason=f"{actor} gave up (its state is corrupt): not restarted"
            )
        starting = host.request_restart(actor, force=command.force, reason=why)
        return ControlReply(
            status="ok", reason=f"{actor} {'starting' if starting else 'restarting'}"
        )
