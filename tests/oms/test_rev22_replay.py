"""rev22 fixes whose journal records changed: replay equals live."""

from __future__ import annotations

from decimal import Decimal as D

from actors.oms.order_book import OrderBook
from actors.oms.reconcile import apply_plan, plan_reconciliation
from protocol.messages import OrdType, RiskVerdict, Side, SubmitOrder
from tests.oms.test_external_replace import _replayed, _vo
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
