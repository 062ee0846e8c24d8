"""The exchange's refusals of new orders (filters, a duplicate open client id, not enough
balance): Binance keeps no order for them, so a query of the client id answers -2013 as
if it never came; the sim logs each one (`rej` record, fsync'd before the answer goes
out) so its inspection can prove that an order the OMS reports REJECTED reached the
exchange once and was refused there.

  rej   cl sym side q code msg ts prior            a new order refused (no order created)

`q` is the refused quantity and `prior` the exchange's newest order id under the same client
id when the refusal came (None: it had none): a refusal with a `prior` is a client id sent
again after the exchange took it (the checker's second send). Records written before these
two fields existed have neither (the inspection says None).

The running exchange keeps the newest `REFUSALS_KEPT` in memory; the inspection, which
replays the whole log, keeps every one (`keep=None`).
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal
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
    def record(
        client_id: str,
        market_id: str,
        side: Side,
        qty: Decimal,
        exc: ApiError,
        now_ms: int,
        prior: int | None,
    ) -> Record:
        """The `rej` record of refusing `client_id`'s new order of `qty` with `exc`;
        `prior`: the newest order id the exchange has under `client_id`, if any."""
        return {
            "t": "rej", "cl": client_id, "sym": market_id, "side": side.value,
            "q": str(qty), "code": exc.code, "msg": exc.msg, "ts": now_ms, "prior": prior,
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
                "qty": r.get("q"),
                "code": r["code"],
                "msg": r["msg"],
                "time_ms": r["ts"],
                "prior_order_id": r.get("prior"),
            }
            for r in self._recs
        ]
