"""What the ccxt connector knows of the orders it answers for, and the executions it owes
the OMS: the live intents with the exchange's last word on each, the executions queued
for this loop turn (deduplicated by exec id), and the rule that turns one order snapshot
(plus the trades known with it) into executions in the order the OMS applies them:
accepted, the fills, then a final event, a final event held back while fills it covers
are still missing (the poll comes back for them).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from actors.connector.ccxt import execs, mapping
from actors.connector.ccxt import reading as rd
from actors.connector.ccxt.errors import redact
from actors.connector.ccxt.intents import ID_FORMAT, Intent, IntentLog
from actors.runtime import metrics
from actors.runtime.ratelog import LogBudget
from actors.runtime.tally import TURN
from protocol.messages import CancelOnVenue, ExecReport, ReplaceOnVenue, VenueOrder

SEEN_EXEC_IDS = 100_000  # exec ids remembered (a late duplicate is dropped here too)
RECENT_FINAL = 10_000  # finished orders whose intent is kept for late events
INTENT_UNSEEN_S = 600.0  # an intent the exchange never saw is dropped after this long
_KIND_ORDER = {"accepted": 0, "fill": 1, "replaced": 1}  # then the final events


@dataclass
class Live:
    """An order we answer for: its intent and what the exchange last told us."""

    intent: Intent
    filled: Decimal = Decimal(0)  # the venue order's own filled quantity
    status: str = ""  # ccxt's: open, closed, canceled, expired, rejected
    unseen_since: float = 0.0  # monotonic time of the first "no such order" (0: seen)
    fetching_trades: bool = False


class Tracker:
    """The orders we answer for (`live`, from the intent log) and the executions queued."""

    def __init__(
        self, venue: str, intents: IntentLog, log: Any, wake_poll: Callable[[], None]
    ) -> None:
        self.venue = venue
        self.intents = intents
        self.log = log
        self._wake_poll = wake_poll
        self.live: dict[str, Live] = {i.cl_ord_id: Live(i) for i in intents.live.values()}
        self.recent: OrderedDict[str, Intent] = OrderedDict()
        # a replace (cancel + new) in flight or done: the old order's own final event
        # (its cancel) is not reported - the OMS hears "replaced" - and the new order's
        # events wait until "replaced" is queued (the stream races the REST answers)
        self.replaced: OrderedDict[str, None] = OrderedDict()
        self.held: set[str] = set()
        # replaces whose outcome no flow will tell (new cl_ord_id -> monotonic time from
        # which the exchange's "no such order" for the new order is proof it never will be
        # placed): the poll settles them (`Replaces.settle`). A new order's intent
        # whose old order's intent is live too is one: the old order's intent is forgotten
        # only once "replaced" is queued (or the replace is refused), so after a restart
        # the pair is exactly a replace cut short (kill -9 with the new order sent).
        self.unsettled: dict[str, float] = {}
        for live in self.live.values():
            old = live.intent.orig_cl_ord_id
            if old and old in self.live:
                self.replacing(old, live.intent.cl_ord_id)
                self.unsettled[live.intent.cl_ord_id] = 0.0
        # exec ids queued (a fill's: with the hash of its qty and price, to tell a repeat from
        # a rewrite; a hash, not the two Decimals: ~200 bytes a fill kept for 100,000 fills)
        self._seen: OrderedDict[str, int | None] = OrderedDict()
        self.execs: list[ExecReport] = []
        self.delivered = 0
        self.fills_queued = 0  # fills handed on so far (a positions answer's consistency)
        self._unreadable_log = LogBudget()

    @property
    def exec_mark(self) -> int:
        return self.delivered + len(self.execs)

    def take(self) -> list[ExecReport]:
        """The executions queued since the last call (they are handed on now)."""
        reports, self.execs = self.execs, []
        self.delivered += len(reports)
        return reports

    def apply_order(
        self,
        intent: Intent,
        order: Mapping[str, Any],
        trades: Sequence[Mapping[str, Any]],
        *,
        fills_pending: bool = False,
        final_event: bool = True,
    ) -> bool:
        """Queue the executions one order snapshot (and the trades known with it) proves:
        accepted, fills, then a final event; forget a finished order once all is queued.
        `fills_pending`: its filled quantity moved but the trades are not here yet, so no
        final event now (it would overtake them); the poll comes back for them. Nothing
        for a replace's new order until "replaced" is queued (`hold`), no final event for
        an order being replaced (`replacing`). True: fills the snapshot shows may not all
        be queued yet (pending, trades short of its filled quantity, a held new order that
        filled): a balance read before it may hold them (`Queries.positions`). An answer
        we cannot read is False: no poll reads it either (a human looks)."""
        if intent.cl_ord_id in self.held:  # held as before; in doubt if it traded
            try:
                return rd.order_view(order).filled > 0
            except ValueError:  # unreadable: as below (and never raised here, as before)
                return False
        replacing = intent.cl_ord_id in self.replaced
        if replacing:  # its end is the replace's (its flow or `settle_replace` forgets it)
            final_event = False
        try:
            view = rd.order_view(order)
        except ValueError as exc:  # as below (it raised to the flow: a submit's task died)
            self.unreadable("order", exc, intent.cl_ord_id)
            return False
        vid = view.venue_order_id
        if vid:
            self.intents.learn(intent.cl_ord_id, vid)
        try:
            events = execs.order_execs(
                self.venue, order, scope=intent.id_scope, cl_ord_id=intent.cl_ord_id,
                order_qty=intent.order_qty, cum_offset=intent.offset, cost_offset=intent.cost,
                ts_ns=view.ts_ns or time.time_ns(),
            )  # fmt: skip
            fills = (
                execs.fill_execs(
                    self.venue,
                    trades,
                    scope=intent.id_scope,
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
            self.unreadable("order", exc, intent.cl_ord_id)
            return False
        live = self.live.get(intent.cl_ord_id)
        filled = view.filled
        complete = not fills_pending and (
            not filled or (fills and fills[-1].cum_qty - intent.offset >= filled)
            or (live is not None and live.filled >= filled)
        )  # fmt: skip
        first = [e for e in events if e.kind in _KIND_ORDER]
        final = [e for e in events if e.kind not in _KIND_ORDER] if final_event else []
        if not complete:
            final = []
            self._wake_poll()
        self.queue(first + fills + final)
        if live is not None:
            live.unseen_since = 0.0
            live.status = str(order.get("status") or "")
            if fills:
                live.filled = max(live.filled, fills[-1].cum_qty - intent.offset)
            ended = live.status in ("closed", "canceled", "expired", "rejected")
            if complete and ended and not replacing:
                self.forget(intent.cl_ord_id)
        return not complete

    def unreadable(self, source: str, error: BaseException | str, cl_ord_id: str = "") -> None:
        """An answer or stream event of the exchange that cannot be read (`source`: order,
        stream_order, stream_trade, status, open_orders, balance, fill_conflict): refused, counted
        (`tradepulse_venue_answers_unreadable{venue,source}`) and logged, at most
        `LogBudget`'s burst a second however fast they come (`suppressed`: left out), the
        text without query strings, signatures or API keys (`errors.redact`)."""
        TURN.inc(metrics.VENUE_ANSWERS_UNREADABLE.labels(venue=self.venue, source=source))
        if (skipped := self._unreadable_log.take()) is not None:
            self.log.error(
                "ccxt_answer_unreadable", source=source, cl_ord_id=cl_ord_id,
                error=redact(str(error))[:200], suppressed=skipped,
            )  # fmt: skip

    def venue_order(self, intent: Intent, order: Mapping[str, Any]) -> VenueOrder:
        return mapping.venue_order(
            order, cl_ord_id=intent.cl_ord_id, order_qty=intent.order_qty,
            cum_offset=intent.offset, cost_offset=intent.cost,
        )  # fmt: skip

    def intent_for(self, cl_ord_id: str, src: Mapping[str, Any]) -> Intent:
        """Our intent of an order the exchange tells us about; an order we have none of
        (placed by hand, or finished before a restart) is taken as the exchange has it, its
        exec ids scoped (`Intent.id_scope`: an unscoped id could be another symbol's
        order's) unless the exchange made it before this build first ran here: an older
        build may have reported it, and the OMS holds its fills under the unscoped ids
        (`IntentLog.id_format_of`; read again scoped, they counted twice)."""
        live = self.live.get(cl_ord_id)
        if live is not None:
            return live.intent
        recent = self.recent.get(cl_ord_id)
        if recent is not None:
            return recent
        try:
            amount = rd.order_view(src).amount if "filled" in src else rd.num(src, "amount")
        except ValueError:  # unreadable: so is `src`, which its reader refuses and counts
            amount = None  # (raised here, it ended a mass cancel's flow unanswered)
        return Intent(
            cl_ord_id=cl_ord_id,
            symbol=str(src.get("symbol") or ""),
            side=str(src.get("side") or "").upper(),
            qty=str(amount or 0),
            id_format=self.intents.id_format_of(rd.created_ms(src)),
        )

    def ours(self, cl_ord_id: str) -> bool:
        """An order we have a live or recent intent of: its exec id format is the intent's,
        fixed when it was made (any other's is of when the exchange made it)."""
        return cl_ord_id in self.live or cl_ord_id in self.recent

    def made_now(self, intent: Intent) -> Intent:
        """`intent`, whose order this build is about to place, with this build's exec id
        format, written down before the create goes out: an older build's intent (whose
        order never reached the exchange) otherwise kept unscoped ids that its order, made
        after the upgrade, no longer has once the intent is gone (`as_created`)."""
        if intent.id_format == ID_FORMAT:
            return intent
        intent = replace(intent, id_format=ID_FORMAT)
        self.intents.add(intent)
        self.intents.sync(done=False)  # the finished orders' records wait for the flush
        if (live := self.live.get(intent.cl_ord_id)) is not None:
            live.intent = intent
        return intent

    def as_created(self, intent: Intent, created_ms: int) -> Intent:
        """`intent` (of an order not `ours`) with the exec id format of an order the
        exchange made at `created_ms` (`IntentLog.id_format_of`)."""
        return replace(intent, id_format=self.intents.id_format_of(created_ms))

    def intent_or(self, cl_ord_id: str, request: CancelOnVenue | ReplaceOnVenue) -> Intent:
        """Our intent of `cl_ord_id`, or one made from a request that names it."""
        found = self.live.get(cl_ord_id)
        if found is not None:
            return found.intent
        return self.recent.get(cl_ord_id) or Intent(
            cl_ord_id=cl_ord_id, symbol=request.symbol, side=request.side.value,
            qty=str(request.qty),
        )  # fmt: skip

    def replacing(self, old_cl_ord_id: str, new_cl_ord_id: str) -> None:
        """A replace of `old_cl_ord_id` starts: its cancel is not a final event of ours,
        `new_cl_ord_id`'s events wait for `release` (see `apply_order`)."""
        self.replaced[old_cl_ord_id] = None
        while len(self.replaced) > RECENT_FINAL:
            self.replaced.popitem(last=False)
        self.held.add(new_cl_ord_id)

    def release(self, new_cl_ord_id: str, old_cl_ord_id: str | None = None) -> None:
        """The replace's "replaced" is queued (or the replace ended without one): the new
        order's events flow; with `old_cl_ord_id`, the old order's final event is the
        order's own again (the replace did not happen)."""
        self.held.discard(new_cl_ord_id)
        if old_cl_ord_id is not None:
            self.replaced.pop(old_cl_ord_id, None)
        self._wake_poll()  # what the new order's stream events said while it was held

    def wake_poll(self) -> None:
        """Poll now: something the poll settles is due."""
        self._wake_poll()

    def unsettle(self, new_cl_ord_id: str, trust_unseen_at: float) -> None:
        """The replace of `new_cl_ord_id` ended without its outcome (the new order's answer
        lost, or its flow cut short after the new order may have gone out): the old order's
        final event stays held back and both intents stay live until the poll settles it."""
        self.unsettled[new_cl_ord_id] = trust_unseen_at
        self._wake_poll()

    def settled(self, new: Intent, *, replaced: bool) -> None:
        """An unsettled replace's outcome is known: `replaced` (its "replaced" is queued)
        the old order is forgotten and the new order's events flow; else the new order is
        forgotten and the old order's final event is its own again."""
        self.unsettled.pop(new.cl_ord_id, None)
        if replaced:
            self.release(new.cl_ord_id)
            self.forget(new.orig_cl_ord_id)
        else:
            self.release(new.cl_ord_id, new.orig_cl_ord_id)
            self.forget(new.cl_ord_id)

    def forget(self, cl_ord_id: str) -> None:
        live = self.live.pop(cl_ord_id, None)
        if live is not None:
            self.recent[cl_ord_id] = live.intent
            while len(self.recent) > RECENT_FINAL:
                self.recent.popitem(last=False)
        self.intents.done(cl_ord_id)

    def note_unseen(self, intent: Intent) -> None:
        live = self.live.get(intent.cl_ord_id)
        if live is None:
            return
        now = time.monotonic()
        if not live.unseen_since:
            live.unseen_since = now
        elif now - live.unseen_since > INTENT_UNSEEN_S:
            self.log.info("ccxt_intent_dropped", cl_ord_id=intent.cl_ord_id)
            self.forget(intent.cl_ord_id)

    def covered(self, exec_id: str) -> None:
        """`exec_id` is said by another execution (a replace's new order's "accepted" by
        its "replaced"): never queued."""
        self._seen[exec_id] = None

    def queue(self, reports: Iterable[ExecReport]) -> None:
        """Queue `reports` once per exec id. A fill seen again with other terms (the venue
        rewrote a trade) is not applied twice either, but refused out loud (`unreadable`,
        source fill_conflict): the first terms stand, a human looks."""
        for report in reports:
            terms = hash((report.last_qty, report.last_px)) if report.kind == "fill" else None
            if report.exec_id in self._seen:
                said = self._seen[report.exec_id]
                if said is not None and terms is not None and said != terms:
                    why = f"trade {report.exec_id} seen again as {report.last_qty}@{report.last_px}"
                    self.unreadable("fill_conflict", why, report.cl_ord_id)
                continue
            self._seen[report.exec_id] = terms
            if len(self._seen) > SEEN_EXEC_IDS:
                self._seen.popitem(last=False)
            self.execs.append(report)
            self.fills_queued += report.kind == "fill"
