"""The OMS's order events are written straight from the `Order` (actors/oms/event_wire.py):
the body the codec writes for `OrderEvent(order=order.view(), ...)`, byte for byte, and a
computed value out of bounds is refused as the models refused it."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

import protocol.codec as codec
from actors.oms.event_wire import TYPE, messages, order_event_body, packed
from actors.oms.orders import Order
from protocol.batch_messages import MAX_EVENT_BATCH_BYTES, MAX_ORDER_REASON_CHARS
from protocol.codec import Sender, encode
from protocol.messages import OrderEvent, OrderStatus, OrdType, Side, TimeInForce

_dec = st.decimals(min_value=Decimal("-1e12"), max_value=Decimal("1e12"), places=6)
_text = st.text(max_size=12)


@st.composite
def orders(draw: st.DrawFn) -> Order:
    return Order(
        client_order_id=draw(_text), venue=draw(_text), symbol=draw(_text),
        side=draw(st.sampled_from(Side)), qty=draw(_dec),
        order_type=draw(st.sampled_from(OrdType)), price=draw(st.none() | _dec),
        tif=draw(st.sampled_from(TimeInForce)), status=draw(st.sampled_from(OrderStatus)),
        cl_ord_id=draw(_text), cl_ord_ids=(), venue_order_id=draw(_text),
        cum_qty=draw(_dec), notional=draw(_dec), reason=draw(_text),
        external=draw(st.booleans()), ts_updated_ns=draw(st.integers(0, 2**63 - 1)),
    )  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(orders(), st.integers(1, 2**40), *[st.none() | _dec] * 4)
def test_the_body_is_the_models_body_and_the_bytes_are_the_same(
    order: Order,
    seq: int,
    fill_qty: Decimal | None,
    fill_px: Decimal | None,
    fee_base: Decimal | None,
    fee_quote: Decimal | None,
) -> None:
    model = OrderEvent(event_seq=seq, order=order.view(), fill_qty=fill_qty, fill_px=fill_px,
                       fill_fee_base=fee_base, fill_fee_quote=fee_quote)  # fmt: skip
    body = order_event_body(order, seq, fill_qty, fill_px, fee_base, fee_quote)
    assert body == model.model_dump(mode="json", exclude={"type"})
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(codec.time, "time_ns", lambda: 42)
        old, new = Sender("oms", 2), Sender("oms", 2)
        assert new.encode_body(TYPE, body)[1] == encode(old.envelope(model))


def test_a_computed_value_out_of_bounds_is_refused_as_before() -> None:
    """An average price finer than 1e-60 (a computed value no boundary checked)."""
    order = Order(
        client_order_id="c", venue="v", symbol="s", side=Side.BUY, qty=Decimal(3),
        order_type=OrdType.LIMIT, price=Decimal("1E-50"), tif=TimeInForce.DAY,
        status=OrderStatus.FILLED, cl_ord_id="c", cl_ord_ids=("c",), cum_qty=Decimal(3),
        notional=Decimal("1E-59"),
    )  # fmt: skip
    with pytest.raises(ValidationError):
        order.view()
    with pytest.raises(ValidationError):
        order_event_body(order, 1, None, None)


def test_a_long_reason_is_cut_so_an_event_stays_under_the_batch_frame() -> None:
    """A venue's reject text has no bound of its own: the order's view and its event carry
    at most MAX_ORDER_REASON_CHARS of it (the same cut, so the same bytes), and every
    message of the event stream, an event that goes alone too, is under
    MAX_EVENT_BATCH_BYTES, the size its queues' bound assumes."""
    order = Order(
        client_order_id="c", venue="v", symbol="s", side=Side.BUY, qty=Decimal(3),
        order_type=OrdType.LIMIT, price=Decimal(95), tif=TimeInForce.DAY,
        status=OrderStatus.REJECTED, cl_ord_id="c", cl_ord_ids=("c",), reason="x" * 200_000,
    )  # fmt: skip
    body = order_event_body(order, 1, None, None)
    cut = "x" * (MAX_ORDER_REASON_CHARS - 3) + "..."
    assert body["order"]["reason"] == order.view().reason == cut
    sender = Sender("oms", 1)
    sizes = [len(sender.encode_body(t, b)[1][0]) for t, b in messages([packed(body)] * 2)]
    assert max(sizes) <= MAX_EVENT_BATCH_BYTES, sizes
