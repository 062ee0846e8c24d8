"""`tradepulse positions [--venue V] [--compare desk.csv]`: per venue and symbol, the OMS's
position (average price, realised and unrealised P&L against the last execution price the
OMS saw there), the venue's (as the position heartbeat last got it) and risk's (what its
limits read). Two control requests, combined here: `positions` (the OMS) and `exposure`
(risk); risk not answering leaves its column unknown, nothing else.

`--compare desk.csv` checks the OMS positions against the desk's records: a CSV with the
header `venue,symbol,qty` (other columns ignored, one row per venue and symbol, signed qty:
negative is short). Every difference is listed, a row missing on either side included (a
flat position and no row are the same); exit 1 if there is any, 0 if none. The file may
start with a UTF-8 byte order mark; header names and cells are stripped; a quantity must
be a finite number.

A position of unknown cost (a cold start took it from a venue that gave no average price)
shows ``-`` for AVG_PX and both P&L columns (JSON: null, ``cost_known: false``). A venue
quantity from the connector's fill ledger while it is incomplete (not seeded from the
venue: source ``ledger_unseeded``) is marked ``?``. LAST_PX_AT dates the last price.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from actors.supervisor.commands.base import ControlCommand
from actors.supervisor.commands.tables import cell, fmt_ts, num, table
from actors.supervisor.ctl import EXIT_CONFIG, EXIT_FAILURE, EXIT_OK, EXIT_UNAVAILABLE
from protocol import commands as wire
from protocol.config import SystemConfig
from protocol.control import ControlUnavailable, control_request
from protocol.messages import ControlReply
from protocol.paths import open_regular

DESK_COLUMNS = ("venue", "symbol", "qty")
PX_PLACES, PNL_PLACES = 6, 2  # the table's decimals (`--json` keeps every digit)
UNSEEDED = "ledger_unseeded"  # the heartbeat's source for a fill ledger known incomplete
Key = tuple[str, str]


class DeskFileError(ValueError):
    """The desk CSV cannot be read or parsed (a usage error: exit 2)."""


def read_desk(path: Path) -> dict[Key, Decimal]:
    """(venue, symbol) -> signed qty from a desk CSV (`DESK_COLUMNS` in its header). Not a
    regular file is refused (open_regular): a FIFO hung the command, /dev/zero never ended."""
    try:
        with io.TextIOWrapper(open_regular(path), newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f, skipinitialspace=True)
            reader.fieldnames = [(n or "").strip() for n in (reader.fieldnames or [])]
            missing = [c for c in DESK_COLUMNS if c not in reader.fieldnames]
            if missing:
                raise DeskFileError(
                    f"{path}: header lacks {', '.join(missing)} (need venue,symbol,qty)"
                )
            desk: dict[Key, Decimal] = {}
            for row in reader:
                key = ((row["venue"] or "").strip(), (row["symbol"] or "").strip())
                if not all(key):
                    raise DeskFileError(f"{path}:{reader.line_num}: venue and symbol are required")
                if key in desk:
                    raise DeskFileError(f"{path}:{reader.line_num}: {key[0]} {key[1]} listed twice")
                desk[key] = _qty(row["qty"], f"{path}:{reader.line_num}")
            return desk
    except OSError as exc:
        raise DeskFileError(f"{path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DeskFileError(f"{path}: {exc}") from None


def _qty(text: str | None, where: str) -> Decimal:
    """A desk row's finite quantity (a short row's is None: missing)."""
    if text is None:
        raise DeskFileError(f"{where}: qty is missing (a short row)")
    try:
        qty = Decimal(text.strip())
    except InvalidOperation:
        raise DeskFileError(f"{where}: qty {text!r} is not a number") from None
    if not qty.is_finite():
        raise DeskFileError(f"{where}: qty {text!r} is not a finite number")
    return qty


def compare(desk: dict[Key, Decimal], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every (venue, symbol) whose desk qty differs from the OMS qty; a side without the row
    has None (counted as 0: a flat position and no row are the same)."""
    ours = {(r["venue"], r["symbol"]): Decimal(r["qty"]) for r in rows}
    diffs = []
    for key in sorted(desk.keys() | ours.keys()):
        d, o = desk.get(key), ours.get(key)
        if (d or 0) != (o or 0):
            diffs.append(
                {
                    "venue": key[0],
                    "symbol": key[1],
                    "desk_qty": None if d is None else str(d),
                    "oms_qty": None if o is None else str(o),
                    "difference": str((o or 0) - (d or 0)),
                }
            )
    return diffs


def merge_risk(rows: list[dict[str, Any]], risk: list[dict[str, Any]] | None) -> None:
    """Add risk's qty to each row (None: risk did not answer); a position only risk has
    gets its own row."""
    by_key = {(r["venue"], r["symbol"]): r for r in rows}
    for r in rows:
        r["risk_qty"] = None if risk is None else "0"
    for p in risk or []:
        row = by_key.get((p["venue"], p["symbol"]))
        if row is None:
            row = {"venue": p["venue"], "symbol": p["symbol"], "qty": "0", "avg_px": "0",
                   "cost_known": True, "last_px": None, "last_px_ts_ns": None,
                   "realized_pnl": "0", "unrealized_pnl": None, "venue_qty": None,
                   "venue_ts_ns": None, "venue_source": None}  # fmt: skip
            rows.append(row)
            by_key[(p["venue"], p["symbol"])] = row
        row["risk_qty"] = str(Decimal(str(p["qty"])))
    rows.sort(key=lambda r: (r["venue"], r["symbol"]))


def _venue_cell(r: dict[str, Any]) -> str:
    qty = cell(r.get("venue_qty"))
    return f"{qty}?" if r.get("venue_source") == UNSEEDED and qty != "-" else qty


def _age(ts_ns: int | None, now_ns: int) -> str:
    """How long ago (``12s``, ``5m``, ``3h``, ``2d``), ``-`` for never."""
    if not ts_ns:
        return "-"
    age_s = max(0, (now_ns - ts_ns) // 1_000_000_000)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if age_s >= size:
            return f"{age_s // size}{unit}"
    return f"{age_s}s"


def format_positions(data: dict[str, Any], now_ns: int | None = None) -> str:
    now_ns = time.time_ns() if now_ns is None else now_ns
    head = ("VENUE", "SYMBOL", "OMS_QTY", "VENUE_QTY", "RISK_QTY", "AVG_PX", "LAST_PX",
            "LAST_PX_AGE", "REALISED_PNL", "UNREALISED_PNL", "VENUE_AS_OF")  # fmt: skip
    rows: list[tuple[str, ...]] = [head]
    for r in data.get("positions", []):
        flat = r["qty"] in ("0", 0)
        rows.append(
            (r["venue"], r["symbol"], r["qty"], _venue_cell(r), cell(r.get("risk_qty")),
             "-" if flat else num(r.get("avg_px"), PX_PLACES),
             num(r.get("last_px"), PX_PLACES), _age(r.get("last_px_ts_ns"), now_ns),
             num(r.get("realized_pnl"), PNL_PLACES),
             num(r.get("unrealized_pnl"), PNL_PLACES), fmt_ts(r.get("venue_ts_ns")))
        )  # fmt: skip
    lines = table(rows) if len(rows) > 1 else ["no positions"]
    shown, total = len(data.get("positions", [])), data.get("total")
    if isinstance(total, int) and total > shown:
        lines.append(f"{total} positions (the first {shown} shown: raise --limit or use --venue)")
    if any(r.get("cost_known") is False for r in data.get("positions", [])):
        lines.append("AVG_PX/P&L -: cost unknown (taken at a cold start without an average price)")
    if any(r.get("venue_source") == UNSEEDED for r in data.get("positions", [])):
        lines.append(
            "VENUE_QTY ?: the connector's fill ledger, incomplete (not seeded from the venue)"
        )
    for r in data.get("positions", []):  # an older OMS's rows have none
        if paid := r.get("fees"):
            each = ", ".join(f"{q} {a}" for a, q in sorted(paid.items()))
            lines.append(f"fees paid {r['venue']} {r['symbol']}: {each}")
    if data.get("risk_error"):
        lines.append(f"risk: {data['risk_error']} (RISK_QTY unknown)")
    if "differences" in data:
        lines.append("")
        diffs = data["differences"]
        if not diffs:
            lines.append(f"desk records match: no differences ({data['desk_file']})")
        else:
            lines.append(f"{len(diffs)} difference(s) from {data['desk_file']}:")
            drows = [("VENUE", "SYMBOL", "DESK_QTY", "OMS_QTY", "OMS-DESK")]
            for d in diffs:
                drows.append((d["venue"], d["symbol"], cell(d["desk_qty"]) if d["desk_qty"]
                              is not None else "(missing)", d["oms_qty"] or "(missing)",
                              d["difference"]))  # fmt: skip
            lines += table(drows)
    return "\n".join(lines)


class Positions(ControlCommand[wire.Positions]):
    """positions per venue and symbol: OMS vs venue vs risk, with P&L"""

    name = "positions"
    model = wire.Positions
    route = "oms"
    venue_filter = True

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--venue", help="only this venue")
        parser.add_argument(
            "--limit",
            type=int,
            default=wire.MAX_VIEW_ROWS,
            help=f"at most this many rows (default and most {wire.MAX_VIEW_ROWS})",
        )
        parser.add_argument(
            "--compare",
            type=Path,
            metavar="DESK_CSV",
            help="compare with the desk's records (CSV header venue,symbol,qty): "
            "differences listed, exit 1 if any",
        )

    def to_wire(self, ns: argparse.Namespace) -> wire.Positions:
        return wire.Positions(venue=ns.venue, limit=ns.limit)

    def run(self, cfg: SystemConfig, ns: argparse.Namespace) -> int:
        try:
            request = self.to_wire(ns)
        except ValidationError as exc:  # e.g. --limit out of range: a usage error
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or self.name
            print(f"tradepulse positions: {where}: {err['msg']}", file=sys.stderr)
            return EXIT_CONFIG
        desk = None
        if ns.compare is not None:  # read first: a bad file is a usage error, nothing asked
            try:
                desk = read_desk(ns.compare)
            except DeskFileError as exc:
                print(f"tradepulse positions: --compare: {exc}", file=sys.stderr)
                return EXIT_CONFIG
        try:
            reply = control_request(cfg, request, timeout_s=ns.timeout_s)
        except ControlUnavailable as exc:
            return _print(ControlReply(status="error", reason=str(exc)), ns.json, EXIT_UNAVAILABLE)
        if reply.status != "ok":
            return _print(reply, ns.json, EXIT_FAILURE)
        data = dict(reply.data)
        rows: list[dict[str, Any]] = list(data.get("positions", []))
        if desk is not None and data.get("total", len(rows)) > len(rows):  # a cut list: no
            reason = "more positions than one reply holds: compare per venue (--venue V)"
            return _print(ControlReply(status="error", reason=reason), ns.json, EXIT_FAILURE)
        try:  # risk's view is context: without it the rest still stands
            risk = control_request(cfg, wire.Exposure(venue=ns.venue), timeout_s=ns.timeout_s)
        except ControlUnavailable as exc:
            risk = ControlReply(status="error", reason=str(exc))
        merge_risk(rows, risk.data.get("positions", []) if risk.status == "ok" else None)
        if risk.status != "ok":
            data["risk_error"] = risk.reason
        data["positions"] = rows
        code = EXIT_OK
        if desk is not None:
            if ns.venue is not None:
                desk = {k: v for k, v in desk.items() if k[0] == ns.venue}
            data["differences"] = compare(desk, rows)
            data["desk_file"] = str(ns.compare)
            code = EXIT_FAILURE if data["differences"] else EXIT_OK
        n = len(data.get("differences", []))
        reason = f"{n} difference(s) from the desk records" if n else ""
        return _print(ControlReply(status="ok", reason=reason, data=data), ns.json, code)

    def format(self, reply: ControlReply) -> str:
        return format_positions(reply.data) if reply.status == "ok" else super().format(reply)


def _print(reply: ControlReply, as_json: bool, code: int) -> int:
    if as_json:
        print(json.dumps(reply.model_dump(exclude={"type"}), default=str))
    elif reply.status == "ok":
        print(format_positions(reply.data))
    else:
        print(f"tradepulse positions: {reply.reason}", file=sys.stderr)
    return code
