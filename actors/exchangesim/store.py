"""Where the simulated exchange keeps its state, and the read-only ground truth of it.

The log is the venue simulator's (`actors.venuesim.store.SimStore`: CRC'd frames, one
per operation, flock'd, torn tail dropped) in ``<state_dir>/venues/<venue>/exchange/``;
the exchange fsyncs each operation's frame before it answers (`Exchange._commit`).
`inspect` replays it without the lock, so it works while the exchange runs or after it
died.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

from actors.exchangesim.book import Exchange
from actors.exchangesim.orders import Trade, XOrder
from actors.venuesim.orders import Record
from actors.venuesim.store import LOG_NAME, SimStore, read_log
from protocol.config import SimCfg
from protocol.paths import venue_state_dir

SUBDIR = "exchange"


def state_dir(state_path: Path, venue: str) -> Path:
    return venue_state_dir(state_path, venue) / SUBDIR


def open_store(state_path: Path, venue: str) -> SimStore:
    """The venue's log, opened for writing (`StateDirLocked` if the exchange runs)."""
    return SimStore.open(state_dir(state_path, venue))


class _ReadOnly:
    """A store that hands out a log's transactions and writes nothing."""

    def __init__(self, txns: list[list[Record]]) -> None:
        self._txns = txns
        self.book_id = str(txns[0][0].get("book", "")) if txns and txns[0] else ""

    def replay(self) -> list[list[Record]]:
        return self._txns

    def append(self, txn: list[Record]) -> None:
        pass

    def note_tick(self, rec: Record) -> None:
        pass

    def sync(self) -> None:
        pass


def has_state(state_path: Path, venue: str) -> bool:
    return (state_dir(state_path, venue) / LOG_NAME).exists()


def inspect(state_path: Path, venue: str, sim: SimCfg) -> dict[str, Any]:
    """Every order the exchange ever accepted (client id, status, fills), every new order
    it refused (`refusals`: client id, Binance code and message), every trade, the
    balances (free / locked / total) and per-symbol traded quantities. Decimals are
    strings; times epoch ms."""
    scan = read_log(state_dir(state_path, venue) / LOG_NAME)
    store = _ReadOnly(scan.txns)
    ex = Exchange(sim, store, zlib.crc32(venue.encode()), keep_refusals=None)
    positions: dict[str, dict[str, str]] = {}
    for m in ex.markets.values():
        bought = sum(t.qty for t in ex.trades if t.market_id == m.market_id and t.side == "BUY")
        sold = sum(t.qty for t in ex.trades if t.market_id == m.market_id and t.side == "SELL")
        if bought or sold:
            positions[m.symbol] = {
                "net_qty": str(bought - sold),
                "bought_qty": str(bought),
                "sold_qty": str(sold),
            }
    return {
        "venue": venue,
        "book_id": store.book_id,
        "step": ex.step,
        "reference_prices": {ex.markets[mid].symbol: str(p) for mid, p in ex.references.items()},
        "orders": [_order(ex, o) for o in ex.orders.values()],
        "refusals": ex.refusals.dump({mid: m.symbol for mid, m in ex.markets.items()}),
        "trades": [_trade(ex, t) for t in ex.trades],
        "balances": {
            a: {"free": str(f), "locked": str(lk), "total": str(f + lk)}
            for a, (f, lk) in ex.balances().items()
        },
        "positions": positions,
        "log": {"frames": len(scan.txns), "torn_bytes": scan.torn_bytes},
    }


def _order(ex: Exchange, o: XOrder) -> dict[str, Any]:
    return {
        "order_id": o.order_id,
        "client_order_id": o.cl_ord_id,
        "symbol": ex.markets[o.symbol].symbol,
        "market_id": o.symbol,
        "side": o.side and o.side.value,
        "type": o.ord_type and o.ord_type.value,
        "time_in_force": o.tif_text,
        "qty": str(o.order_qty),
        "price": None if o.price is None else str(o.price),
        "status": o.binance_status,
        "is_open": o.status.is_open,
        "filled_qty": str(o.cum_qty),
        "leaves_qty": str(o.leaves_qty),
        "avg_px": str(o.avg_px),
        "quote_qty": str(o.quote_cum),
        "created_ms": o.created_ms,
        "updated_ms": o.update_ms,
        "trade_ids": [t for t, _, _, _ in o.fills],
    }


def _trade(ex: Exchange, t: Trade) -> dict[str, Any]:
    return {
        "trade_id": t.tid,
        "order_id": str(t.oid),
        "symbol": ex.markets[t.market_id].symbol,
        "side": t.side.value,
        "qty": str(t.qty),
        "price": str(t.px),
        "commission": str(t.fee),
        "commission_asset": t.fee_asset,
        "maker": t.maker,
        "time_ms": t.ts_ms,
    }
