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

Fills of its ClOrdID recorded unmatched before the adoption (`UnmatchedFill`) are in the
venue state adopted, or came after it (the venue answered before the adoption: a pass
spans loop turns):
- In it (`explained`): a venue cum_qty at most the adopted one; one without a cum_qty while
  the adopted cum has room for it, in the order they came. Applying the ``new`` record
  takes them out of the unmatched fills and records their exec ids (a resend of one is a
  duplicate), live and on replay alike.
- After it: a venue cum_qty above the adopted one; no cum_qty, but numbered after the cut
  of the open-orders answer adopted (`Adopt.cut`: the answer reflects exactly the
  executions numbered up to it) and placeable. `after_state` decides the latter, from the
  numbers the exec log kept (`ExecLog.after_cut`); the ``new`` record names them
  (``after_state``), so that neither it nor its replay takes them as held for the room.

A fill after the state is placed on top of the order, in venue order (`_in_venue_order`):
a ``fill`` record of its own exec id through `OrderBook.apply_fill` (applying it takes it
out of the unmatched fills), in the same outcome, whose fill is then all of the order's
(fill_qty its cum_qty); the fills metric counts it once more (`actors.oms.outcome_metrics`)
and the venue link notes it in the exec cut's ring at its own execution number
(`ExecLog.note_placed`). One that cannot be placed safely (`_unsafe`: another venue order,
symbol or side; no cum_qty and not after the state; an overfill ...) stays unmatched and
is escalated (`unplaced_fill`; every later pass escalates it as an unmatched fill).

A catch-up of the order (a later fill inferred from the venue's cum_qty, ``recon:``) takes
out the unmatched fills of its ClOrdID that the venue's cum now holds (`settle`): one with
a venue cum_qty up to that cum; one without that the adoption could place, while it fits in
the catch-up's qty (it came before the adoption, so before that cum). This heals a kill -9
tearing an adoption's journal commit between its ``new`` and ``fill`` records
(`actors.oms.journal`): the order replays at the adopted cum with the fill unmatched, and
the next pass's catch-up counts it and takes it out.

A ClOrdID is unique only among a venue's open orders (or within a FIX trading day): an
unmatched fill of it may be of an earlier venue order of the same external party. So the
fill's venue order id (`UnmatchedFill.venue_order_id`) decides first: a fill of another
venue order than the adopted one is neither held nor placed (it stays unmatched and is
escalated, as any fill the book cannot account for). Where either id is unknown (a record
from before fills kept it, a venue that does not say), the conservative side of each
step: such a fill is taken as held when the rules above say so (the adopted state then
holds the quantity either way, and a fill of another order shows as a position difference
at the heartbeat), but never placed on the order (that changes order and position on a
guess), and a catch-up takes it out only by its venue cum_qty.

Known limits (strict xfails). A fill without a cum_qty not known to be after the state (no
number, or not placeable) that the room takes as held, or that stays unmatched, is held by
a cold start's opening position and counted again by the order's catch-up
(tests/oms/test_adoption_cold_unplaced.py). A fill numbered up to the answer's cut but
written by the venue after the order's own report (a multi-message answer) is taken as in
the state and counted twice the same way: the cut marks the answer's last report, not
each order's (tests/oms/test_adoption_cut_review.py).
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
        fee: Decimal = ...,
        fee_asset: str = ...,
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
    book: AdoptBook, venue: str, vo: VenueOrder, ts_ns: int, after_cut: AfterCut = never
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
    vo: VenueOrder, fills: Iterable[UnmatchedFill], after_cut: AfterCut = never
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
    in cum order, each after the ones without that are after the state (`after`, in the
    order they came) and fit in the gap below its cum, so that each lands on the venue's
    cum; the rest last."""
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
        placeable = (
            f
            for f in unmatched.values()
            if f.cl_ord_id == order.cl_ord_id
            and f.venue == order.venue
            and _unsafe(order.symbol, order.side, order.venue_order_id, f, after=True) is None
        )
        held += _fitting(placeable, Decimal(record["qty"]) - sum((f.qty for f in held), ZERO))
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
    if room:
        held += _fitting(mine, cum - sum((f.qty for f in held), ZERO))
    return held


def _fitting(fills: Iterable[UnmatchedFill], left: Decimal) -> list[UnmatchedFill]:
    """Of `fills`, those without a venue cum_qty that fit in `left`, in the order they
    came, each taking its qty from it."""
    out = []
    for fill in fills:
        if not fill.cum_qty and fill.qty <= left:
            out.append(fill)
            left -= fill.qty
    return out


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
                              venue_cum_qty=fill.cum_qty, venue_order_id=fill.venue_order_id,
                              fee=fill.fee, fee_asset=fill.fee_asset)  # fmt: skip
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
