"""Price-time priority as pure planning: which trades happen, computed without changing
anything. The engine applies a plan record by record; planning first keeps the rules in one
readable place and gives FOK its all-or-nothing check for free (plan, then compare).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from actors.venuesim.liquidity import Ladder, Quote, marketable
from actors.venuesim.model import ZERO
from actors.venuesim.orders import Resting, SideBook
from protocol.messages import Side


@dataclass(frozen=True, slots=True)
class Trade:
    resting: Resting | None  # the client's resting order traded with; None: a quote
    qty: Decimal
    px: Decimal
    level: Decimal | None  # the market-maker quote level consumed, if any


def plan_match(
    side: Side, limit: Decimal | None, qty: Decimal, book: SideBook, ladder: Ladder | None
) -> list[Trade]:
    """The trades an incoming order (`side`, `qty`, `limit`; None: market) makes against
    the other side's resting client orders (`book`) and market-maker quotes (`ladder`):
    best price first, the resting side's price, resting client orders before quotes at
    equal prices, time priority within a price."""
    orders = book.ordered()
    quotes: Iterator[Quote] = iter(() if ladder is None else ladder.quotes)
    resting, quote = next(orders, None), _next_quote(quotes)
    trades: list[Trade] = []
    left = qty
    while left > ZERO:
        use_order = resting is not None and (
            quote is None or marketable(side, quote.price, _px(resting))
        )
        if resting is not None and use_order:
            px, available = _px(resting), resting.leaves_qty
        elif quote is not None:
            px, available = quote.price, quote.remaining
        else:
            break
        if not marketable(side, limit, px):
            break
        take = min(left, available)
        left -= take  # `take` exhausts either the order or what it trades with: advance
        if use_order:
            trades.append(Trade(resting, take, px, None))
            resting = next(orders, None)
        else:
            trades.append(Trade(None, take, px, px))
            quote = _next_quote(quotes)
    return trades


def plan_sweep(ladder: Ladder | None, book: SideBook) -> list[Trade]:
    """The trades fresh market-maker quotes (`ladder`, best first) make against the client
    orders resting on the other side (`book`) that they cross, at the client's price."""
    trades: list[Trade] = []
    orders = book.ordered()
    resting = next(orders, None)
    if resting is None:
        return trades
    resting_left = ZERO if resting is None else resting.leaves_qty
    for quote in () if ladder is None else ladder.quotes:
        available = quote.remaining
        while available > ZERO and resting is not None:
            if resting.side is None or not marketable(resting.side, _px(resting), quote.price):
                return trades
            take = min(available, resting_left)
            trades.append(Trade(resting, take, _px(resting), quote.price))
            available -= take
            resting_left -= take
            if resting_left == ZERO:
                resting = next(orders, None)
                resting_left = ZERO if resting is None else resting.leaves_qty
    return trades


def _next_quote(quotes: Iterator[Quote]) -> Quote | None:
    return next((q for q in quotes if q.remaining > ZERO), None)


def _px(o: Resting) -> Decimal:
    assert o.book_px is not None, "only resting orders are in a book"
    return o.book_px
