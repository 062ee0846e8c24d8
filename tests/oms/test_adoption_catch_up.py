"""A catch-up of an adopted order (a fill inferred from the venue's cum_qty, ``recon:``)
and the fills of its ClOrdID still unmatched (`actors.oms.adoption.settle`). Every such
fill came before the adoption (after it, a fill of the ClOrdID matches the order), so the
venue's cum the catch-up brings the order to holds it if it is of the order's venue order:
one without a venue cum_qty that the adoption could have placed (its venue order the
order's, same symbol and side) and that fits in the catch-up's qty is taken out, and a
resend of it is a duplicate. Before, only fills with a venue cum_qty were: one without
stayed unmatched (escalated every pass) and its resend was counted again."""

from __future__ import annotations

from typing import Any

from actors.oms.order_book import OrderBook
from actors.oms.reconcile import apply_actions, plan_reconciliation
from tests.oms.test_adoption_later_fills import EXT, V, _answered, _fill


def _adopted_at_5(**kw: Any) -> tuple[OrderBook, list[dict[str, Any]]]:
    """G2 (10 @ 100, no venue cum_qty, no exec number) came unmatched; EXT1 is adopted at
    cum 5, which has no room for it: it stays unmatched (escalated). The journal so far."""
    book = OrderBook()
    records = list(book.apply_exec(_fill("G2", "10", "100", "0", **kw), 1).records)
    records += book.adopt(V, _answered(cum="5"), 2).records
    assert [u.exec_id for u in book.unmatched_fills()] == ["G2"]
    return book, records


def _catch_up(book: OrderBook, venue_cum: str) -> list[dict[str, Any]]:
    """A pass: the venue lists EXT1 at `venue_cum`; the plan applied. Its records."""
    plan = plan_reconciliation(V, book.held_orders(), [_answered(cum=venue_cum)], {}, set(),
                               unmatched_fills=book.unmatched_fills(V))  # fmt: skip
    done = apply_actions(book, plan.actions, 3)
    return [r for _, out in done if out is not None for r in out.records]


def test_a_catch_up_takes_out_a_fill_without_cum_of_the_orders_venue_order() -> None:
    """The venue lists EXT1 at cum 15: the catch-up counts G2's 10, and G2 is no longer
    unmatched; the venue's resend of G2 is a duplicate (15, not 25). The journal replayed,
    and a snapshot from before the catch-up with the catch-up's records, are the live book."""
    book, records = _adopted_at_5()
    snapshot = book.to_dict()
    caught_up = _catch_up(book, "15")
    records += caught_up
    from_snapshot = OrderBook.from_dict(snapshot)
    for rec in caught_up:
        from_snapshot.apply_record(rec)
    assert from_snapshot.to_dict() == book.to_dict()
    assert book.unmatched_fills() == []
    resend = book.apply_exec(_fill("G2", "10", "100", "0"), 4)
    order = book.get(EXT)
    assert resend.kind == "duplicate" and order is not None and order.cum_qty == 15
    assert book.position(V, "ABC").qty == 15
    replayed = OrderBook()
    for rec in records:
        replayed.apply_record(rec)
    assert replayed.to_dict() == book.to_dict()


def test_a_catch_up_leaves_a_fill_of_an_unknown_venue_order_unmatched() -> None:
    """G2 names no venue order (it may be of an earlier venue order under the same
    ClOrdID): the catch-up to 15 does not take it out (unmatched, escalated)."""
    book, _ = _adopted_at_5(venue_order_id="")
    _catch_up(book, "15")
    assert [u.exec_id for u in book.unmatched_fills()] == ["G2"]


def test_a_catch_up_smaller_than_the_fill_leaves_it_unmatched() -> None:
    """The venue lists EXT1 at 10: a catch-up of 5 cannot hold G2's 10; it stays."""
    book, _ = _adopted_at_5()
    _catch_up(book, "10")
    assert [u.exec_id for u in book.unmatched_fills()] == ["G2"]
