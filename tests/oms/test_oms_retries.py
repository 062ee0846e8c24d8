"""A client retries a request whose acknowledgement it lost (the OMS died between its
commit and its reply): the order book answers the retry as a duplicate, changes nothing and
journals nothing, once the first attempt has taken effect. Pure: no sockets."""

from __future__ import annotations

from decimal import Decimal

from actors.oms.order_book import OrderBook
from actors.oms.orders import Order
from protocol.messages import (
    ExecReport,
    OrderStatus,
    OrdType,
    ReplaceOrder,
    RiskVerdict,
    Side,
    SubmitOrder,
)

D = Decimal
V = "sim"


def _live(book: OrderBook, coid: str = "o1") -> Order:
    msg = SubmitOrder(client_order_id=coid, venue=V, symbol="ABC", side=Side.BUY,
                      qty=D(10), order_type=OrdType.LIMIT, price=D(95))  # fmt: skip
    assert book.submit(msg, 1).applied
    assert book.risk_verdict(RiskVerdict(client_order_id=coid, approved=True), 2).applied
    order = book.get(coid)
    assert order is not None
    assert book.apply_exec(_report("accepted", order.cl_ord_id, "E1"), 3).applied
    return order


def _report(kind: str, cl: str, exec_id: str, **kw: object) -> ExecReport:
    fields = {"venue": V, "exec_id": exec_id, "kind": kind, "cl_ord_id": cl, **kw}
    return ExecReport.model_validate(fields)


def test_a_resubmitted_order_is_a_duplicate_in_every_later_state() -> None:
    """The same SubmitOrder again, after approval, acceptance and a fill, is a duplicate
    returning the order as it is now; no record is made."""
    book = OrderBook()
    order = _live(book)
    msg = SubmitOrder(client_order_id="o1", venue=V, symbol="ABC", side=Side.BUY,
                      qty=D(10), order_type=OrdType.LIMIT, price=D(95))  # fmt: skip
    assert book.apply_exec(_report("fill", order.cl_ord_id, "E2", last_qty=D(4),
                                   last_px=D(95)), 4).applied  # fmt: skip
    again = book.submit(msg, 5)
    assert (again.kind, again.records) == ("duplicate", ())
    assert again.order is order and order.status is OrderStatus.PARTIALLY_FILLED


def test_a_cancel_retried_after_the_venue_cancelled_is_a_duplicate() -> None:
    """Cancel requested, the venue cancelled: the same cancel again is a duplicate (the
    actor answers it with the CANCELLED order), not a second cancel request."""
    book = OrderBook()
    order = _live(book)
    first = book.request_cancel("o1", 4)
    assert first.applied and order.pending_cl_ord_id == "o1.c1"
    assert book.request_cancel("o1", 5).kind == "duplicate"  # still pending
    assert book.apply_exec(_report("cancelled", "o1.c1", "E2", orig_cl_ord_id="o1"), 6).applied
    again = book.request_cancel("o1", 7)
    assert (again.kind, again.records) == ("duplicate", ())
    assert order.status is OrderStatus.CANCELLED and order.request_seq == 1


def test_a_replace_retried_after_it_took_effect_is_a_duplicate() -> None:
    """Replace to qty 20 requested and done at the venue: the same replace again is a
    duplicate (no `.r2` request); while it is pending it is a duplicate too."""
    book = OrderBook()
    order = _live(book)
    assert book.request_replace(ReplaceOrder(client_order_id="o1", qty=D(20)), 4).applied
    pending = book.request_replace(ReplaceOrder(client_order_id="o1", qty=D(20)), 5)
    assert pending.kind == "duplicate"
    assert book.apply_exec(_report("replaced", "o1.r1", "E2", orig_cl_ord_id="o1",
                                   order_qty=D(20)), 6).applied  # fmt: skip
    assert (order.cl_ord_id, order.qty, order.status) == ("o1.r1", D(20), OrderStatus.ACCEPTED)
    again = book.request_replace(ReplaceOrder(client_order_id="o1", qty=D(20)), 7)
    assert (again.kind, again.records) == ("duplicate", ())
    assert order.request_seq == 1 and order.pending_cl_ord_id == ""


def test_a_replace_to_the_original_terms_of_a_never_replaced_order_is_refused() -> None:
    """Without an earlier replace, asking for the terms the order already has is refused
    ("replace changes nothing"): it can not be a retry."""
    book = OrderBook()
    _live(book)
    out = book.request_replace(ReplaceOrder(client_order_id="o1", qty=D(10)), 4)
    assert out.kind == "refused" and "changes nothing" in out.reason
