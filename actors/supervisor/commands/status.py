"""`tradepulse status`: actors, venues, kill-switch, intake (the supervisor answers)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from actors.supervisor.commands.base import ControlCommand, ControlHost
from protocol import commands as wire
from protocol.messages import ControlReply


class Status(ControlCommand[wire.Status]):
    """actors, venues, kill-switch"""

    name = "status"
    model = wire.Status

    def to_wire(self, ns: argparse.Namespace) -> wire.Status:
        return wire.Status()

    def execute(self, command: wire.Status, host: ControlHost) -> ControlReply:
        return ControlReply(status="ok", data=host.status())

    def format(self, reply: ControlReply) -> str:
        return format_status(reply.data) if reply.status == "ok" else super().format(reply)


def _fmt_bytes(n: int | None) -> str:
    if not n:
        return "-"
    return f"{n / 1048576:.1f}M"


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned columns two spaces apart, each as wide as its widest cell."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def _state(actor: dict[str, Any]) -> str:
    held = actor.get("stopped_by_operator")
    if held is None or actor["state"] != "stopped":
        return str(actor["state"]) + (" (stop requested by operator)" if held is not None else "")
    by = actor.get("stopped_by")
    who = f" {str(by).split(' (', 1)[0]}" if by else ""
    return f"stopped (by operator{who}: {held or 'no reason given'})"


def _pause_lines(pauses: dict[str, Any]) -> list[str]:
    """The operator pauses of intake (`actors.oms.intake_state.IntakeGate.view`)."""
    lines = []
    if g := pauses.get("global"):
        lines.append(f"intake paused globally: {g.get('reason')}")
    for venue, p in (pauses.get("venues") or {}).items():
        lines.append(f"intake paused for {venue}: {p.get('reason')}")
    return lines


def format_status(data: dict[str, Any]) -> str:
    """The status table: one row per actor, the venues, the kill-switch, intake, metrics."""
    rows = [("ACTOR", "PID", "STATE", "EPOCH", "RESTARTS", "UPTIME_S", "HB_AGE_S", "RSS", "CPU%")]
    for a in data.get("actors", []):
        rows.append(
            (
                a["id"],
                str(a["pid"] or "-"),
                _state(a),
                str(a["epoch"]),
                str(a["restarts"]),
                f"{a['uptime_s']:.1f}",
                "-" if a["heartbeat_age_s"] is None else f"{a['heartbeat_age_s']:.2f}",
                _fmt_bytes(a["rss_bytes"]),
                f"{a['cpu_percent']:.0f}",
            )
        )
    lines = _table(rows)
    lines.append("")
    # the OMS's view of each venue: reconciled, or e.g. `reconcile_failing: <reason>`
    oms = next((a.get("info") or {} for a in data.get("actors", []) if a["id"] == "oms"), {})
    oms_venues = oms.get("venues") or {}
    venues = data.get("venues", {})
    # the host group column once a venue is placed off the core (docs: "Across hosts")
    placed = any(v.get("host_group", "core") != "core" for v in venues.values())
    venue_rows = [("VENUE", "STATE", "OMS", "DETAIL") + (("HOST_GROUP",) if placed else ())]
    for name, v in venues.items():
        row = (name, str(v.get("state")), str(oms_venues.get(name, "-")), str(v.get("detail", "")))
        venue_rows.append(row + ((str(v.get("host_group", "core")),) if placed else ()))
    lines += _table(venue_rows)
    ks = data.get("kill_switch", {})
    lines.append("")
    engaged = "ENGAGED" if ks.get("engaged") else "off"
    lines.append(
        f"kill-switch: {engaged}"
        + (f" ({ks.get('source')}: {ks.get('reason')})" if ks.get("engaged") else "")
    )
    for key in ("intake", "queues"):
        if key in data:
            lines.append(f"{key}: {data[key]}")
    trading = (oms.get("trading") or {}).get("text")  # [trading]: actors/oms/trading_gate.py
    if trading and not str(data.get("intake", "")).startswith("closed:"):  # said already
        lines.append(f"trading: {trading}")
    lines += _pause_lines(data.get("intake_pauses") or {})
    if oms.get("journal") == "low":  # actors/oms/journal_space.py
        lines.append("journal: LOW (no space for the OMS journal: new orders refused)")
    link = next((a.get("info") or {} for a in data.get("actors", []) if a["id"] == "link"), {})
    for peer, p in (link.get("link") or {}).items():  # actors/link: this host's link(s)
        lines.append(f"link to {peer}: {p.get('state')} (rtt_ms {p.get('rtt_ms')})")
    lines.append(f"metrics: {data.get('metrics_url', '')}")
    if (pid := data.get("supervisor_pid")) is not None:  # `kill -HUP` reloads (runbook)
        lines.append(f"supervisor: pid {pid}, up {float(data.get('uptime_s') or 0):.0f}s")
    return "\n".join(lines)
