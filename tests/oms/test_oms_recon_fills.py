"""Fills inferred by reconciliation (synthetic exec ids) and the venue's own late reports of
the same fills: each fill counts once. Pure: order book only, no sockets."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from actors.oms.order_book import OrderBook
from actors.oms.reconcile import apply_plan, plan_reconciliation
from protocol.messages import (
    ExecReport,
    OrderStatus,
    OrdType,
    RiskVerdict,
    Side,
    SubmitOrder,
    VenueOrder,
)

D = Decimal
V = "sim"


def _order(book: OrderBook, coid: str = "o1", qty: str = "1500") -> None:
    msg = SubmitOrder(client_order_id=coid, venue=V, symbol="ABC", side=Side.BUY,
                      qty=D(qty), order_type=OrdType.LIMIT, price=D("100.02"))  # fmt: skip
    assert book.submit(msg, 1).applied
    assert book.risk_verdict(RiskVerdict(client_order_id=coid, approved=True), 2).applied


def _fill(exec_id: str, qty: str, px: str, cum: str, cl: str = "o1") -> ExecReport:
    return ExecReport.model_validate({
        "venue": V, "exec_id": exec_id, "kind": "fill", "cl_ord_id": cl, "last_qty": qty,
        "last_px": px, "cum_qty": cum,
    })  # fmt: skip


def _venue_view(cum: str, avg: str, qty: str = "1500", cl: str = "o1") -> VenueOrder:
    """The venue's view of a live buy at 100.02 with `cum` filled at `avg`."""
    return VenueOrder.model_validate({
        "cl_ord_id": cl, "venue_order_id": "X1", "symbol": "ABC", "side": "BUY",
        "order_qty": qty, "order_type": "LIMIT", "price": "100.02",
        "status": OrderStatus.PARTIALLY_FILLED, "cum_qty": cum, "avg_px": avg,
    })  # fmt: skip


def _reconcile(book: OrderBook, vo: VenueOrder) -> None:
    plan = plan_reconciliation(V, book.orders(V), [vo], {}, set(), now_s=10.0)
    for _, out in apply_plan(book, plan, 10):
        assert out is None or out.kind != "refused", out


def test_late_reports_of_fills_reconciliation_inferred_count_once() -> None:
    """The venue filled 500 @ 100.01 and 500 @ 100.02 but the reports are late; the
    reconciliation applies cum 1000 @ 100.015 as one inferred fill. The two real reports
    then are duplicates (no second count, no overfill); a later fill beyond cum 1000 is
    applied as usual."""
    book = OrderBook()
    _order(book)
    _reconcile(book, _venue_view("1000", "100.015"))
    order = book.get("o1")
    assert order is not None and order.cum_qty == D(1000)
    for report in (_fill("E1", "500", "100.01", "500"), _fill("E2", "500", "100.02", "1000")):
        out = book.apply_exec(report, 11)
        assert (out.kind, out.records, out.escalations) == ("duplicate", (), ())
    assert (order.cum_qty, order.avg_px) == (D(1000), D("100.015"))
    assert book.position(V, "ABC").qty == D(1000)
    later = book.apply_exec(_fill("E3", "500", "100.02", "1500"), 12)
    assert later.applied and order.status is OrderStatus.FILLED
    assert book.position(V, "ABC").qty == D(1500)


def test_a_partly_covered_sequence_applies_only_what_is_beyond_the_inferred_cum() -> None:
    """One real fill arrived (cum 500), reconciliation inferred the next (cum 1000), then
    the real report for that one (cum 1000) arrives: duplicate; cum stays 1000."""
    book = OrderBook()
    _order(book)
    assert book.apply_exec(_fill("E1", "500", "100.01", "500"), 3).applied
    _reconcile(book, _venue_view("1000", "100.015"))
    assert book.apply_exec(_fill("E2", "500", "100.02", "1000"), 11).kind == "duplicate"
    order = book.get("o1")
    assert order is not None and (order.cum_qty, order.avg_px) == (D(1000), D("100.015"))


def test_without_reconciliation_reordered_reports_both_count() -> None:
    """No inferred fill: reports arriving out of order (cum 1000 before cum 500) are both
    real fills and both applied."""
    book = OrderBook()
    _order(book)
    assert book.apply_exec(_fill("E2", "500", "100.02", "1000"), 3).applied
    assert book.apply_exec(_fill("E1", "500", "100.01", "500"), 4).applied
    order = book.get("o1")
    assert order is not None and order.cum_qty == D(1000)


def test_fills_of_an_adopted_order_up_to_its_adopted_cum_are_not_counted_again() -> None:
    """An adopted venue order carries its cum (300); the venue's report of a fill up to
    cum 300 is a duplicate, one beyond it is applied."""
    book = OrderBook()
    vo = _venue_view("300", "100", qty="1000", cl="theirs")
    assert book.adopt(V, vo, 1).applied
    coid = f"ext:{V}:theirs"
    assert book.apply_exec(_fill("E1", "300", "100", "300", cl="theirs"), 2).kind == "duplicate"
    assert book.apply_exec(_fill("E2", "100", "101", "400", cl="theirs"), 3).applied
    order = book.get(coid)
    assert order is not None and order.cum_qty == D(400)
    assert book.position(V, "ABC").qty == D(400)


def test_replay_of_the_journal_gives_the_same_coverage() -> None:
    """Covered reports journal nothing: replaying the records gives the same order and
    position, and the late reports are still duplicates after the replay."""
    book = OrderBook()
    records: list[dict[str, object]] = []
    msg = SubmitOrder(client_order_id="o1", venue=V, symbol="ABC", side=Side.BUY,
                      qty=D(1500), order_type=OrdType.LIMIT, price=D("100.02"))  # fmt: skip
    records += book.submit(msg, 1).records
    records += book.risk_verdict(RiskVerdict(client_order_id="o1", approved=True), 2).records
    plan = plan_reconciliation(V, book.orders(V), [_venue_view("1000", "100.015")], {}, set())
    for _, out in apply_plan(book, plan, 10):
        records += out.records if out else ()
    records += book.apply_exec(_fill("E1", "500", "100.01", "500"), 11).records
    replayed = OrderBook()
    for rec in records:
        replayed.apply_record(rec)
    again = replayed.get("o1")
    assert again is not None and again.cum_qty == D(1000)
    assert replayed.apply_exec(_fill("E2", "500", "100.02", "1000"), 12).kind == "duplicate"
    assert replayed.position(V, "ABC").qty == D(1000)


def _bust_of(ref: str, px: str, cum: str, avg: str | None = None) -> ExecReport:
    """The venue's bust (150=H) of the 500 of fill `ref` at `px`, its cum after it `cum`."""
    fields: dict[str, Any] = {
        "venue": V, "exec_id": "H1", "kind": "trade_cancel", "cl_ord_id": "o1",
        "exec_ref_id": ref, "last_qty": "500", "last_px": px, "cum_qty": cum,
        "ord_status": OrderStatus.PARTIALLY_FILLED,
    }  # fmt: skip
    return ExecReport.model_validate(fields | ({"avg_px": avg} if avg else {}))


def test_a_bust_of_a_fill_reconciliation_counted_is_escalated_not_applied() -> None:
    """The catch-up counted 1000 @ 100.015 (500 @ 100.01 and 500 @ 100.02 at the venue),
    then both reports came (duplicates: the OMS keeps no terms of a counted fill); the
    venue busts the first. The OMS cannot know what it booked of that trade (the count is
    of the venue's cum, whatever the trades behind it were by then), so the bust is refused
    and escalated ``trade_bust_unknown_fill`` (docs/runbook.md 11b‴: the position
    heartbeat and reconciliation then see the OMS above the venue), never applied on
    guessed terms: nothing journalled, the order and position as they were (after a replay
    too), and a resend of the bust is escalated again."""
    book = OrderBook()
    records: list[dict[str, object]] = []
    _order(book)
    plan = plan_reconciliation(V, book.orders(V), [_venue_view("1000", "100.015")], {}, set())
    for _, out in apply_plan(book, plan, 10):
        records += out.records if out else ()
    for report in (_fill("E1", "500", "100.01", "500"), _fill("E2", "500", "100.02", "1000")):
        out = book.apply_exec(report, 11)
        assert (out.kind, out.records) == ("duplicate", ())
    order = book.get("o1")
    assert order is not None
    before = (order.status, order.cum_qty, order.avg_px, book.position(V, "ABC").qty)
    assert before == (OrderStatus.PARTIALLY_FILLED, D(1000), D("100.015"), D(1000))
    for again in (1, 2):  # the bust, then a resend of it
        out = book.apply_exec(_bust_of("E1", "100.01", "500"), 11 + again)
        assert (out.kind, out.records) == ("refused", ()), (again, out)
        [esc] = out.escalations
        assert (esc.kind, esc.detail) == (
            "trade_bust_unknown_fill",
            "H1: bust of fill 'E1', never booked on the order",
        )
        assert (order.status, order.cum_qty, order.avg_px, book.position(V, "ABC").qty) == before
    replayed = OrderBook()
    _order(replayed)
    for rec in records:
        replayed.apply_record(rec)
    twin = replayed.get("o1")
    assert twin is not None and (twin.cum_qty, twin.avg_px) == (D(1000), D("100.015"))
    assert replayed.position(V, "ABC").qty == D(1000)


def test_a_bust_the_venue_did_before_the_pass_counted_is_not_booked_on_wrong_terms() -> None:
    """The venue filled A 500 @ 100.01 (cum 500) and B 500 @ 100.02 (cum 1000), then its
    desk busted A (cum 500 @ 100.02), all three reports held back; a pass counts the venue's
    500 @ 100.02 (B, as it is after the bust). The reports then come in the venue's order.
    A's says cum 500 (counted, by the cum alone: it is not), B's cum 1000 (a new fill to the
    OMS: counted twice), then the bust of A. The OMS must end as the venue (500 @ 100.02) or
    say it cannot (an escalation), never silently on other terms: a build that kept a
    counted fill's terms applied the bust on A's and ended 500 @ 100.03, silently."""
    book = OrderBook()
    _order(book)
    _reconcile(book, _venue_view("500", "100.02"))
    for report in (_fill("A", "500", "100.01", "500"), _fill("B", "500", "100.02", "1000")):
        book.apply_exec(report, 11)
    out = book.apply_exec(_bust_of("A", "100.01", "500", avg="100.02"), 12)
    order = book.get("o1")
    assert order is not None
    said = {e.kind for e in out.escalations} - {"trade_busted"}
    assert said or (order.cum_qty, order.avg_px) == (D(500), D("100.02")), (order, out)


def test_a_counted_fills_report_after_the_bust_of_another_is_not_counted_again() -> None:
    """A 500 @ 100.01 (cum 500) and B 500 @ 100.02 (cum 1000) counted by a pass (1000 @
    100.015); A's report comes, then the venue's bust of A overtakes B's report (a venue
    swapping two reports: the chaos nemesis's ``reorder_execs``). B was counted: the OMS
    must end at the venue's 500 or say it cannot, never silently at 1000 (a build that
    applied the bust on A's kept terms took B's report for a new fill)."""
    book = OrderBook()
    _order(book)
    _reconcile(book, _venue_view("1000", "100.015"))
    book.apply_exec(_fill("A", "500", "100.01", "500"), 11)
    said = {
        e.kind for e in book.apply_exec(_bust_of("A", "100.01", "500", "100.02"), 12).escalations
    }
    said |= {e.kind for e in book.apply_exec(_fill("B", "500", "100.02", "1000"), 13).escalations}
    order = book.get("o1")
    assert order is not None
    assert said - {"trade_busted"} or order.cum_qty == D(500), (order, said)
