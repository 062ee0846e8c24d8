"""rev22 fixes whose journal records changed: replay equals live."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

from actors.oms.order_book import OrderBook
from actors.oms.reconcile import apply_plan, plan_reconciliation
from protocol.messages import OrderStatus as S
from protocol.messages import OrdType, RiskVerdict, Side, SubmitOrder
from tests.oms.test_external_replace import _fill, _replayed, _report, _vo
from tests.oms.test_sends_first import V


def test_a_caught_up_orders_venue_order_id_replays_from_its_missed_fill() -> None:
    """rev22 #3: the missed fill a pass books on o1 (PENDING_SUBMIT, listed as V-1 with 4
    filled) carries V-1 onto it; replaying the records gives the same order, so a restart
    links o1's later outside replace by V-1 as the live book does."""
    book, records = OrderBook(), []
    msg = SubmitOrder(client_order_id="o1", venue=V, symbol="ABC", side=Side.BUY, qty=D(10),
                      order_type=OrdType.LIMIT, price=D(100))  # fmt: skip
    records += book.submit(msg, 1).records
    records += book.risk_verdict(RiskVerdict(client_order_id="o1", approved=True), 2).records
    plan = plan_reconciliation(V, book.orders(V), [_vo("o1", "10", "4")], {}, set())
    for _, out in apply_plan(book, plan, 3):
        records += out.records if out else ()
    live = book.get("o1")
    assert live is not None and live.venue_order_id == "V-1" and live.cum_qty == 4
    replayed = _replayed(records).get("o1")
    assert replayed is not None
    assert replayed.to_dict() == live.to_dict()


def test_a_torn_outside_fills_early_fill_settles_on_replay_as_live() -> None:
    """rev22 #5: the torn outside fill of `test_a_torn_outside_fill_leaves_no_fill_
    unmatched_for_good` (F0 unmatched, o1 following GUI-7, F1 resent, the pass's catch-up
    to the venue's cum 10): replaying the journal settles F0 as the live book did."""
    book, records = OrderBook(), []
    records += _ours_records(book)
    records += book.apply_exec(_fill("GUI-7", "F0", "3", "3", "20"), 5).records
    f1 = _fill("GUI-7", "F1", "7", "10", "20").model_copy(update={"orig_cl_ord_id": "o1"})
    records.append(book.apply_exec(f1, 6).records[0])  # the torn tail: the follow only
    book = _replayed(records)
    records += book.apply_exec(f1, 7).records
    plan = plan_reconciliation(V, book.orders(V), [_vo("GUI-7", "20", "10")], {}, set())
    for _, out in apply_plan(book, plan, 8):
        records += out.records if out else ()
    assert book.unmatched_fills() == [] and book.position(V, "ABC").qty == 10
    replayed = _replayed(records)
    assert replayed.unmatched_fills() == [] and replayed.position(V, "ABC").qty == 10
    assert replayed.to_dict() == book.to_dict()


def _ours_records(book: OrderBook) -> list[dict[str, Any]]:
    """`test_external_replace._ours` (o1 BUY 10 @ 100, accepted as V-1), its records."""
    msg = SubmitOrder(client_order_id="o1", venue=V, symbol="ABC", side=Side.BUY,
                      qty=D(10), order_type=OrdType.LIMIT, price=D(100))  # fmt: skip
    records = list(book.submit(msg, 1).records)
    records += book.risk_verdict(RiskVerdict(client_order_id="o1", approved=True), 2).records
    records += book.apply_exec(_report("accepted", "o1", "A1"), 3).records
    records += book.apply_venue_status("o1", S.ACCEPTED, 4, venue_order_id="V-1").records
    return records
