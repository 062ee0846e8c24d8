"""The ccxt connector's replace flow: cancel + new under the replace's client id, and the
settling of a replace whose outcome no flow told (`Tracker.unsettled`: the new order's
answer lost, or the flow cut off by a restart after the new order may have gone out).
The OMS, in PENDING_REPLACE, hears either "replaced" or the old order's state and the
replace refused: never the old order's cancel while the new order rests.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Any, Literal, Protocol

from actors.connector.ccxt import execs, mapping
from actors.connector.ccxt import reading as rd
from actors.connector.ccxt.exchange import Rest
from actors.connector.ccxt.intents import Intent, IntentLog
from actors.connector.ccxt.tracker import Live, Tracker
from protocol.messages import OrderStatus, ReplaceOnVenue

LOOKUPS_AFTER_UNKNOWN = 3  # lookups by client id after a lost create answer (then: the poll)
LOOKUP_DELAYS_S = (0.2, 0.5, 1.0)


class OrderFlows(Protocol):
    """What a replace needs of `flows.Flows` (which holds the `Replaces`)."""

    venue: str
    rest: Rest
    tracker: Tracker
    intents: IntentLog
    log: Any
    intake_problem: Callable[[ReplaceOnVenue, Decimal], str | None]
    crash_point: Callable[[str], None]  # fault injection (tests, chaos)
    trust_unseen_at: float
    unseen_after_s: float

    def note_sent(self, cl_ord_id: str) -> None: ...

    async def order_call(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any: ...

    def noting_sends(
        self, cl_ord_id: str, create: Callable[..., Awaitable[Any]]
    ) -> Callable[..., Awaitable[Any]]: ...

    def unseen_proof_at(self, cl_ord_id: str) -> float: ...

    async def fetch_by_client_id_sent(
        self, intent: Intent
    ) -> tuple[Mapping[str, Any] | Literal[False] | None, float]: ...

    async def lookup(self, intent: Intent) -> bool | None: ...

    async def lookup_in_doubt(self, intent: Intent) -> tuple[bool | None, bool]: ...

    async def apply_with_trades(
        self, intent: Intent, order: Mapping[str, Any], *, final_event: bool = True
    ) -> bool: ...


class Replaces:
    """The replaces of one exchange, over `flows` (its rest, tracker, intents, lookups)."""

    def __init__(self, flows: OrderFlows) -> None:
        self.flows = flows
        self.tracker = flows.tracker
        self.log = flows.log
        # replace client ids whose flow runs now -> its end (True: carried out to its
        # outcome): a second ReplaceOnVenue of one (the OMS resending while the first is
        # unanswered) never starts a second cancel + new, and is over when the first is
        self.inflight: dict[str, asyncio.Future[bool]] = {}
        # unsettled replaces whose poll wake-up at the end of the recvWindow is scheduled
        self._wakes: dict[str, asyncio.TimerHandle] = {}

    async def replace(self, request: ReplaceOnVenue) -> None:
        """Cancel + new: the cancel's answer carries the old order's final filled quantity,
        the new order the rest of the replace's total under the replace's client id. The
        OMS hears "replaced" once the new order is on the book; a cancel the exchange
        refuses (the order is done) is a "cancel_rejected" of the replace. Meanwhile the
        stream's word on either order waits (`Tracker.replacing`): the old order's cancel
        is the replace, not a cancel, and the new order's events follow "replaced".
        The same replace again (the OMS resends one whose ack was lost) while it runs is
        not sent twice; one whose new order may be out already (cut off by a restart) is
        settled, not cancelled again (that cancel's "unknown order" is not a refusal); one
        carried out already (its new order is ours) is answered by its "replaced"."""
        new, old = request.cl_ord_id, request.orig_cl_ord_id
        tracker = self.tracker
        if (running := self.inflight.get(new)) is not None:
            self.log.info("ccxt_replace_in_flight", cl_ord_id=new)
            # acknowledged (`adapter._sent_once_done`) only once the first flow's cancel and
            # new order are answered: acked now, a kill -9 before its cancel lands would
            # lose the replace while the OMS counts it sent (rev25)
            if not await asyncio.shield(running):
                raise asyncio.CancelledError  # the first did not run to its end: neither is acked
            return
        pair = new in tracker.live and old in tracker.live
        if new in tracker.unsettled or pair:
            self.log.info("ccxt_replace_resent_unsettled", cl_ord_id=new)
            if new not in tracker.unsettled:
                tracker.unsettle(new, time.monotonic() + self.flows.unseen_after_s)
            await self.settle(tracker.live[new].intent)
            return
        if new in tracker.live or new in tracker.recent:  # carried out, "replaced" queued:
            # its cancel again would be "unknown order", reported as the old order's end
            self.log.info("ccxt_replace_resent_done", cl_ord_id=new)
            return
        self.inflight[new] = over = asyncio.get_running_loop().create_future()
        done = False
        try:
            await self._replace(request)
            done = True
        finally:
            del self.inflight[new]
            over.set_result(done)
            if new in tracker.held and new not in tracker.unsettled:  # no "replaced"
                if new in tracker.live and old in tracker.live:  # the new order may be sent
                    tracker.unsettle(new, time.monotonic() + self.flows.unseen_after_s)
                else:
                    tracker.release(new, old)

    async def settle(self, new: Intent) -> bool:
        """Settle a replace whose outcome no flow told (`Tracker.unsettled`): its new order
        at the exchange is "replaced" (then its own events); the exchange's "no such order"
        (once a request sent before can no longer arrive) is the replace refused: the old
        order's state (cancelled by the replace's cancel), then "cancel_rejected" of the
        replace. Not known now: the next poll asks again; "no such order" too early: the
        poll is woken when it counts. Never the old order's cancel while the new rests.
        True (in doubt, `Flows.poll_live`): fills the exchange holds of either order may not
        all be queued yet (not known now, or another flow settles it at the same time)."""
        flows, tracker = self.flows, self.tracker
        if new.cl_ord_id not in tracker.unsettled:
            return False  # settled meanwhile (a poll and a resent replace at once)
        found, asked_at = await flows.fetch_by_client_id_sent(new)
        if found is None or new.cl_ord_id not in tracker.unsettled:
            return found is not False  # not known, or what another flow is applying now
        if found is not False and rd.order_view(found).venue_order_id:
            if mapping.order_status(found.get("status"), new.offset) is not OrderStatus.REJECTED:
                self.log.warning("ccxt_replace_settled", cl_ord_id=new.cl_ord_id, replaced=True)
                tracker.queue([execs.replaced_exec_of(flows.venue, new, found)])
                vid = rd.order_view(found).venue_order_id
                tracker.covered(mapping.exec_id_new(vid, new.id_scope))
                tracker.settled(new, replaced=True)
                return await flows.apply_with_trades(new, found)
        trust_at = max(flows.trust_unseen_at, tracker.unsettled.get(new.cl_ord_id, 0.0))
        if found is False and asked_at < trust_at:  # read before it counts (`Sent`)
            self._wake_at(new.cl_ord_id, trust_at)  # the create may still reach the exchange
            return False  # not there now: none of its fills in a balance read before
        self.log.warning("ccxt_replace_settled", cl_ord_id=new.cl_ord_id, replaced=False)
        tracker.settled(new, replaced=False)
        old = tracker.live.get(new.orig_cl_ord_id)
        doubt = old is not None and (await flows.lookup_in_doubt(old.intent))[1]
        text = "the replace's new order never reached the exchange"
        tracker.queue([execs.replace_rejected_exec(flows.venue, new, text)])
        return doubt

    def _wake_at(self, cl_ord_id: str, trust_at: float) -> None:
        """Wake the poll once the exchange's "no such order" for `cl_ord_id` counts (the
        stream up, the poll would otherwise wait `poll_idle_s`)."""
        if cl_ord_id in self._wakes:
            return

        def wake() -> None:
            self._wakes.pop(cl_ord_id, None)
            self.tracker.wake_poll()

        delay_s = max(0.0, trust_at - time.monotonic())
        self._wakes[cl_ord_id] = asyncio.get_running_loop().call_later(delay_s, wake)

    async def _replace(self, request: ReplaceOnVenue) -> None:
        flows, tracker = self.flows, self.tracker
        old = tracker.intent_or(request.orig_cl_ord_id, request)
        live = tracker.live.get(old.cl_ord_id)
        left = request.qty - old.offset - (live.filled if live is not None else Decimal(0))
        problem = "filled before the replace" if left <= 0 else flows.intake_problem(request, left)
        if problem is not None:  # refused before the old order is touched
            tracker.queue([execs.cancel_rejected_exec(flows.venue, request, problem)])
            return
        tracker.replacing(old.cl_ord_id, request.cl_ord_id)
        flows.crash_point("ccxt_replace_before_cancel")
        try:
            cancelled = await flows.order_call(
                flows.rest.ex.cancel_order, None, request.symbol,
                {"origClientOrderId": request.orig_cl_ord_id},
            )  # fmt: skip
            view = rd.order_view(cancelled)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - classified below
            if isinstance(exc, ValueError):  # an answer we cannot read: not known either
                tracker.unreadable("order", exc, old.cl_ord_id)
            failure = flows.rest.classify(exc)
            flows.rest.count(failure.kind)
            self.log.warning(
                "ccxt_replace_failed", cl_ord_id=request.cl_ord_id, kind=failure.kind,
                reason=failure.reason,
            )  # fmt: skip
            tracker.release(request.cl_ord_id, old.cl_ord_id)
            # refused, or not known whether the cancel was processed (timeout, 5xx): the
            # old order's state as the exchange has it (cancelled, if it was), and the
            # replace refused, so the OMS is never left waiting in PENDING_REPLACE
            await flows.lookup(old)
            tracker.queue([execs.cancel_rejected_exec(flows.venue, request, failure.reason)])
            return
        live = tracker.live.get(old.cl_ord_id)
        if live is not None and view.filled < live.filled:  # it goes back on its trades:
            # what is left to buy is not known, so no new order (it would overfill)
            why = f"the cancel answer says {view.filled} filled, its trades {live.filled}"
            tracker.unreadable("order", why, old.cl_ord_id)
            tracker.release(request.cl_ord_id, old.cl_ord_id)
            await flows.apply_with_trades(old, cancelled)
            tracker.queue([execs.cancel_rejected_exec(flows.venue, request, why)])
            return
        done_qty = old.offset + view.filled
        done_cost = old.cost + (view.cost or Decimal(0))
        remaining = request.qty - done_qty
        if remaining <= 0 or flows.intake_problem(request, remaining) is not None:
            # nothing left to replace, or the rest breaks the market's limits: the old
            # order stays cancelled (reported as such), the replace is refused
            why = (
                "filled before the replace"
                if remaining <= 0
                else (flows.intake_problem(request, remaining) or "")
            )
            tracker.release(request.cl_ord_id, old.cl_ord_id)
            await flows.apply_with_trades(old, cancelled)
            tracker.queue([execs.cancel_rejected_exec(flows.venue, request, why)])
            return
        await flows.apply_with_trades(old, cancelled, final_event=False)
        intent = Intent(
            cl_ord_id=request.cl_ord_id,
            symbol=request.symbol,
            side=request.side.value,
            qty=str(request.qty),
            cum_offset=str(done_qty),
            cost_offset=str(done_cost),
            orig_cl_ord_id=request.orig_cl_ord_id,
        )
        flows.intents.add(intent)
        # persist before send; finished orders' "done" records wait for the turn's flush,
        # after their executions are durable
        flows.intents.sync(done=False)
        # the old order's intent stays live until the replace's outcome is queued: a
        # restart meanwhile finds both and settles the replace (`settle`)
        tracker.live[intent.cl_ord_id] = Live(intent)
        args = mapping.create_args(request, amount=remaining)
        flows.note_sent(intent.cl_ord_id)  # its window (`Flows.sent_at`), from its last attempt
        try:
            order = await flows.order_call(
                flows.noting_sends(intent.cl_ord_id, flows.rest.ex.create_order),
                args.symbol, args.type, args.side, args.amount, args.price, args.params,
            )  # fmt: skip
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - classified below
            failure = flows.rest.classify(exc)
            self.log.warning(
                "ccxt_replace_new_failed", cl_ord_id=intent.cl_ord_id, kind=failure.kind,
                reason=failure.reason,
            )  # fmt: skip
            # only a refusal proves it was not placed: any other failure (an unreadable
            # answer too) may be an order at the exchange, so look it up
            found: Mapping[str, Any] | Literal[False] | None = False
            asked_at = math.inf  # when the lookup answering `found` went out (`flows.Sent`)
            if failure.kind != "rejected":
                found, asked_at = await self._find(intent)
            trust_at = flows.unseen_proof_at(intent.cl_ord_id)
            if found is False and asked_at < trust_at:
                found = None  # "no such order" before the create can no longer arrive
            if found is None:
                # not known whether it was placed: the poll settles it (`settle`), the
                # old order's cancel is not the order's end until then
                tracker.unsettle(intent.cl_ord_id, trust_at)
                return
            if not isinstance(found, Mapping):  # not there: the old order is cancelled
                tracker.release(request.cl_ord_id, old.cl_ord_id)
                tracker.queue(execs.order_execs(
                    flows.venue, cancelled, scope=old.id_scope, cl_ord_id=old.cl_ord_id,
                    order_qty=old.order_qty, cum_offset=old.offset, cost_offset=old.cost,
                ))  # fmt: skip
                tracker.forget(intent.cl_ord_id)
                tracker.forget(old.cl_ord_id)
                return
            order = found
        tracker.queue([
            execs.replaced_exec(
                flows.venue, request, order, scope=intent.id_scope, cum_offset=done_qty,
                cost_offset=done_cost,
            )
        ])  # fmt: skip
        vid = rd.order_view(order).venue_order_id
        tracker.covered(mapping.exec_id_new(vid, intent.id_scope))  # "replaced" is its acceptance
        tracker.release(intent.cl_ord_id)
        tracker.forget(old.cl_ord_id)  # after "replaced": one flush writes both
        await flows.apply_with_trades(intent, order)

    async def _find(
        self, intent: Intent
    ) -> tuple[Mapping[str, Any] | Literal[False] | None, float]:
        """Look an order whose create answer was lost up by client id a few times: the
        order, False (the exchange says no such order), None (still not known); and when
        the lookup answered went out (`flows.Sent`)."""
        asked_at = math.inf
        for delay_s in LOOKUP_DELAYS_S[:LOOKUPS_AFTER_UNKNOWN]:
            found, asked_at = await self.flows.fetch_by_client_id_sent(intent)
            if found is not None:
                return found, asked_at
            await asyncio.sleep(delay_s)
        return None, asked_at
