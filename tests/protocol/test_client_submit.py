"""A client's submit through the fast path (protocol.client_submit) is `SubmitOrder(...)`,
only faster: for any arguments, the same body (values, types, fields set) and the same wire
bytes as pydantic's validation and the codec's dump, or the same `InvalidOrder`."""

from __future__ import annotations

import types
from decimal import Decimal
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.client import ExecutionClient, InvalidOrder
from protocol.domain import OrdType, Side, TimeInForce
from protocol.messages import SubmitOrder
from protocol.wire_out import dump
from tests.protocol.test_fastpath import _same

_CLIENT = types.SimpleNamespace(name="client-test")


def _old(coid: str, venue: Any, symbol: Any, side: Any, qty: Any, order_type: Any,
         price: Any, tif: Any) -> SubmitOrder | InvalidOrder:  # fmt: skip
    """The client's body before the fast path: pydantic's validation."""
    try:
        return SubmitOrder(
            client_order_id=coid, venue=venue, symbol=symbol, side=side, qty=Decimal(str(qty)),
            order_type=order_type, price=None if price is None else Decimal(str(price)), tif=tif,
        )  # fmt: skip
    except (ValueError, ArithmeticError) as exc:
        return InvalidOrder(None, str(exc))


def _new(*args: Any) -> tuple[SubmitOrder, msgspec.Raw | None] | InvalidOrder:
    coid, venue, symbol, side, qty, order_type, price, tif = args
    made: Any = ExecutionClient._submit_wire(
        _CLIENT,  # type: ignore[arg-type]
        venue, symbol, side, qty, order_type, price, tif, coid,
    )  # fmt: skip
    return made  # type: ignore[no-any-return]


def _agree(*args: Any) -> bool:
    """Old and new agree on `args`; True when the fast path wrote the body."""
    old, new = _old(*args), _new(*args)
    if isinstance(old, InvalidOrder):
        assert isinstance(new, InvalidOrder) and str(new) == str(old)
        return False
    assert not isinstance(new, InvalidOrder), new
    body, wire = new
    _same(body, old)
    if wire is None:
        return False
    assert bytes(wire) == msgspec.msgpack.encode(dump(old))
    return True


def test_a_plain_submit_is_written_by_the_fast_path_as_pydantic_writes_it() -> None:
    assert _agree("lat-00001", "simA", "AAPL", "BUY", "1", "LIMIT", "95.00", "DAY")
    assert _agree("c 1", "simA", "ES Z6", Side.SELL, 10, OrdType.MARKET, None, TimeInForce.IOC)
    assert _agree("c-2", "simA", "AAPL", "BUY", Decimal("0.001"), "LIMIT", Decimal("-0"), "GTC")


def test_what_the_fast_path_leaves_pydantic_decides_as_before() -> None:
    assert not _agree("c-1", "simA", "AAPL", "BUY", "1E+2", "LIMIT", "95", "DAY")  # not plain
    assert not _agree("c-1", "simA", "AAPL", "buy", "1", "LIMIT", "95", "DAY")  # refused
    assert not _agree("c-1", "simA", "AAPL\n", "BUY", "1", "LIMIT", "95", "DAY")
    assert not _agree("c-1", "simA", "AAPL", "BUY", "abc", "LIMIT", "95", "DAY")
    assert not _agree("c-1", "x" * 33, "AAPL", "BUY", "1", "LIMIT", "95", "DAY")
    assert not _agree("c-1", "simA", "AAPL", "BUY", "1" * 40, "LIMIT", "95", "DAY")  # bounds


_odd = st.none() | st.integers(-3, 3) | st.booleans() | st.binary(max_size=3) | st.floats()
_text = st.text(max_size=40) | st.text(st.characters(min_codepoint=32, max_codepoint=126),
                                       min_size=1, max_size=70)  # fmt: skip
_decimal_text = st.from_regex(r"\A[ +-]?[0-9]{0,30}(\.[0-9]{0,12})?([eE][+-]?[0-9]{1,3})?\Z")
_number = (st.decimals(allow_nan=True, allow_infinity=True) | _decimal_text
           | st.integers(-(10**40), 10**40)
           | st.sampled_from(["NaN", "-0", "0.000", "1" * 31]))  # fmt: skip


def _enum(values: list[str]) -> st.SearchStrategy[Any]:
    return st.sampled_from(values) | st.sampled_from([v.lower() for v in values]) | _odd | _text


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    coid=_text.filter(bool), venue=_text | _odd, symbol=_text | _odd,
    side=_enum([s.value for s in Side]), qty=_number,
    order_type=_enum([o.value for o in OrdType]), price=st.none() | _number,
    tif=_enum([t.value for t in TimeInForce]),
)  # fmt: skip
def test_the_fast_path_agrees_with_pydantic_on_any_arguments(
    coid: str, venue: Any, symbol: Any, side: Any, qty: Any, order_type: Any, price: Any,
    tif: Any,
) -> None:  # fmt: skip
    """Old (`SubmitOrder(...)`, then the codec's dump) and new (the fast path, pydantic
    where it cannot vouch): the same body and bytes, or the same refusal."""
    _agree(coid, venue, symbol, side, qty, order_type, price, tif)


_ascii = st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=34)
_finite = st.decimals(allow_nan=False, allow_infinity=False) | _decimal_text


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    coid=_ascii, venue=_ascii, symbol=_ascii,
    side=st.sampled_from([*Side, *(s.value for s in Side)]), qty=_finite,
    order_type=st.sampled_from([*OrdType, *(o.value for o in OrdType)]),
    price=st.none() | _finite, tif=st.sampled_from([*TimeInForce, *(t.value for t in TimeInForce)]),
)  # fmt: skip
def test_the_fast_path_agrees_with_pydantic_on_orders_a_client_sends(
    coid: str, venue: str, symbol: str, side: Any, qty: Any, order_type: Any, price: Any,
    tif: Any,
) -> None:  # fmt: skip
    """Mostly valid orders (text a symbol may or may not be, decimals in every form): the
    fast path writes most, pydantic decides the rest, as before."""
    _agree(coid, venue, symbol, side, qty, order_type, price, tif)
