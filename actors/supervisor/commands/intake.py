"""`tradepulse intake pause|resume|status [--venue V] [--reason "..."]`: close or reopen order
intake, globally or for one venue, executed by the OMS (nothing is stopped; orders already
accepted carry on, cancels are always taken). A pause needs a reason; the OMS persists the
pauses (`actors.oms.intake_state`), so they survive its restarts; `status` shows them.
`resume` without `--venue` lifts the global pause only: venue pauses stay until resumed by
name (the reply lists what is still paused)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from actors.supervisor.commands.base import ControlCommand, choices
from protocol import commands as wire
from protocol.messages import ControlReply


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
