"""The ccxt connector's questions to the exchange, each answered through the connector's
callback: order status by client id, open orders per symbol, balances as positions, mass
cancel per symbol (the kill-switch's). An answer queues the executions it proves first
(`Flows.apply_with_trades`), so the OMS has them before the answer (a consistent cut).
"""

from __future__ import annotations

import asyncio
from typing import Any

from actors.connector.adapter import (
    AnswerTooBig,
    MassCancelDone,
    OrdersDone,
    PositionsDone,
    RequestFailed,
    StatusDone,
    StatusResult,
)
from actors.connector.ccxt import errors, mapping
from actors.connector.ccxt.exchange import HEADROOM, HOLD_REFUSES
from actors.connector.ccxt.flows import (
    CANCEL_RETRY_DELAYS_S,
    WITHDRAWN_BY_MASS_CANCEL,
    Flows,
    Sent,
)
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
        """Each order as the exchange has it, or "never seen". An order whose submit runs
        (waiting at the weight gate, or on the wire) is asked about once it is over: "never
        seen" while its create waits to go out would be false (the OMS may resubmit it, or
        reject it as never sent, and then it goes out)."""
        result = StatusResult()
        sem = asyncio.Semaphore(QUERY_CONCURRENCY)
        failed: list[errors.Failure] = []

        async def one(q: QueriedOrder) -> None:
            await self.flows.gates.settled(q.cl_ord_id)
            async with sem:
                fetch = Sent(self.rest.ex.fetch_order)
                try:
                    order = await self.rest.call(
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
                intent = self.tracker.intent_for(q.cl_ord_id, order)
                await self.flows.apply_with_trades(intent, order)
                result.orders.append(self.tracker.venue_order(intent, order))

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
        not hold it: read it again (at most POSITION_READS times)."""
        try:
            for _ in range(POSITION_READS):
                mark = self.tracker.fills_queued
                balance = await self.rest.call(self.rest.ex.fetch_balance)
                await self.flows.poll_live()
                if self.tracker.fills_queued == mark:
                    break
            else:
                self.log.info("ccxt_positions_moving", reads=POSITION_READS)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - classified below
            done(self.request_failed(exc))
            return
        done(
            mapping.positions_from_balance(
                self.venue, balance, self.ccfg.symbols, self.ccfg.position_baseline
            )
        )

    async def mass_cancel(self, done: MassCancelDone) -> None:
        """Every open order of ours cancelled (cancel_all_orders per symbol), at once: the
        new orders not on the wire are withdrawn (never sent, `Flows.withdraw`), no new
        order leaves the gate until it is over (`Rest.fence`), what rests is cancelled and
        the answer given; then the submits on the wire are waited for and whichever of
        them landed is cancelled too (a second cancel_all_orders). The resting orders are
        not held live behind a submit's answer (up to request_timeout_s and its lookups),
        nor the answer past risk's deadline for it. Its requests may use the exchange's
        whole weight limit, our budget's headroom too (`HEADROOM`); never more: with
        that spent, or a Retry-After running, it is refused at once."""
        token = HEADROOM.set(True)  # its requests, the gathered ones too (a copied context)
        try:
            await self._mass_cancel(done)
        finally:
            HEADROOM.reset(token)

    async def _mass_cancel(self, done: MassCancelDone) -> None:
        async with self.rest.fence.up():
            self._withdraw_waiting()
            budget = self.rest.budget
            if budget.wait_s(len(self.ccfg.symbols), whole_limit=True) > 0:  # refused now,
                # not answered after a wait (past risk's deadline, request_timeout_s + 1,
                # and risk restarts a connector that times out; it retries a refusal)
                self.log.warning(
                    "ccxt_mass_cancel_held", hold_s=round(budget.hold_s(), 3),
                    weight_used=budget.used(), weight_limit=budget.limit,
                )  # fmt: skip
                reason = f"rate limited by {self.ccfg.exchange}: {self.rest.weight_spent()}"
                done(RequestFailed(ErrorCode.TIMEOUT, reason))
                return
            # a submit on the wire now may land after the first pass even if it is over by
            # the end of it (its answer back first): decided now, not after the pass
            on_wire = bool(self.flows.gates) or self.rest.fence.orders_on_wire > 0
            token = HOLD_REFUSES.set(True)  # a hold or weight spent now: refused, no wait
            try:
                ok = await self._cancel_all()  # what rests goes now, not after a submit's answer
            finally:
                HOLD_REFUSES.reset(token)
            self.log.warning("ccxt_mass_cancel", accepted=ok, symbols=len(self.ccfg.symbols))
            done(ok)
            if on_wire or self.flows.gates or self.rest.fence.orders_on_wire:
                await self._settle_new_orders()  # whichever landed meanwhile: cancelled
                for delay_s in (0.0, *CANCEL_RETRY_DELAYS_S):  # risk has its answer: a
                    await asyncio.sleep(delay_s)  # failure here is retried here or never
                    if landed := await self._cancel_all():
                        break
                self.log.warning("ccxt_mass_cancel_after_wire", accepted=landed)

    def _withdraw_waiting(self) -> None:
        for cl_ord_id in self.flows.gates.withdrawable():
            self.flows.withdraw(cl_ord_id, WITHDRAWN_BY_MASS_CANCEL)

    async def _settle_new_orders(self) -> None:
        """Withdraw every new order with nothing on the wire and wait for the others (a
        submit, a replace's new order) until none is at the gate or on the wire; the
        fence (`Rest.fence`) fails any new-order POST at the gate meanwhile."""
        gates, rest = self.flows.gates, self.rest
        while gates or rest.fence.orders_on_wire:
            self._withdraw_waiting()
            await gates.all_settled()
            await rest.fence.wire_clear()

    async def _cancel_all(self) -> bool:
        """cancel_all_orders per symbol, all out at once (one after the other, N symbols
        could take N request timeouts: past risk's deadline): False if one failed."""
        results = await asyncio.gather(*(self._cancel_symbol(s) for s in self.ccfg.symbols))
        return all(results)

    async def _cancel_symbol(self, symbol: str) -> bool:
        try:
            cancelled = await self.rest.call(self.rest.ex.cancel_all_orders, symbol)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - classified below
            failure = errors.classify(exc)
            if failure.kind == "not_found":  # Binance: -2011 when none was open
                return True
            self.log.error("ccxt_mass_cancel_failed", symbol=symbol, reason=failure.reason)
            return False
        for order in cancelled or []:
            intent = self.tracker.intent_for(mapping.client_order_id(order), order)
            self.tracker.apply_order(intent, order, [])
        return True

    def request_failed(self, exc: BaseException) -> RequestFailed:
        failure = errors.classify(exc)
        if failure.kind == "down":
            return RequestFailed(ErrorCode.VENUE_DOWN, failure.reason)
        if failure.kind == "rejected":
            return RequestFailed(ErrorCode.VENUE_REFUSED, failure.reason)
        return RequestFailed(ErrorCode.TIMEOUT, failure.reason)
