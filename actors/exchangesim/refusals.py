"""The exchange's refusals of new orders (filters, a duplicate open client id, not enough
balance): Binance keeps no order for them, so a query of the client id answers -2013 as
if it never came; the sim logs each one (`rej` record, fsync'd before the answer goes
out) so its inspection can prove that an order the OMS reports REJECTED reached the
exchange once and was refused there.

  rej   cl sym side code msg ts                    a new order refused (no order created)

The running exchange keeps the newest `REFUSALS_KEPT` in memory; the inspection, which
replays the whole log, keeps every one (`keep=None`).
"""

from __future__ import annotations

from collections import deque
from typing import Any

from actors.exchangesim.errors import ApiError
from actors.venuesim.orders import Record
from protocol.domain import Side

REFUSALS_KEPT = 1000


class Refusals:
    """The refusals of new orders, oldest first (bounded by `keep`; None: all)."""

    def __init__(self, keep: int | None = REFUSALS_KEPT) -> None:
        self._recs: deque[Record] = deque(maxlen=keep)
        self.count = 0  # every refusal in the log, those no longer kept included

    @staticmethod
    def record(client_id: str, market_id: str, side: Side, exc: ApiError, now_ms: int) -> Record:
        """The `rej` record of refusing `client_id`'s new order with `exc`."""
        return {
            "t": "rej", "cl": client_id, "sym": market_id, "side": side.value,
            "code": exc.code, "msg": exc.msg, "ts": now_ms,
        }  # fmt: skip

    def apply(self, rec: Record) -> None:
        self._recs.append(rec)
        self.count += 1

    def dump(self, symbol_of: dict[str, str]) -> list[dict[str, Any]]:
        """The refusals kept, JSON-serialisable; `symbol_of`: market id -> unified symbol."""
        return [
            {
                "client_order_id": r["cl"],
                "symbol": symbol_of.get(r["sym"], r["sym"]),
                "market_id": r["sym"],
                "side": r["side"],
                "code": r["code"],
                "msg": r["msg"],
                "time_ms": r["ts"],
            }
            for r in self._recs
        ]
