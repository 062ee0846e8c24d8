"""The exchange's user-data stream (ccxt.pro `watch_orders` / `watch_my_trades`) and the
REST poll behind it. The stream is an accelerator: while it is down, and once after it is
back (what it missed while down is not replayed), the orders we answer for are polled
over REST every `poll_interval_s`; while it is up, every `poll_idle_s` as a safety net.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from actors.connector.ccxt import execs, mapping
from actors.connector.ccxt import reading as rd
from actors.connector.ccxt.flows import Flows
from protocol.ccxt_config import CcxtCfg

UNREACHABLE_PINGS = 3  # unanswered time requests in a row (stream down) end the session


class UserStream:
    """Runs while `running`; `up` says whether the stream is subscribed."""

    def __init__(
        self,
        venue: str,
        ccfg: CcxtCfg,
        flows: Flows,
        log: Any,
        end_session: Callable[[str], Coroutine[Any, Any, None]],
    ) -> None:
        self.venue = venue
        self.end_session = end_session
        self.ccfg = ccfg
        self.flows = flows
        self.rest = flows.rest
        self.tracker = flows.tracker
        self.log = log
        self.running = False
        self.up = False
        self.poll_now = asyncio.Event()
        self.polls = 0
        self.drops = 0

    def wake_poll(self) -> None:
        self.poll_now.set()

    async def watch_orders(self) -> None:
        delay_s = 0.1
        while self.running:
            try:
                if not self.up:
                    await self.rest.ex.authenticate()
                    self.up = True
                    self.log.info("ccxt_stream_up")
                    self.poll_now.set()  # what the stream missed while it was down
                orders = await self.rest.ex.watch_orders()
                delay_s = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the stream is an accelerator
                if self.up:
                    self.up = False
                    self.drops += 1
                    self.log.warning("ccxt_stream_lost", reason=self.rest.classify(exc).reason)
                    self.poll_now.set()
                await asyncio.sleep(delay_s)
                delay_s = min(delay_s * 2, 5.0)
                continue
            for order in orders:
                try:
                    self._on_order(order)
                except ValueError as exc:  # one update we cannot read: the poll looks
                    self.tracker.unreadable("stream_order", exc)
                    self.poll_now.set()

    def _on_order(self, order: Mapping[str, Any]) -> None:
        cl_ord_id = mapping.client_order_id(order)
        if not cl_ord_id:
            return  # not one of ours (no client id): nothing to report
        intent = self.tracker.intent_for(cl_ord_id, order)
        live = self.tracker.live.get(intent.cl_ord_id)
        trades_due = live is not None and rd.order_view(order).filled > live.filled
        self.tracker.apply_order(intent, order, [], fills_pending=trades_due)

    async def watch_trades(self) -> None:
        delay_s = 0.1
        while self.running:
            try:
                trades = await self.rest.ex.watch_my_trades()
                delay_s = 0.1
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - _watch_orders logs the drop
                await asyncio.sleep(delay_s)
                delay_s = min(delay_s * 2, 5.0)
                continue
            for trade in trades:
                cl_ord_id = mapping.client_order_id(trade)
                if not cl_ord_id or cl_ord_id in self.tracker.held:
                    continue  # not ours; or a replace's new order: the replace reports it
                try:
                    intent = self.tracker.intent_for(cl_ord_id, trade)
                    report = execs.ws_fill_exec(
                        self.venue, trade, scope=intent.id_scope, cl_ord_id=intent.cl_ord_id,
                        order_qty=intent.order_qty, cum_offset=intent.offset,
                        cost_offset=intent.cost,
                    )  # fmt: skip
                except ValueError as exc:  # a trade we cannot read: the poll fetches it
                    self.tracker.unreadable("stream_trade", exc, cl_ord_id)
                    report = None
                if report is None:
                    self.poll_now.set()
                    continue
                live = self.tracker.live.get(intent.cl_ord_id)
                if live is not None:
                    live.filled = max(live.filled, report.cum_qty - intent.offset)
                self.tracker.queue([report])

    async def poll_loop(self) -> None:
        """Poll our orders; while the stream is down, first ask the exchange the time: the
        session ends after `UNREACHABLE_PINGS` unanswered in a row (the exchange is gone:
        the venue is DISCONNECTED and the OMS stops sending, as with a dropped FIX link)."""
        failed = 0
        while self.running:
            interval = self.ccfg.poll_idle_s if self.up else self.ccfg.poll_interval_s
            try:
                await asyncio.wait_for(self.poll_now.wait(), interval)
            except TimeoutError:
                pass
            self.poll_now.clear()
            if not self.up:
                try:
                    await self.rest.call(self.rest.ex.fetch_time)
                    failed = 0
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - counted; the session may end
                    failed += 1
                    reason = self.rest.classify(exc).reason
                    self.log.warning("ccxt_ping_failed", failures=failed, reason=reason)
                    if failed >= UNREACHABLE_PINGS:
                        await self.end_session(f"exchange unreachable: {reason}")
                        return
                    continue
            if self.tracker.live:
                self.polls += 1
                await self.flows.poll_live()
