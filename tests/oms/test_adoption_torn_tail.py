"""rev14 (review of fix8): an adoption that books a later unmatched fill is two journal
records in one commit: the order's ``new`` and the fill's ``fill`` (`actors.oms.adoption`).
A kill -9 inside that commit's write (`Journal.commit`: `write_all` of the turn's buffer)
leaves a torn tail that replay drops at a record boundary: the ``new`` is durable, the
``fill`` is not. Nothing was acknowledged or published for either. The replayed book has
the order at the adopted cum_qty and the fill still unmatched; its order is ours now, so no
adoption will place it again. The next pass catches the order up from the venue's cum_qty
(an inferred missed fill: the position is right), but the fill stays unmatched for good:
every pass escalates it (`unmatched_fill`, "a trade the book cannot account for"), the
OMS's `unmatched_fills` count keeps it, though the position holds it."""

from __future__ import annotations

from typing import Any

from actors.oms.order_book import OrderBook
from actors.oms.reconcile import apply_plan, plan_reconciliation
from tests.oms.test_adoption_later_fills import V, _answered, _fill


def test_a_torn_adoption_leaves_no_fill_unmatched_for_good() -> None:
    """Live: G2 (10, venue cum 60) unmatched, then EXT1 adopted at cum 50 books it
    (records new, fill). Torn after the new record. Replayed: EXT1 at 50, G2 unmatched.
    A pass (the venue: EXT1 at cum 60) infers the missed 10: position 60, the venue's.
    Expected: G2, which the order's state now holds, no longer unmatched (or booked), and
    the next pass escalating nothing; got G2 unmatched and escalated on every pass."""
    live = OrderBook()
    journal: list[dict[str, Any]] = list(live.apply_exec(_fill("G2", "10", "100", "60"), 1).records)
    out = live.adopt(V, _answered(), 2)
    assert [r["kind"] for r in out.records] == ["new", "fill"]
    journal += out.records[:1]  # the fill record torn off
    book = OrderBook()
    for rec in journal:
        book.apply_record(rec)
    escalated: list[list[str]] = []
    for ts in (3, 4):  # two passes
        plan = plan_reconciliation(V, book.orders(V), [_answered(cum="60")], {}, set(),
                                   unmatched_fills=book.unmatched_fills(V))  # fmt: skip
        escalated.append([a.detail for a in plan.actions if a.name == "escalate"])
        apply_plan(book, plan, ts)
    assert book.position(V, "ABC").qty == 60  # caught up: G2's 10 is in the position
    assert (book.unmatched_fills(V), escalated[1]) == ([], [])


def test_a_catch_up_takes_out_only_the_unmatched_fills_its_venue_cum_holds() -> None:
    """EXT1 (V1) adopted at 50 with G2 (cum 60, V1), G3 (cum 70, V1) and G9 (cum 55, of
    another venue order V7) unmatched (their placing torn off). A catch-up to the venue's
    cum 60 takes out G2 only: G3 is beyond it, G9 is not this order's."""
    book = OrderBook()
    for report in (_fill("G2", "10", "100", "60"), _fill("G3", "10", "100", "70"),
                   _fill("G9", "5", "100", "55", venue_order_id="V7")):  # fmt: skip
        book.apply_exec(report, 1)
    new = OrderBook().adopt(V, _answered(), 2).records[0]
    book.apply_record(new)
    plan = plan_reconciliation(V, book.orders(V), [_answered(cum="60")], {}, set())
    apply_plan(book, plan, 3)
    assert sorted(u.exec_id for u in book.unmatched_fills(V)) == ["G3", "G9"]
    assert "G2" in book.get(f"ext:{V}:EXT1").exec_ids  # type: ignore[union-attr]
