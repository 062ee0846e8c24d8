"""One order as the simulated exchange keeps it, one trade, and Binance's made-up client
order ids."""

from __future__ import annotations

import secrets
import string
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from actors.venuesim.model import OrdStatus
from actors.venuesim.orders import OrderState, Record
from protocol.domain import Side

ZERO = Decimal(0)
_ID_CHARS = string.ascii_letters + string.digits


def new_client_id() -> str:
    """What Binance makes up when no client order id is sent: 22 letters and digits."""
    return "".join(secrets.choice(_ID_CHARS) for _ in range(22))


class XOrder(OrderState):
    """An order with what Binance reports beyond the venue simulator's order state."""

    __slots__ = ("binance_status", "tif_text", "quote_cum", "created_ms", "update_ms")

    def __init__(self, rec: Record) -> None:
        super().__init__(rec, str(rec["oid"]), OrdStatus.NEW)
        self.binance_status = "NEW"
        self.tif_text: str = rec["tif"]
        self.quote_cum = ZERO
        self.created_ms: int = rec["ts"]
        self.update_ms: int = rec["ts"]


@dataclass(frozen=True, slots=True)
class Trade:
    """One fill of one of our orders (a row of GET /api/v3/myTrades)."""

    tid: int
    oid: int
    market_id: str
    side: Side
    qty: Decimal
    px: Decimal
    fee: Decimal
    fee_asset: str
    maker: bool
    ts_ms: int


def select_trades(
    trades: Sequence[Trade],
    market_id: str,
    *,
    order_id: int | None = None,
    from_id: int | None = None,
    start_ms: int | None = None,
    end_ms: int | None = None,
    limit: int = 500,
) -> list[Trade]:
    """GET /api/v3/myTrades: oldest first; from `from_id` (or `start_ms`) on the first
    `limit`, else the newest `limit` (up to `end_ms`)."""
    rows = [
        t
        for t in trades
        if t.market_id == market_id
        and (order_id is None or t.oid == order_id)
        and (from_id is None or t.tid >= from_id)
        and (start_ms is None or t.ts_ms >= start_ms)
        and (end_ms is None or t.ts_ms <= end_ms)
    ]
    return rows[:limit] if from_id is not None or start_ms is not None else rows[-limit:]
