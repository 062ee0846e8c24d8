"""Which positions have an unknown cost (pure; `actors.oms.views` keeps one).

A cold start takes the venue's positions as opening positions; a venue that gives no
average price (a FIX PositionReport without one, or the connector's fill ledger, which only
counts quantities) leaves ``avg_px`` 0, and every P&L figure computed against it would be
invented. Such a position is "cost unknown" until it goes flat or flips through zero: from
then on its cost comes from our own fills again. Meanwhile what we add has a cost (our
fills'): the book averages it with the unknown part at 0, and a close takes from both parts
in proportion. The realised P&L the book booked for the unknown part's share of a close
(its proceeds, against 0) is remembered and left out of the view's realised figure, and
out of the positions the OMS answers (`view`): risk rebuilds its exposure from them, and
its daily loss must not count it either; our part's P&L counts (a loss on what we added
to an unknown-cost position went uncounted when the whole close was left out).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from actors.oms.positions import Position
from protocol.messages import PositionView, Side

Key = tuple[str, str]


def cost_unknown(qty: Decimal, avg_px: Decimal) -> bool:
    """An opening position of `qty` at `avg_px` whose cost the venue did not give: a
    position (not flat) at an average price of 0, the journal's and the wire's way of
    saying "none" (``avg_px`` is a number there)."""
    return qty != 0 and avg_px == 0


class CostBasis:
    """Tracks the (venue, symbol) positions taken at an unknown cost (module docstring)."""

    def __init__(self, saved: Mapping[str, Any] | None = None) -> None:
        saved = saved or {}
        # a shadow of the book's position while its cost is unknown (same start, same fills)
        self._unknown: dict[Key, Position] = {}
        self._unknown_qty: dict[Key, Decimal] = {}  # of its qty, the part of no cost (signed)
        self._excluded: dict[Key, Decimal] = {}  # realised P&L booked against no cost
        for venue, symbol, pnl in saved.get("excluded", ()):
            self._excluded[(venue, symbol)] = Decimal(pnl)
        split = {(v, s): Decimal(q) for v, s, q in saved.get("unknown_qty", ())}
        for d in saved.get("unknown", ()):
            pos = Position.from_dict(d)
            key = (pos.venue, pos.symbol)
            self._unknown[key] = pos
            if "unknown_qty" in saved:
                self._unknown_qty[key] = split[key]
            else:  # saved before the split: all of it of no cost, as it was counted then
                self._unknown_qty[key] = pos.qty
                self._excluded[key] = self._excluded.get(key, Decimal(0)) + pos.realized_pnl

    def opening(self, record: Mapping[str, Any]) -> None:
        """An ``opening_position`` record: the book restarts the position (realised 0)."""
        key = (str(record["venue"]), str(record["symbol"]))
        qty, avg_px = Decimal(record["qty"]), Decimal(record.get("avg_px") or 0)
        self._excluded.pop(key, None)
        if cost_unknown(qty, avg_px):
            self._unknown[key] = Position(key[0], key[1], qty, avg_px)
            self._unknown_qty[key] = qty
        else:
            self._unknown.pop(key, None)
            self._unknown_qty.pop(key, None)

    def fill(
        self, key: Key, side: Side, qty: Decimal, px: Decimal, base_fee: Decimal = Decimal(0)
    ) -> None:
        """One of our fills at `key` (the book applied it too), and the units of its fee
        in the base asset, which leave the position as the book has them leave: a disposal
        at price 0 (`Position.after_fill`; a quote fee is known P&L, nothing of this)."""
        self._fill(key, side, qty, px)
        if base_fee:
            self._fill(key, Side.SELL if base_fee > 0 else Side.BUY, abs(base_fee), Decimal(0))

    def _fill(self, key: Key, side: Side, qty: Decimal, px: Decimal) -> None:
        shadow = self._unknown.get(key)
        if shadow is None:
            return
        before, signed = shadow.qty, qty if side is Side.BUY else -qty
        if (before > 0) != (signed > 0):  # a close: the unknown part's share of it
            closed, unknown = min(qty, abs(before)), self._unknown_qty[key]
            share, direction = closed * unknown / before, 1 if before > 0 else -1  # share >= 0
            # all of it of no cost (a snapshot of an older build: its adds in it): none counts
            no_cost = closed * (px - shadow.avg_px) if unknown == before else share * px
            self._excluded[key] = self._excluded.get(key, Decimal(0)) + no_cost * direction
            self._unknown_qty[key] -= share * direction
        shadow.apply_fill(side, qty, px)
        if shadow.qty == 0 or (shadow.qty > 0) != (before > 0):  # flat or flipped: known
            del self._unknown[key], self._unknown_qty[key]

    def known(self, key: Key) -> bool:
        return key not in self._unknown

    def realized(self, key: Key, booked: Decimal) -> Decimal:
        """The book's realised P&L less what it booked against no cost."""
        return booked - self._excluded.get(key, Decimal(0))

    def view(self, pos: Position, last_px: Decimal | None = None) -> PositionView:
        """`pos` on the wire (`GetPositions`): the book's figures, with whether its cost is
        known and the part of its realised P&L booked against no cost (risk's rebuild takes
        both: `actors.risk.exposure`)."""
        key = (pos.venue, pos.symbol)
        booked = pos.realized_pnl
        return PositionView(
            venue=pos.venue, symbol=pos.symbol, qty=pos.qty, avg_px=pos.avg_px,
            realized_pnl=booked, cost_known=self.known(key),
            unknown_cost_pnl=booked - self.realized(key, booked),
            unknown_qty=self._unknown_qty.get(key), last_fill_ns=pos.last_fill_ns,
            day_start_ns=pos.day_start_ns, day_start_pnl=pos.day_start_pnl, last_px=last_px,
        )  # fmt: skip

    def state(self) -> dict[str, Any]:
        return {
            "unknown": [p.to_dict() for p in self._unknown.values()],
            "excluded": [[v, s, str(pnl)] for (v, s), pnl in self._excluded.items()],
            "unknown_qty": [[v, s, str(q)] for (v, s), q in self._unknown_qty.items()],
        }
