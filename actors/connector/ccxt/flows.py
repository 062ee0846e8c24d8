"""The ccxt connector's order flows: submit (a resend looked up first), the lookup by
client order id that resolves an unknown outcome, cancel, and replace as cancel + new
(`replace.Replaces`); each turns the exchange's answers into executions through the `Tracker`.

Fault injection (tests; unset in production): `TP_FAULT_RESEND_LOOKUP_DELAY_S=<s>` makes a
resend's lookup by client id wait at least that long (`resend_lookup_delay_s`), so a test
can make the exchange fail that lookup (it follows the status query that answered the
order "never seen" by a few milliseconds otherwise).

A submit that sends nothing (its session ended first or meanwhile, the lookup before a
resend was inconclusive, or a submit of the same client id is running) says so: an "unsent"
execution, so the OMS does not count that resubmission (`actors.oms.resubmit_unsent`).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from ccxt.base.errors import BadResponse

from actors.connector.adapter import SendDone
from actors.connector.ccxt import execs, mapping
from actors.connector.ccxt import reading as rd
from actors.connector.ccxt.exchange import Rest
from actors.connector.ccxt.intents import Intent, IntentLog
from actors.connector.ccxt.replace import Replaces
from actors.connector.ccxt.tracker import Tracker
from protocol.messages import CancelOnVenue, ExecReport, PlaceOrder, ReplaceOnVenue

LOOKUPS_AFTER_UNKNOWN = 3  # lookups by client id after a lost submit answer (then: the OMS)
LOOKUP_DELAYS_S = (0.2, 0.5, 1.0)
MAX_TRADES_PER_FETCH = 1000  # Binance's most per myTrades request (an order's trades)
MAX_TRADE_PAGES = 100  # myTrades pages read of one order (100,000 trades) before giving up
POLL_CONCURRENCY = 8  # lookups of one poll in flight at once
CANCEL_RETRY_DELAYS_S = (0.2, 0.5, 1.0)  # a cancel whose answer was lost is sent again
RESEND_DELAY_ENV = "TP_FAULT_RESEND_LOOKUP_DELAY_S"  # fault injection (module docstring)


@dataclass
class Pending:
    """An order waiting for this turn's intent sync."""

    intent: Intent
    order: PlaceOrder
    done: SendDone
    lookup_first: bool
    sending: bool = False  # its create_order went out (maybe): never "unsent" after that


class Sent:
    """`fn` (a request), noting when it goes out: after `Rest.call`'s pacing, and again
    when it is sent once more (a 429, -1021). An answer "no such order" is judged by this
    time (the exchange read the request after it), never by when the answer came back."""

    def __init__(self, fn: Callable[..., Awaitable[Any]]) -> None:
        self.fn = fn
        self.at = time.monotonic()  # not out yet: now is earlier than any send (safe)

    async def __call__(self, *args: Any) -> Any:
        self.at = time.monotonic()
        return await self.fn(*args)


class Flows:
    """Submit, lookup, cancel, replace against one exchange (`rest`)."""

    def __init__(
        self,
        venue: str,
        rest: Rest,
        tracker: Tracker,
        intents: IntentLog,
        log: Any,
        *,
        intake_problem: Callable[[ReplaceOnVenue, Decimal], str | None],
        end_session: Callable[[str], Coroutine[Any, Any, None]],
        crash_point: Callable[[str], None],
    ) -> None:
        self.venue = venue
        self.rest = rest
        self.tracker = tracker
        self.intents = intents
        self.log = log
        self.intake_problem = intake_problem
        self.end_session = end_session
        self.crash_point = crash_point
        self.sent = 0
        self.lookups = 0
        # client ids whose submit runs now: a second PlaceOrder of one (the OMS resending
        # while the first create is unanswered) is acked and not sent again
        self.inflight: set[str] = set()
        # a request sent before a restart may still reach the exchange within its
        # recvWindow: "no such order" is proof it never will only after that
        self.trust_unseen_at = 0.0
        self.unseen_after_s = 0.0  # how long a request sent may still reach the exchange
        # and so may a create of ours whose answer was lost: client id -> when its last
        # create went out (monotonic, oldest first; kept `unseen_after_s`)
        self.sent_at: dict[str, float] = {}
        self.resend_lookup_delay_s = 0.0  # fault injection (module docstring)
        self.replaces = Replaces(self)

    async def submit(self, p: Pending) -> None:
        """Send `p` once: a submit of the same client id already running is its answer."""
        if p.intent.cl_ord_id in self.inflight:
            self.log.info("ccxt_submit_in_flight", cl_ord_id=p.intent.cl_ord_id)
            self._unsent(p, "a submit of this client id is running")
            return
        self.inflight.add(p.intent.cl_ord_id)
        try:
            await self._submit(p)
        except asyncio.CancelledError:  # the session ended (its tasks are cancelled)
            if not p.sending:
                self._unsent(p, "the session ended before it went out")
            raise
        finally:
            self.inflight.discard(p.intent.cl_ord_id)

    async def _submit(self, p: Pending) -> None:
        intent = p.intent
        if self.rest.ex is None:  # the session ended before it went out: not sent, not
            # refused either; the OMS's status query finds it unseen and resubmits it
            self._unsent(p, "the session ended before it went out")
            return
        if p.lookup_first:  # it may be there already: never send it twice
            wait_s = self.unseen_proof_in_s(intent.cl_ord_id)
            await asyncio.sleep(max(0.0, self.resend_lookup_delay_s, wait_s))
            found = await self.lookup(intent)
            if found is None:  # not known now: the OMS's status query decides, later
                self._unsent(p, "its lookup by client id before a resend was inconclusive")
            if found is not False:
                return  # there (reported), or not sent
        intent = p.intent = self.tracker.made_now(intent)  # its order is made now
        args = mapping.create_args(p.order)
        self.sent += 1
        p.sending = True
        self.note_sent(intent.cl_ord_id)
        try:
            order = await self.order_call(
                self.noting_sends(intent.cl_ord_id, self.rest.ex.create_order),
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
        self.crash_point("ccxt_after_send_before_answer")
        self.tracker.apply_order(intent, order, order.get("trades") or [])

    async def order_call(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """`rest.call` of a request the exchange answers with one order (a create, a
        cancel, a lookup). An answer that is no order (ccxt makes a proxy's HTML page, a
        truncated or an empty body answered 200 an order of nothing) is counted and raises
        BadResponse: the request's outcome is not known, as with a lost answer (read as
        an order, a cancel had filled nothing: a replace sent the whole quantity again)."""
        order = await self.rest.call(fn, *args)
        if not rd.is_order(order):
            why = f"the answer is no order: {str(order)[:100]}"
            self.tracker.unreadable("order", why)
            raise BadResponse(why)
        return order

    def unseen_proof_in_s(self, cl_ord_id: str) -> float:
        """Seconds until "no such order" proves `cl_ord_id` never reaches the exchange
        (<= 0: it does now)."""
        return self.unseen_proof_at(cl_ord_id) - time.monotonic()

    def unseen_proof_at(self, cl_ord_id: str) -> float:
        """When (monotonic) "no such order" becomes proof for `cl_ord_id`: past its last
        create's window (`sent_at`), and past this connector's start's if it has an intent
        here (one without was sent by no incarnation: an intent is persisted before its
        create)."""
        sent_at = self.sent_at.get(cl_ord_id)
        last = -math.inf if sent_at is None else sent_at + self.unseen_after_s
        intents = self.intents
        known = cl_ord_id in intents.live or cl_ord_id in intents.finished
        return max(self.trust_unseen_at if known else -math.inf, last)

    def may_arrive(self, cl_ord_id: str, asked_at: float) -> bool:
        """A create of `cl_ord_id` may reach the exchange after a lookup sent at `asked_at`
        (monotonic; `Sent`) read "no such order": one went out within its window
        (`unseen_proof_at`) of that time, or a flow that may send one runs now (its
        submit, or the replace whose new order it is, between its cancel and its create)."""
        return (
            self.unseen_proof_at(cl_ord_id) > asked_at
            or cl_ord_id in self.inflight
            or cl_ord_id in self.replaces.inflight
        )

    def noting_sends(
        self, cl_ord_id: str, create: Callable[..., Awaitable[Any]]
    ) -> Callable[..., Awaitable[Any]]:
        """`create` (a create of `cl_ord_id`), noting each attempt as it goes out: after
        `Rest.call`'s pacing, and again when it sends it once more (a 429, -1021)."""

        async def create_noted(*args: Any) -> Any:
            self.note_sent(cl_ord_id)
            return await create(*args)

        return create_noted

    def note_sent(self, cl_ord_id: str) -> None:
        now = time.monotonic()
        sent_at = self.sent_at
        sent_at.pop(cl_ord_id, None)
        sent_at[cl_ord_id] = now  # the newest last: the oldest are dropped first
        while (oldest := next(iter(sent_at))) != cl_ord_id:
            if sent_at[oldest] + self.unseen_after_s > now:
                break
            del sent_at[oldest]

    def _unsent(self, p: Pending, why: str) -> None:
        """Nothing of `p` went out (and nothing will: a resend is the OMS's): reported as
        "unsent", one exec id per occasion, so the OMS takes that resubmission back."""
        cl_ord_id, order = p.intent.cl_ord_id, p.order
        self.log.info("ccxt_submit_unsent", cl_ord_id=cl_ord_id, reason=why)
        report = ExecReport(
            venue=self.venue, exec_id=f"{cl_ord_id}:unsent:{time.time_ns()}", kind="unsent",
            cl_ord_id=cl_ord_id, symbol=order.symbol, side=order.side, order_qty=order.qty,
            price=order.price, text=f"not sent: {why}",
        )  # fmt: skip
        self.tracker.queue([report])

    async def _submit_failed(self, intent: Intent, order: PlaceOrder, exc: BaseException) -> None:
        failure = self.rest.classify(exc)
        self.rest.count(failure.kind)
        self.log.warning(
            "ccxt_submit_failed",
            cl_ord_id=intent.cl_ord_id,
            kind=failure.kind,
            reason=failure.reason,
        )
        if failure.kind == "rejected":
            self.tracker.queue([execs.submit_rejected_exec(self.venue, order, failure)])
            self.tracker.forget(intent.cl_ord_id)
        elif failure.kind == "down":
            await self.end_session(f"authentication refused: {failure.reason}")
        else:  # duplicate: it is there; not known (an unreadable answer too: it may have
            # been taken): look, the OMS's query decides the rest
            for delay_s in LOOKUP_DELAYS_S[:LOOKUPS_AFTER_UNKNOWN]:
                if await self.lookup(intent) is not None:
                    return
                await asyncio.sleep(delay_s)

    async def lookup(self, intent: Intent) -> bool | None:
        """Ask the exchange for `intent`'s order by client id: True (found, reported),
        False (it says no such order), None (not known now)."""
        return (await self.lookup_in_doubt(intent))[0]

    async def lookup_in_doubt(self, intent: Intent) -> tuple[bool | None, bool]:
        """`lookup`, and whether fills the order holds at the exchange may not all be queued
        yet (in doubt: not known now, or `apply_with_trades` says so)."""
        found = await self.fetch_by_client_id(intent)
        if found is False:
            self.tracker.note_unseen(intent)
            return False, False
        if found is None:
            return None, True
        return True, await self.apply_with_trades(intent, found)

    async def fetch_by_client_id(self, intent: Intent) -> Mapping[str, Any] | Literal[False] | None:
        """`intent`'s order as the exchange has it (not reported), False (no such order),
        None (not known now)."""
        return (await self.fetch_by_client_id_sent(intent))[0]

    async def fetch_by_client_id_sent(
        self, intent: Intent
    ) -> tuple[Mapping[str, Any] | Literal[False] | None, float]:
        """`fetch_by_client_id`, and when its lookup went out (`Sent`): a False proves
        nothing of a create that may still land after that time."""
        self.lookups += 1
        fetch = Sent(self.rest.ex.fetch_order)
        try:
            order: Mapping[str, Any] = await self.order_call(
                fetch,
                None,
                intent.symbol,
                {"origClientOrderId": intent.cl_ord_id},
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - classified below
            failure = self.rest.classify(exc)
            if failure.kind == "not_found":
                return False, fetch.at
            self.log.info("ccxt_lookup_failed", cl_ord_id=intent.cl_ord_id, reason=failure.reason)
            return None, fetch.at
        return order, fetch.at

    async def poll_live(self) -> list[str]:
        """Look up every order we answer for (its fills and state since we last heard): the
        client ids of those left in doubt, whose fills at the exchange may not all be
        queued (its lookup or its trades' fetch failed, a replace's new order held back or
        not settled: the next poll tries again). An answer we cannot read is not in doubt:
        no poll will read it (a human looks), so a balance holding its fills differs for
        real, and must show (`Queries.positions`)."""
        sem = asyncio.Semaphore(POLL_CONCURRENCY)
        in_doubt: list[str] = []

        async def one(intent: Intent) -> None:
            async with sem:
                try:
                    if intent.cl_ord_id in self.tracker.unsettled:
                        doubt = await self.settle_replace(intent)
                    else:
                        doubt = (await self.lookup_in_doubt(intent))[1]
                except ValueError as exc:  # an answer we cannot read: the others go on
                    self.tracker.unreadable("order", exc, intent.cl_ord_id)
                    return
            if doubt:
                in_doubt.append(intent.cl_ord_id)

        await asyncio.gather(*(one(live.intent) for live in list(self.tracker.live.values())))
        return in_doubt

    async def apply_with_trades(
        self, intent: Intent, order: Mapping[str, Any], *, final_event: bool = True
    ) -> bool:
        """An order snapshot: its events, and its fills when its filled quantity moved past
        what we reported (fetched by order: every trade, so each cum is exact). True: fills
        it shows may not all be queued yet (`Tracker.apply_order`; its trades' fetch failed).
        An order not `Tracker.ours` takes the exec id format of when the exchange made it;
        a cancel's answer does not say, so on a log an older build wrote (whose build may
        have reported the order unscoped) it is looked up for it; not known, no fill now."""
        if not self.tracker.ours(intent.cl_ord_id):
            created = rd.created_ms(order)
            if not created and self.intents.scoped_since_ms:
                found = await self.fetch_by_client_id(intent)
                created = rd.created_ms(found) if isinstance(found, Mapping) else 0
                if not created:  # the OMS's status query reads it later
                    return self.tracker.apply_order(intent, order, [], fills_pending=True)
            intent = self.tracker.as_created(intent, created)
        live = self.tracker.live.get(intent.cl_ord_id)
        known = live.filled if live is not None else Decimal(0)
        trades: list[Mapping[str, Any]] = list(order.get("trades") or [])
        try:
            view = rd.order_view(order)
            have = sum((rd.num(t, "amount") or Decimal(0) for t in trades), Decimal(0))
        except ValueError as exc:  # as `Tracker.apply_order` (a cancel's flow died of it)
            self.tracker.unreadable("order", exc, intent.cl_ord_id)
            return False
        if view.filled > known and view.filled > have and view.venue_order_id:
            try:
                trades = await self.order_trades(intent.symbol, view.venue_order_id)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the next poll tries again
                self.log.info(
                    "ccxt_trades_fetch_failed",
                    cl_ord_id=intent.cl_ord_id,
                    reason=self.rest.classify(exc).reason,
                )
                return self.tracker.apply_order(
                    intent, order, [], fills_pending=True, final_event=final_event
                )
        return self.tracker.apply_order(intent, order, trades, final_event=final_event)

    async def order_trades(self, symbol: str, venue_order_id: str) -> list[Mapping[str, Any]]:
        """Every trade of venue order `venue_order_id`. One myTrades request when its
        answer is not full; else page by page from the order's first trade on (`fromId`),
        until a page comes back short: Binance answers `orderId` alone with the order's
        newest trades, so a fuller order's oldest ones were missing and each fill's cum_qty
        short by them. A page that does not move past the last (an exchange repeating
        itself) or more than MAX_TRADE_PAGES pages is a ValueError (the poll tries again)."""

        async def page(params: dict[str, object]) -> list[Mapping[str, Any]]:
            got = await self.rest.call(
                self.rest.ex.fetch_my_trades, symbol, None, MAX_TRADES_PER_FETCH, params
            )  # the limit: Binance's default is 500
            return list(got or [])

        first = await page({"orderId": venue_order_id})
        if len(first) < MAX_TRADES_PER_FETCH:
            return first
        trades: list[Mapping[str, Any]] = []
        from_id = 0
        for _ in range(MAX_TRADE_PAGES):
            rows = await page({"orderId": venue_order_id, "fromId": from_id})
            trades += rows
            if len(rows) < MAX_TRADES_PER_FETCH:
                return trades
            last = max(int(str(t.get("id"))) for t in rows)
            if last < from_id:
                raise ValueError(f"myTrades fromId {from_id} answered trades up to {last}")
            from_id = last + 1
        raise ValueError(f"order {venue_order_id} has more than {len(trades)} trades")

    async def cancel(self, request: CancelOnVenue) -> None:
        """Cancel by client id. An answer lost (timeout, 5xx: not known whether it was
        processed) is sent again - a cancel is idempotent, the second one of a cancelled
        order is "unknown order" and reports the order's state; never confirmed, the
        order's state is reported and the cancel refused, so the OMS is not left waiting."""
        reason = ""
        for delay_s in (0.0, *CANCEL_RETRY_DELAYS_S):
            await asyncio.sleep(delay_s)
            try:
                order = await self.order_call(
                    self.rest.ex.cancel_order, None, request.symbol, mapping.cancel_params(request)
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - classified below
                failure = self.rest.classify(exc)
                self.rest.count(failure.kind)
                self.log.warning(
                    "ccxt_cancel_failed", cl_ord_id=request.cl_ord_id, kind=failure.kind,
                    reason=failure.reason,
                )  # fmt: skip
                reason = failure.reason
                if failure.kind in ("not_found", "rejected"):
                    break  # -2011 also when it has just filled: its state, then the refusal
                continue
            intent = self.tracker.intent_for(request.orig_cl_ord_id, order)
            await self.apply_with_trades(intent, order)
            return
        intent = self.tracker.intent_or(request.orig_cl_ord_id, request)
        await self.lookup(intent)
        self.tracker.queue([execs.cancel_rejected_exec(self.venue, request, reason)])

    async def replace(self, request: ReplaceOnVenue) -> None:
        """Cancel + new (`Replaces.replace`)."""
        await self.replaces.replace(request)

    async def settle_replace(self, new: Intent) -> bool:
        """Settle a replace whose outcome no flow told (`Replaces.settle`): in doubt?"""
        return await self.replaces.settle(new)
