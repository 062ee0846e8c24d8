"""Positions and unmatched fills: the money side of the OMS book (pure logic, no I/O).

`Position` is the average-cost position of one (venue, symbol), moved by every fill the
book applies, net of the fill's fee (`protocol.fees`, as risk nets it); `UnmatchedFill` is
a venue fill that matched no order: recorded (journal record ``unmatched_fill``),
escalated, positions untouched (until an adoption of its ClOrdID explains or places it:
`actors.oms.adoption`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

from protocol.day_clock import DayClock
from protocol.domain import check_decimal
from protocol.fees import (
    NO_FEE,
    FeeParts,
    book_fee,
    book_fill,
    fee_parts,
    fee_problem,
    unbook_fill,
)
from protocol.messages import ExecReport, PositionView, Side

ZERO: Final = Decimal(0)
FILL_FEE: Final = "fill_fee"  # journal record: a fee alone (`actors.oms.late_fee`)
TRADE_BUST: Final = "trade_bust"  # journal record: a fill busted or corrected (trade_busts)
ORDER_RECORDS: Final = ("event", "fill", FILL_FEE, TRADE_BUST)  # records of one order


@dataclass(slots=True)
class Position:
    """Average-cost position of one (venue, symbol): signed qty, avg px of the open qty.

    With its last fill's time and its realised P&L when the trading day of that fill started
    (`risk.day_start`, `protocol.day_clock`; before the day's first fill): a risk started
    after a boundary it slept through splits its daily loss there (`actors.risk.exposure`)."""

    venue: str
    symbol: str
    qty: Decimal = ZERO
    avg_px: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    last_fill_ns: int = 0  # journal time of its last fill (0: none, or a snapshot before it)
    day_start_ns: int = 0  # start of the trading day of its last fill (0: not marked)
    day_start_pnl: Decimal = ZERO  # realised P&L at `day_start_ns`
    fees: dict[str, Decimal] = field(default_factory=dict)  # paid on its fills, per asset

    def add_fee(self, fee: Decimal, fee_asset: str) -> None:
        """A fee its fill paid, kept per asset (shown; `after_fill` nets what it moved)."""
        if fee and fee_asset:
            self.fees[fee_asset] = self.fees.get(fee_asset, ZERO) + fee

    def apply_fill(
        self, side: Side, qty: Decimal, px: Decimal, ts_ns: int = 0, days: DayClock | None = None
    ) -> None:
        self.take(self.after_fill(side, qty, px), ts_ns, days)

    def after_fill(
        self, side: Side, qty: Decimal, px: Decimal, fee: FeeParts = NO_FEE
    ) -> tuple[Decimal, Decimal, Decimal]:
        """(qty, avg_px, realized_pnl) after a fill, computed without changing anything (an
        ArithmeticError leaves the position as it was). `fee`: its (base, quote) parts
        (`fee_parts`), netted as risk nets them: `protocol.fees.book_fill`."""
        moved = Position(self.venue, self.symbol, self.qty, self.avg_px, self.realized_pnl)
        book_fill(moved, qty if side == Side.BUY else -qty, px, fee)
        return moved.qty, moved.avg_px, moved.realized_pnl

    def take_fill(self, signed_qty: Decimal, px: Decimal) -> None:
        """`protocol.fees.Fillable`: a fill (a fee's part) moves it, average cost."""
        side = Side.BUY if signed_qty > 0 else Side.SELL
        self.qty, self.avg_px, self.realized_pnl = self._moved(side, abs(signed_qty), px)

    def after_record(
        self, side: Side, symbol: str, record: Mapping[str, Any]
    ) -> tuple[Decimal, Decimal, Decimal]:
        """`after_fill` of a ``fill`` record of an order of `symbol` on `side`, its fee too;
        of a ``fill_fee`` record, its fee alone (`actors.oms.late_fee`); of a ``trade_bust``,
        the busted fill reversed (`unbook_fill`), then a correction's terms booked."""
        kind = record["kind"]
        if kind in (FILL_FEE, TRADE_BUST):
            moved = Position(self.venue, self.symbol, self.qty, self.avg_px, self.realized_pnl)
            fee = fee_parts(symbol, *record_fee(record))
            if kind == FILL_FEE:
                book_fee(moved, fee)
            else:
                sign = 1 if side == Side.BUY else -1
                unbook_fill(moved, sign * Decimal(record["qty"]), Decimal(record["px"]), fee)
                if "new_qty" in record:  # a correction: its fee stays as it was
                    book_fill(moved, sign * Decimal(record["new_qty"]), Decimal(record["new_px"]))
            return moved.qty, moved.avg_px, moved.realized_pnl
        qty, px = Decimal(record["qty"]), Decimal(record["px"])
        return self.after_fill(side, qty, px, fee_parts(symbol, *record_fee(record)))

    def _moved(self, side: Side, qty: Decimal, px: Decimal) -> tuple[Decimal, Decimal, Decimal]:
        signed = qty if side == Side.BUY else -qty
        if self.qty == 0 or (self.qty > 0) == (signed > 0):
            held = abs(self.qty)
            return (
                self.qty + signed,
                (held * self.avg_px + qty * px) / (held + qty),
                self.realized_pnl,
            )
        closing = min(qty, abs(self.qty))
        direction = 1 if self.qty > 0 else -1
        pnl = self.realized_pnl + closing * (px - self.avg_px) * direction
        new_qty = self.qty + signed
        avg_px = self.avg_px
        if new_qty == 0:
            avg_px = ZERO
        elif (new_qty > 0) != (direction > 0):  # flipped through zero: rest opened at px
            avg_px = px
        return new_qty, avg_px, pnl

    def take(
        self, moved: tuple[Decimal, Decimal, Decimal], ts_ns: int = 0, days: DayClock | None = None
    ) -> None:
        """`after_fill`'s figures, of a fill journaled at `ts_ns` (0: not said): the first
        fill of a trading day of `days` marks the realised P&L before it, which is the P&L
        at the day's start only if the position's last fill came before that start (or it
        has none): else (fills of the day marked by another setting, or not kept by a
        snapshot of an older build) it is left unmarked, and risk says its figure is
        approximate. A fill stamped before the mark's day (a clock stepped back) counts to
        the marked day."""
        if ts_ns:
            start = days.day_start_ns(ts_ns) if days is not None else 0
            known = 0 < self.last_fill_ns < start or self._untouched()
            if start > self.day_start_ns and known:
                self.day_start_ns, self.day_start_pnl = start, self.realized_pnl
            self.last_fill_ns = max(self.last_fill_ns, ts_ns)
        self.qty, self.avg_px, self.realized_pnl = moved

    def opened(self, days: DayClock | None) -> None:
        """A cold start's opening (`from_dict` of its record): the book restarts the
        position at a realised P&L of 0, so its P&L at the start of the day it opens in is
        known, 0. Unmarked, risk's start that day read every opening as approximate
        (`risk_trading_day_baseline_approximate`, a false warning at every cold start)."""
        if days is not None and self.last_fill_ns:
            self.day_start_ns = days.day_start_ns(self.last_fill_ns)
            self.day_start_pnl = self.realized_pnl

    def _untouched(self) -> bool:
        """No fill, no qty, no P&L yet: its P&L at any start is 0."""
        return not (self.last_fill_ns or self.qty or self.realized_pnl)

    def view(self) -> PositionView:
        return PositionView(
            venue=self.venue,
            symbol=self.symbol,
            qty=self.qty,
            avg_px=self.avg_px,
            realized_pnl=self.realized_pnl,
            last_fill_ns=self.last_fill_ns,
            day_start_ns=self.day_start_ns,
            day_start_pnl=self.day_start_pnl,
        )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Position:
        """From `to_dict` output or an ``opening_position`` record (no realized PnL yet)."""
        pnl = Decimal(d.get("realized_pnl", 0))
        pos = cls(d["venue"], d["symbol"], Decimal(d["qty"]), Decimal(d["avg_px"]), pnl)
        # an opening record's time is its last (absent from a snapshot of an older build)
        pos.last_fill_ns = int(d.get("last_fill_ns", d.get("ts_ns", 0)))
        pos.day_start_ns = int(d.get("day_start_ns", 0))
        pos.day_start_pnl = Decimal(d.get("day_start_pnl", 0))
        pos.fees = {str(a): Decimal(q) for a, q in (d.get("fees") or {}).items()}
        return pos

    def to_dict(self) -> dict[str, Any]:
        return {
            "venue": self.venue,
            "symbol": self.symbol,
            "qty": str(self.qty),
            "avg_px": str(self.avg_px),
            "realized_pnl": str(self.realized_pnl),
            "last_fill_ns": self.last_fill_ns,
            "day_start_ns": self.day_start_ns,
            "day_start_pnl": str(self.day_start_pnl),
        } | ({"fees": {a: str(q) for a, q in self.fees.items()}} if self.fees else {})


@dataclass(frozen=True, slots=True)
class UnmatchedFill:
    venue: str
    exec_id: str
    cl_ord_id: str
    symbol: str
    side: Side | None
    qty: Decimal
    px: Decimal
    ts_ns: int
    cum_qty: Decimal = ZERO  # the venue's cum qty of its order with this fill (0: not given)
    venue_order_id: str = ""  # the venue's id of the order it filled ("": not given)
    fee: Decimal = ZERO  # its fee, in `fee_asset` ("": none said); booked when placed
    fee_asset: str = ""

    @classmethod
    def from_report(cls, report: ExecReport, ts_ns: int) -> UnmatchedFill:
        return cls(
            report.venue,
            report.exec_id,
            report.cl_ord_id,
            report.symbol,
            report.side,
            report.last_qty,
            report.last_px,
            ts_ns,
            report.cum_qty,
            report.venue_order_id,
            report.fee,
            report.fee_asset,
        )

    def to_record(self) -> dict[str, Any]:
        return {
            "kind": "unmatched_fill",
            "venue": self.venue,
            "exec_id": self.exec_id,
            "cl_ord_id": self.cl_ord_id,
            "symbol": self.symbol,
            "side": None if self.side is None else str(self.side),
            "qty": str(self.qty),
            "px": str(self.px),
            "ts_ns": self.ts_ns,
            "cum_qty": str(self.cum_qty),
            "venue_order_id": self.venue_order_id,
        } | fee_fields(self.fee, self.fee_asset)

    @classmethod
    def from_record(cls, r: Mapping[str, Any]) -> UnmatchedFill:
        return cls(
            r["venue"],
            r["exec_id"],
            r["cl_ord_id"],
            r["symbol"],
            None if r["side"] is None else Side(r["side"]),
            Decimal(r["qty"]),
            Decimal(r["px"]),
            r["ts_ns"],
            Decimal(r.get("cum_qty", 0)),  # absent in records before it was kept
            r.get("venue_order_id", ""),  # likewise
            *record_fee(r),
        )


def record_fee(record: Mapping[str, Any]) -> tuple[Decimal, str]:
    """(fee, fee_asset) of a ``fill`` or ``unmatched_fill`` record ((0, ""): none, and in
    every record of a build before fees were kept)."""
    return Decimal(record.get("fee") or 0), str(record.get("fee_asset") or "")


def base_fee(symbol: str, record: Mapping[str, Any]) -> Decimal:
    """The part of a ``fill`` record's fee that leaves the position of `symbol`."""
    return fee_parts(symbol, *record_fee(record))[0]


def fee_fields(fee: Decimal, fee_asset: str) -> dict[str, str]:
    """A record's fee keys: none without a fee (an older build reads such records alike)."""
    return {"fee": str(fee), "fee_asset": fee_asset} if fee or fee_asset else {}


def fill_fee(
    rec: dict[str, Any], symbol: str, qty: Decimal, px: Decimal, fee: Decimal, fee_asset: str
) -> str | None:
    """Put a fill record's fee keys in `rec` (`fee_fields`); None. For a fee `fee_problem`
    refuses: none to book but ``fee_refused`` (what the venue said, for the journal), and
    why: the fill is the venue's word and goes on, the fee is left off it (escalated
    ``bad_fee``, counted; what it really moved shows at the heartbeat)."""
    problem = fee_problem(symbol, qty, px, fee, fee_asset)
    rec |= fee_fields(fee, fee_asset) if problem is None else {"fee_refused": f"{fee} {fee_asset}"}
    return problem


def fill_problem(qty: Decimal, px: Decimal) -> str | None:
    """Why a fill of `qty` at `px` cannot be booked (not positive, or outside the bounds
    of every quantity and price), else None."""
    for name, value in (("qty", qty), ("px", px)):
        try:
            check_decimal(value)
        except ValueError as exc:
            return f"fill {name}: {exc}"
        if value <= 0:
            return f"fill {name} {value} is not positive (absent or invalid at the venue)"
    try:  # the fill's notional bounds what it adds to position values and P&L
        check_decimal(qty * px)
    except (ValueError, ArithmeticError) as exc:
        return f"fill notional: {exc}"
    return None
