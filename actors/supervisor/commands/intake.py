"""`tradepulse intake pause|resume|status [--venue V] [--reason "..."]`: close or reopen order
intake, globally or for one venue, executed by the OMS (nothing is stopped; orders already
accepted carry on, cancels are always taken). A pause needs a reason; the OMS persists the
pauses (`actors.oms.intake_state`), so they survive its restarts; `status` shows them.
While the OMS has no process (between restarts) the supervisor writes the file itself.
`resume` without `--venue` lifts the global pause only: venue pauses stay until resumed by
name (the reply lists what is still paused)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

import structlog

from actors.supervisor.commands.base import ControlCommand, ControlHost, choices
from actors.supervisor.restart_policy import ChildState
from protocol import commands as wire
from protocol.messages import ControlReply

# the OMS has no process in these states: the supervisor may write its pause file
_NO_PROCESS = (ChildState.BACKOFF, ChildState.DOWN, ChildState.GAVE_UP, ChildState.STOPPED)


class Intake(ControlCommand[wire.Intake]):
    """pause or resume order intake (globally, or one venue with --venue)"""

    name = "intake"
    model = wire.Intake
    route = "oms"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "action", choices=choices(wire.Intake, "action"), help="pause, resume or status"
        )
        parser.add_argument("--venue", help="only this venue (default: all venues, globally)")
        parser.add_argument("--reason", default="", help="why (required to pause): kept, shown")

    def to_wire(self, ns: argparse.Namespace) -> wire.Intake:
        return wire.Intake(action=ns.action, venue=ns.venue, reason=ns.reason)

    def execute_by(
        self, command: wire.Intake, host: ControlHost, operator: wire.OperatorId | None
    ) -> ControlReply:
        """As `execute`, the offline pause recording who paused (`by`, as the OMS does)."""
        return self._execute(command, host, operator.describe() if operator else None)

    def execute(self, command: wire.Intake, host: ControlHost) -> ControlReply:
        return self._execute(command, host, None)

    def _execute(self, command: wire.Intake, host: ControlHost, by: str | None) -> ControlReply:
        """The OMS is not running: between its restarts the supervisor writes the pause
        file the next OMS loads; while it starts or stops (it may have read the file
        already, or be about to write it) the command fails: retry."""
        if host.actor_state("oms") not in _NO_PROCESS:
            return super().execute(command, host)
        from actors.oms.intake_state import control_offline  # imports prometheus_client

        prefix = "connector."
        venues = [a.removeprefix(prefix) for a in host.actor_ids() if a.startswith(prefix)]
        log = structlog.get_logger().bind(actor="supervisor")
        ok, text = control_offline(host.state_path, command, venues, log, by)
        return ControlReply(status="ok" if ok else "error", reason=f"intake: {text}")

    def format(self, reply: ControlReply) -> str:
        """The answer line, then one row per pause (and stopped venue), if any."""
        pauses = (reply.data or {}).get("intake_pauses")
        if not isinstance(pauses, dict):
            return super().format(reply)
        rows = [("SCOPE", "SINCE (UTC)", "REASON")]
        if pauses.get("global"):
            rows.append(("global", _since(pauses["global"]), str(pauses["global"].get("reason"))))
        for venue, p in (pauses.get("venues") or {}).items():
            rows.append((venue, _since(p), str(p.get("reason"))))
        for venue, reason in (pauses.get("stopped") or {}).items():
            rows.append((venue, "-", f"connector stopped by an operator: {reason}"))
        for venue, why in (pauses.get("gave_up") or {}).items():  # not a pause: VENUE_DOWN
            rows.append((venue, "-", f"connector gave up: {why}"))
        text = f"{reply.status}: {reply.reason}"
        if len(rows) > 1:
            widths = [max(len(r[i]) for r in rows) for i in range(2)]
            text += "\n" + "\n".join(
                f"{r[0].ljust(widths[0])}  {r[1].ljust(widths[1])}  {r[2]}" for r in rows
            )
        return text


def _since(pause: dict[str, Any]) -> str:
    since = pause.get("since")
    if not isinstance(since, (int, float)):
        return "-"
    return datetime.fromtimestamp(since, UTC).strftime("%Y-%m-%d %H:%M:%S")
