"""Order state machine, fills, positions and book replay."""

from __future__ import annotations

import itertools
import random
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgpack
import pytest

from actors.oms.event_wire import order_event_body
from actors.oms.journal import Journal
from actors.oms.lifecycle import LIVE, STAY, TRANSITIONS, Event, transition
from actors.oms.order_book import OrderBook
from actors.oms.orders import Order, Outcome, base_cl_ord_id, request_cl_ord_id
from actors.oms.positions import Position
from actors.oms.venue_request import venue_request
from protocol.messages import (
    ExecReport,
    OrderStatus,
    OrdType,
    ReplaceOrder,
    RiskVerdict,
    Side,
    SubmitOrder,
    TimeInForce,
    VenueOrder,
)

S = OrderStatus
D = Decimal
V = "sim"
_exec_ids = itertools.count(1)


def _submit(
    coid: str = "o1",
    qty: str = "10",
    side: Side = Side.BUY,
    symbol: str = "ABC",
    price: str | None = "100",
) -> SubmitOrder:
    return SubmitOrder(
        client_order_id=coid,
        venue=V,
        symbol=symbol,
        side=side,
        qty=D(qty),
        order_type=OrdType.LIMIT if price else OrdType.MARKET,
        price=D(price) if price else None,
    )


def _exec(kind: str, cl: str, *, exec_id: str | None = None, **kw: Any) -> ExecReport:
    eid = f"E{next(_exec_ids)}" if exec_id is None else exec_id
    return ExecReport(venue=V, exec_id=eid, kind=kind, cl_ord_id=cl, **kw)  # type: ignore[arg-type]


def _fill(cl: str, qty: str, px: str, exec_id: str | None = None, **kw: Any) -> ExecReport:
    return _exec("fill", cl, exec_id=exec_id, last_qty=D(qty), last_px=D(px), **kw)


def _status(order: Order) -> OrderStatus:
    """Read the status through a call, so a type checker does not narrow it across
    mutations of the order."""
    return order.status


def _live_order(book: OrderBook, coid: str = "o1", **kw: Any) -> Order:
    """Submit, approve and accept an order; returns it ACCEPTED."""
    assert book.submit(_submit(coid, **kw), 1).applied
    assert book.risk_verdict(RiskVerdict(client_order_id=coid, approved=True), 2).applied
    order = book.get(coid)
    assert order is not None
    assert book.apply_exec(_exec("accepted", order.cl_ord_id, venue_order_id="V1"), 3).applied
    return order


# ------------------------------------------------------------------------- transition table

_ALL_EVENTS = list(Event)
# Expected table, restated independently: state -> {event: target}; absent = refused.
_AT_VENUE_COMMON = {
    Event.CANCELLED: S.CANCELLED,
    Event.EXPIRED: S.EXPIRED,
    Event.FULL_FILL: S.FILLED,
}
# replaced at the venue by someone else: live on its terms, or a request of ours pending still
_OUTSIDE_LIVE = {Event.REPLACED_EXTERNALLY: LIVE}
_OUTSIDE_STAY = {Event.REPLACED_EXTERNALLY: STAY}
_DONE_FILLS = {Event.PARTIAL_FILL: STAY, Event.FULL_FILL: STAY}
EXPECTED: dict[OrderStatus, dict[Event, Any]] = {
    S.PENDING_RISK: {Event.RISK_APPROVED: S.PENDING_SUBMIT, Event.RISK_REJECTED: S.REJECTED},
    S.PENDING_SUBMIT: {
        **_OUTSIDE_LIVE,
        Event.TIMEOUT: S.UNKNOWN,
        Event.DUPLICATE_REJECTED: S.UNKNOWN,
        Event.RESUBMIT: S.PENDING_SUBMIT,
        Event.RESUBMIT_UNSENT: STAY,
        Event.ACCEPTED: S.ACCEPTED,
        Event.REJECTED: S.REJECTED,
        Event.PARTIAL_FILL: S.PARTIALLY_FILLED,
        **_AT_VENUE_COMMON,
    },
    S.UNKNOWN: {
        **_OUTSIDE_LIVE,
        Event.RESUBMIT: S.PENDING_SUBMIT,
        Event.RESUBMIT_UNSENT: STAY,
        Event.ACCEPTED: S.ACCEPTED,
        Event.REJECTED: S.REJECTED,
        Event.PARTIAL_FILL: S.PARTIALLY_FILLED,
        **_AT_VENUE_COMMON,
    },
    S.ACCEPTED: {
        **_OUTSIDE_LIVE,
        Event.PARTIAL_FILL: S.PARTIALLY_FILLED,
        Event.CANCEL_REQUESTED: S.PENDING_CANCEL,
        Event.REPLACE_REQUESTED: S.PENDING_REPLACE,
        Event.REPLACED: STAY,
        **_AT_VENUE_COMMON,
    },
    S.PARTIALLY_FILLED: {
        **_OUTSIDE_LIVE,
        Event.PARTIAL_FILL: S.PARTIALLY_FILLED,
        Event.CANCEL_REQUESTED: S.PENDING_CANCEL,
        Event.REPLACE_REQUESTED: S.PENDING_REPLACE,
        Event.REPLACED: STAY,
        **_AT_VENUE_COMMON,
    },
    S.PENDING_CANCEL: {
        **_OUTSIDE_STAY,
        Event.PARTIAL_FILL: STAY,
        Event.CANCEL_REJECTED: LIVE,
        Event.REPLACED: STAY,
        **_AT_VENUE_COMMON,
    },
    S.PENDING_REPLACE: {
        **_OUTSIDE_STAY,
        Event.PARTIAL_FILL: STAY,
        Event.CANCEL_REJECTED: LIVE,
        Event.REPLACED: LIVE,
        **_AT_VENUE_COMMON,
    },
    S.FILLED: {},
    S.CANCELLED: dict(_DONE_FILLS),
    S.EXPIRED: dict(_DONE_FILLS),
    S.REJECTED: dict(_DONE_FILLS),
}


def test_transition_table_matches_the_specification() -> None:
    """Every (state, event) pair is either the expected target or refused (None)."""
    assert set(EXPECTED) == set(OrderStatus)
    for state, event in itertools.product(OrderStatus, Event):
        assert transition(state, event) == EXPECTED[state].get(event), (state, event)


def test_terminal_states_stay_terminal_and_unknown_leaves_only_on_venue_evidence() -> None:
    """No event moves a terminal order out of its state; UNKNOWN moves only on venue events
    or a resubmit (taken back, it stays); PENDING_RISK moves only on the risk verdict."""
    venue_events = {
        Event.ACCEPTED,
        Event.REJECTED,
        Event.PARTIAL_FILL,
        Event.FULL_FILL,
        Event.CANCELLED,
        Event.EXPIRED,
        Event.REPLACED_EXTERNALLY,
    }
    for (state, event), target in TRANSITIONS.items():
        if state in {S.FILLED, S.CANCELLED, S.EXPIRED, S.REJECTED}:
            assert target == STAY
        if state == S.UNKNOWN:
            assert event in venue_events | {Event.RESUBMIT, Event.RESUBMIT_UNSENT}
            assert event != Event.RESUBMIT_UNSENT or target == STAY
        if state == S.PENDING_RISK:
            assert event in {Event.RISK_APPROVED, Event.RISK_REJECTED}


def _order_in(state: OrderStatus) -> OrderBook:
    cum = {S.PARTIALLY_FILLED: D(4), S.FILLED: D(10)}.get(state, D(0))
    pending = {S.PENDING_CANCEL: "o1.c1", S.PENDING_REPLACE: "o1.r1"}.get(state, "")
    # "o1.r9": a replace given up on earlier (its late confirmation still applies)
    order = Order(
        "o1",
        V,
        "ABC",
        Side.BUY,
        D(10),
        OrdType.LIMIT,
        D(100),
        TimeInForce.DAY,
        state,
        "o1",
        ("o1", "o1.r9", *((pending,) if pending else ())),
        cum_qty=cum,
        notional=cum * 100,
        request_seq=1 if pending else 0,
        pending_cl_ord_id=pending,
        pending_qty=D(12) if state == S.PENDING_REPLACE else None,
        pending_price=D(100) if state == S.PENDING_REPLACE else None,
        resubmits=1,  # one to take back (Event.RESUBMIT_UNSENT)
    )
    return OrderBook.from_dict({"orders": [order.to_dict()], "positions": [], "unmatched": []})


def _fire(book: OrderBook, event: Event) -> Outcome:
    o = book.get("o1")
    assert o is not None
    pend = o.pending_cl_ord_id
    calls = {
        Event.RISK_APPROVED: lambda: book.risk_verdict(
            RiskVerdict(client_order_id="o1", approved=True), 9
        ),
        Event.RISK_REJECTED: lambda: book.risk_verdict(
            RiskVerdict(client_order_id="o1", approved=False, reason="limit"), 9
        ),
        Event.TIMEOUT: lambda: book.mark_unknown("o1", "ack timeout", 9),
        Event.RESUBMIT: lambda: book.mark_resubmitted("o1", 9),
        Event.RESUBMIT_UNSENT: lambda: book.apply_exec(_exec("unsent", "o1"), 9),
        Event.CANCEL_REQUESTED: lambda: book.request_cancel("o1", 9),
        Event.REPLACE_REQUESTED: lambda: book.request_replace(
            ReplaceOrder(client_order_id="o1", qty=D(12)), 9
        ),
        Event.ACCEPTED: lambda: book.apply_exec(_exec("accepted", "o1"), 9),
        Event.REJECTED: lambda: book.apply_exec(_exec("rejected", "o1", text="no"), 9),
        Event.DUPLICATE_REJECTED: lambda: book.apply_exec(
            _exec("rejected", "o1", text="Duplicate ClOrdID"), 9
        ),
        Event.PARTIAL_FILL: lambda: book.apply_exec(_fill("o1", "2", "100"), 9),
        Event.FULL_FILL: lambda: book.apply_exec(
            _fill("o1", str(max(o.qty - o.cum_qty, 1)), "100"), 9
        ),
        Event.CANCELLED: lambda: book.apply_exec(
            _exec("cancelled", pend or "o1.c9", orig_cl_ord_id="o1"), 9
        ),
        Event.REPLACED: lambda: book.apply_exec(
            _exec(
                "replaced",
                pend if ".r" in pend else "o1.r9",
                orig_cl_ord_id="o1",
                order_qty=D(12),
                price=D(101),
            ),
            9,
        ),
        Event.CANCEL_REJECTED: lambda: book.apply_exec(
            _exec("cancel_rejected", pend or "o1.c9", orig_cl_ord_id="o1"), 9
        ),
        Event.REPLACED_EXTERNALLY: lambda: book.apply_exec(
            _exec(
                "replaced",
                "GUI-1",
                orig_cl_ord_id="o1",
                order_qty=D(12),
                price=D(101),
                symbol="ABC",
                side=Side.BUY,
            ),  # a replace of another order is not followed
            9,
        ),
        Event.EXPIRED: lambda: book.apply_exec(_exec("expired", "o1"), 9),
    }
    return calls[event]()


@pytest.mark.parametrize("state", list(OrderStatus))
@pytest.mark.parametrize("event", _ALL_EVENTS)
def test_every_state_event_pair_is_applied_or_refused(state: OrderStatus, event: Event) -> None:
    """Through the book's public commands, an event the table allows is applied with the
    table's target; any other is not applied and leaves the book byte-for-byte unchanged."""
    book = _order_in(state)
    before = book.to_dict()
    out = _fire(book, event)
    target = EXPECTED[state].get(event)
    order = book.get("o1")
    assert order is not None
    if target is None:
        assert not out.applied and out.records == ()
        assert book.to_dict() == before
        return
    assert out.applied, out.reason
    if target == STAY:
        assert order.status == state
    elif target == LIVE:
        expected = S.PARTIALLY_FILLED if order.cum_qty else S.ACCEPTED
        assert order.status == expected
        assert order.pending_cl_ord_id == ""
    else:
        assert order.status == target
    replayed = OrderBook.from_dict(before)
    for rec in out.records:
        replayed.apply_record(rec)
    assert replayed.to_dict() == book.to_dict()


# ------------------------------------------------------------------------- ClOrdID scheme


def test_cl_ord_id_is_deterministic_and_fix_friendly() -> None:
    """A safe client order id is used as is; anything else hashes to 'h.' + 20 base32
    chars; request ids append .c{n} / .r{n}; all stay in [A-Za-z0-9_.-]."""
    assert base_cl_ord_id("strat-1_0042") == "strat-1_0042"
    for coid in ("with space", "x" * 25, "ünï", "a.b", "o1.r1"):
        cl = base_cl_ord_id(coid)
        assert cl == base_cl_ord_id(coid) and cl.startswith("h.") and len(cl) == 22
        assert re.fullmatch(r"[a-z0-9.]+", cl)
    assert base_cl_ord_id("a b") != base_cl_ord_id("a  b")
    assert request_cl_ord_id("o1", "c", 3) == "o1.c3"
    assert len(request_cl_ord_id("x" * 24, "r", 9999)) == 30


def test_cancel_and_replace_ids_are_numbered_from_the_journal() -> None:
    """Each cancel/replace request takes the next n, and replay reproduces the same ids,
    so a request resent after a crash carries the same ClOrdID."""
    book = OrderBook()
    order = _live_order(book)
    records: list[dict[str, Any]] = []
    out = book.request_replace(ReplaceOrder(client_order_id="o1", qty=D(12)), 4)
    records += out.records
    assert order.pending_cl_ord_id == "o1.r1"
    records += book.apply_exec(
        _exec("replaced", "o1.r1", orig_cl_ord_id="o1", order_qty=D(12), price=D(100)), 5
    ).records
    assert order.cl_ord_id == "o1.r1" and order.qty == 12 and order.status == S.ACCEPTED
    records += book.request_cancel("o1", 6).records
    assert order.pending_cl_ord_id == "o1.c2"
    assert book.find(V, "o1.c2") is order and book.find(V, "o1") is order
    msg = venue_request(order)
    assert msg is not None and msg.type == "cancel_on_venue" and msg.orig_cl_ord_id == "o1.r1"


# ------------------------------------------------------------------------- fills


def test_fill_is_applied_once_per_exec_id() -> None:
    """A redelivered execution (same exec id) is a duplicate: cum and position unchanged."""
    book = OrderBook()
    order = _live_order(book)
    assert book.apply_exec(_fill("o1", "3", "100", exec_id="F1"), 4).applied
    again = book.apply_exec(_fill("o1", "3", "100", exec_id="F1"), 5)
    assert again.kind == "duplicate" and again.records == ()
    assert order.cum_qty == 3 and book.position(V, "ABC").qty == 3


def test_fill_without_exec_id_is_refused() -> None:
    """A fill that cannot be deduplicated (empty exec id) is never applied."""
    book = OrderBook()
    order = _live_order(book)
    assert book.apply_exec(_fill("o1", "3", "100", exec_id=""), 4).kind == "refused"
    assert book.apply_fill("o1", "", D(3), D(100), 4).kind == "refused"
    assert order.cum_qty == 0


def test_overfill_is_refused_and_escalated() -> None:
    """A fill that would take cum_qty past qty is not applied and yields an escalation."""
    book = OrderBook()
    order = _live_order(book)
    book.apply_exec(_fill("o1", "6", "100"), 4)
    out = book.apply_exec(_fill("o1", "5", "100"), 5)
    assert out.kind == "refused" and out.escalations[0].kind == "overfill"
    assert order.cum_qty == 6 and order.status == S.PARTIALLY_FILLED
    assert book.position(V, "ABC").qty == 6


def test_avg_px_is_the_quantity_weighted_mean_of_fill_prices() -> None:
    """avg_px = sum(q*px)/sum(q) over the fills; a full fill makes the order FILLED."""
    book = OrderBook()
    order = _live_order(book)
    book.apply_exec(_fill("o1", "3", "100"), 4)
    out = book.apply_exec(_fill("o1", "7", "101"), 5)
    assert out.fill_qty == 7 and out.fill_px == 101
    assert order.avg_px == D("100.7") and order.status == S.FILLED
    assert order.view().avg_px == D("100.7") and order.leaves_qty == 0


def test_venue_cum_qty_mismatch_is_reported() -> None:
    """The venue's cum_qty on a fill is compared with ours: behind is an escalation, ahead
    (a reordered or missed fill) is reported as venue_cum_ahead."""
    book = OrderBook()
    _live_order(book)
    out = book.apply_exec(_fill("o1", "3", "100", cum_qty=D(5)), 4)
    assert [e.kind for e in out.escalations] == ["venue_cum_ahead"]
    out = book.apply_exec(_fill("o1", "3", "100", cum_qty=D(5)), 5)
    assert [e.kind for e in out.escalations] == ["venue_cum_behind"]
    out = book.apply_exec(_fill("o1", "1", "100", cum_qty=D(7)), 6)
    assert out.escalations == ()


def test_fill_racing_a_cancel_fills_the_order() -> None:
    """PENDING_CANCEL + a partial fill stays PENDING_CANCEL; a fill of the rest makes it
    FILLED and the late cancel confirmation is refused."""
    book = OrderBook()
    order = _live_order(book)
    book.request_cancel("o1", 4)
    book.apply_exec(_fill("o1", "4", "100"), 5)
    assert _status(order) == S.PENDING_CANCEL
    book.apply_exec(_fill("o1", "6", "100"), 6)
    assert _status(order) == S.FILLED and order.pending_cl_ord_id == ""
    late = book.apply_exec(_exec("cancelled", "o1.c1", orig_cl_ord_id="o1"), 7)
    assert late.kind == "refused" and _status(order) == S.FILLED


def test_cancel_reject_returns_to_the_live_state() -> None:
    """A rejected cancel puts the order back to ACCEPTED / PARTIALLY_FILLED by cum_qty; a
    stale reject for an older request id is refused."""
    book = OrderBook()
    order = _live_order(book)
    book.apply_exec(_fill("o1", "4", "100"), 4)
    book.request_cancel("o1", 5)
    assert book.apply_exec(_exec("cancel_rejected", "o1.c1", orig_cl_ord_id="o1"), 6).applied
    assert _status(order) == S.PARTIALLY_FILLED
    book.request_cancel("o1", 7)
    stale = book.apply_exec(_exec("cancel_rejected", "o1.c1", orig_cl_ord_id="o1"), 8)
    assert stale.kind == "refused" and _status(order) == S.PENDING_CANCEL


def test_a_refused_cancel_request_returns_the_order_to_its_live_state() -> None:
    """What the connector tells for a cancel the venue rejected unread (a session Reject
    of our F, `refused_request_report`): a cancel reject naming only the request id, with
    no OrdStatus and no OrigClOrdID; the order leaves PENDING_CANCEL."""
    book = OrderBook()
    order = _live_order(book)
    book.request_cancel("o1", 5)
    pending = order.pending_cl_ord_id
    refused = _exec("cancel_rejected", pending, exec_id=f"cxlrej:{pending}", text="refused")
    assert book.apply_exec(refused, 6).applied
    assert _status(order) == S.ACCEPTED and order.pending_cl_ord_id == ""


def test_order_ending_on_the_terms_of_a_replace_whose_report_was_lost_takes_them() -> None:
    """A replace takes effect at the venue, but its report is lost (the OMS saw a reject
    for it, or nothing): the cancel confirmation carries the venue's terms, and the order
    ends on them, also after a journal replay. With no replace of ours in the chain a
    difference is not adopted (reconciliation escalates it)."""
    book = OrderBook()
    outcomes = [
        book.submit(_submit("o1"), 1),
        book.risk_verdict(RiskVerdict(client_order_id="o1", approved=True), 2),
        book.apply_exec(_exec("accepted", "o1", venue_order_id="V1"), 3),
        book.request_replace(ReplaceOrder(client_order_id="o1", qty=D(12), price=D(101)), 4),
        book.apply_exec(_exec("cancel_rejected", "o1.r1", orig_cl_ord_id="o1"), 5),
        book.request_cancel("o1", 6),
        book.apply_exec(_exec("cancelled", "o1.c2", orig_cl_ord_id="o1", order_qty=D(12),
                              price=D(101)), 7),
    ]  # fmt: skip
    assert all(out.applied for out in outcomes)
    order = book.get("o1")
    assert order is not None and _status(order) == S.CANCELLED
    assert (order.qty, order.price) == (D(12), D(101))
    replayed = OrderBook()
    for record in msgpack.unpackb(msgpack.packb([r for o in outcomes for r in o.records])):
        replayed.apply_record(record)
    assert replayed.to_dict() == book.to_dict()

    plain = OrderBook()
    other = _live_order(plain)
    plain.request_cancel("o1", 4)
    plain.apply_exec(_exec("cancelled", "o1.c1", orig_cl_ord_id="o1", order_qty=D(8)), 5)
    assert _status(other) == S.CANCELLED and other.qty == D(10)


def test_replace_confirmed_after_we_gave_up_on_it_takes_effect() -> None:
    """The answer to a resend of a replace was a reject (duplicate ClOrdID), so the order
    went back to ACCEPTED on its old terms; the venue's confirmation of the first send then
    arrives: the order takes the replace's id and terms, whatever request is pending since.
    A replace confirmation under an id that is not a replace of ours is refused."""
    book = OrderBook()
    order = _live_order(book)
    book.request_replace(ReplaceOrder(client_order_id="o1", qty=D(12), price=D(101)), 4)
    assert book.apply_exec(
        _exec("cancel_rejected", "o1.r1", orig_cl_ord_id="o1", text="duplicate ClOrdID"), 5
    ).applied
    assert _status(order) == S.ACCEPTED and order.qty == D(10)
    book.request_cancel("o1", 6)
    late = book.apply_exec(
        _exec("replaced", "o1.r1", orig_cl_ord_id="o1", order_qty=D(12), price=D(101)), 7
    )
    assert late.applied and _status(order) == S.PENDING_CANCEL
    assert (order.cl_ord_id, order.qty, order.price) == ("o1.r1", D(12), D(101))
    assert order.pending_cl_ord_id == "o1.c2"
    bogus = book.apply_exec(_exec("replaced", "o1.c2", orig_cl_ord_id="o1.r1", order_qty=D(20)), 8)
    assert bogus.kind == "refused" and order.qty == D(12)


def test_fill_under_the_replace_id_before_the_replace_report_takes_the_new_terms() -> None:
    """qty 10 replaced to 20: the venue applies it and fills 15 under the new ClOrdID, and
    the fill report overtakes the replace report. The fill proves the replace: the order
    takes its terms first (no overfill against the old 10), then the fill; the replace
    report, when it comes, changes nothing."""
    book = OrderBook()
    order = _live_order(book)
    book.request_replace(ReplaceOrder(client_order_id="o1", qty=D(20)), 4)
    out = book.apply_exec(
        _fill("o1.r1", "15", "100", order_qty=D(20), price=D(100), cum_qty=D(15)), 5
    )
    assert out.applied and not out.escalations and out.fill_qty == D(15)
    assert (order.cl_ord_id, order.qty, order.cum_qty) == ("o1.r1", D(20), D(15))
    assert _status(order) == S.PARTIALLY_FILLED and order.pending_cl_ord_id == ""
    late = book.apply_exec(_exec("replaced", "o1.r1", orig_cl_ord_id="o1", order_qty=D(20)), 6)
    assert late.kind == "duplicate" and order.cum_qty == D(15)
    replayed = OrderBook.from_dict(msgpack.unpackb(msgpack.packb(book.to_dict())))
    assert replayed.to_dict() == book.to_dict()


def test_final_report_on_replaced_terms_with_missed_fills_counts_both_in_order() -> None:
    """qty 10, replace to 15 given up on, cancel sent. The venue had applied the replace,
    filled 10 and then cancelled; only the cancel report arrives (qty 15, cum 10). The
    order takes the replace, then the 10 (PARTIALLY_FILLED of 15, not FILLED of 10), then
    ends CANCELLED - no late-fill escalation."""
    book = OrderBook()
    order = _live_order(book)
    book.request_replace(ReplaceOrder(client_order_id="o1", qty=D(15)), 4)
    book.apply_exec(_exec("cancel_rejected", "o1.r1", orig_cl_ord_id="o1"), 5)
    book.request_cancel("o1", 6)
    out = book.apply_exec(
        _exec(
            "cancelled",
            "o1.c2",
            orig_cl_ord_id="o1.r1",
            order_qty=D(15),
            price=D(100),
            cum_qty=D(10),
            avg_px=D(100),
        ),
        7,
    )
    assert out.applied and not out.escalations and out.fill_qty == D(10)
    assert (_status(order), order.cl_ord_id, order.qty, order.cum_qty) == (
        S.CANCELLED,
        "o1.r1",
        D(15),
        D(10),
    )


def test_replace_report_after_a_fill_that_showed_it_infers_nothing() -> None:
    """F1 (10, cum 10) under o1; F3 (5, cum 30) under o1.r1 overtakes the rest and applies
    the replace; the replace report (cum 25) is then a duplicate and infers no fill, so the
    delayed F2 (15, cum 25) still counts: cum 30 like the venue."""
    book = OrderBook()
    order = _live_order(book, qty="40")
    book.request_replace(ReplaceOrder(client_order_id="o1", qty=D(50)), 4)
    book.apply_exec(_fill("o1", "10", "100", exec_id="F1", cum_qty=D(10)), 5)
    book.apply_exec(_fill("o1.r1", "5", "100", exec_id="F3", order_qty=D(50), cum_qty=D(30)), 6)
    dup = book.apply_exec(
        _exec(
            "replaced", "o1.r1", orig_cl_ord_id="o1", order_qty=D(50), cum_qty=D(25), avg_px=D(100)
        ),
        7,
    )
    assert dup.kind == "duplicate"
    assert book.apply_exec(_fill("o1", "15", "100", exec_id="F2", cum_qty=D(25)), 8).applied
    assert order.cum_qty == D(30) and book.position(V, "ABC").qty == D(30)


def test_fill_under_an_old_id_is_just_a_fill() -> None:
    """A fill under the live id while a replace is pending does not apply the replace."""
    book = OrderBook()
    order = _live_order(book)
    book.request_replace(ReplaceOrder(client_order_id="o1", qty=D(20)), 4)
    assert book.apply_exec(_fill("o1", "4", "100", order_qty=D(10)), 5).applied
    assert (order.cl_ord_id, order.qty, _status(order)) == ("o1", D(10), S.PENDING_REPLACE)


def test_fills_a_final_report_says_we_missed_are_counted_once() -> None:
    """The venue's fill reports were lost (its crash); its cancel confirmation says cum 30
    @ 200.96: the order ends CANCELLED with those 30 counted, in the position too, and the
    fill reports, should they still arrive, are recognised as counted."""
    book = OrderBook()
    order = _live_order(book, qty="100", price="200.96")
    book.request_cancel("o1", 4)
    out = book.apply_exec(
        _exec("cancelled", "o1.c1", orig_cl_ord_id="o1", cum_qty=D(30), avg_px=D("200.96")), 5
    )
    assert out.applied and out.fill_qty == D(30) and out.fill_px == D("200.96")
    assert _status(order) == S.CANCELLED and order.cum_qty == D(30)
    assert not out.escalations  # counted before the cancel: not a late fill
    assert book.position(V, "ABC").qty == D(30)
    for eid, qty, cum in (("F1", "20", "20"), ("F2", "10", "30")):
        again = book.apply_exec(_fill("o1", qty, "200.96", exec_id=eid, cum_qty=D(cum)), 6)
        assert again.kind == "duplicate", again
    assert order.cum_qty == D(30) and book.position(V, "ABC").qty == D(30)


def test_fills_a_replace_report_says_we_missed_count_on_the_new_terms() -> None:
    """qty 50 replaced to 80; the replace report says cum 60 (fills we never got reports
    of, beyond the old qty): the replace is applied first, then the 60."""
    book = OrderBook()
    order = _live_order(book, qty="50")
    book.request_replace(ReplaceOrder(client_order_id="o1", qty=D(80)), 4)
    out = book.apply_exec(
        _exec(
            "replaced",
            "o1.r1",
            orig_cl_ord_id="o1",
            order_qty=D(80),
            price=D(100),
            cum_qty=D(60),
            avg_px=D(100),
        ),
        5,
    )
    assert out.applied and (order.qty, order.cum_qty) == (D(80), D(60))
    assert _status(order) == S.PARTIALLY_FILLED and book.position(V, "ABC").qty == D(60)


def test_late_fill_on_cancelled_order_is_applied_and_escalated() -> None:
    """A new fill for a CANCELLED order within qty is applied (positions follow the venue)
    and flagged; the status stays CANCELLED."""
    book = OrderBook()
    order = _live_order(book)
    book.apply_exec(_exec("cancelled", "o1"), 4)
    out = book.apply_exec(_fill("o1", "2", "100"), 5)
    assert out.applied and out.escalations[0].kind == "late_fill"
    assert order.status == S.CANCELLED and order.cum_qty == 2


def test_duplicate_clordid_reject_makes_the_order_unknown() -> None:
    """The venue refusing a resend as a duplicate ClOrdID is evidence it has the order:
    PENDING_SUBMIT becomes UNKNOWN, never REJECTED."""
    book = OrderBook()
    book.submit(_submit(), 1)
    book.risk_verdict(RiskVerdict(client_order_id="o1", approved=True), 2)
    book.apply_exec(_exec("rejected", "o1", text="Duplicate ClOrdID (OrdRejReason=6)"), 3)
    assert book.get("o1").status == S.UNKNOWN  # type: ignore[union-attr]


def test_status_report_applies_the_missed_fill_once() -> None:
    """A status report whose cum_qty is ahead of ours synthesizes the missing fill at the
    price implied by the venue's avg_px, with an exec id that makes a repeat a no-op."""
    book = OrderBook()
    order = _live_order(book)
    book.apply_exec(_fill("o1", "2", "100"), 4)
    rep = _exec("status", "o1", cum_qty=D(6), avg_px=D("101.5"), ord_status=S.PARTIALLY_FILLED)
    out = book.apply_exec(rep, 5)
    assert out.applied and (out.fill_qty, out.fill_px) == (4, D("102.25"))  # the order event's
    assert order.cum_qty == 6 and order.avg_px == D("101.5")
    assert _status(order) == S.PARTIALLY_FILLED
    again = book.apply_exec(
        _exec("status", "o1", cum_qty=D(6), avg_px=D("101.5"), ord_status=S.PARTIALLY_FILLED), 6
    )
    assert again.kind == "duplicate" and order.cum_qty == 6
    done = book.apply_exec(
        _exec("status", "o1", cum_qty=D(6), avg_px=D("101.5"), ord_status=S.CANCELLED), 7
    )
    assert done.applied and _status(order) == S.CANCELLED


def test_unmatched_fill_is_recorded_once_and_resolved_by_adoption() -> None:
    """A fill for an unknown ClOrdID is recorded and escalated once, leaves positions
    alone, and is absorbed when the venue order is adopted with its cum_qty."""
    book = OrderBook()
    rep = _fill("ghost", "2", "50", exec_id="G1", symbol="XYZ", side=Side.SELL)
    out = book.apply_exec(rep, 1)
    assert out.applied and out.escalations[0].kind == "unmatched_fill"
    assert book.apply_exec(rep, 2).kind == "duplicate"
    assert len(book.unmatched_fills(V)) == 1 and book.positions() == []
    vo = VenueOrder(
        cl_ord_id="ghost",
        symbol="XYZ",
        side=Side.SELL,
        order_qty=D(5),
        price=D(50),
        status=S.PARTIALLY_FILLED,
        cum_qty=D(2),
        avg_px=D(50),
    )
    adopted = book.adopt(V, vo, 3)
    assert adopted.applied and adopted.order is not None and adopted.order.external
    assert adopted.order.client_order_id == "ext:sim:ghost"
    assert book.unmatched_fills() == [] and book.position(V, "XYZ").qty == -2
    assert book.apply_exec(rep, 4).kind == "duplicate"


# ------------------------------------------------------------------------- positions


def test_position_average_cost_with_flip_through_zero() -> None:
    """Adding keeps a weighted avg; reducing realizes PnL at the avg; crossing zero opens
    the remainder at the fill price; closing to flat resets avg to 0."""
    p = Position(V, "ABC")
    p.apply_fill(Side.BUY, D(10), D(100))
    p.apply_fill(Side.BUY, D(10), D(110))
    assert (p.qty, p.avg_px, p.realized_pnl) == (D(20), D(105), D(0))
    p.apply_fill(Side.SELL, D(5), D(115))
    assert (p.qty, p.avg_px, p.realized_pnl) == (D(15), D(105), D(50))
    p.apply_fill(Side.SELL, D(20), D(120))
    assert (p.qty, p.avg_px, p.realized_pnl) == (D(-5), D(120), D(50 + 15 * 15))
    p.apply_fill(Side.SELL, D(5), D(110))
    assert (p.qty, p.avg_px) == (D(-10), D(115))
    p.apply_fill(Side.BUY, D(10), D(100))
    assert (p.qty, p.avg_px, p.realized_pnl) == (D(0), D(0), D(275 + 150))
    assert p.view().realized_pnl == 425


def test_book_positions_follow_fills_across_orders() -> None:
    """Fills of several orders on one (venue, symbol) accumulate in one position."""
    book = OrderBook()
    _live_order(book, "b1")
    _live_order(book, "s1", side=Side.SELL, qty="15")
    book.apply_exec(_fill("b1", "10", "100"), 4)
    book.apply_exec(_fill("s1", "15", "104"), 5)
    pos = book.position(V, "ABC")
    assert (pos.qty, pos.avg_px, pos.realized_pnl) == (D(-5), D(104), D(40))


# ------------------------------------------------------------------------- commands


def test_submit_is_idempotent_and_validated() -> None:
    """A resent SubmitOrder is a duplicate; reusing the id with other fields, a bad price,
    or the reserved 'ext:' prefix is refused."""
    book = OrderBook()
    assert book.submit(_submit(), 1).applied
    assert book.submit(_submit(), 2).kind == "duplicate"
    assert book.submit(_submit(qty="11"), 3).kind == "refused"
    assert (
        book.submit(
            SubmitOrder(
                client_order_id="m",
                venue=V,
                symbol="A",
                side=Side.BUY,
                qty=D(1),
                order_type=OrdType.MARKET,
                price=D(1),
            ),
            4,
        ).kind
        == "refused"
    )
    assert book.submit(_submit("ext:x"), 5).kind == "refused"
    assert book.submit(_submit("z", qty="0"), 6).kind == "refused"


def test_retried_requests_are_duplicates_not_errors() -> None:
    """A client retrying a cancel (or the same replace) whose ack was lost gets a duplicate,
    and a repeated risk verdict is a duplicate."""
    book = OrderBook()
    order = _live_order(book)
    assert (
        book.risk_verdict(RiskVerdict(client_order_id="o1", approved=True), 4).kind == "duplicate"
    )
    assert book.request_replace(ReplaceOrder(client_order_id="o1", price=D(99)), 5).applied
    assert (
        book.request_replace(ReplaceOrder(client_order_id="o1", price=D(99)), 6).kind == "duplicate"
    )
    book.apply_exec(_exec("cancel_rejected", "o1.r1", orig_cl_ord_id="o1"), 7)
    assert book.request_cancel("o1", 8).applied
    assert book.request_cancel("o1", 9).kind == "duplicate"
    assert order.request_seq == 2


def test_latency_timestamps_and_views() -> None:
    """ts_submit_ns is the risk approval (handed to the venue), ts_ack_ns the first ack;
    the wire view carries the live ClOrdID and status."""
    book = OrderBook()
    order = _live_order(book)
    assert (order.ts_created_ns, order.ts_submit_ns, order.ts_ack_ns) == (1, 2, 3)
    view = order.view()
    assert view.status == S.ACCEPTED and view.cl_ord_id == "o1" and view.venue_order_id == "V1"


# ------------------------------------------------------------------------- replay


def _random_session(book: OrderBook, rng: random.Random, steps: int) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    coids: list[str] = []
    for step in range(steps):
        roll = rng.random()
        ts = step + 10
        if roll < 0.08 or not coids:
            coid = f"c{len(coids)}"
            coids.append(coid)
            side = rng.choice([Side.BUY, Side.SELL])
            out = book.submit(
                _submit(
                    coid, qty=str(rng.randint(1, 20)), side=side, symbol=rng.choice(["ABC", "XYZ"])
                ),
                ts,
            )
        else:
            coid = rng.choice(coids[-4:])
            o = book.get(coid)
            assert o is not None
            cl = o.pending_cl_ord_id or o.cl_ord_id
            choice = rng.randrange(12)
            if choice == 0:
                out = book.risk_verdict(
                    RiskVerdict(client_order_id=coid, approved=rng.random() < 0.9), ts
                )
            elif choice == 1:
                out = book.apply_exec(_exec("accepted", o.cl_ord_id, venue_order_id="V" + coid), ts)
            elif choice in (2, 3, 4):
                q = rng.randint(1, 8)
                exec_id = rng.choice([f"F{step}", f"F{step - 1}"])
                out = book.apply_exec(
                    _fill(o.cl_ord_id, str(q), str(100 + rng.randint(-5, 5)), exec_id=exec_id), ts
                )
            elif choice == 5:
                out = book.request_cancel(coid, ts)
            elif choice == 6:
                out = book.request_replace(
                    ReplaceOrder(client_order_id=coid, qty=o.qty + rng.randint(1, 3)), ts
                )
            elif choice == 7:
                kind = rng.choice(["cancelled", "replaced", "cancel_rejected", "expired"])
                out = book.apply_exec(
                    _exec(kind, cl, orig_cl_ord_id=o.cl_ord_id, order_qty=o.pending_qty), ts
                )
            elif choice == 8:
                out = book.mark_unknown(coid, "timeout", ts)
            elif choice == 9:
                out = book.apply_exec(
                    _exec(
                        "status",
                        o.cl_ord_id,
                        cum_qty=min(o.qty, o.cum_qty + 1),
                        avg_px=D(100),
                        ord_status=rng.choice(
                            [S.ACCEPTED, S.PARTIALLY_FILLED, S.CANCELLED, S.EXPIRED]
                        ),
                    ),
                    ts,
                )
            elif choice == 10:
                out = book.apply_exec(
                    _fill(
                        f"ghost{step % 3}",
                        "1",
                        "99",
                        exec_id=f"G{step}",
                        symbol="XYZ",
                        side=Side.BUY,
                    ),
                    ts,
                )
            else:
                vo = VenueOrder(
                    cl_ord_id=f"ghost{step % 3}",
                    symbol="XYZ",
                    side=Side.BUY,
                    order_qty=D(9),
                    status=S.ACCEPTED,
                    cum_qty=D(1),
                    avg_px=D(99),
                )
                out = book.adopt(V, vo, ts)
        if not out.applied:
            assert out.records == ()
        records.extend(out.records)
    return records


@pytest.mark.parametrize("seed", range(8))
def test_replaying_records_reproduces_the_live_book(seed: int) -> None:
    """Random sessions: applying the journalled records (after a msgpack round trip) to
    an empty book, or to a mid-session snapshot, reproduces the live book exactly."""
    rng = random.Random(seed)
    live = OrderBook()
    first = _random_session(live, rng, 150)
    snapshot = msgpack.unpackb(msgpack.packb(live.to_dict()), raw=False)
    rest = _random_session(live, rng, 150)
    records = msgpack.unpackb(msgpack.packb(first + rest), raw=False)
    replayed = OrderBook()
    for rec in records:
        replayed.apply_record(rec)
    assert replayed.to_dict() == live.to_dict()
    from_snap = OrderBook.from_dict(snapshot)
    for rec in records[len(first) :]:
        from_snap.apply_record(rec)
    assert from_snap.to_dict() == live.to_dict()
    assert [p.view() for p in from_snap.positions()] == [p.view() for p in live.positions()]


def test_book_survives_the_journal_with_a_snapshot(tmp_path: Path) -> None:
    """Live book -> journal (records, snapshot, more records) -> reopen -> identical book."""
    rng = random.Random(42)
    live = OrderBook()
    journal, _ = Journal.open(tmp_path, fsync=False)
    for rec in _random_session(live, rng, 200):
        journal.append(rec)
    journal.commit()
    journal.write_snapshot(live.to_dict())
    for rec in _random_session(live, rng, 200):
        journal.append(rec)
    journal.commit()
    journal.close()
    _, recovery = Journal.open(tmp_path, fsync=False)
    assert recovery.snapshot is not None
    book = OrderBook.from_dict(recovery.snapshot)
    for rec in recovery.records:
        book.apply_record(rec)
    assert book.to_dict() == live.to_dict()


def test_unknown_record_kind_is_an_error() -> None:
    """apply_record never guesses: an unknown kind, or a record for an order the book
    does not have, raises."""
    with pytest.raises(ValueError, match="unknown journal record kind"):
        OrderBook().apply_record({"kind": "mystery"})
    with pytest.raises(ValueError, match="unknown order"):
        OrderBook().apply_record({"kind": "fill", "id": "nope"})


def test_a_pending_replace_shows_the_qty_asked_to_risk() -> None:
    """PENDING_REPLACE: the order's view and its event carry the qty asked (`pending_qty`),
    risk counts the larger of it and the qty (the venue may take either); answered, none."""
    book = OrderBook()
    order = _live_order(book)
    assert book.request_replace(ReplaceOrder(client_order_id="o1", qty=D(40)), 4).applied
    assert order.view().pending_qty == D(40)
    assert order_event_body(order, 7, None, None)["order"]["pending_qty"] == "40"
    book.apply_exec(_exec("replaced", "o1.r1", orig_cl_ord_id="o1", order_qty=D(40)), 5)
    assert (order.view().qty, order.view().pending_qty) == (D(40), None)
