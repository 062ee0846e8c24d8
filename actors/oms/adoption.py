"""A venue order we have no record of (external), taken over by reconciliation at the
venue's state (pure logic, no I/O).

`OrderBook.adopt` hands the venue's view of the order here, which applies it through the
book's own commands (`AdoptBook`): a ClOrdID the book knows is not adopted again
(`known_at_venue`); an unknown one becomes a ``new`` record of `Order.adopted`.

Its fills so far are one fill inferred from venue state (the synthetic exec id
`recon:<ClOrdID>:<venue cum>`, as a reconciliation's missed fill), and the outcome says so:
`fill_qty` its cum_qty, `fill_px` its average price. The order's first event carries that
fill (merged with any later fill of the same turn), so risk, which never saw the order,
counts all of it as new even when the event finishes the order; the fills metric counts
it once. The book's positions take it from the ``new`` record (`OrderBook.apply_record`),
never from the outcome; the exec cut's ring notes only execution reports (and fills
placed, below).

Fills of its ClOrdID recorded unmatched before the adoption (`UnmatchedFill`): the venue
state adopted holds only those its cum_qty covers (`explained`: a venue cum_qty at most the
adopted one; one without a cum_qty while the adopted cum_qty has room for it, in the order
they came, unless it came after that state, below). Applying the ``new`` record takes those
out of the unmatched fills and records their exec ids (a resend of one is a duplicate),
live and on replay alike. A fill after the state adopted (the venue answered before the
adoption: a pass spans loop turns) is placed on top of the order, in venue cum order: one
with a venue cum_qty above the adopted one, and (last) one without a cum_qty numbered
after the cut of the open-orders answer adopted (`Adopt.cut`: that answer reflects exactly
the executions numbered up to it; the caller names such fills, `after_state`, from the
numbers its exec log kept: `actors.oms.exec_cut.ExecLog.unmatched_after`). The ``new``
record names the latter (``after_state``) so that neither the adoption nor its replay takes
them as held by the state for its room. (Before, one that fitted was: the room does not
tell a fill inside the state from one after it; one that did not fit stayed unmatched.
Either way the order lacked it while the venue's positions answer held it, so a cold
start's opening position held it and the order's later catch-up to the venue's cum counted
it again: F1, tests/oms/test_adoption_cold_unplaced.py.) One without a cum_qty and no
number after the cut (a connector that gives no cut or numbers; one noted by an earlier
OMS incarnation, so numbered before any cut this one is answered with; one the exec log
forgot) follows the room rule as before. A build that predates ``after_state`` replays the
record to the same book: it takes such a fill as held for the room, or leaves it
unmatched, and the fill's own ``fill`` record then books it on the order.

A placed fill is a ``fill`` record of its own exec id through `OrderBook.apply_fill`
(applying it takes it out of the unmatched fills), in the same outcome, whose fill is then
all of the order's (fill_qty its cum_qty); the fills metric counts it once more
(`actors.oms.outcome_metrics`) and the venue link notes it in the exec cut's ring at its
own execution number (`ExecLog.note_placed`). One that cannot be placed safely (no venue
cum_qty and not after the state, another symbol or side, an overfill ...) stays unmatched
and is escalated (`unplaced_fill`; every later pass escalates it as an unmatched fill),
until the order's venue state holds it: a later fill inferred from the venue's cum_qty (a
reconciliation's catch-up) takes out the unmatched fills of the order whose venue cum it
reaches, as the adoption does (`settle`). The ``new`` record and the ``fill`` records of
one adoption are one journal commit, but a kill -9 can tear it at a record boundary
(`actors.oms.journal`): the order then replays at the adopted cum with the fill unmatched;
the next pass catches the order up from the venue and that takes the fill out (one without
a venue cum_qty stays unmatched, escalated: the catch-up moved order and position by it).

A ClOrdID is unique only among a venue's open orders (or within a FIX trading day): an
unmatched fill of it may be of an earlier venue order of the same external party. So the
fill's venue order id (`UnmatchedFill.venue_order_id`) decides first: a fill of another
venue order than the adopted one is neither held nor placed (it stays unmatched and is
escalated, as any fill the book cannot account for). Where either id is unknown (a record
from before fills kept it, a venue that does not say), the conservative side of each
step: such a fill is taken as held when the venue cum_qty rules above say so (as every
adoption did before: the adopted state then holds the quantity either way, and a fill of
another order shows as a position difference at the heartbeat), but never placed on the
order (it changes the order and the position on a guess): it stays unmatched, escalated.
One without a cum_qty numbered after the state adopted is then neither: a cold start's
opening position holds it if the positions answer's cut does, and the order's catch-up
counts it again (F1 left there: a strict xfail in tests/oms/test_adoption_cold_unplaced.py).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from decimal import Decimal
from typing import Any, Protocol

from actors.oms.orders import Escalation, Order, Outcome
from actors.oms.positions import ZERO, UnmatchedFill
from protocol.messages import Side, VenueOrder


class FillBook(Protocol):
    """The book command a fill is placed through (`place`)."""

    def apply_fill(
        self,
        client_order_id: str,
        exec_id: str,
        qty: Decimal,
        px: Decimal,
        ts_ns: int,
        *,
        venue_cum_qty: Decimal = ...,
        venue_order_id: str = ...,
    ) -> Outcome: ...


class AdoptBook(FillBook, Protocol):
    """The book commands an adoption is applied through."""

    def find(self, venue: str, cl_ord_id: str) -> Order | None: ...

    def held(self, client_order_id: str) -> Order | None: ...

    def apply_record(self, record: Mapping[str, Any]) -> None: ...

    def unmatched_fills(self, venue: str | None = None) -> list[UnmatchedFill]: ...


AfterCut = Callable[[str], bool]  # an unmatched fill's exec id -> numbered after the cut


def never(_exec_id: str) -> bool:
    """No unmatched fill is known to be numbered after the answer's cut (no cut given)."""
    return False


def adopt(
    book: AdoptBook,
    venue: str,
    vo: VenueOrder,
    ts_ns: int,
    after_cut: AfterCut = never,
) -> Outcome:
    """Take over `vo` at `venue` (see the module docstring; `after_cut(exec_id)`: that
    unmatched fill is numbered after the cut of the answer that listed `vo`)."""
    if (known := book.find(venue, vo.cl_ord_id)) is not None:
        return known_at_venue(known, vo)
    new = Order.adopted(venue, vo, ts_ns)
    record: dict[str, Any] = {"kind": "new", "order": new.to_dict()}
    if after := after_state(vo, book.unmatched_fills(venue), after_cut):
        record["after_state"] = after  # not held by the state for its room (`settle`)
    book.apply_record(record)
    order = book.held(new.client_order_id)
    assert order is not None  # just indexed
    records: list[dict[str, Any]] = [record]
    esc: list[Escalation] = []
    later = [f for f in book.unmatched_fills(venue) if f.cl_ord_id == vo.cl_ord_id]
    for fill in _in_venue_order(later, after, vo.cum_qty):
        placed = place(book, order, fill, vo.cum_qty, ts_ns, after=fill.exec_id in after)
        records += placed.records
        esc += placed.escalations
    if not order.cum_qty:
        return Outcome("applied", order, tuple(records), escalations=tuple(esc))
    return Outcome("applied", order, tuple(records), fill_qty=order.cum_qty,
                   fill_px=order.avg_px, escalations=tuple(esc))  # fmt: skip


def after_state(vo: VenueOrder, fills: Iterable[UnmatchedFill], after_cut: AfterCut) -> list[str]:
    """The exec ids of the unmatched `fills` of `vo`'s ClOrdID without a venue cum_qty that
    came after the state adopted: numbered after the answer's cut (`after_cut`), and ones
    the adoption can place (else the room rule judges them, as one without a number). The
    one place that decides it; `adopt` and `booked` ask here, `settle` reads the record."""
    return [
        f.exec_id
        for f in fills
        if f.cl_ord_id == vo.cl_ord_id
        and not f.cum_qty
        and _unsafe(vo.symbol, vo.side, vo.venue_order_id, f, after=True) is None
        and after_cut(f.exec_id)
    ]


def booked(
    vo: VenueOrder,
    fills: Iterable[UnmatchedFill],
    after_cut: AfterCut = never,
) -> list[UnmatchedFill]:
    """Of the unmatched `fills` (of its venue), those an adoption of `vo` places on it, as
    `adopt` does short of `OrderBook.apply_fill`'s rarer refusals: for the reconciliation
    planner's position check (`actors.oms.reconcile`)."""
    mine = [f for f in fills if f.cl_ord_id == vo.cl_ord_id]
    after = after_state(vo, mine, after_cut)
    cum, out = vo.cum_qty, []
    keep = [f for f in mine if f.cum_qty > vo.cum_qty or f.exec_id in after]
    for fill in _in_venue_order(keep, after, cum):
        why = _unsafe(vo.symbol, vo.side, vo.venue_order_id, fill, after=fill.exec_id in after)
        if why is None and cum + fill.qty <= vo.order_qty:  # else refused (an overfill)
            out.append(fill)
            cum += fill.qty
    return out


def _in_venue_order(
    fills: list[UnmatchedFill], after: Collection[str], cum: Decimal
) -> list[UnmatchedFill]:
    """`fills` in the order they are placed on an order at `cum`: those with a venue cum_qty
    in cum order; one without, after the state (`after`; in the order they came), before the
    first whose cum leaves a gap it fits in (each fill then lands on the venue's cum); the
    rest last."""
    gaps = [f for f in fills if not f.cum_qty and f.exec_id in after]
    out: list[UnmatchedFill] = []
    for fill in sorted((f for f in fills if f.cum_qty), key=lambda f: f.cum_qty):
        while gaps and cum + gaps[0].qty + fill.qty <= fill.cum_qty:
            cum += gaps[0].qty
            out.append(gaps.pop(0))
        out.append(fill)
        cum += fill.qty
    return out + gaps + [f for f in fills if not f.cum_qty and f.exec_id not in after]


def settle(
    order: Order, unmatched: dict[tuple[str, str], UnmatchedFill], record: Mapping[str, Any]
) -> None:
    """`OrderBook.apply_record` applied `record` (a ``new`` or ``fill`` record of `order`)
    while some fills are unmatched: take out those it accounts for. A ``fill`` record's own
    exec id (a fill an adoption placed); for an adopted order, those its venue state holds
    (`explained`, their exec ids recorded: a resend is a duplicate): the adopted state (a
    ``new`` record), and each venue cum_qty a fill inferred from venue state brings it to
    (a ``recon:`` exec id: a catch-up; it heals a torn tail that lost the record of a fill
    the adoption placed: the order caught up to the venue's cum holds that fill). For one
    of ours, the fills such a catch-up provably counted (`caught_up`)."""
    exec_id = record.get("exec_id", "")
    if exec_id:
        unmatched.pop((order.venue, exec_id), None)
    if not order.external:
        held = caught_up(order, unmatched.values(), record) if exec_id.startswith("recon:") else []
    elif record["kind"] == "new":  # not those after the state adopted (module docstring)
        after = record.get("after_state", ())
        held = explained(order, (f for f in unmatched.values() if f.exec_id not in after),
                         order.cum_qty)  # fmt: skip
    elif exec_id.startswith("recon:"):  # a catch-up: within its own qty (module docstring)
        held = explained(order, unmatched.values(), order.reconciled_cum, room=False)
        left = Decimal(record["qty"]) - sum((f.qty for f in held), ZERO)
        for fill in unmatched.values():
            if fill.cl_ord_id == order.cl_ord_id and fill.venue == order.venue:
                safe = _unsafe(order.symbol, order.side, order.venue_order_id, fill, after=True)
                if not fill.cum_qty and safe is None and fill.qty <= left:
                    held.append(fill)
                    left -= fill.qty
    else:
        return
    for fill in held:
        order.exec_ids[fill.exec_id] = None
        del unmatched[(fill.venue, fill.exec_id)]


def caught_up(
    order: Order, fills: Iterable[UnmatchedFill], record: Mapping[str, Any]
) -> list[UnmatchedFill]:
    """Of the unmatched `fills`, those the catch-up `record` (a ``recon:<ClOrdID>:<cum>``
    fill just applied to `order`, one of ours) provably counted: under that ClOrdID, one of
    the order's (an outside replace's new id: fills under it came unmatched before the order
    followed the replace, `actors.oms.outside_replace`), of the order's venue order (both
    known), symbol and side, each lying wholly within the venue cum range the catch-up
    brought it through - or, when the order then holds exactly the venue's cum (every fill
    of the venue order up to it counted, under whatever exec id: a torn tail's resend and
    the catch-up), within that cum (a fill placed by an outcome a kill -9 tore)."""
    cl, _, hi = record["exec_id"].removeprefix("recon:").rpartition(":")
    if cl not in order.cl_ord_ids or not order.venue_order_id:
        return []
    lo = ZERO if order.cum_qty == Decimal(hi) else Decimal(hi) - Decimal(record["qty"])
    return [
        f
        for f in fills
        if f.cl_ord_id == cl
        and f.venue == order.venue
        and f.venue_order_id == order.venue_order_id
        and (f.symbol, f.side) == (order.symbol, order.side)
        and f.cum_qty
        and lo <= f.cum_qty - f.qty
        and f.cum_qty <= Decimal(hi)
    ]


def explained(
    order: Order, fills: Iterable[UnmatchedFill], cum: Decimal, *, room: bool = True
) -> list[UnmatchedFill]:
    """Of the unmatched `fills`, those of the adopted `order` (its ClOrdID, and not of
    another venue order: `_venue_order`) its venue state at `cum` holds: a venue cum_qty
    at most `cum`; with `room`, one without a cum_qty while `cum` has room for it, in the
    order they came (module docstring)."""
    mine = [
        f
        for f in fills
        if f.cl_ord_id == order.cl_ord_id
        and f.venue == order.venue
        and _venue_order(order.venue_order_id, f) is not False
    ]
    held = [f for f in mine if f.cum_qty and f.cum_qty <= cum]
    left = cum - sum((f.qty for f in held), ZERO)
    for fill in mine if room else ():
        if not fill.cum_qty and fill.qty <= left:
            held.append(fill)
            left -= fill.qty
    return held


def _venue_order(venue_order_id: str, fill: UnmatchedFill) -> bool | None:
    """Whether `fill` is of the venue order `venue_order_id`; None: one of them is unknown
    (a record from before fills kept it, a venue that does not say)."""
    if not venue_order_id or not fill.venue_order_id:
        return None
    return fill.venue_order_id == venue_order_id


def place(
    book: FillBook,
    order: Order,
    fill: UnmatchedFill,
    taken_cum: Decimal,
    ts_ns: int,
    *,
    taken: str = "adopted",
    after: bool = False,
) -> Outcome:
    """Apply `fill`, which came after the state `order` was `taken` at (adopted, or
    replaced at the venue by someone else: `actors.oms.executions`), on top of `order`;
    refused (and escalated: it stays unmatched) if that cannot be done safely. `after`: it
    has no venue cum_qty but is numbered after that state (module docstring)."""
    why = _unsafe(order.symbol, order.side, order.venue_order_id, fill, after=after)
    esc: tuple[Escalation, ...] = ()
    if why is None:
        out = book.apply_fill(order.client_order_id, fill.exec_id, fill.qty, fill.px, ts_ns,
                              venue_cum_qty=fill.cum_qty,
                              venue_order_id=fill.venue_order_id)  # fmt: skip
        if out.applied:
            return out
        why, esc = out.reason, out.escalations
    detail = (
        f"{fill.exec_id}: {fill.qty} {fill.symbol} @ {fill.px}, venue cum "
        f"{fill.cum_qty or 'unknown'}, after {order.cl_ord_id} was {taken} at cum "
        f"{taken_cum}: {why}; it stays unmatched"
    )
    unplaced = Escalation("unplaced_fill", detail, order.client_order_id)
    return Outcome.refused(order, why, *esc, unplaced)


def _unsafe(
    symbol: str, side: Side, venue_order_id: str, fill: UnmatchedFill, *, after: bool = False
) -> str | None:
    """Why `fill` cannot be placed on the adopted order (`symbol`, `side`, venue order
    `venue_order_id`) at all (None: `OrderBook.apply_fill` decides); `after`: numbered
    after the state adopted, so its lack of a venue cum_qty does not matter."""
    same = _venue_order(venue_order_id, fill)
    if same is False:
        return f"a fill of venue order {fill.venue_order_id}, the order's is {venue_order_id}"
    if same is None:
        return "venue order unknown: whether it is the order's is unknown"
    if not fill.cum_qty and not after:
        return "no venue cum_qty: whether the adopted state holds it is unknown"
    if fill.symbol and fill.symbol != symbol:
        return f"symbol {fill.symbol}, the order's {symbol}"
    if fill.side is not None and fill.side != side:
        return f"side {fill.side}, the order's {side}"
    return None


def known_at_venue(order: Order, vo: VenueOrder) -> Outcome:
    """`OrderBook.adopt` of a ClOrdID we know: a duplicate, except that a terminal order of
    ours the venue shows in another state (one read back from the archive, so the
    reconciliation planner did not see it) is escalated as the planner would."""
    if order.is_terminal and vo.status != order.status:
        detail = f"{vo.cl_ord_id}: local {order.status}, venue {vo.status}"
        esc = Escalation("terminal_mismatch", detail, order.client_order_id)
        return Outcome.refused(order, "a terminal order of ours", esc)
    return Outcome("duplicate", order, reason="known")
