"""A D body written ahead (`order_wire.place_body`) is the frame the field list gives
(`mapping.place_fields` through `transmit.app_body` and `codec.encode`), byte for byte, and
an order the long way refuses is refused the same way (it takes the long way)."""

from __future__ import annotations

from decimal import Decimal, localcontext
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from actors.connector.fix import codec as fc
from actors.connector.fix import mapping as fm
from actors.connector.fix.order_wire import place_body
from actors.connector.fix.transmit import app_body
from protocol.messages import OrdType, PlaceOrder, Side, TimeInForce

NOW_S = 1_700_000_000.125
_HEADER = [(49, b"US"), (56, b"VENUE"), (34, b"7"), (52, b"20231114-22:13:20.125")]


class _Dec(Decimal):
    """A Decimal subclass: `fix_value`'s isinstance way."""


class _Text(str):
    """A str subclass (an enum's value can be one)."""


_decimals = st.one_of(
    st.decimals(allow_nan=True, allow_infinity=True),
    st.builds(
        Decimal,
        st.tuples(st.integers(0, 1), st.tuples(*[st.integers(0, 9)] * 4), st.integers(-12, 12)),
    ),
    st.builds(_Dec, st.sampled_from(["10", "1E+2", "0.5"])),
    st.integers(-5, 5),
)
_texts = st.one_of(
    st.text(max_size=6),
    st.text(alphabet="a\x01é=E\ud800 ", max_size=4),
    st.builds(_Text, st.text(max_size=3)),
    st.sampled_from(["c-1", "AAPL", "EUR=", "ES Z6"]),
)


_PLAIN: dict[str, Any] = {
    "cl_ord_id": "c1", "symbol": "AAPL", "side": Side.BUY, "qty": Decimal("10"),
    "order_type": OrdType.LIMIT, "price": Decimal("101.50"), "tif": TimeInForce.GTC,
    "now_s": NOW_S,
}  # fmt: skip


def _frame(body: Any) -> Any:
    """The encoded D (or what refuses it: ValueError, as the pump sees it)."""
    try:
        return fc.encode("D", _HEADER, app_body(body))
    except ValueError as exc:
        return ("ValueError", type(exc).__name__, str(exc))


@given(
    cl_ord_id=_texts,
    symbol=_texts,
    side=st.sampled_from(list(Side)),
    qty=_decimals,
    order_type=st.sampled_from(list(OrdType)),
    price=st.none() | _decimals,
    tif=st.sampled_from(list(TimeInForce)),
    now_s=st.floats(0, 4e9),
)
@example(**{**_PLAIN, "symbol": "A\x01B"})  # SOH in a value: refused
@example(**{**_PLAIN, "cl_ord_id": ""})  # empty: refused
@example(**{**_PLAIN, "cl_ord_id": "c\ud800"})  # not encodable: refused
@example(**{**_PLAIN, "price": Decimal("1E+3")})  # exponent: written plain
@example(**{**_PLAIN, "qty": Decimal("-0E-3")})
def test_written_body_is_the_frame_the_field_list_gives(**values: Any) -> None:
    now_s = values.pop("now_s")
    order = PlaceOrder.model_construct(**values)  # unvalidated: odd values get through
    assert _frame(place_body(order, now_s)) == _frame(fm.place_fields(order, now_s))


def test_plain_orders_are_written_ahead() -> None:
    """The order path's common case takes the written way (else this saves nothing)."""
    order = PlaceOrder(
        cl_ord_id="c1", symbol="AAPL", side=Side.BUY, qty=Decimal("10"),
        order_type=OrdType.LIMIT, price=Decimal("101.50"), tif=TimeInForce.GTC,
    )  # fmt: skip
    body = place_body(order, NOW_S)
    assert isinstance(body, fc.Written)
    assert body.pairs() == [
        (11, b"c1"), (55, b"AAPL"), (54, b"1"), (38, b"10"), (40, b"2"), (44, b"101.50"),
        (59, b"1"), (60, b"20231114-22:13:20.125"),
    ]  # fmt: skip


def test_exponent_under_a_lowercase_context_takes_the_long_way() -> None:
    """`str` writes 1e+2 under capitals=0; the FIX text stays 100 (the long way's format)."""
    order = PlaceOrder(
        cl_ord_id="c1", symbol="AAPL", side=Side.SELL, qty=Decimal("1E+2"),
        order_type=OrdType.MARKET,
    )  # fmt: skip
    with localcontext() as ctx:
        ctx.capitals = 0
        body = place_body(order, NOW_S)
        assert not isinstance(body, fc.Written)
        assert _frame(body) == _frame(fm.place_fields(order, NOW_S))
        assert b"\x0138=100\x01" in _frame(body)
