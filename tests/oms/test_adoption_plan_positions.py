"""rev14 (review of fix8): a reconciliation plan compares positions "after the plan's own
fills" (`actors.oms.reconcile.PlanBuilder.finish`): an Adopt adds the adopted cum_qty only.
Since fix8 the adoption also books the unmatched fills of its ClOrdID above that cum_qty
(`actors.oms.adoption`), which the plan leaves out, so a warm pass escalates a position
mismatch that its own adoption removes (`reconcile_escalation` `position_mismatch`, for the
operator to confirm with the venue; integration tests hold a pass to none)."""

from __future__ import annotations

from decimal import Decimal as D

from actors.oms.order_book import OrderBook
from actors.oms.reconcile import apply_plan, plan_reconciliation
from tests.oms.test_adoption_later_fills import V, _answered, _fill


def test_a_plan_that_adopts_compares_positions_with_the_fills_its_adoption_books() -> None:
    """EXT1's open-orders answer says cum 50; G2 (10, venue cum 60) came after it, before
    the plan was made (unmatched). The positions answer (after G2) says 60. The plan's
    adoption books G2: the book holds 60 after the plan, as the venue. Expected: no
    `position_mismatch`; got one, "local 50 (after plan), venue 60"."""
    book = OrderBook()
    assert book.apply_exec(_fill("G2", "10", "100", "60"), 1).applied
    local = {p.symbol: p.qty for p in book.positions(V)}
    plan = plan_reconciliation(V, book.orders(V), [_answered()], {}, set(),
                               local_positions=local, venue_positions={"ABC": D(60)},
                               unmatched_fills=book.unmatched_fills(V))  # fmt: skip
    apply_plan(book, plan, 2)
    assert book.position(V, "ABC").qty == 60  # the plan's adoption booked G2
    escalated = [a.detail for a in plan.actions if getattr(a, "reason", "") == "position_mismatch"]
    assert escalated == []


def test_a_plan_does_not_count_a_fill_its_adoption_leaves_unmatched() -> None:
    """G2 as above but of another venue order (V7): the adoption does not book it, the book
    holds 50 after the plan, so the plan escalates the mismatch with the venue's 60."""
    book = OrderBook()
    assert book.apply_exec(_fill("G2", "10", "100", "60", venue_order_id="V7"), 1).applied
    plan = plan_reconciliation(V, book.orders(V), [_answered()], {}, set(),
                               local_positions={}, venue_positions={"ABC": D(60)},
                               unmatched_fills=book.unmatched_fills(V))  # fmt: skip
    apply_plan(book, plan, 2)
    assert book.position(V, "ABC").qty == 50
    escalated = [a.detail for a in plan.actions if getattr(a, "reason", "") == "position_mismatch"]
    assert escalated == ["ABC: local 50 (after plan), venue 60"]
