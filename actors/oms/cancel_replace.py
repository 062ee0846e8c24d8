"""A client's cancel or replace request, decided against the order (pure logic, no I/O).

`OrderBook.request_cancel` / `request_replace` hand the request here, which checks it
against the order and, if it stands, applies the request event through the book's own
commands (`RequestBook`) under a new request ClOrdID (``<original>.c<n>`` / ``.r<n>``, see
`actors.oms.orders.request_cl_ord_id`). A repeat of a request already pending (or of a
replace already done: its ack lost) is a duplicate, not a second request.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Protocol

from actors.oms.lifecycle import Event, transition
from actors.oms.orders import Order, Outcome, optional_str, request_cl_ord_id
from protocol.messages import OrderStatus, OrdType, ReplaceOrder

S = OrderStatus


class RequestBook(Protocol):
    """The book commands a cancel or replace request is applied through."""

    def get(self, client_order_id: str, *, admit: bool = ...) -> Order | None: ...

    def record_event(
        self, client_order_id: str, event: Event, ts_ns: int, **fields: Any
    ) -> Outcome: ...


def request_cancel(book: RequestBook, client_order_id: str, ts_ns: int) -> Outcome:
    order = book.get(client_order_id, admit=True)
    if order is None:
        return Outcome.refused(None, "unknown order")
    if order.status in (S.PENDING_CANCEL, S.CANCELLED):
        return Outcome("duplicate", order, reason=f"already {order.status}")
    cl = request_cl_ord_id(order.cl_ord_ids[0], "c", order.request_seq + 1)
    return book.record_event(client_order_id, Event.CANCEL_REQUESTED, ts_ns, cl_ord_id=cl)


def lowers_qty_only(order: Order, msg: ReplaceOrder) -> bool:
    """A replace that only takes risk off: a lower quantity, the price unchanged."""
    same_price = msg.price is None or msg.price == order.price
    return same_price and msg.qty is not None and msg.qty < order.qty


def takes_no_risk(order: Order, msg: ReplaceOrder) -> bool:
    """A replace risk has nothing to say about: it lowers the quantity only, or it repeats
    a request the book answers as a duplicate (`_duplicate`: nothing new is asked at the
    venue). Put to risk, a repeat's refusal told the client RISK_REJECTED of a replace
    pending at the venue (found by review)."""
    return lowers_qty_only(order, msg) or _duplicate(order, *_terms(order, msg)) is not None


def replace_refusal(order: Order, msg: ReplaceOrder) -> str | None:
    """Why a replace of the live `order` is refused before risk is asked (None: ask it):
    not at the venue yet, or a cancel or replace of ours pending there, which the book
    would refuse once risk approved (one request at a time). Asked first, risk counted the
    raise it approved open until the order ended (found hunting: a replace to 900 while
    one to 200 was pending left 900 counted, and a buy within max_position was refused;
    tests/integration/test_risk_replace.py; so intake refuses a replace too while the
    order's previous one is with risk). So are terms the book refuses in any state
    (`_terms_refusal`: nothing changed, no more than the filled part, a price on a market
    order). A duplicate (`_duplicate`) is not refused: the book answers it as one."""
    if order.status in (S.PENDING_RISK, S.PENDING_SUBMIT, S.UNKNOWN):
        return f"{order.client_order_id} is {order.status.value}: not yet at the venue"
    qty, price = _terms(order, msg)
    if _duplicate(order, qty, price) is not None:
        return None
    if transition(order.status, Event.REPLACE_REQUESTED) is None:
        return f"{order.client_order_id} is {order.status.value}: a request is pending at the venue"
    # terms the book refuses whatever risk says (found by review: a price on a market
    # order's raise was approved and counted, then refused by the book)
    return _terms_refusal(order, msg, qty, price)


def _terms(order: Order, msg: ReplaceOrder) -> tuple[Decimal, Decimal | None]:
    """The (qty, price) the replace asks for (a field it leaves out: the order's)."""
    return (order.qty if msg.qty is None else msg.qty), (
        order.price if msg.price is None else msg.price
    )


def _duplicate(order: Order, qty: Decimal, price: Decimal | None) -> str | None:
    """Why a replace to (qty, price) repeats one already asked (None: it does not)."""
    if order.status == S.PENDING_REPLACE and (qty, price) == (
        order.pending_qty,
        order.pending_price,
    ):
        return "same replace already pending"
    if (qty, price) == (order.qty, order.price) and order.cl_ord_id != order.cl_ord_ids[0]:
        # idempotent: a retried replace whose first attempt took effect (ack lost)
        return "already replaced to these terms"
    return None


def _terms_refusal(
    order: Order, msg: ReplaceOrder, qty: Decimal, price: Decimal | None
) -> str | None:
    """Why the terms (qty, price) the replace asks for are refused, whatever the order's
    state (None: they stand)."""
    if (qty, price) == (order.qty, order.price):
        return "replace changes nothing"
    if qty <= order.cum_qty:
        return f"new qty {qty} must exceed cum_qty {order.cum_qty}"
    if order.order_type == OrdType.MARKET and msg.price is not None:
        return "invalid price for the order type"
    if price is not None and price <= 0:
        return "invalid price for the order type"
    return None


def request_replace(book: RequestBook, msg: ReplaceOrder, ts_ns: int) -> Outcome:
    order = book.get(msg.client_order_id, admit=True)
    if order is None:
        return Outcome.refused(None, "unknown order")
    qty, price = _terms(order, msg)
    if (duplicate := _duplicate(order, qty, price)) is not None:
        return Outcome("duplicate", order, reason=duplicate)
    if (refused := _terms_refusal(order, msg, qty, price)) is not None:
        return Outcome.refused(order, refused)
    cl = request_cl_ord_id(order.cl_ord_ids[0], "r", order.request_seq + 1)
    return book.record_event(
        msg.client_order_id,
        Event.REPLACE_REQUESTED,
        ts_ns,
        cl_ord_id=cl,
        qty=str(qty),
        price=optional_str(price),
    )
