"""The REST poll of the orders we answer for (while the user-data stream is down, once after
it is back, and as a slow safety net), at a cost in request weight of the order of the
symbols, not of the orders.

Looking up every live order (GET /api/v3/order, weight 4) each second is 170 lookups a
second at 170 live orders: ~40,000 weight a minute against Binance's 6,000, a 429 and then
an IP ban. So one poll asks the exchange which orders are open (GET /api/v3/openOrders:
weight 6 per symbol, or 80 for every symbol at once), applies each of ours it lists (its
fills fetched by order when its filled quantity moved, as a lookup would), and looks up
one by one only the live orders it does not list: those that left the book since
(filled, cancelled, expired), those the exchange never saw, and replaces to settle. When
looking up each live order costs less than the open orders would (a few orders), it does
that instead. Its requests are background ones: they use half the weight budget, so a
busy poll never holds back an order or a cancel (one kept back for
`weight.BACKGROUND_PATIENCE_S` by an order flow above half goes as an order would: never
starved). An order whose submit is running is
left to its flow.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Final, Protocol

from actors.connector.ccxt import mapping
from actors.connector.ccxt.exchange import BACKGROUND, Rest
from actors.connector.ccxt.intents import Intent
from actors.connector.ccxt.tracker import Tracker

# weights as ccxt's binance describes them (`weight`: its cost x 5); a plan's choice only,
# the budget weighs each request as it goes
LOOKUP_WEIGHT: Final = 4  # GET /api/v3/order
OPEN_ORDERS_WEIGHT: Final = 6  # GET /api/v3/openOrders?symbol=
ALL_OPEN_ORDERS_WEIGHT: Final = 80  # GET /api/v3/openOrders (every symbol)
POLL_CONCURRENCY: Final = 8  # lookups of one poll in flight at once


class Flows(Protocol):
    """What a poll needs of the order flows (`flows.Flows`)."""

    rest: Rest
    tracker: Tracker
    log: Any
    inflight: set[str]

    async def lookup(self, intent: Intent) -> bool | None: ...
    async def settle_replace(self, new: Intent) -> None: ...
    async def apply_with_trades(
        self, intent: Intent, order: Mapping[str, Any], *, final_event: bool = ...
    ) -> None: ...


def open_orders_plan(symbols: set[str], live: int) -> list[str | None] | None:
    """The open-orders requests of one poll (a symbol, or None: every symbol), or None
    when looking up each of the `live` orders one by one costs no more (pure)."""
    per_symbol = OPEN_ORDERS_WEIGHT * len(symbols)
    if live * LOOKUP_WEIGHT <= min(per_symbol, ALL_OPEN_ORDERS_WEIGHT):
        return None
    if ALL_OPEN_ORDERS_WEIGHT < per_symbol:
        return [None]
    return list[str | None](sorted(symbols))


async def poll_live(flows: Flows) -> None:
    """One poll of every order we answer for (module docstring), as background requests
    (at most `exchange.BACKGROUND_SHARE` of the weight budget: orders go first)."""
    token = BACKGROUND.set(True)
    try:
        await _poll(flows)
    finally:
        BACKGROUND.reset(token)


async def _poll(flows: Flows) -> None:
    tracker = flows.tracker
    # an order whose submit runs now is that flow's (it looks it up if its answer is lost)
    intents = [
        live.intent for live in list(tracker.live.values())
        if live.intent.cl_ord_id not in flows.inflight
    ]  # fmt: skip
    if not intents:
        return
    todo = [i for i in intents if i.cl_ord_id not in tracker.unsettled]
    plan = open_orders_plan({i.symbol for i in todo}, len(todo))
    listed: dict[str, Mapping[str, Any]] = {}
    if plan is not None:
        try:
            for symbol in plan:
                for order in await flows.rest.call(flows.rest.ex.fetch_open_orders, symbol):
                    cl_ord_id = mapping.client_order_id(order)
                    if cl_ord_id in tracker.live:
                        listed[cl_ord_id] = order
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the next poll tries again
            flows.log.info("ccxt_poll_open_orders_failed", reason=flows.rest.classify(exc).reason)
            return
    sem = asyncio.Semaphore(POLL_CONCURRENCY)

    async def one(intent: Intent) -> None:
        async with sem:
            try:
                if intent.cl_ord_id in tracker.unsettled:
                    await flows.settle_replace(intent)
                elif intent.cl_ord_id in listed:  # still open: its snapshot is here
                    await flows.apply_with_trades(intent, listed[intent.cl_ord_id])
                else:
                    await flows.lookup(intent)
            except ValueError as exc:  # an answer we cannot read: the others go on
                flows.log.error(
                    "ccxt_answer_unreadable", cl_ord_id=intent.cl_ord_id, error=str(exc)[:200]
                )

    await asyncio.gather(*(one(intent) for intent in intents))
