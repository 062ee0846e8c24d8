"""rev20 review of `extfix`: failing tests for defects in following an outside replace."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from actors.oms.exec_cut import ExecLog
from actors.oms.order_book import OrderBook
from actors.oms.reconcile import apply_plan, plan_reconciliation
from protocol.messages import ExecCut, ExecReport, OrderStatus, ReplaceOrder, Side, VenueOrder
from tests.oms.test_external_replace import EXT, _adopted, _fill, _ours, _replaced, _vo
from tests.oms.test_sends_first import V

S = OrderStatus


def test_an_order_answered_under_its_own_id_is_not_linked_by_venue_order_id() -> None:
    """Our o1 (BUY 10 ABC, venue order id V-1) filled at the venue, its fill reports lost;
    the venue (which recycles order ids) then gave V-1 to someone else's BUY 20 ABC,
    FOREIGN-9, 4 filled. A pass: the venue lists FOREIGN-9 open, and answers the status
    query for o1 under o1's own ClOrdID: FILLED 10. The venue says what became of o1, so
    FOREIGN-9 is not o1 replaced: o1 is FILLED (10 missed), FOREIGN-9 adopted, position
    10 + 4. (Defect: `PlanBuilder._replaced_outside` links FOREIGN-9 to o1 before o1's
    answer is looked at, and o1, then "matched", never gets it: o1 lives on as FOREIGN-9
    (20, 4 filled), its 10 are lost (position 4), and a cancel of o1 - or the kill
    switch's - is sent for someone else's order.)"""
    book = OrderBook()
    order = _ours(book)
    assert book.apply_venue_status("o1", S.ACCEPTED, 4, venue_order_id="V-1").kind != "refused"
    assert order.venue_order_id == "V-1"
    foreign = VenueOrder(cl_ord_id="FOREIGN-9", venue_order_id="V-1", symbol="ABC",
                         side=Side.BUY, order_qty=D(20), price=D(100),
                         status=S.PARTIALLY_FILLED, cum_qty=D(4), avg_px=D(100),
                         leaves_qty=D(16))  # fmt: skip
    answer = VenueOrder(cl_ord_id="o1", venue_order_id="V-1", symbol="ABC", side=Side.BUY,
                        order_qty=D(10), price=D(100), status=S.FILLED, cum_qty=D(10),
                        avg_px=D(100), leaves_qty=D(0))  # fmt: skip
    plan = plan_reconciliation(V, book.orders(V), [foreign], {"o1": answer}, set())
    apply_plan(book, plan, 5)
    assert (order.cl_ord_id, order.qty) == ("o1", 10), plan.actions
    assert order.status is S.FILLED and order.cum_qty == 10
    assert book.find(V, "FOREIGN-9") is not order
    assert book.position(V, "ABC").qty == 14


def test_an_order_answered_under_the_listed_new_id_is_still_linked() -> None:
    """o1 (BUY 10, V-1, 4 filled) replaced at the venue to GUI-7 (20), the Replaced report
    lost. A pass lists GUI-7 (V-1, cum 4) and the venue answers the status query for o1
    with the order as it is now, under GUI-7: the same venue order, so o1 follows the
    replace (one order, position 4), not an adoption of GUI-7 on top."""
    book = OrderBook()
    order = _ours(book)
    assert book.apply_exec(_fill("o1", "F1", "4", "4", "10"), 4).applied
    gui = _vo("GUI-7", "20", "4")
    plan = plan_reconciliation(V, book.orders(V), [gui], {"o1": gui}, set())
    apply_plan(book, plan, 5)
    assert [o.client_order_id for o in book.orders(V)] == ["o1"], plan.actions
    assert (order.cl_ord_id, order.qty, order.cum_qty) == ("GUI-7", 20, 4)
    assert book.position(V, "ABC").qty == 4


def _other_order(kind: str) -> ExecReport:
    """A report naming EXT1 as OrigClOrdID, but of another venue order: V-9, SELL XYZ,
    EXT2 (100 @ 7), 55 filled."""
    extra = {"ord_status": S.PARTIALLY_FILLED}
    return ExecReport(venue=V, exec_id="R1", kind=kind, cl_ord_id="EXT2",  # type: ignore[arg-type]
                      orig_cl_ord_id="EXT1", venue_order_id="V-9", symbol="XYZ",
                      side=Side.SELL, order_qty=D(100), price=D(7), cum_qty=D(55),
                      avg_px=D(7), **extra)  # fmt: skip


@pytest.mark.parametrize("kind", ["replaced", "status"])
def test_a_replace_report_of_another_symbol_and_side_is_not_followed(kind: str) -> None:
    """Adopted EXT1 (BUY 60 ABC, V-1, 50 filled): an external party's ClOrdIDs are unique
    only per session and day (`actors.oms.adoption`). A Replaced (or status) report names
    EXT1 as OrigClOrdID but is of SELL XYZ, venue order V-9: a replace never changes symbol
    or side (`outside_replace.id_taken` says so, reconciliation's link checks it since
    rev17 #1), so it is not EXT1's replace: not followed, escalated, the ABC position the
    adopted 50. (Defect: followed - EXT1 becomes EXT2 with V-9's id, 5 "missed" XYZ sold are
    booked as ABC bought, and every later XYZ fill under EXT2 lands on the ABC order.)"""
    book = OrderBook()
    order = _adopted(book, [])
    out = book.apply_exec(_other_order(kind), 2)
    assert (order.cl_ord_id, order.venue_order_id, order.qty) == ("EXT1", "V-1", 60), out
    assert out.escalations, out
    assert book.position(V, "ABC").qty == 50
    book.apply_exec(_fill("EXT2", "F1", "5", "60", "100").model_copy(
        update={"symbol": "XYZ", "side": Side.SELL, "venue_order_id": "V-9"}), 3)  # fmt: skip
    assert book.get(EXT) is order and order.cum_qty == 50
    assert book.position(V, "ABC").qty == 50


def test_an_outside_replace_of_our_replace_it_could_not_follow_does_not_end_the_order() -> None:
    """o1 (BUY 10, 4 filled) with our replace o1.r1 (to 6) pending; 2 more fill under o1
    (cum 6). A garbled report: o1.r1 replaced at the venue by GUI-7 (20), venue cum 6 -
    o1.r1 at 6 with 6 filled was done, no venue replaces it. Like any replace report no
    venue makes (rev17 #2) it is refused and escalated, the order left live as it was.
    (Defect: `follow` checks only GUI-7's qty; it records our replace first, which ends the
    order FILLED at 6, then the outside replace is refused "not allowed in FILLED" - the
    outcome says applied, no escalation: the OMS says done and risk drops the order while
    the report says it works 14 more under GUI-7, whose fills are then unmatched.)"""
    book = OrderBook()
    order = _ours(book)
    assert book.apply_exec(_fill("o1", "F1", "4", "4", "10"), 4).applied
    assert book.request_replace(ReplaceOrder(client_order_id="o1", qty=D(6)), 5).applied
    assert book.apply_exec(_fill("o1", "F2", "2", "6", "10"), 6).applied
    assert order.status is S.PENDING_REPLACE and order.cum_qty == 6
    out = book.apply_exec(_replaced("GUI-7", "o1.r1", "20", "100", "6"), 7)
    assert not order.is_terminal, (out.kind, [r.get("event") for r in out.records])
    assert out.escalations, out


def test_a_pass_that_follows_an_outside_replace_of_ours_settles_its_early_fill() -> None:
    """o1 (BUY 10, V-1) replaced at the venue to GUI-7 (20), the Replaced report lost; F1 (5
    under GUI-7, venue cum 5) came unmatched. A pass lists GUI-7 (V-1, cum 5): it follows
    the replace and catches o1 up to cum 5 - F1's 5. F1 is then accounted for, as for an
    adopted order (`adoption.settle`): no unmatched fill left, and planning again changes
    and escalates nothing. (Defect: `settle` takes fills out on a catch-up only for adopted
    orders: F1 stays unmatched for good, every pass escalates it as an unmatched fill of 5
    ABC that the position already holds - a standing false alarm an operator may "repair"
    by booking the 5 a second time.) Replay of the records is the same book."""
    book = OrderBook()
    order = _ours(book)
    before = book.to_dict()
    records = list(book.apply_venue_status("o1", S.ACCEPTED, 4, venue_order_id="V-1").records)
    early = book.apply_exec(_fill("GUI-7", "F1", "5", "5", "20"), 5)
    assert early.order is None
    records += early.records

    def plan() -> tuple[object, ...]:
        return plan_reconciliation(
            V, book.orders(V), [_vo("GUI-7", "20", "5")], {}, set(),
            local_positions={"ABC": book.position(V, "ABC").qty}, venue_positions={"ABC": D(5)},
            unmatched_fills=book.unmatched_fills(V),
        ).actions  # fmt: skip

    first = plan_reconciliation(V, book.orders(V), [_vo("GUI-7", "20", "5")], {}, set())
    records += [r for _a, out in apply_plan(book, first, 6) if out for r in out.records]
    assert (order.cl_ord_id, order.cum_qty) == ("GUI-7", 5)
    assert book.position(V, "ABC").qty == 5
    assert book.unmatched_fills() == []
    assert plan() == ()
    replayed = OrderBook.from_dict(before)
    for rec in records:
        replayed.apply_record(rec)
    assert replayed.to_dict() == book.to_dict()
    assert book.apply_exec(_fill("GUI-7", "F1", "5", "5", "20"), 7).kind == "duplicate"


def test_a_fill_naming_our_id_as_orig_under_an_outside_replace_is_not_booked_twice() -> None:
    """o1 (BUY 10, V-1) replaced at the venue to GUI-7 (20), the Replaced report never came
    (the case a pass follows, b4bd2ea); F1 (10 under GUI-7, venue cum 10, order qty 20)
    carries OrigClOrdID o1 (FIX 41; `OrderBook.apply_exec` routes any report by it, and
    venues that put it on every report of a replaced order exist). F1 is GUI-7's, not a
    fill of o1 at qty 10: the order must not end FILLED on it, and the pass that lists
    GUI-7 (V-1, 20, cum 10) finds it ours: one order, position the venue's 10. (Defect: F1
    is applied to o1 on the old terms, o1 ends FILLED - dead in the OMS and risk while GUI-7
    works 10 more; the pass, whose venue-order-id link skips terminal orders, adopts GUI-7
    at cum 10 on top: the 10 booked twice, position 20 against the venue's 10. A Replaced
    report coming late is refused "not allowed in FILLED", without escalation.)"""
    book = OrderBook()
    order = _ours(book)
    assert book.apply_venue_status("o1", S.ACCEPTED, 4, venue_order_id="V-1").kind != "refused"
    f1 = _fill("GUI-7", "F1", "10", "10", "20").model_copy(update={"orig_cl_ord_id": "o1"})
    book.apply_exec(f1, 5)
    assert not order.is_terminal, order.status
    plan = plan_reconciliation(V, book.orders(V), [_vo("GUI-7", "20", "10")], {}, set())
    apply_plan(book, plan, 6)
    assert [o.client_order_id for o in book.orders(V)] == ["o1"], plan.actions
    assert book.position(V, "ABC").qty == 10


def test_a_fill_naming_our_id_as_orig_without_order_qty_waits_for_the_pass() -> None:
    """As above, but F1 carries no order qty: GUI-7's terms are unknown, so o1 must not take
    the replace on its old qty 10 (F1's 10 would end it FILLED). F1 is recorded unmatched,
    escalated as an outside replace not followed; o1 stays live. The pass that lists GUI-7
    (V-1, 20, cum 10) follows the replace, catches o1 up to 10 and settles F1: one order,
    position the venue's 10, nothing unmatched; replay equals live."""
    book = OrderBook()
    order = _ours(book)
    before = book.to_dict()
    f1 = _fill("GUI-7", "F1", "10", "10", "20").model_copy(
        update={"orig_cl_ord_id": "o1", "order_qty": None}
    )
    out = book.apply_exec(f1, 5)
    assert out.order is None and not order.is_terminal and order.cum_qty == 0
    assert {e.kind for e in out.escalations} == {"order_replaced_externally", "unmatched_fill"}
    records = list(out.records)
    plan = plan_reconciliation(V, book.orders(V), [_vo("GUI-7", "20", "10")], {}, set())
    records += [r for _a, done in apply_plan(book, plan, 6) if done for r in done.records]
    assert [o.client_order_id for o in book.orders(V)] == ["o1"], plan.actions
    assert (order.cl_ord_id, order.qty, order.cum_qty) == ("GUI-7", 20, 10)
    assert book.position(V, "ABC").qty == 10 and book.unmatched_fills() == []
    replayed = OrderBook.from_dict(before)
    for rec in records:
        replayed.apply_record(rec)
    assert replayed.to_dict() == book.to_dict()


def test_a_fill_naming_our_id_as_orig_follows_the_replace_and_places_the_early_fill() -> None:
    """F0 (3 under GUI-7, venue cum 3) came unmatched; then F1 (7 under GUI-7, cum 10, order
    qty 20, OrigClOrdID o1). o1 follows the replace to GUI-7 (20), escalated, F0 is placed
    then F1 applied: cum 10, position 10, nothing unmatched, each fill once (a resend of
    either is a duplicate); replay equals live."""
    book = OrderBook()
    order = _ours(book)
    before = book.to_dict()
    records = list(book.apply_exec(_fill("GUI-7", "F0", "3", "3", "20"), 4).records)
    f1 = _fill("GUI-7", "F1", "7", "10", "20").model_copy(update={"orig_cl_ord_id": "o1"})
    out = book.apply_exec(f1, 5)
    records += out.records
    assert out.order is order and out.fill_qty == 10, out
    assert "order_replaced_externally" in {e.kind for e in out.escalations}
    assert (order.cl_ord_id, order.qty, order.cum_qty) == ("GUI-7", 20, 10)
    assert book.position(V, "ABC").qty == 10 and book.unmatched_fills() == []
    for exec_id, qty, cum in (("F0", "3", "3"), ("F1", "7", "10")):
        assert book.apply_exec(_fill("GUI-7", exec_id, qty, cum, "20"), 6).kind == "duplicate"
    replayed = OrderBook.from_dict(before)
    for rec in records:
        replayed.apply_record(rec)
    assert replayed.to_dict() == book.to_dict()


def test_a_fill_of_another_symbol_naming_our_id_as_orig_is_not_booked_on_ours() -> None:
    """A fill under EXT2 naming adopted EXT1 as OrigClOrdID but of SELL XYZ (another venue
    order): not EXT1's replace, so not followed nor booked on EXT1: recorded unmatched and
    escalated (bad_replace_report), the ABC position the adopted 50."""
    book = OrderBook()
    order = _adopted(book, [])
    f1 = _fill("EXT2", "F1", "5", "55", "100").model_copy(
        update={"orig_cl_ord_id": "EXT1", "symbol": "XYZ", "side": Side.SELL,
                "venue_order_id": "V-9"}
    )  # fmt: skip
    out = book.apply_exec(f1, 2)
    assert out.order is None and order.cl_ord_id == "EXT1" and order.cum_qty == 50
    assert {e.kind for e in out.escalations} == {"bad_replace_report", "unmatched_fill"}
    assert [f.exec_id for f in book.unmatched_fills()] == ["F1"]
    assert book.position(V, "ABC").qty == 50


def test_a_fill_that_follows_an_outside_replace_notes_the_early_fill_at_its_own_number() -> None:
    """F0 (3 under GUI-7, exec_seq 6) came unmatched; F1 (7, cum 10, OrigClOrdID o1,
    exec_seq 7) follows the replace and places F0. Positions as of a cut at 6 are 3 (F0
    only), at 7 the book's 10: F0 noted at 6, F1 at 7 (not all 10 at 7, which a cold start
    answered at 6 would count twice)."""
    book, log = OrderBook(), ExecLog()
    _ours(book)
    early = _fill("GUI-7", "F0", "3", "3", "20").model_copy(update={"exec_seq": 6})
    log.note_outcome(early, 1, book.apply_exec(early, 4))
    f1 = _fill("GUI-7", "F1", "7", "10", "20").model_copy(
        update={"orig_cl_ord_id": "o1", "exec_seq": 7}
    )
    out = book.apply_exec(f1, 5)
    log.note_outcome(f1, 1, out)
    now = {"ABC": book.position(V, "ABC").qty}
    assert now == {"ABC": 10}
    assert log.positions_as_of(V, ExecCut(connector_epoch=1, exec_seq=7), now) == now
    assert log.positions_as_of(V, ExecCut(connector_epoch=1, exec_seq=6), now) == {"ABC": 3}
    assert log.positions_as_of(V, ExecCut(connector_epoch=1, exec_seq=5), now) == {"ABC": 0}
