"""The synthetic market maker: a seeded random walk of a reference price and a quote ladder.

Pure functions and a tiny mutable ladder, no I/O. The walk is keyed by (seed, symbol, step):
step k's move depends only on the price after step k-1 and on those three values, never on
a generator's hidden state, so a restarted venue continues the exact same path from the
last step it persisted.

Prices live on the tick grid: the reference is a whole number of ticks, and the market
maker quotes `levels` price levels on each side at reference -/+ 1..levels ticks, each for
`quote_qty`.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import NamedTuple

from actors.venuesim.model import ZERO
from protocol.config import SimCfg
from protocol.messages import Side


@dataclass(frozen=True, slots=True)
class LadderSpec:
    tick_size: Decimal
    levels: int
    quote_qty: Decimal

    @classmethod
    def from_cfg(cls, cfg: SimCfg) -> LadderSpec:
        return cls(tick_size=cfg.tick_size, levels=cfg.quote_levels, quote_qty=cfg.quote_qty)


def on_grid(price: Decimal, tick_size: Decimal) -> Decimal:
    """`price` rounded to the nearest tick, at least one tick."""
    ticks = (price / tick_size).to_integral_value(rounding=ROUND_HALF_EVEN)
    return max(int(ticks), 1) * tick_size


def next_reference(prev: Decimal, *, seed: int, symbol: str, step: int, cfg: SimCfg) -> Decimal:
    """The reference price after `step`: a Gaussian move of `cfg.volatility_bps` (one
    standard deviation, in basis points of the price), rounded stochastically to whole
    ticks so that small volatilities still move the price on average. At least one tick."""
    rng = random.Random(f"{seed}/{symbol}/{step}")  # str seeds hash with sha512: stable
    prev_ticks = int((prev / cfg.tick_size).to_integral_value(rounding=ROUND_HALF_EVEN))
    move = prev_ticks * cfg.volatility_bps / 1e4 * rng.gauss(0.0, 1.0)
    ticks = prev_ticks + math.floor(move + rng.random())
    return max(ticks, 1) * cfg.tick_size


class Quote(NamedTuple):
    """One market-maker price level and what is left of it."""

    price: Decimal
    remaining: Decimal


class Ladder:
    """The market maker's quotes on one side of one symbol: `levels` prices stepping away
    from the reference, each for `quote_qty` less what the client took since the refresh.
    A refresh is O(1) (it happens every step, and on replay once per persisted step)."""

    __slots__ = ("side", "spec", "reference", "taken", "_quotes")

    def __init__(self, side: Side, spec: LadderSpec, reference: Decimal) -> None:
        self.side = side
        self.spec = spec
        self.reference = reference
        self.taken: dict[Decimal, Decimal] = {}
        self._quotes: list[Quote] | None = None

    def refresh(self, reference: Decimal) -> None:
        """Quote a full ladder around `reference`."""
        self.reference = reference
        self.taken.clear()
        self._quotes = None

    @property
    def quotes(self) -> list[Quote]:
        """Every level, best price first, including emptied ones."""
        if self._quotes is None:
            step = -self.spec.tick_size if self.side is Side.BUY else self.spec.tick_size
            prices = (self.reference + i * step for i in range(1, self.spec.levels + 1))
            full = self.spec.quote_qty
            self._quotes = [Quote(p, full - self.taken.get(p, ZERO)) for p in prices if p > ZERO]
        return self._quotes

    def consume(self, price: Decimal, qty: Decimal) -> None:
        """Take `qty` off the level at `price`."""
        self.taken[price] = self.taken.get(price, ZERO) + qty
        self._quotes = None


def marketable(side: Side, limit: Decimal | None, px: Decimal) -> bool:
    """Would an order on `side` limited at `limit` (None: a market order) trade at `px`?"""
    return limit is None or (px <= limit if side is Side.BUY else px >= limit)
