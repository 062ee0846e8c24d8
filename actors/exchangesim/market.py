"""The exchange's markets (Binance spot symbols) and their filters, from `[venues.sim]`.

A market is one `reference_prices` key of the form "BASE/QUOTE" (ccxt's unified symbol);
its Binance id is "BASEQUOTE". Prices live on `tick_size`; quantities on `STEP_SIZE`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from actors.exchangesim.errors import filter_failure
from protocol.config import SimCfg
from protocol.sim_config import market_parts

STEP_SIZE = Decimal("0.00001")
MIN_QTY = Decimal("0.00001")
MAX_QTY = Decimal("9000")
MAX_PRICE = Decimal("10000000")
MIN_NOTIONAL = Decimal("5")
EIGHT = Decimal("0.00000001")


def fmt(value: Decimal) -> str:
    """A Binance decimal string: 8 places ("1.50000000")."""
    return f"{value.quantize(EIGHT):f}"


@dataclass(frozen=True, slots=True)
class Market:
    symbol: str  # ccxt's unified "BTC/USDT"
    market_id: str  # Binance's "BTCUSDT"
    base: str
    quote: str
    tick_size: Decimal

    def check_price(self, price: Decimal) -> None:
        """PRICE_FILTER: minPrice <= price <= maxPrice, on the tick grid."""
        if price < self.tick_size or price > MAX_PRICE or (price % self.tick_size) != 0:
            raise filter_failure("PRICE_FILTER")

    def check_qty(self, qty: Decimal, *, market_order: bool = False) -> None:
        """LOT_SIZE (MARKET_LOT_SIZE for market orders: the same bounds here)."""
        if qty < MIN_QTY or qty > MAX_QTY or ((qty - MIN_QTY) % STEP_SIZE) != 0:
            raise filter_failure("MARKET_LOT_SIZE" if market_order else "LOT_SIZE")

    def check_notional(self, notional: Decimal) -> None:
        if notional < MIN_NOTIONAL:
            raise filter_failure("NOTIONAL")

    def info(self) -> dict[str, object]:
        """The symbol's entry in GET /api/v3/exchangeInfo."""
        return {
            "symbol": self.market_id,
            "status": "TRADING",
            "baseAsset": self.base,
            "baseAssetPrecision": 8,
            "quoteAsset": self.quote,
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "baseCommissionPrecision": 8,
            "quoteCommissionPrecision": 8,
            "orderTypes": ["LIMIT", "MARKET"],
            "icebergAllowed": False,
            "ocoAllowed": False,
            "otoAllowed": False,
            "quoteOrderQtyMarketAllowed": False,
            "allowTrailingStop": False,
            "cancelReplaceAllowed": True,
            "amendAllowed": False,
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "filters": [
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": fmt(self.tick_size),
                    "maxPrice": fmt(MAX_PRICE),
                    "tickSize": fmt(self.tick_size),
                },
                {
                    "filterType": "LOT_SIZE",
                    "minQty": fmt(MIN_QTY),
                    "maxQty": fmt(MAX_QTY),
                    "stepSize": fmt(STEP_SIZE),
                },
                {
                    "filterType": "MARKET_LOT_SIZE",
                    "minQty": fmt(MIN_QTY),
                    "maxQty": fmt(MAX_QTY),
                    "stepSize": fmt(STEP_SIZE),
                },
                {
                    "filterType": "NOTIONAL",
                    "minNotional": fmt(MIN_NOTIONAL),
                    "applyMinToMarket": True,
                    "maxNotional": "9000000.00000000",
                    "applyMaxToMarket": False,
                    "avgPriceMins": 5,
                },
            ],
            "permissions": [],
            "permissionSets": [["SPOT"]],
            "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
            "allowedSelfTradePreventionModes": ["EXPIRE_MAKER"],
        }


def markets_from(sim: SimCfg) -> dict[str, Market]:
    """Every "BASE/QUOTE" of `sim.reference_prices`, by Binance id. ValueError for a key
    that is not BASE/QUOTE (a FIX venue's "AAPL")."""
    out: dict[str, Market] = {}
    for symbol in sorted(sim.reference_prices):
        if (parts := market_parts(symbol)) is None:
            raise ValueError(f"[venues.sim] reference_prices: {symbol!r} is not BASE/QUOTE")
        base, quote = parts
        out[base + quote] = Market(symbol, base + quote, base, quote, sim.tick_size)
    return out
