"""`tradepulse exposure [--venue V]`: risk's own position view, what its limits read
(executed by risk; its ROUTER takes no connection from outside the system). Printed as a
table, one row per venue and symbol (`--json`: the reply as sent, every digit); AVG_PX is
`-` for a position of unknown cost (`cost_known` false, as `positions` shows it). A last
line gives the trading day's realised P&L, what `risk.max_daily_loss` is checked against
(`daily`: the day, when it started, the realised P&L then and now)."""

from __future__ import annotations

import argparse

from actors.supervisor.commands.base import ControlCommand
from actors.supervisor.commands.positions import PNL_PLACES, PX_PLACES
from actors.supervisor.commands.tables import cell, num, table
from protocol import commands as wire
from protocol.messages import ControlReply


class Exposure(ControlCommand[wire.Exposure]):
    """risk's positions (what its limits read)"""

    name = "exposure"
    model = wire.Exposure
    route = "risk"
    venue_filter = True

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--venue", help="one venue only (default: every venue)")

    def to_wire(self, ns: argparse.Namespace) -> wire.Exposure:
        return wire.Exposure(venue=ns.venue)

    def format(self, reply: ControlReply) -> str:
        """One row per venue and symbol risk holds (`no positions` for none)."""
        positions = (reply.data or {}).get("positions")
        if reply.status != "ok" or not isinstance(positions, list):
            return super().format(reply)
        if not all(isinstance(p, dict) for p in positions):
            return super().format(reply)  # not risk's shape: as sent
        rows = [("VENUE", "SYMBOL", "QTY", "AVG_PX", "REALIZED_PNL")]
        for p in sorted(positions, key=lambda p: (str(p.get("venue")), str(p.get("symbol")))):
            known = p.get("cost_known", True) is not False  # unknown: no price to show
            px = num(p.get("avg_px") if known else None, PX_PLACES)
            pnl = num(p.get("realized_pnl"), PNL_PLACES)
            rows.append((cell(p.get("venue")), cell(p.get("symbol")), cell(p.get("qty")), px, pnl))
        lines = table(rows) if len(rows) > 1 else ["no positions"]
        daily = (reply.data or {}).get("daily")
        if isinstance(daily, dict) and daily.get("day"):
            lines.append(
                f"trading day {daily.get('day')} (since {daily.get('started_at')}): realised "
                f"P&L today {num(daily.get('daily_realized_pnl'), PNL_PLACES)} "
                f"(max_daily_loss {daily.get('max_daily_loss')})"
            )
        return "\n".join(lines)
