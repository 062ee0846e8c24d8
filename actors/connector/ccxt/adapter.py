"""The ccxt adapter: a crypto exchange (REST + WebSocket) behind the `VenueAdapter`
interface (actors/connector/adapter.py), so the connector, the OMS and reconciliation work
as with a FIX venue. ccxt is asyncio: its loop runs inside the actor's loop
(`actors.runtime.aio.AsyncioBridge`), no thread; this module is imported only by a
connector of `kind = "ccxt"` (ccxt's classes are large: no other actor loads them).

Promises, and how each is kept:

- **Persist before send, once at the exchange.** `place` writes the order's intent
  (`intents.IntentLog`, one fdatasync per loop turn for all of that turn's orders) and
  acks the OMS only then; `create_order` goes out after the sync. An order the OMS sends
  again whose intent is already there (a connector restart, or the OMS resending) is first
  looked up by its client order id: found, its state is reported and nothing is sent; "no
  such order" lets it go; no answer (a timeout, a 5xx) sends nothing and reports it
  "unsent", as does a submit whose session ended first: the OMS does not count that
  resubmission (`actors.oms.resubmit_unsent`). (Binance refuses a client id equal to an
  OPEN order's only: a blind resend of a filled order would trade twice.)
- **UNKNOWN never guessed.** A submit whose answer is lost (timeout, 5xx, connection
  reset) is looked up by client order id a few times; found, its state is reported; still
  not found, nothing is said: the OMS times the order out to UNKNOWN and resolves it by
  its status query, resubmitting only on "never seen" (the FIX path's rule). A duplicate
  client id error means "it is there", never REJECTED.
- **Executions applied once.** Every execution has an id the WebSocket and REST sources
  share (`mapping`: `<venue order id>:t<trade id>` for a fill, `:new`, `:cancelled` ...),
  with the order's exact cumulative quantity, so the OMS drops a repeat. Fills come from
  the user-data stream (`watch_my_trades`), order events from `watch_orders`; while the
  stream is down, and once after it is back, the orders in flight are polled over REST
  (`fetch_order`, then `fetch_my_trades` by order when its filled quantity moved).
- **Errors** (`errors.classify`): not-known -> the lookup above; refused (funds, filters,
  symbol) -> REJECTED with the exchange's reason; rate limited -> every request waits the
  Retry-After (or a backoff) and the request is sent again (a 429 was not processed);
  clock (-1021) -> resync the time offset, send again; authentication -> the session is
  down with that reason (the connector's reconnect policy marks the venue DOWN).
- **Limits at intake.** An order that breaks the market's precision or limits is REJECTED
  here with the field named (`limits.check_order`), never sent.
- **Replace** is cancel + new (exact: the cancel's answer gives the old order's final
  filled quantity, the new order carries the rest under the replace's client id), reported
  to the OMS as one `replaced` execution (the order as of the replace; the new order's own
  fills follow as fills); meanwhile the stream's word on either order waits (the old
  order's CANCELED is the replace, not a cancel). A new order whose answer was lost is
  looked up by client id; a cancel that fails because the order is done is a
  `cancel_rejected`, one whose answer was lost is sent again (never confirmed: the
  order's state, then `cancel_rejected`). The old order's intent stays live until the
  replace's outcome is queued, so a replace whose outcome is not known (the new order's
  answer lost, the connector killed with the new order sent) is settled by the poll, also
  after a restart (`Replaces.settle`): the new order found -> "replaced"; the
  exchange sure it has no such order -> the old order's state and `cancel_rejected`.
- **Positions** for the heartbeat: spot balances of each symbol's base asset, minus the
  configured baseline (`mapping.positions_from_balance`), consistent with the executions
  handed on before the answer (the cut the heartbeat compares at): after the balance the
  orders we answer for are looked up, and the balance read again if a fill was queued
  meanwhile (the exchange may have made it after the read); still so after the last read,
  or an order left in doubt by the lookups after it (its lookup or trades' fetch failed,
  a replace's new order held back: the balance may hold fills not queued), the answer
  names no consistent cut (`NoConsistentCut`: shown, compared by no one).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from actors.connector.adapter import (
    Listener,
    Loop,
    MassCancelDone,
    OrdersDone,
    PositionsDone,
    RequestFailed,
    SendDone,
    StatusDone,
)
from actors.connector.ccxt import errors, execs, limits, mapping
from actors.connector.ccxt.exchange import (
    ExchangeSetupError,
    Rest,
    guard_stream_frames,
    import_ccxt,
    new_exchange,
)
from actors.connector.ccxt.flows import RESEND_DELAY_ENV, Flows, Pending
from actors.connector.ccxt.intents import Intent, IntentLog
from actors.connector.ccxt.queries import Queries
from actors.connector.ccxt.streams import UserStream
from actors.connector.ccxt.tracker import Live, Tracker
from actors.runtime.aio import AsyncioBridge
from protocol.ccxt_config import CcxtCfg
from protocol.config import VenueCfg
from protocol.messages import (
    CancelOnVenue,
    ErrorCode,
    PlaceOrder,
    QueriedOrder,
    ReplaceOnVenue,
)


class CcxtAdapter:
    """One exchange through ccxt, as the connector sees it (module docstring)."""

    def __init__(
        self,
        loop: Loop,
        listener: Listener,
        vcfg: VenueCfg,
        *,
        store_dir: Path,
        log: Any,
        environ: Mapping[str, str] | None = None,
        base_url: Callable[[], str | None] = lambda: "",
        make_exchange: Callable[[CcxtCfg, Mapping[str, str], str], Any] = new_exchange,
        crash_point: Callable[[str], None] = lambda _name: None,
    ) -> None:
        assert vcfg.ccxt is not None
        self.venue = vcfg.name
        self.ccfg = vcfg.ccxt
        self.listener = listener
        self.log = log
        self._environ = os.environ if environ is None else environ
        self._make_exchange = make_exchange
        if make_exchange is new_exchange:
            import_ccxt()  # during the start, not in the loop's first session
        # where the exchange is: "" its own URLs, a URL (the local exchange), None not yet
        self._base_url = base_url
        self._crash_point = crash_point  # fault injection (tests, chaos): a SIGKILL point
        secrets = [self._environ.get(v, "") for v in (self.ccfg.api_key_env, self.ccfg.secret_env)]
        self.bridge = AsyncioBridge(loop, log)
        self.intents = IntentLog(store_dir)
        self.rest = Rest(vcfg, log, [s for s in secrets if s])
        self.stream: UserStream | None = None
        self.tracker = Tracker(self.venue, self.intents, log, self._wake_poll)
        self.flows = Flows(
            self.venue, self.rest, self.tracker, self.intents, log,
            intake_problem=self._intake_problem,
            end_session=lambda reason: self._end_session(reason, was_up=True),
            crash_point=crash_point,
        )  # fmt: skip
        # intents loaded from disk were maybe sent just before a crash: their request can
        # still reach the exchange within its recvWindow, so a lookup's "no such order"
        # counts only after that
        self.flows.unseen_after_s = self.ccfg.recv_window_ms / 1000 + 1.0
        self.flows.trust_unseen_at = time.monotonic() + self.flows.unseen_after_s
        self.flows.resend_lookup_delay_s = float(self._environ.get(RESEND_DELAY_ENV) or 0.0)
        self.queries = Queries(self.venue, self.ccfg, self.flows, log)
        self._up = False
        self._session_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._pending: list[Pending] = []

    # ------------------------------------------------------------------ VenueAdapter

    @property
    def is_active(self) -> bool:
        return self._up

    @property
    def is_idle(self) -> bool:
        return self._session_task is None and not self._tasks

    @property
    def exec_mark(self) -> int:
        return self.tracker.exec_mark

    def connect(self) -> None:
        if self._session_task is not None:
            return
        self._session_task = self.bridge.spawn(self._session(), name="session")

    def disconnect(self, reason: str) -> None:
        if self._session_task is None and not self._up:
            return
        self._spawn(self._end_session(reason, was_up=self._up), "disconnect")

    def flush(self) -> None:
        """Once per loop turn: hand the executions this turn produced to the listener
        (durable there) in one batch; then one sync of the intent log: this turn's new
        intents (before they are sent), the venue ids learned and the orders forgotten
        (after the executions that ended them are durable); then send the new orders.
        So an execution waits for no intent-log sync, and a turn costs one sync."""
        if self.tracker.execs:
            self.listener.on_execs(self.tracker.take())
        if self._pending or self.intents.dirty:
            pending, self._pending = self._pending, []
            self.intents.sync()
            if pending:
                self._crash_point("ccxt_after_intent_before_send")
            for p in pending:
                p.done(None)  # durable: the OMS may count it as sent
                self._spawn(self.flows.submit(p), f"submit {p.intent.cl_ord_id}")

    def new_trading_session(self, key: str) -> None:
        """A crypto exchange trades around the clock: nothing starts afresh."""

    def close(self) -> None:
        if self.rest.ex is not None:
            try:
                self.bridge.run_until_complete(self.rest.ex.close(), 1.0)
            except Exception as exc:  # noqa: BLE001 - closing: report, go on
                self.log.warning("ccxt_close_failed", error=self.rest.classify(exc).reason)
            self.rest.ex = None
        self.bridge.close()
        self.intents.close()

    def info(self) -> dict[str, object]:
        return {
            "stream_up": self.stream is not None and self.stream.up,
            "live_orders": len(self.tracker.live),
            "sent": self.flows.sent,
            "lookups": self.flows.lookups,
            "polls": self.stream.polls if self.stream is not None else 0,
            "stream_drops": self.stream.drops if self.stream is not None else 0,
            "failures": dict(self.rest.failures),
        }

    # ------------------------------------------------------------------ requests

    def place(self, order: PlaceOrder, done: SendDone) -> None:
        if not self._up:
            done(RequestFailed(ErrorCode.VENUE_DOWN, f"{self.venue}: not connected"))
            return
        problem = self._intake_problem(order)
        if problem is not None:  # refused here, never sent: the field is named
            self.log.info("ccxt_order_refused", cl_ord_id=order.cl_ord_id, reason=problem)
            done(None)
            failure = errors.Failure("rejected", problem)
            self.tracker.queue([execs.submit_rejected_exec(self.venue, order, failure)])
            return
        known = self.intents.live.get(order.cl_ord_id)
        # sent before (a resend after a restart), or finished: look before sending again
        lookup_first = known is not None or order.cl_ord_id in self.intents.finished
        intent = known or Intent(
            cl_ord_id=order.cl_ord_id,
            symbol=order.symbol,
            side=order.side.value,
            qty=str(order.qty),
        )
        if known is None:
            self.intents.add(intent)
            self.tracker.live[intent.cl_ord_id] = Live(intent)
        self._pending.append(Pending(intent, order, done, lookup_first=lookup_first))

    def _intake_problem(
        self, order: PlaceOrder | ReplaceOnVenue, amount: Decimal | None = None
    ) -> str | None:
        """Why the exchange would refuse `order` (its market's precision and limits, our
        symbol list), None if it fits."""
        if order.symbol not in self.ccfg.symbols:
            return f"symbol {order.symbol!r} is not in venues[{self.venue}].ccxt.symbols"
        markets = self.rest.ex.markets if self.rest.ex is not None else None
        problem = limits.check_order(order, (markets or {}).get(order.symbol), amount=amount)
        if problem is None:
            try:
                mapping.create_args(order, amount=amount)
            except ValueError as exc:
                problem = str(exc)
        return problem

    def cancel(self, request: CancelOnVenue, done: SendDone) -> None:
        if not self._up:
            done(RequestFailed(ErrorCode.VENUE_DOWN, f"{self.venue}: not connected"))
            return
        self._spawn(
            _sent_once_done(self.flows.cancel(request), done), f"cancel {request.cl_ord_id}"
        )

    def replace(self, request: ReplaceOnVenue, done: SendDone) -> None:
        if not self._up:
            done(RequestFailed(ErrorCode.VENUE_DOWN, f"{self.venue}: not connected"))
            return
        flow = _sent_once_done(self.flows.replace(request), done)  # as a cancel: not on receipt
        self._spawn(flow, f"replace {request.cl_ord_id}")

    def order_status(self, orders: Sequence[QueriedOrder], done: StatusDone) -> None:
        if not self._up:
            done(RequestFailed(ErrorCode.VENUE_DOWN, f"{self.venue}: not connected"))
            return
        self._spawn(self.queries.order_status(list(orders), done), "order_status")

    def open_orders(self, done: OrdersDone) -> None:
        if not self._up:
            done(RequestFailed(ErrorCode.VENUE_DOWN, f"{self.venue}: not connected"))
            return
        self._spawn(self.queries.open_orders(done), "open_orders")

    def positions(self, done: PositionsDone) -> None:
        if not self._up:
            done(RequestFailed(ErrorCode.VENUE_DOWN, f"{self.venue}: not connected"))
            return
        self._spawn(self.queries.positions(done), "positions")

    def mass_cancel(self, done: MassCancelDone) -> None:
        if not self._up:
            done(RequestFailed(ErrorCode.VENUE_DOWN, f"{self.venue}: not connected"))
            return
        self._spawn(self.queries.mass_cancel(done), "mass_cancel")

    async def _session(self) -> None:
        try:
            url = self._base_url()
            if url is None:
                raise ExchangeSetupError("the simulated exchange has not published its port yet")
            self.rest.ex = self._make_exchange(self.ccfg, self._environ, url)
            guard_stream_frames(self.rest.ex, self._frame_unreadable)
            await self.rest.call(self.rest.ex.load_markets)
            await self.rest.call(self.rest.ex.load_time_difference)
            await self.rest.call(self.rest.ex.fetch_balance)  # the key works, before any order
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure is a failed attempt
            reason = self._connect_failure(exc)
            await self._close_exchange()
            self._session_task = None
            self.listener.on_session_down(reason, False)
            return
        self._up = True
        stream = self.stream = UserStream(
            self.venue, self.ccfg, self.flows, self.log,
            end_session=lambda reason: self._end_session(reason, was_up=True),
        )  # fmt: skip
        stream.running = True
        self._spawn(stream.watch_orders(), "watch_orders")
        self._spawn(stream.watch_trades(), "watch_trades")
        self._spawn(stream.poll_loop(), "poll")
        self.log.info(
            "ccxt_session_up",
            exchange=self.ccfg.exchange,
            markets=len(self.rest.ex.markets or {}),
            live_orders=len(self.tracker.live),
        )
        stream.wake_poll()  # what happened while we were away
        self.listener.on_session_up(f"{self.ccfg.exchange}: markets loaded, account ok")

    def _connect_failure(self, exc: BaseException) -> str:
        if isinstance(exc, ExchangeSetupError):
            return str(exc)
        failure = self.rest.classify(exc)
        if failure.kind == "down":
            self.log.error("ccxt_auth_refused", reason=failure.reason)
            return f"authentication refused by {self.ccfg.exchange}: {failure.reason}"
        return f"{self.ccfg.exchange} unreachable: {failure.reason}"

    async def _end_session(self, reason: str, *, was_up: bool) -> None:
        if self._session_task is None and not self._up:
            return
        self._up = False
        if self.stream is not None:
            self.stream.running = self.stream.up = False
        current = asyncio.current_task()
        for task in list(self._tasks) + [t for t in (self._session_task,) if t is not None]:
            if task is not current:
                task.cancel()
        await self._close_exchange()
        self._session_task = None
        self.log.info("ccxt_session_down", reason=reason, was_up=was_up)
        self.listener.on_session_down(reason, was_up)

    async def _close_exchange(self) -> None:
        ex, self.rest.ex = self.rest.ex, None
        if ex is not None:
            try:
                await asyncio.wait_for(ex.close(), 2.0)
            except Exception as exc:  # noqa: BLE001 - closing: report, go on
                self.log.warning("ccxt_close_failed", error=self.rest.classify(exc).reason)

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        task = self.bridge.spawn(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _frame_unreadable(self, exc: BaseException) -> None:
        """A WebSocket frame ccxt could not handle (`guard_stream_frames`): counted and
        logged; the poll looks for what it may have said."""
        self.tracker.unreadable("stream_frame", exc)
        self._wake_poll()

    def _wake_poll(self) -> None:
        if self.stream is not None:
            self.stream.wake_poll()


async def _sent_once_done(flow: Coroutine[Any, Any, None], done: SendDone) -> None:
    """A cancel or a replace is acknowledged as sent once its flow is done (the exchange
    answered, or its state and the refusal are reported), never before it went out: the OMS
    never sends an acknowledged request again, so one acknowledged and then lost with its
    connector (SIGTERM, kill -9) left the order PENDING_CANCEL or PENDING_REPLACE for good.
    Unacknowledged, the OMS sends it again after its next pass (a second cancel is
    harmless: "unknown order"; a replace sent again is not carried out twice,
    `Replaces.replace`)."""
    await flow
    done(None)
