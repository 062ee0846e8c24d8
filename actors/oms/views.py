"""The operator views the OMS answers (`tradepulse orders|fills|positions`): pure queries
of its book, plus what the book does not keep.

The book keeps each order's totals, not its fills, so `OmsViews` keeps a bounded log of
the last `FILL_LOG_MAX` fills (every applied ``fill`` and ``unmatched_fill`` journal record,
live and on replay; the ``fill`` record of an unmatched fill an adoption placed on its order
puts that fill's row on the order instead, for the last `PLACEABLE_MAX` unmatched) and
the last execution price per (venue, symbol); both go into the journal snapshot under
``views`` (`state`), so a restart keeps them (the fill log packed: `actors.oms.fill_log`).
It also remembers the venue's own positions as the position heartbeat last reported them
(its ``position_snapshot`` stream event passes through the OMS).

P&L (average cost, per venue and symbol): realised is the book's (`Position`); unrealised is
``qty * (last_px - avg_px)``, where ``last_px`` is the price of the last execution the OMS
saw at that venue for that symbol (none seen: unknown, shown as ``-``), dated by that
execution (``last_px_ts_ns``). A position a cold start took from a venue that gave no average
price has an unknown cost (`actors.oms.cost_basis`): no average price and no P&L (``None``,
``cost_known: false``) until it goes flat or flips.

Every reply lists at most the command's `limit` rows (orders and fills newest first),
within `REPLY_BUDGET_BYTES`, and the total that matched, so it stays far below the control
message size limit. An unreadable ``views`` part of the snapshot is logged
(``views_snapshot_unreadable``) and the OMS starts with an empty fill log.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

import structlog

from actors.oms.cost_basis import CostBasis
from actors.oms.fill_log import FillLog, Packed
from actors.oms.order_book import OrderBook
from actors.oms.orders import Order
from actors.oms.positions import TRADE_BUST, record_fee
from protocol import commands as wire
from protocol.commands import Command
from protocol.fees import fee_parts
from protocol.messages import ControlReply, PositionView, Side

FILL_LOG_MAX: Final = 10_000
PLACEABLE_MAX: Final = 1_024  # unmatched fills whose row an adoption may put on its order
REPLY_BUDGET_BYTES: Final = 2 * 1024 * 1024  # of row JSON; the control message limit is 4 MiB
REASON_CHARS: Final = 200  # an order's reason in the view (venue text can be long)
VIEW_COMMANDS: Final = (wire.Orders, wire.Fills, wire.Positions)
_log = structlog.get_logger("oms.views")


@dataclass(frozen=True, slots=True)
class Fill:
    ts_ns: int
    venue: str
    symbol: str
    side: str  # "" when an unmatched fill's side is unknown
    qty: Decimal
    px: Decimal
    client_order_id: str  # "" for a fill that matched no order
    exec_id: str
    fee: Decimal = Decimal(0)  # in `fee_asset` ("": the venue named none)
    fee_asset: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "ts_ns": self.ts_ns,
            "venue": self.venue,
            "symbol": self.symbol,
            "side": self.side,
            "qty": str(self.qty),
            "px": str(self.px),
            "client_order_id": self.client_order_id,
            "exec_id": self.exec_id,
            "fee": str(self.fee),
            "fee_asset": self.fee_asset,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Fill:
        return cls(
            int(d["ts_ns"]), d["venue"], d["symbol"], d["side"], Decimal(d["qty"]),
            Decimal(d["px"]), d["client_order_id"], d["exec_id"], *record_fee(d),
        )  # fmt: skip


def _fill(p: Packed) -> Fill:
    fee = (Decimal(p[8]), p[9]) if len(p) > 8 else (Decimal(0), "")  # packed with one only
    return Fill(p[0], p[1], p[2], p[3], Decimal(p[4]), Decimal(p[5]), p[6], p[7], *fee)


def unrealized_pnl(qty: Decimal, avg_px: Decimal, last_px: Decimal | None) -> Decimal | None:
    """Average-cost unrealised P&L of a signed position at `last_px` (None: no price)."""
    if last_px is None:
        return None
    return qty * (last_px - avg_px)


@dataclass(frozen=True, slots=True)
class VenueReport:
    """The venue's positions as the heartbeat last got them (symbol -> signed qty)."""

    positions: dict[str, Decimal]
    ts_ns: int
    source: str  # "venue" (FIX positions), "ledger" (the connector's fills) ...


class OmsViews:
    """The views of one OMS book (see the module docstring)."""

    def __init__(self, book: OrderBook, snapshot: Mapping[str, Any] | None = None) -> None:
        self._book = book
        self._fills = FillLog(FILL_LOG_MAX)
        self._unmatched: dict[tuple[str, str], None] = {}  # (venue, exec id) logged unmatched
        self._last_px: dict[tuple[str, str], tuple[Decimal, int]] = {}  # (px, ts_ns)
        self._venue: dict[str, VenueReport] = {}
        self._cost = CostBasis()
        try:
            self._restore((snapshot or {}).get("views") or {})
        except (KeyError, TypeError, ValueError, ArithmeticError, AttributeError) as exc:
            self._fills.clear()
            self._unmatched.clear()
            self._last_px.clear()
            self._cost = CostBasis()
            _log.warning("views_snapshot_unreadable", error=repr(exc)[:200])

    def _restore(self, saved: Mapping[str, Any]) -> None:
        for d in saved.get("fills", ()):
            fill = Fill.from_dict(d)
            self._fills.append(fill)
            if not fill.client_order_id:
                self._logged_unmatched(fill.venue, fill.exec_id)
        for venue, symbol, px, *ts in saved.get("last_px", ()):
            self._last_px[(venue, symbol)] = (Decimal(px), int(ts[0]) if ts else 0)
        self._cost = CostBasis(saved.get("cost_basis"))

    # ------------------------------------------------------------------ feeding

    def _bust(self, record: Mapping[str, Any]) -> None:
        """A venue's bust or correction (``trade_bust``): rows of the fills view that say
        so, the busted fill's terms negated (its fee too) under ``<exec id> busts <ref>``,
        a correction's new terms after them; the cost basis follows as the book did."""
        order = self._book.get(record["id"])
        if order is None:
            return
        key, side, ts = (order.venue, order.symbol), order.side, int(record["ts_ns"])
        qty, px, (fee, asset) = Decimal(record["qty"]), Decimal(record["px"]), record_fee(record)
        back = Side.SELL if side is Side.BUY else Side.BUY
        self._cost.fill(key, back, qty, px, fee_parts(order.symbol, fee, asset)[0])
        what = "corrects" if "new_qty" in record else "busts"
        exec_id = f"{record['exec_id']} {what} {record['ref']}"
        rows = [(-qty, px, fee, asset)]
        if "new_qty" in record:
            new_qty, new_px = Decimal(record["new_qty"]), Decimal(record["new_px"])
            self._cost.fill(key, side, new_qty, new_px)
            rows.append((new_qty, new_px, Decimal(0), ""))
        for q, p, f, a in rows:
            self._fills.append(Fill(ts, *key, str(side), q, p, order.client_order_id, exec_id,
                                    f, a))  # fmt: skip

    def replay(self, records: Iterable[Mapping[str, Any]]) -> OmsViews:
        for record in records:
            self.note(record)
        return self

    def note(self, record: Mapping[str, Any]) -> None:
        """One journal record the book applied (others than fills are ignored)."""
        kind, fee = record.get("kind"), record_fee(record)
        if kind == "opening_position":
            self._cost.opening(record)
            return
        if kind == "fill":
            order = self._book.get(record["id"])  # read only: an archived one stays there
            if order is None:
                return
            key, (base_fee, _) = (order.venue, order.symbol), fee_parts(order.symbol, *fee)
            qty, px = Decimal(record["qty"]), Decimal(record["px"])
            self._cost.fill(key, order.side, qty, px, base_fee)
            if self._unmatched and self._placed(order, record["exec_id"]):
                return
            venue, symbol, side, coid = (
                order.venue,
                order.symbol,
                str(order.side),
                order.client_order_id,
            )
        elif kind == "unmatched_fill":
            venue, symbol, side, coid = record["venue"], record["symbol"], record["side"] or "", ""
            self._logged_unmatched(venue, record["exec_id"])
        elif kind == TRADE_BUST:
            self._bust(record)
            return
        else:
            return
        fill = Fill(
            int(record["ts_ns"]), venue, symbol, side, Decimal(record["qty"]),
            Decimal(record["px"]), coid, record["exec_id"], *fee,
        )  # fmt: skip
        self._fills.append(fill)
        self._last_px[(venue, symbol)] = (fill.px, fill.ts_ns)

    def _logged_unmatched(self, venue: str, exec_id: str) -> None:
        if len(self._unmatched) >= PLACEABLE_MAX:  # an older one placed is logged again
            del self._unmatched[next(iter(self._unmatched))]
        self._unmatched[(venue, exec_id)] = None

    def _placed(self, order: Order, exec_id: str) -> bool:
        """A ``fill`` record of a fill logged unmatched (an adoption placed it on `order`,
        `actors.oms.adoption`): its row is put on the order rather than logged again (one
        execution, one row, at the time it came). False: not one, or its row is gone."""
        if self._unmatched.pop((order.venue, exec_id), 0) is not None:
            return False
        return self._fills.assign(order.venue, exec_id, order.client_order_id, str(order.side))

    def on_stream(self, event: str, data: Mapping[str, Any]) -> None:
        """A stream event through the OMS: the heartbeat's ``position_snapshot`` carries the
        venue's positions (``venue_positions``: symbol -> qty as str)."""
        if event != "position_snapshot" or not isinstance(data.get("venue_positions"), dict):
            return
        try:
            positions = {str(s): Decimal(str(q)) for s, q in data["venue_positions"].items()}
            age_ns = int(float(data.get("venue_age_s") or 0) * 1e9)  # an older answer re-shown
            ts_ns = int(data.get("ts_ns") or 0) - age_ns
            self._venue[str(data["venue"])] = VenueReport(
                positions, ts_ns, str(data.get("source", "venue"))
            )
        except (KeyError, ArithmeticError, ValueError, TypeError):
            return  # a malformed event names nothing we could show

    def state(self) -> dict[str, Any]:
        """The book's snapshot state with the views' own part (`Journal.write_snapshot`)."""
        return {
            **self._book.to_dict(),
            "views": {
                "fills": [_fill(p).to_dict() for p in self._fills.oldest_first()],
                "last_px": [[v, s, str(px), ts] for (v, s), (px, ts) in self._last_px.items()],
                "cost_basis": self._cost.state(),
            },
        }

    # ------------------------------------------------------------------ answering

    def handles(self, command: Command) -> bool:
        return isinstance(command, VIEW_COMMANDS)

    def answer(self, command: Command) -> ControlReply:
        if isinstance(command, wire.Orders):
            return self._orders(command)
        if isinstance(command, wire.Fills):
            return self._fills_reply(command)
        if isinstance(command, wire.Positions):
            found = self.positions(command.venue)
            rows = _within_budget(found[: command.limit])
            return ControlReply(status="ok", data={"positions": rows, "total": len(found)})
        return ControlReply(status="error", reason=f"not a view: {command.command}")

    def _orders(self, cmd: wire.Orders) -> ControlReply:
        found = [
            o
            for o in self._book.orders(cmd.venue, open_only=cmd.open_only)
            if (cmd.symbol is None or o.symbol == cmd.symbol)
            and (cmd.since_ns is None or o.ts_updated_ns >= cmd.since_ns)
        ]
        found.sort(key=lambda o: o.ts_updated_ns, reverse=True)
        total, retention = len(found), self._book.retention
        if not cmd.open_only and retention is not None:  # terminal orders out of memory
            old, archived = retention.archive.newest(
                venue=cmd.venue, symbol=cmd.symbol, since_ns=cmd.since_ns, limit=cmd.limit
            )
            here = {o.client_order_id for o in found}
            total += archived - retention.archive.held(here)
            found += [o for o in old if o.client_order_id not in here]
            found.sort(key=lambda o: o.ts_updated_ns, reverse=True)
        rows = _within_budget(_order_row(o) for o in found[: cmd.limit])
        data = {"orders": rows, "total": total, "limit": cmd.limit}
        return ControlReply(status="ok", data=data)

    def _fills_reply(self, cmd: wire.Fills) -> ControlReply:
        found, total = self._fills.newest(cmd.venue, cmd.symbol, cmd.since_ns, cmd.limit)
        rows = _within_budget(_fill(p).to_dict() for p in found)
        data = {"fills": rows, "total": total, "kept": FILL_LOG_MAX, "limit": cmd.limit}
        return ControlReply(status="ok", data=data)

    def wire_positions(self, venue: str | None = None) -> list[PositionView]:
        """The book's positions as `GetPositions` answers them (`CostBasis.view`), each with
        the last execution price at its venue (risk's reference price after a rebuild)."""
        last, none = self._last_px, (None, 0)
        return [
            self._cost.view(p, last.get((p.venue, p.symbol), none)[0])
            for p in self._book.positions(venue)
        ]

    def positions(self, venue: str | None = None) -> list[dict[str, Any]]:
        """Per (venue, symbol) in the book or in the venue's last report: the OMS position
        with P&L (None: unknown), and the venue's quantity (None: the venue has not
        reported it)."""
        keys = {(p.venue, p.symbol) for p in self._book.positions(venue)}
        for name, seen in self._venue.items():
            if venue is None or name == venue:
                keys |= {(name, s) for s in seen.positions}
        rows = []
        for v, s in sorted(keys):
            pos = self._book.position(v, s)
            last, last_ts = self._last_px.get((v, s), (None, None))
            report = self._venue.get(v)
            venue_qty = report.positions.get(s, Decimal(0)) if report is not None else None
            known = self._cost.known((v, s))
            upnl = unrealized_pnl(pos.qty, pos.avg_px, last) if known else None
            rows.append(
                {
                    "venue": v,
                    "symbol": s,
                    "qty": str(pos.qty),
                    "avg_px": str(pos.avg_px) if known else None,
                    "cost_known": known,
                    "last_px": None if last is None else str(last),
                    "last_px_ts_ns": last_ts,
                    "realized_pnl": str(self._cost.realized((v, s), pos.realized_pnl))
                    if known
                    else None,
                    "unrealized_pnl": None if upnl is None else str(upnl),
                    "venue_qty": None if venue_qty is None else str(venue_qty),
                    "venue_ts_ns": report.ts_ns if report is not None else None,
                    "venue_source": report.source if report is not None else None,
                    "fees": {a: str(q) for a, q in pos.fees.items()},
                }
            )
        return rows


def _order_row(order: Order) -> dict[str, Any]:
    row = order.view().model_dump(mode="json")
    row["reason"] = row["reason"][:REASON_CHARS]
    return row


def _within_budget(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows, in order, until their JSON reaches `REPLY_BUDGET_BYTES` (the reply's total
    still counts every match, so a cut is visible as fewer rows than asked)."""
    kept, used = [], 0
    for row in rows:
        used += len(json.dumps(row))
        if used > REPLY_BUDGET_BYTES:
            break
        kept.append(row)
    return kept
