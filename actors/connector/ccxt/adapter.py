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
  such order" lets it go. (Binance refuses a client id equal to an OPEN order's only: a
  blind resend of a filled order would trade twice.)
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
  to the OMS as one `replaced` execution; a cancel that fails because the order is done
  is a `cancel_rejected`.
- **Positions** for the heartbeat: spot balances of each symbol's base asset, minus the
  configured baseline (`mapping.positions_from_balance`).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from ccxt.base import errors as ccxt_errors

from actors.connector.adapter import (
    AnswerTooBig,
    Listener,
    Loop,
    MassCancelDone,
    OrdersDone,
    PositionsDone,
    RequestFailed,
    SendDone,
    StatusDone,
    StatusResult,
)
from actors.connector.ccxt import errors, limits, mapping
from actors.connector.ccxt import reading as rd
from actors.connector.ccxt.intents import Intent, IntentLog
from actors.connector.fix.queries import MAX_OPEN_ORDERS_PER_REPLY
from actors.connector.ratelimit import TokenBucket
from actors.runtime.aio import AsyncioBridge
from protocol.ccxt_config import CcxtCfg
from protocol.config import VenueCfg
from protocol.messages import (
    CancelOnVenue,
    ErrorCode,
    ExecReport,
    PlaceOrder,
    QueriedOrder,
    ReplaceOnVenue,
    VenueOrder,
)

LOOKUPS_AFTER_UNKNOWN = 3  # lookups by client id after a lost submit answer (then: the OMS)
LOOKUP_DELAYS_S = (0.2, 0.5, 1.0)
QUERY_CONCURRENCY = 8  # REST requests of one status query / poll in flight at once
SEEN_EXEC_IDS = 100_000  # exec ids remembered (a late duplicate is dropped here too)
RECENT_FINAL = 10_000  # finished orders whose intent is kept for late events
INTENT_UNSEEN_S = 600.0  # an intent the exchange never saw is dropped after this long
MAX_RETRIES = 5  # a request refused before processing (429, -1021) is sent again this often
_KIND_ORDER = {"accepted": 0, "fill": 1, "replaced": 1}  # then the final events


class ExchangeSetupError(RuntimeError):
    """The exchange cannot be built (an unknown ccxt id, a credential not set)."""


def exchange_config(ccfg: CcxtCfg, api_key: str, secret: str, base_url: str) -> dict[str, Any]:
    """The ccxt constructor config of a venue: spot only, no ccxt rate limiter (we pace),
    the venue's recvWindow; with `base_url`, every REST and WebSocket URL of the exchange
    class points there (the local exchange), else the exchange's own URLs."""
    from actors.connector.ccxt.urls import exchange_config as config_at

    config: dict[str, Any] = dict(
        config_at(base_url or "https://unused.invalid", api_key, secret, ccfg.recv_window_ms)
    )
    if not base_url:
        del config["urls"]
    return config


def new_exchange(ccfg: CcxtCfg, environ: Mapping[str, str], base_url: str) -> Any:
    """A ccxt.pro exchange instance (ccxt is imported here, in the connector only)."""
    missing = [v for v in (ccfg.api_key_env, ccfg.secret_env) if not environ.get(v)]
    if missing:
        raise ExchangeSetupError(f"environment variable {missing[0]} is not set")
    import ccxt.pro as ccxtpro

    cls = getattr(ccxtpro, ccfg.exchange, None)
    if cls is None:
        raise ExchangeSetupError(f"ccxt has no websocket exchange {ccfg.exchange!r}")
    key, secret = environ[ccfg.api_key_env], environ[ccfg.secret_env]
    exchange = cls(exchange_config(ccfg, key, secret, base_url))
    if ccfg.sandbox:
        exchange.set_sandbox_mode(True)
    return exchange


@dataclass
class _Live:
    """An order we answer for: its intent and what the exchange last told us."""

    intent: Intent
    filled: Decimal = Decimal(0)  # the venue order's own filled quantity
    status: str = ""  # ccxt's: open, closed, canceled, expired, rejected
    unseen_since: float = 0.0  # monotonic time of the first "no such order" (0: seen)
    fetching_trades: bool = False


@dataclass
class _Pending:
    """An order waiting for this turn's intent sync."""

    intent: Intent
    order: PlaceOrder
    done: SendDone
    lookup_first: bool


@dataclass
class _Stats:
    sent: int = 0
    lookups: int = 0
    polls: int = 0
    stream_drops: int = 0
    backoffs: int = 0
    failures: dict[str, int] = field(default_factory=dict)


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
        # where the exchange is: "" its own URLs, a URL (the local exchange), None not yet
        self._base_url = base_url
        self._secrets = tuple(
            v for v in (self._environ.get(vcfg.ccxt.api_key_env, ""),
                        self._environ.get(vcfg.ccxt.secret_env, "")) if v
        )  # fmt: skip
        self._crash_point = crash_point  # fault injection (tests, chaos): a SIGKILL point
        self.bridge = AsyncioBridge(loop, log)
        self.intents = IntentLog(store_dir)
        self._bucket = TokenBucket(vcfg.rate_limit_per_s, vcfg.rate_burst)
        self._request_timeout_s = vcfg.request_timeout_s
        self._hold_until = 0.0  # rate limited: no request before this (monotonic)
        self._ex: Any = None
        self._up = False
        self._session_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stream_up = False
        self._poll_now: asyncio.Event | None = None
        self._live: dict[str, _Live] = {i.cl_ord_id: _Live(i) for i in self.intents.live.values()}
        self._recent: OrderedDict[str, Intent] = OrderedDict()
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._pending: list[_Pending] = []
        self._execs: list[ExecReport] = []
        self._delivered = 0
        self.stats = _Stats()

    # ------------------------------------------------------------------ VenueAdapter

    @property
    def is_active(self) -> bool:
        return self._up

    @property
    def is_idle(self) -> bool:
        return self._session_task is None and not self._tasks

    @property
    def exec_mark(self) -> int:
        return self._delivered + len(self._execs)

    def connect(self) -> None:
        if self._session_task is not None:
            return
        self._session_task = self.bridge.spawn(self._session(), name="session")

    def disconnect(self, reason: str) -> None:
        if self._session_task is None and not self._up:
            return
        self._spawn(self._end_session(reason, was_up=self._up), "disconnect")

    def flush(self) -> None:
        """Once per loop turn: sync the intents of this turn's orders, then send them; hand
        the executions this turn produced to the listener (durable there) in one batch."""
        if self._pending or self.intents.dirty:
            pending, self._pending = self._pending, []
            self.intents.sync()
            if pending:
                self._crash_point("ccxt_after_intent_before_send")
            for p in pending:
                p.done(None)  # durable: the OMS may count it as sent
                self._spawn(self._submit(p), f"submit {p.intent.cl_ord_id}")
        if self._execs:
            reports, self._execs = self._execs, []
            self._delivered += len(reports)
            self.listener.on_execs(reports)
            self.intents.sync()  # forgotten (done) orders, after their executions are durable

    def new_trading_session(self, key: str) -> None:
        """A crypto exchange trades around the clock: nothing starts afresh."""

    def close(self) -> None:
        if self._ex is not None:
            try:
                self.bridge.run_until_complete(self._ex.close(), 1.0)
            except Exception as exc:  # noqa: BLE001 - closing: report, go on
                self.log.warning("ccxt_close_failed", error=_short(exc))
            self._ex = None
        self.bridge.close()
        self.intents.close()

    def info(self) -> dict[str, object]:
        return {
            "stream_up": self._stream_up,
            "live_orders": len(self._live),
            "sent": self.stats.sent,
            "lookups": self.stats.lookups,
            "polls": self.stats.polls,
            "stream_drops": self.stats.stream_drops,
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
            self._queue_execs([mapping.submit_rejected_exec(self.venue, order, failure)])
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
            self._live[intent.cl_ord_id] = _Live(intent)
        self._pending.append(_Pending(intent, order, done, lookup_first=lookup_first))

    def _intake_problem(
        self, order: PlaceOrder | ReplaceOnVenue, amount: Decimal | None = None
    ) -> str | None:
        """Why the exchange would refuse `order` (its market's precision and limits, our
        symbol list), None if it fits."""
        if order.symbol not in self.ccfg.symbols:
            return f"symbol {order.symbol!r} is not in venues[{self.venue}].ccxt.symbols"
        markets = self._ex.markets if self._ex is not None else None
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
        done(None)
        self._spawn(self._cancel(request), f"cancel {request.cl_ord_id}")

    def replace(self, request: ReplaceOnVenue, done: SendDone) -> None:
        if not self._up:
            done(RequestFailed(ErrorCode.VENUE_DOWN, f"{self.venue}: not connected"))
            return
        done(None)
        self._spawn(self._replace(request), f"replace {request.cl_ord_id}")

    def order_status(self, orders: Sequence[QueriedOrder], done: StatusDone) -> None:
        if not self._up:
            done(RequestFailed(ErrorCode.VENUE_DOWN, f"{self.venue}: not connected"))
            return
        self._spawn(self._order_status(list(orders), done), "order_status")

    def open_orders(self, done: OrdersDone) -> None:
        if not self._up:
            done(RequestFailed(ErrorCode.VENUE_DOWN, f"{self.venue}: not connected"))
            return
        self._spawn(self._open_orders(done), "open_orders")

    def positions(self, done: PositionsDone) -> None:
        if not self._up:
            done(RequestFailed(ErrorCode.VENUE_DOWN, f"{self.venue}: not connected"))
            return
        self._spawn(self._positions(done), "positions")

    def mass_cancel(self, done: MassCancelDone) -> None:
        if not self._up:
            done(RequestFailed(ErrorCode.VENUE_DOWN, f"{self.venue}: not connected"))
            return
        self._spawn(self._mass_cancel(done), "mass_cancel")

    # ------------------------------------------------------------------ session

    async def _session(self) -> None:
        try:
            url = self._base_url()
            if url is None:
                raise ExchangeSetupError("the simulated exchange has not published its port yet")
            self._ex = self._make_exchange(self.ccfg, self._environ, url)
            await self._call(self._ex.load_markets)
            await self._call(self._ex.load_time_difference)
            await self._call(self._ex.fetch_balance)  # the key works, before any order
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure is a failed attempt
            reason = self._connect_failure(exc)
            await self._close_exchange()
            self._session_task = None
            self.listener.on_session_down(reason, False)
            return
        self._up = True
        self._poll_now = asyncio.Event()
        self._spawn(self._watch_orders(), "watch_orders")
        self._spawn(self._watch_trades(), "watch_trades")
        self._spawn(self._poll_loop(), "poll")
        self.log.info(
            "ccxt_session_up",
            exchange=self.ccfg.exchange,
            markets=len(self._ex.markets or {}),
            live_orders=len(self._live),
        )
        self._poll_now.set()  # what happened while we were away
        self.listener.on_session_up(f"{self.ccfg.exchange}: markets loaded, account ok")

    def _connect_failure(self, exc: BaseException) -> str:
        if isinstance(exc, ExchangeSetupError):
            return str(exc)
        failure = errors.classify(exc)
        if failure.kind == "down":
            self.log.error("ccxt_auth_refused", reason=failure.reason)
            return f"authentication refused by {self.ccfg.exchange}: {failure.reason}"
        return f"{self.ccfg.exchange} unreachable: {failure.reason}"

    async def _end_session(self, reason: str, *, was_up: bool) -> None:
        if self._session_task is None and not self._up:
            return
        self._up = False
        self._stream_up = False
        current = asyncio.current_task()
        for task in list(self._tasks) + [t for t in (self._session_task,) if t is not None]:
            if task is not current:
                task.cancel()
        await self._close_exchange()
        self._session_task = None
        self.log.info("ccxt_session_down", reason=reason, was_up=was_up)
        self.listener.on_session_down(reason, was_up)

    async def _close_exchange(self) -> None:
        ex, self._ex = self._ex, None
        if ex is not None:
            try:
                await asyncio.wait_for(ex.close(), 2.0)
            except Exception as exc:  # noqa: BLE001 - closing: report, go on
                self.log.warning("ccxt_close_failed", error=_short(exc))

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        task = self.bridge.spawn(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ requests to ccxt

    async def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """One REST call: paced by the token bucket and any rate-limit hold; sent again
        (at most MAX_RETRIES) when the exchange refused it before processing it (429 /
        418 with its Retry-After, -1021 after a time resync). Other failures raise."""
        for attempt in range(MAX_RETRIES + 1):
            await self._pace()
            try:
                return await asyncio.wait_for(fn(*args, **kwargs), self._request_timeout_s)
            except TimeoutError as exc:
                raise ccxt_errors.RequestTimeout(
                    f"no answer in {self._request_timeout_s} s"
                ) from exc
            except Exception as exc:
                failure = self._classify(exc)
                if attempt == MAX_RETRIES or failure.kind not in ("backoff", "clock"):
                    raise
                self._count(failure.kind)
                if failure.kind == "backoff":
                    hold = failure.retry_after_s or min(0.5 * 2**attempt, 10.0)
                    self._hold_until = max(self._hold_until, time.monotonic() + hold)
                    self.log.warning("ccxt_rate_limited", hold_s=round(hold, 3))
                else:
                    self.log.warning("ccxt_clock_resync", reason=failure.reason)
                    await self._ex.load_time_difference()
        raise AssertionError("unreachable")

    async def _pace(self) -> None:
        while True:
            wait_s = max(self._hold_until - time.monotonic(), self._bucket.wait_s())
            if wait_s <= 0 and self._bucket.try_take():
                return
            await asyncio.sleep(max(wait_s, 0.001))

    def _classify(self, exc: BaseException) -> errors.Failure:
        headers = getattr(self._ex, "last_response_headers", None)
        return errors.classify(
            exc,
            headers=headers if isinstance(headers, Mapping) else None,
            now_ms=time.time_ns() // 1_000_000,
            secrets=self._secrets,
        )

    def _count(self, kind: str) -> None:
        self.stats.failures[kind] = self.stats.failures.get(kind, 0) + 1

    # ------------------------------------------------------------------ submit

    async def _submit(self, p: _Pending) -> None:
        intent = p.intent
        if p.lookup_first:  # it may be there already: never send it twice
            found = await self._lookup(intent)
            if found is not False:
                return  # there (reported), or not known now: the OMS's status query decides
        args = mapping.create_args(p.order)
        self.stats.sent += 1
        try:
            order = await self._call(
                self._ex.create_order,
                args.symbol,
                args.type,
                args.side,
                args.amount,
                args.price,
                args.params,
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - classified below
            await self._submit_failed(intent, p.order, exc)
            return
        self._crash_point("ccxt_after_send_before_answer")
        self._apply_order(intent, order, order.get("trades") or [])

    async def _submit_failed(self, intent: Intent, order: PlaceOrder, exc: BaseException) -> None:
        failure = self._classify(exc)
        self._count(failure.kind)
        self.log.warning(
            "ccxt_submit_failed",
            cl_ord_id=intent.cl_ord_id,
            kind=failure.kind,
            reason=failure.reason,
        )
        if failure.kind in ("rejected", "internal"):
            self._queue_execs([mapping.submit_rejected_exec(self.venue, order, failure)])
            self._forget(intent.cl_ord_id)
        elif failure.kind == "down":
            await self._end_session(f"authentication refused: {failure.reason}", was_up=True)
        else:  # duplicate: it is there; not known: look, the OMS's query decides the rest
            for delay_s in LOOKUP_DELAYS_S[:LOOKUPS_AFTER_UNKNOWN]:
                if await self._lookup(intent) is not None:
                    return
                await asyncio.sleep(delay_s)

    async def _lookup(self, intent: Intent) -> bool | None:
        """Ask the exchange for `intent`'s order by client id: True (found, reported),
        False (it says no such order), None (not known now)."""
        self.stats.lookups += 1
        try:
            order = await self._call(
                self._ex.fetch_order, None, intent.symbol, {"origClientOrderId": intent.cl_ord_id}
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - classified below
            failure = self._classify(exc)
            if failure.kind == "not_found":
                self._note_unseen(intent)
                return False
            self.log.info("ccxt_lookup_failed", cl_ord_id=intent.cl_ord_id, reason=failure.reason)
            return None
        await self._apply_with_trades(intent, order)
        return True

    def _note_unseen(self, intent: Intent) -> None:
        live = self._live.get(intent.cl_ord_id)
        if live is None:
            return
        now = time.monotonic()
        if not live.unseen_since:
            live.unseen_since = now
        elif now - live.unseen_since > INTENT_UNSEEN_S:
            self.log.info("ccxt_intent_dropped", cl_ord_id=intent.cl_ord_id)
            self._forget(intent.cl_ord_id)

    # ------------------------------------------------------------------ cancel / replace

    async def _cancel(self, request: CancelOnVenue) -> None:
        try:
            order = await self._call(
                self._ex.cancel_order, None, request.symbol, mapping.cancel_params(request)
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - classified below
            failure = self._classify(exc)
            self._count(failure.kind)
            self.log.warning(
                "ccxt_cancel_failed", cl_ord_id=request.cl_ord_id, kind=failure.kind,
                reason=failure.reason,
            )  # fmt: skip
            if failure.kind in ("not_found", "rejected"):
                # -2011 also when it has just filled: its state first, then the refusal
                await self._lookup(self._intent_or(request.orig_cl_ord_id, request))
                self._queue_execs(
                    [mapping.cancel_rejected_exec(self.venue, request, failure.reason)]
                )
            # not known: the OMS times the cancel out and asks the order's status
            return
        intent = self._intent_for(request.orig_cl_ord_id, order)
        await self._apply_with_trades(intent, order)

    async def _replace(self, request: ReplaceOnVenue) -> None:
        """Cancel + new: the cancel's answer carries the old order's final filled quantity,
        the new order the rest of the replace's total under the replace's client id. The
        OMS hears "replaced" once the new order is on the book; a cancel the exchange
        refuses (the order is done) is a "cancel_rejected" of the replace."""
        old = self._intent_or(request.orig_cl_ord_id, request)
        try:
            cancelled = await self._call(
                self._ex.cancel_order, None, request.symbol,
                {"origClientOrderId": request.orig_cl_ord_id},
            )  # fmt: skip
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - classified below
            failure = self._classify(exc)
            self._count(failure.kind)
            self.log.warning(
                "ccxt_replace_failed", cl_ord_id=request.cl_ord_id, kind=failure.kind,
                reason=failure.reason,
            )  # fmt: skip
            if failure.kind in ("not_found", "rejected"):
                await self._lookup(old)
                self._queue_execs(
                    [mapping.cancel_rejected_exec(self.venue, request, failure.reason)]
                )
            return
        view = rd.order_view(cancelled)
        done_qty = old.offset + view.filled
        done_cost = old.cost + (view.cost or Decimal(0))
        remaining = request.qty - done_qty
        if remaining <= 0 or self._intake_problem(request, remaining) is not None:
            # nothing left to replace, or the rest breaks the market's limits: the old
            # order stays cancelled (reported as such), the replace is refused
            why = (
                "filled before the replace"
                if remaining <= 0
                else (self._intake_problem(request, remaining) or "")
            )
            await self._apply_with_trades(old, cancelled)
            self._queue_execs([mapping.cancel_rejected_exec(self.venue, request, why)])
            return
        await self._apply_with_trades(old, cancelled, final_event=False)
        intent = Intent(
            cl_ord_id=request.cl_ord_id,
            symbol=request.symbol,
            side=request.side.value,
            qty=str(request.qty),
            cum_offset=str(done_qty),
            cost_offset=str(done_cost),
            orig_cl_ord_id=request.orig_cl_ord_id,
        )
        self.intents.add(intent)
        self.intents.sync()  # persist before send
        self._live[intent.cl_ord_id] = _Live(intent)
        self._forget(request.orig_cl_ord_id)
        args = mapping.create_args(request, amount=remaining)
        try:
            order = await self._call(
                self._ex.create_order, args.symbol, args.type, args.side, args.amount,
                args.price, args.params,
            )  # fmt: skip
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the old order is cancelled: say so
            failure = self._classify(exc)
            self.log.warning(
                "ccxt_replace_new_failed", cl_ord_id=intent.cl_ord_id, kind=failure.kind,
                reason=failure.reason,
            )  # fmt: skip
            self._queue_execs(mapping.order_execs(
                self.venue, cancelled, cl_ord_id=old.cl_ord_id, order_qty=old.order_qty,
                cum_offset=old.offset, cost_offset=old.cost,
            ))  # fmt: skip
            if failure.kind in ("rejected", "internal"):
                self._forget(intent.cl_ord_id)
            return
        self._queue_execs([
            mapping.replaced_exec(
                self.venue, request, order, cum_offset=done_qty, cost_offset=done_cost
            )
        ])  # fmt: skip
        await self._apply_with_trades(intent, order)

    # ------------------------------------------------------------------ queries

    async def _order_status(self, orders: list[QueriedOrder], done: StatusDone) -> None:
        result = StatusResult()
        sem = asyncio.Semaphore(QUERY_CONCURRENCY)
        failed: list[errors.Failure] = []

        async def one(q: QueriedOrder) -> None:
            async with sem:
                try:
                    order = await self._call(
                        self._ex.fetch_order, None, q.symbol, {"origClientOrderId": q.cl_ord_id}
                    )
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - classified below
                    failure = errors.classify(exc)
                    if failure.kind == "not_found":
                        result.unknown.append(q.cl_ord_id)
                    else:
                        failed.append(failure)
                    return
                intent = self._intent_for(q.cl_ord_id, order)
                await self._apply_with_trades(intent, order)
                result.orders.append(self._venue_order(intent, order))

        await asyncio.gather(*(one(q) for q in orders))
        if failed:
            done(
                RequestFailed(
                    ErrorCode.TIMEOUT, f"{len(failed)} lookups failed: {failed[0].reason}"
                )
            )
        else:
            done(result)

    async def _open_orders(self, done: OrdersDone) -> None:
        out: list[VenueOrder] = []
        try:
            for symbol in self.ccfg.symbols:
                for order in await self._call(self._ex.fetch_open_orders, symbol):
                    intent = self._intent_for(mapping.client_order_id(order), order)
                    await self._apply_with_trades(intent, order)
                    out.append(self._venue_order(intent, order))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - classified below
            done(self._request_failed(exc))
            return
        if len(out) > MAX_OPEN_ORDERS_PER_REPLY:
            done(AnswerTooBig(len(out), f"{len(out)} open orders: more than one reply carries"))
            return
        done(out)

    async def _positions(self, done: PositionsDone) -> None:
        try:
            balance = await self._call(self._ex.fetch_balance)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - classified below
            done(self._request_failed(exc))
            return
        done(
            mapping.positions_from_balance(
                self.venue, balance, self.ccfg.symbols, self.ccfg.position_baseline
            )
        )

    async def _mass_cancel(self, done: MassCancelDone) -> None:
        ok = True
        for symbol in self.ccfg.symbols:
            try:
                cancelled = await self._call(self._ex.cancel_all_orders, symbol)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - classified below
                failure = errors.classify(exc)
                if failure.kind != "not_found":  # Binance: -2011 when none was open
                    ok = False
                    self.log.error("ccxt_mass_cancel_failed", symbol=symbol, reason=failure.reason)
                continue
            for order in cancelled or []:
                intent = self._intent_for(mapping.client_order_id(order), order)
                self._apply_order(intent, order, [])
        self.log.warning("ccxt_mass_cancel", accepted=ok, symbols=len(self.ccfg.symbols))
        done(ok)

    def _request_failed(self, exc: BaseException) -> RequestFailed:
        failure = errors.classify(exc)
        if failure.kind == "down":
            return RequestFailed(ErrorCode.VENUE_DOWN, failure.reason)
        if failure.kind == "rejected":
            return RequestFailed(ErrorCode.VENUE_REFUSED, failure.reason)
        return RequestFailed(ErrorCode.TIMEOUT, failure.reason)

    # ------------------------------------------------------------------ streams and polls

    async def _watch_orders(self) -> None:
        delay_s = 0.1
        while self._up:
            try:
                if not self._stream_up:
                    await self._ex.authenticate()
                    self._stream_up = True
                    self.log.info("ccxt_stream_up")
                    if self._poll_now is not None:
                        self._poll_now.set()  # what the stream missed while it was down
                orders = await self._ex.watch_orders()
                delay_s = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the stream is an accelerator
                if self._stream_up:
                    self._stream_up = False
                    self.stats.stream_drops += 1
                    self.log.warning("ccxt_stream_lost", reason=_short(exc))
                    if self._poll_now is not None:
                        self._poll_now.set()
                await asyncio.sleep(delay_s)
                delay_s = min(delay_s * 2, 5.0)
                continue
            for order in orders:
                cl_ord_id = mapping.client_order_id(order)
                if not cl_ord_id:
                    continue  # not one of ours (no client id): nothing to report
                intent = self._intent_for(cl_ord_id, order)
                live = self._live.get(intent.cl_ord_id)
                trades_due = live is not None and rd.order_view(order).filled > live.filled
                self._apply_order(intent, order, [], fills_pending=trades_due)

    async def _watch_trades(self) -> None:
        delay_s = 0.1
        while self._up:
            try:
                trades = await self._ex.watch_my_trades()
                delay_s = 0.1
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - _watch_orders logs the drop
                await asyncio.sleep(delay_s)
                delay_s = min(delay_s * 2, 5.0)
                continue
            for trade in trades:
                cl_ord_id = mapping.client_order_id(trade)
                if not cl_ord_id:
                    continue
                intent = self._intent_for(cl_ord_id, trade)
                try:
                    report = mapping.ws_fill_exec(
                        self.venue, trade, cl_ord_id=intent.cl_ord_id, order_qty=intent.order_qty,
                        cum_offset=intent.offset, cost_offset=intent.cost,
                    )  # fmt: skip
                except ValueError as exc:  # a trade we cannot read: the poll fetches it
                    self.log.warning("ccxt_trade_unreadable", cl_ord_id=cl_ord_id, error=str(exc))
                    report = None
                if report is None:
                    if self._poll_now is not None:
                        self._poll_now.set()
                    continue
                live = self._live.get(intent.cl_ord_id)
                if live is not None:
                    live.filled = max(live.filled, report.cum_qty - intent.offset)
                self._queue_execs([report])

    async def _poll_loop(self) -> None:
        assert self._poll_now is not None
        while self._up:
            interval = self.ccfg.poll_idle_s if self._stream_up else self.ccfg.poll_interval_s
            try:
                await asyncio.wait_for(self._poll_now.wait(), interval)
            except TimeoutError:
                pass
            self._poll_now.clear()
            if self._live:
                await self._poll_live()

    async def _poll_live(self) -> None:
        self.stats.polls += 1
        sem = asyncio.Semaphore(QUERY_CONCURRENCY)

        async def one(intent: Intent) -> None:
            async with sem:
                await self._lookup(intent)

        await asyncio.gather(*(one(live.intent) for live in list(self._live.values())))

    # ------------------------------------------------------------------ applying answers

    async def _apply_with_trades(
        self, intent: Intent, order: Mapping[str, Any], *, final_event: bool = True
    ) -> None:
        """An order snapshot: its events, and its fills when its filled quantity moved past
        what we reported (fetched by order: every trade, so each cum is exact)."""
        live = self._live.get(intent.cl_ord_id)
        known = live.filled if live is not None else Decimal(0)
        trades: list[Mapping[str, Any]] = list(order.get("trades") or [])
        view = rd.order_view(order)
        have = sum((rd.num(t, "amount") or Decimal(0) for t in trades), Decimal(0))
        if view.filled > known and view.filled > have and view.venue_order_id:
            try:
                trades = await self._call(
                    self._ex.fetch_my_trades,
                    intent.symbol,
                    None,
                    None,
                    {"orderId": view.venue_order_id},
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the next poll tries again
                self.log.info(
                    "ccxt_trades_fetch_failed", cl_ord_id=intent.cl_ord_id, reason=_short(exc)
                )
                self._apply_order(intent, order, [], fills_pending=True, final_event=final_event)
                return
        self._apply_order(intent, order, trades, final_event=final_event)

    def _apply_order(
        self,
        intent: Intent,
        order: Mapping[str, Any],
        trades: Sequence[Mapping[str, Any]],
        *,
        fills_pending: bool = False,
        final_event: bool = True,
    ) -> None:
        """Queue the executions one order snapshot (and the trades known with it) proves:
        accepted, fills, then a final event; forget a finished order once all is queued.
        `fills_pending`: its filled quantity moved but the trades are not here yet, so no
        final event now (it would overtake them); the poll comes back for them."""
        view = rd.order_view(order)
        vid = view.venue_order_id
        if vid:
            self.intents.learn(intent.cl_ord_id, vid)
        try:
            events = mapping.order_execs(
                self.venue, order, cl_ord_id=intent.cl_ord_id, order_qty=intent.order_qty,
                cum_offset=intent.offset, cost_offset=intent.cost,
                ts_ns=view.ts_ns or time.time_ns(),
            )  # fmt: skip
            fills = (
                mapping.fill_execs(
                    self.venue,
                    trades,
                    cl_ord_id=intent.cl_ord_id,
                    venue_order_id=vid,
                    order_qty=intent.order_qty,
                    cum_offset=intent.offset,
                    cost_offset=intent.cost,
                )  # fmt: skip
                if trades and vid
                else []
            )
        except ValueError as exc:  # the exchange said something we cannot read: a human looks
            self.log.error("ccxt_answer_unreadable", cl_ord_id=intent.cl_ord_id, error=str(exc))
            return
        live = self._live.get(intent.cl_ord_id)
        filled = view.filled
        complete = not fills_pending and (
            not filled or (fills and fills[-1].cum_qty - intent.offset >= filled)
            or (live is not None and live.filled >= filled)
        )  # fmt: skip
        first = [e for e in events if e.kind in _KIND_ORDER]
        final = [e for e in events if e.kind not in _KIND_ORDER] if final_event else []
        if not complete:
            final = []
            if self._poll_now is not None:
                self._poll_now.set()
        self._queue_execs(first + fills + final)
        if live is not None:
            live.unseen_since = 0.0
            live.status = str(order.get("status") or "")
            if fills:
                live.filled = max(live.filled, fills[-1].cum_qty - intent.offset)
            if complete and live.status in ("closed", "canceled", "expired", "rejected"):
                self._forget(intent.cl_ord_id)

    def _venue_order(self, intent: Intent, order: Mapping[str, Any]) -> VenueOrder:
        return mapping.venue_order(
            order, cl_ord_id=intent.cl_ord_id, order_qty=intent.order_qty,
            cum_offset=intent.offset, cost_offset=intent.cost,
        )  # fmt: skip

    def _intent_for(self, cl_ord_id: str, src: Mapping[str, Any]) -> Intent:
        """Our intent of an order the exchange tells us about; an order we have none of
        (placed before intents existed, or by hand) is taken as the exchange has it."""
        live = self._live.get(cl_ord_id)
        if live is not None:
            return live.intent
        recent = self._recent.get(cl_ord_id)
        if recent is not None:
            return recent
        amount = rd.order_view(src).amount if "filled" in src else rd.num(src, "amount")
        return Intent(
            cl_ord_id=cl_ord_id,
            symbol=str(src.get("symbol") or ""),
            side=str(src.get("side") or "").upper(),
            qty=str(amount or 0),
        )

    def _intent_or(self, cl_ord_id: str, request: CancelOnVenue | ReplaceOnVenue) -> Intent:
        """Our intent of `cl_ord_id`, or one made from a request that names it."""
        found = self._live.get(cl_ord_id)
        if found is not None:
            return found.intent
        return self._recent.get(cl_ord_id) or Intent(
            cl_ord_id=cl_ord_id, symbol=request.symbol, side=request.side.value,
            qty=str(request.qty),
        )  # fmt: skip

    def _forget(self, cl_ord_id: str) -> None:
        live = self._live.pop(cl_ord_id, None)
        if live is not None:
            self._recent[cl_ord_id] = live.intent
            while len(self._recent) > RECENT_FINAL:
                self._recent.popitem(last=False)
        self.intents.done(cl_ord_id)

    # ------------------------------------------------------------------ executions

    def _queue_execs(self, reports: Iterable[ExecReport]) -> None:
        for report in reports:
            if report.exec_id in self._seen:
                continue
            self._seen[report.exec_id] = None
            if len(self._seen) > SEEN_EXEC_IDS:
                self._seen.popitem(last=False)
            self._execs.append(report)


def _short(exc: BaseException) -> str:
    return errors.classify(exc).reason
