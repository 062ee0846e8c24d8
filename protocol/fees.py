"""A fill's fee, booked the one way the OMS's book and risk's view both use.

`fee_parts` splits a fee into what moves the position (the base asset) and what is
realised at once (the quote asset); `book_fill` applies a fill and then those parts to an
average-cost position. The OMS's `actors.oms.positions.Position` and risk's
`actors.risk.exposure` position both go through it, so risk's position and daily loss are
the OMS's, net of the same fees (they differed by them: chaos seed 805695).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final, Protocol

ZERO: Final = Decimal(0)
# The largest fee (or rebate) a fill can carry, as a share of what it traded in the fee's
# asset: 5%, fifty times Binance's 0.1% and above any spot venue's top rate. A larger one
# is no commission but a hostile or garbled answer (`fee_problem`).
MAX_FEE_SHARE: Final = Decimal("0.05")
FeeParts = tuple[Decimal, Decimal]  # (base, quote): `fee_parts`
NO_FEE: Final[FeeParts] = (ZERO, ZERO)


class Fillable(Protocol):
    """An average-cost position a signed quantity at a price moves (a sell negative)."""

    qty: Decimal
    avg_px: Decimal
    realized_pnl: Decimal

    def take_fill(self, signed_qty: Decimal, px: Decimal) -> None: ...


def fee_parts(symbol: str, fee: Decimal, fee_asset: str) -> FeeParts:
    """(base, quote) parts of a fill's fee of `fee` `fee_asset` on a spot `symbol`
    ("BTC/USDT"): a fee in BTC moves the position, one in USDT the realised P&L. A fee in
    a third asset (BNB) or on a symbol that is no BASE/QUOTE pair touches neither: it is on
    the fill (journal, `tradepulse fills`), never converted at a guessed price."""
    base, slash, quote = symbol.partition("/")
    if not fee or not slash:
        return NO_FEE
    if fee_asset == base:
        return fee, ZERO
    return (ZERO, fee) if fee_asset == quote else NO_FEE


def book_fill(pos: Fillable, signed_qty: Decimal, px: Decimal, fee: FeeParts = NO_FEE) -> None:
    """The fill, then its fee's `fee_parts`. A base fee is units of the position given up
    for nothing: they leave it as a disposal at price 0 (a long's realises their cost,
    `fee * avg_px`; a short grows by them at no proceeds; a negative one, a rebate, is
    units received for nothing), so the quantity is what the venue's balance holds (a
    1 BTC buy paying 0.001 BTC: 0.999). A quote fee is realised at once."""
    pos.take_fill(signed_qty, px)
    book_fee(pos, fee)


def book_fee(pos: Fillable, fee: FeeParts) -> None:
    """A fill's fee parts alone (`book_fill`'s second step): a fill whose fee came after
    it (`actors.oms.late_fee`)."""
    base, quote = fee
    if base:
        pos.take_fill(-base, ZERO)
    if quote:
        pos.realized_pnl -= quote


def unbook_fill(pos: Fillable, signed_qty: Decimal, px: Decimal, fee: FeeParts = NO_FEE) -> None:
    """A busted fill (FIX 150=H) taken back, the one way the OMS's book and risk's view
    both do it (`signed_qty` at `px` as booked; `fee`: its parts negated, as its
    ``trade_bust`` record and order event carry them), last step first. Exactly undone
    where the position is on the side the fill left it: its quote fee given back, its
    base fee's units back at the average cost they left at, the fill's quantity out of
    the average (or, a fill that closed part of it, back in, its realised P&L taken
    back). Else (the fill closed it flat, or later fills moved it past it) its mirror is
    booked, the opposite quantity at the same price: quantity, cash and fees come back
    exactly, the split between realised and open P&L may differ from never having booked
    it (the total at any mark is the same), as a broker books an offsetting trade."""
    base, quote = -fee[0], -fee[1]  # the fill's own parts
    if quote:
        pos.realized_pnl += quote
    if 0 < base < pos.qty:  # a long gave `base` up at its average cost: back
        pos.qty, pos.realized_pnl = pos.qty + base, pos.realized_pnl + base * pos.avg_px
    elif base:
        pos.take_fill(base, ZERO)
    held = pos.qty
    if held and (held > 0) == (signed_qty > 0) and abs(held) >= abs(signed_qty):
        rest = held - signed_qty  # it added to the position: out of the average
        avg = (abs(held) * pos.avg_px - abs(signed_qty) * px) / abs(rest) if rest else ZERO
        if avg >= 0:
            pos.qty, pos.avg_px = rest, avg
            return
    elif held and (held > 0) != (signed_qty > 0):  # it closed part of it: realised back
        direction = 1 if held > 0 else -1
        pos.realized_pnl -= abs(signed_qty) * (px - pos.avg_px) * direction
        pos.qty = held - signed_qty
        return
    pos.take_fill(-signed_qty, px)


def fee_problem(symbol: str, qty: Decimal, px: Decimal, fee: Decimal, fee_asset: str) -> str | None:
    """Why the fee of a fill of `qty` at `px` cannot be booked, else None: one (or a
    rebate, negative) of more than `MAX_FEE_SHARE` of the fill in the asset it moves (its
    base units, its quote notional). Booked, a venue answer of a 10 BTC fee on a 0.001 BTC
    fill (or of -1000 BTC) would move the position by it; a third asset's (BNB) moves
    neither, so it is kept as said (no price to bound it by)."""
    base, quote = fee_parts(symbol, fee, fee_asset)
    traded = qty if base else qty * px
    if (base or quote) and abs(base or quote) > MAX_FEE_SHARE * traded:
        return f"fee {fee} {fee_asset} is over {MAX_FEE_SHARE:%} of the fill's {traded}"
    return None
