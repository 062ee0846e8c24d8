"""`tradepulse orders [--open] [--venue V] [--symbol S] [--since T] [--limit N]` and
`tradepulse fills [--venue V] [--symbol S] [--since T] [--limit N]`: the OMS's orders and
fills, newest first, answered by the OMS from its book (`actors.oms.views`). A reply holds
at most `--limit` rows and says how many matched."""

from __future__ import annotations

import argparse
from typing import Any

from actors.supervisor.commands.base import ControlCommand
from actors.supervisor.commands.tables import cell, fmt_ts, num, table, when_arg
from protocol import commands as wire
from protocol.messages import ControlReply

_SINCE_HELP = "only those since this time: ISO 8601 (UTC unless given) or an age like 10m, 2h"
_LIMIT_HELP = f"at most this many rows, newest first (default 200, at most {wire.MAX_VIEW_ROWS})"


def add_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--venue", help="only this venue")
    parser.add_argument("--symbol", help="only this symbol")
    parser.add_argument("--since", type=when_arg, metavar="T", help=_SINCE_HELP)
    parser.add_argument("--limit", type=int, default=200, help=_LIMIT_HELP)


def _footer(data: dict[str, Any], rows: str) -> str:
    """How many matched, and why fewer are shown: --limit, or the reply's size budget."""
    shown, total = len(data.get(rows, [])), data.get("total", 0)
    limit = data.get("limit")
    more = ""
    if total > shown and isinstance(limit, int) and shown < min(limit, total):
        more = (
            f" (the newest {shown} shown: the reply's size limit cut the rest; narrow the filters)"
        )
    elif total > shown:
        more = f" (the newest {shown} shown: raise --limit or narrow the filters)"
    kept = data.get("kept")
    if isinstance(kept, int):
        more += f"; the OMS keeps the last {kept:,} {rows}"
    return f"{total} {rows}{more}"


def format_orders(data: dict[str, Any]) -> str:
    rows = [("UPDATED", "ORDER", "VENUE", "SYMBOL", "SIDE", "QTY", "TYPE", "PRICE", "STATUS",
             "FILLED", "AVG_PX", "REASON")]  # fmt: skip
    for o in data.get("orders", []):
        rows.append(
            (
                fmt_ts(o.get("ts_ns")), o["client_order_id"], o["venue"], o["symbol"], o["side"],
                o["qty"], o["order_type"], cell(o.get("price")), o["status"], o["cum_qty"],
                num(o["avg_px"], 6) if o["cum_qty"] not in ("0", 0) else "-", cell(o.get("reason")),
            )
        )  # fmt: skip
    return "\n".join([*table(rows), "", _footer(data, "orders")])


def format_fills(data: dict[str, Any]) -> str:
    rows = [("TIME", "VENUE", "SYMBOL", "SIDE", "QTY", "PX", "FEE", "ORDER", "EXEC_ID")]
    for f in data.get("fills", []):
        order = f["client_order_id"] or "(unmatched)"
        fee = f"{f['fee']} {f['fee_asset']}".strip() if f.get("fee_asset") else "-"
        rows.append(
            (fmt_ts(f["ts_ns"]), f["venue"], f["symbol"], cell(f["side"]), f["qty"], f["px"],
             fee, order, f["exec_id"])
        )  # fmt: skip
    return "\n".join([*table(rows), "", _footer(data, "fills")])


class Orders(ControlCommand[wire.Orders]):
    """the OMS's orders, newest first"""

    name = "orders"
    model = wire.Orders
    route = "oms"
    venue_filter = True

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--open", action="store_true", help="only orders not finished yet")
        add_filters(parser)

    def to_wire(self, ns: argparse.Namespace) -> wire.Orders:
        return wire.Orders(
            open_only=ns.open, venue=ns.venue, symbol=ns.symbol, since_ns=ns.since, limit=ns.limit
        )

    def format(self, reply: ControlReply) -> str:
        return format_orders(reply.data) if reply.status == "ok" else super().format(reply)


class Fills(ControlCommand[wire.Fills]):
    """the fills the OMS applied, newest first"""

    name = "fills"
    model = wire.Fills
    route = "oms"
    venue_filter = True

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        add_filters(parser)

    def to_wire(self, ns: argparse.Namespace) -> wire.Fills:
        return wire.Fills(venue=ns.venue, symbol=ns.symbol, since_ns=ns.since, limit=ns.limit)

    def format(self, reply: ControlReply) -> str:
        return format_fills(reply.data) if reply.status == "ok" else super().format(reply)
