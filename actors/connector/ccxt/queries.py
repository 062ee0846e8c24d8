"""The ccxt connector's questions to the exchange, each answered through the connector's
callback: order status by client id, open orders per symbol, balances as positions, mass
cancel per symbol (the kill-switch's). An answer queues the executions it proves first
(`Flows.apply_with_trades`), so the OMS has them before the answer (a consistent cut);
a balance that cannot be shown to hold the fills queued before its answer names none.
"""

from __future__ import annotations

import asyncio
from typing import Any

from actors.connector.adapter import (
    AnswerTooBig,
    MassCancelDone,
    NoConsistentCut,
    OrdersDone,
    PositionsDone,
    RequestFailed,
    StatusDone,
    StatusResult,
)
from actors.connector.ccxt import errors, mapping
from actors.connector.ccxt.flows import Flows, Sent
from actors.connector.fix.queries import MAX_OPEN_ORDERS_PER_REPLY
from protocol.ccxt_config import CcxtCfg
from protocol.messages import ErrorCode, QueriedOrder, VenueOrder

QUERY_CONCURRENCY = 8  # REST requests of one status query / poll in flight at once
POSITION_READS = 3  # balance reads of one positions answer while fills keep arriving


class Queries:
    """Status, open orders, positions and mass cancel of one exchange."""

    def __init__(self, venue: str, ccfg: CcxtCfg, flows: Flows, log: Any) -> None:
        self.venue = venue
        self.ccfg = ccfg
        self.flows = flows
        self.rest = flows.rest
        self.tracker = flows.tracker
        self.log = log

    async def order_status(self, orders: list[QueriedOrder], done: StatusDone) -> None:
        result = StatusResult()
        sem = asyncio.Semaphore(QUERY_CONCURRENCY)
        failed: list[errors.Failure] = []

        async def one(q: QueriedOrder) -> None:
            async with sem:
                fetch = Sent(self.rest.ex.fetch_order)
                try:
                    order = await self.flows.order_call(
                        fetch, None, q.symbol, {"origClientOrderId": q.cl_ord_id}
                    )
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - classified below
                    failure = errors.classify(exc)
                    if failure.kind != "not_found":
                        failed.append(failure)
                    elif self.flows.may_arrive(q.cl_ord_id, fetch.at):  # read too early:
                        # a create may land after the exchange read it (no proof of never)
                        result.pending.append(q.cl_ord_id)
                    else:
                        result.unknown.append(q.cl_ord_id)
                    return
                try:
                    intent = self.tracker.intent_for(q.cl_ord_id, order)
                    await self.flows.apply_with_trades(intent, order)
                    result.orders.append(self.tracker.venue_order(intent, order))
                except ValueError as exc:  # unreadable: as a failed lookup (it raised out of
                    # the gather, and the query was never answered)
                    self.tracker.unreadable("status", exc, q.cl_ord_id)
                    failed.append(errors.Failure("internal", f"unreadable answer: {exc}"[:200]))

        await asyncio.gather(*(one(q) for q in orders))
        if failed:
            done(
                RequestFailed(
                    ErrorCode.TIMEOUT, f"{len(failed)} lookups failed: {failed[0].reason}"
                )
            )
        else:
            done(result)

    async def open_orders(self, done: OrdersDone) -> None:
        out: list[VenueOrder] = []
        try:
            for symbol in self.ccfg.symbols:
                for order in await self.rest.call(self.rest.ex.fetch_open_orders, symbol):
                    intent = self.tracker.intent_for(mapping.client_order_id(order), order)
                    await self.flows.apply_with_trades(intent, order)
                    out.append(self.tracker.venue_order(intent, order))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - classified below
            if isinstance(exc, ValueError):  # an order we cannot read (not the request's)
                self.tracker.unreadable("open_orders", exc)
            done(self.request_failed(exc))
            return
        if len(out) > MAX_OPEN_ORDERS_PER_REPLY:
            done(AnswerTooBig(len(out), f"{len(out)} open orders: more than one reply carries"))
            return
        done(out)

    async def positions(self, done: PositionsDone) -> None:
        """The balances as positions, consistent with the executions handed on before the
        answer (the connector stamps it with that cut, and the heartbeat compares it with
        the OMS's positions at the cut): the balance already holds trades the user-data
        stream has not delivered yet. So after the balance every order we answer for is
        looked up (its missing fills queued); if that queued a fill, the balance may or may
        not hold it: read it again (at most POSITION_READS times). Fills still queued after
        the last read (the cut holds them, the balance may not), or an order left in doubt
        by the last read's lookups (the balance may hold fills of it not queued: its lookup
        or its trades' fetch failed, a replace's new order held back): no consistent cut."""
        in_doubt: list[str] = []
        try:
            for _ in range(POSITION_READS):
                mark = self.tracker.fills_queued
                balance = await self.rest.call(self.rest.ex.fetch_balance)
                in_doubt = await self.flows.poll_live()
                if self.tracker.fills_queued == mark:
                    break
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - classified below
            done(self.request_failed(exc))
            return
        try:
            positions = mapping.positions_from_balance(
                self.venue, balance, self.ccfg.symbols, self.ccfg.position_baseline
            )
        except ValueError as exc:  # unreadable: refused (it raised, and none was answered)
            self.tracker.unreadable("balance", exc)
            done(RequestFailed(ErrorCode.VENUE_REFUSED, f"unreadable balance: {exc}"[:200]))
            return
        if in_doubt:  # the venue may be ahead of the cut: shown, compared by no one
            self.log.info("ccxt_positions_in_doubt", orders=len(in_doubt), cl_ord_id=in_doubt[0])
            done(NoConsistentCut(positions))
        elif self.tracker.fills_queued == mark:
            done(positions)
        else:  # shown, compared by no one: the next request reads again
            self.log.info("ccxt_positions_moving", reads=POSITION_READS)
            done(NoConsistentCut(positions))

    async def mass_cancel(self, done: MassCancelDone) -> None:
        ok = True
        for symbol in self.ccfg.symbols:
            try:
                cancelled = await self.rest.call(self.rest.ex.cancel_all_orders, symbol)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - classified below
                failure = errors.classify(exc)
                if failure.kind != "not_found":  # Binance: -2011 when none was open
                    ok = False
                    self.log.error("ccxt_mass_cancel_failed", symbol=symbol, reason=failure.reason)
                continue
            for order in cancelled or []:
                intent = self.tracker.intent_for(mapping.client_order_id(order), order)
                self.tracker.apply_order(intent, order, [])
        self.log.warning("ccxt_mass_cancel", accepted=ok, symbols=len(self.ccfg.symbols))
        done(ok)

    def request_failed(self, exc: BaseException) -> RequestFailed:
        failure = errors.classify(exc)
        if failure.kind == "down":
            return RequestFailed(ErrorCode.VENUE_DOWN, failure.reason)
        if failure.kind == "rejected":
            return RequestFailed(ErrorCode.VENUE_REFUSED, failure.reason)
        return RequestFailed(ErrorCode.TIMEOUT, failure.reason)
