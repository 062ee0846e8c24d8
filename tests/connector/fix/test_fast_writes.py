"""The FIX write path's shortcuts give exactly what the long way gives: a Decimal's text
from `str` where that has no exponent, an application body's plain str values encoded
inline, and a mass status reply's size estimate summed without a call per field."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.connector.fix import codec as fc
from actors.connector.fix import queries
from actors.connector.fix.transmit import _RESERVED_TAGS, app_body

_decimals = st.decimals(allow_nan=True, allow_infinity=True) | st.builds(
    Decimal, st.tuples(st.integers(0, 1), st.tuples(*[st.integers(0, 9)] * 5), st.integers(-30, 30))
)


@given(_decimals)
def test_decimal_text_is_the_plain_format(value: Decimal) -> None:
    assert fc._plain(value) == format(value, "f")
    assert fc.fix_value(value) == format(value, "f").encode()


def _reference_body(fields: Sequence[tuple[int, Any]]) -> list[tuple[int, bytes]]:
    """app_body as it was: each value through fix_value, a reserved tag refused."""
    body = []
    for tag, value in fields:
        if tag in _RESERVED_TAGS:
            raise ValueError(f"tag {tag} is set by the session")
        body.append((tag, fc.fix_value(value)))
    return body


class _Text(str):
    """A str subclass (an enum's value can be one): takes fix_value's long way."""


_values = st.one_of(
    st.text(max_size=6),
    st.text(alphabet="a\x01é", max_size=4),
    st.builds(_Text, st.text(max_size=3)),
    st.binary(max_size=4),
    st.integers(-(10**6), 10**6),
    _decimals,
)


def _outcome(f: Any, fields: Any) -> Any:
    try:
        return f(fields)
    except ValueError as exc:
        return ("ValueError", str(exc))


@given(st.lists(st.tuples(st.sampled_from([11, 35, 44, 58, 9, 55, 10]), _values), max_size=6))
def test_app_body_answers_what_fix_value_answers(fields: list[tuple[int, Any]]) -> None:
    assert _outcome(app_body, fields) == _outcome(_reference_body, fields)


@pytest.mark.parametrize("values", [[b"abc", b"12.5"], [b"\xe9t\xe9", b"x"], [b"\xe9"]])
def test_mass_status_size_estimate_counts_a_non_ascii_value_twice(values: list[bytes]) -> None:
    pairs = [(b"35", b"8"), (b"911", b"1"), *[(b"11", v) for v in values], (b"58", b"\xff" * 9)]
    q = queries.MassStatusQuery("m", lambda _r: None)
    orders = [(b"37", b"V1"), (b"55", b"AAPL"), (b"54", b"1"), (b"150", b"I")]
    msg = fc.to_message(pairs + orders)
    q.answer(msg)
    expected = sum(
        len(v) if v.isascii() else 2 * len(v)
        for t, v in msg.pairs
        if t in {b"11", b"37", b"55", b"54", b"38", b"44", b"40", b"39", b"14", b"6", b"151"}
    )
    assert q.size == queries._ORDER_KEYS_BYTES + expected and q.count == 1


def test_decimal_text_has_no_exponent_under_a_lowercase_context() -> None:
    """`str` writes 1e+2 under a context with capitals=0; the FIX text stays 100."""
    from decimal import localcontext

    with localcontext() as ctx:
        ctx.capitals = 0
        assert fc.fix_value(Decimal("1E+2")) == b"100"
        assert fc.fix_value(Decimal("1E-9")) == b"0.000000001"


class _Dec(Decimal):
    def __str__(self) -> str:
        return "1E+1"


@given(
    st.integers(-(10**30), 10**30)
    | st.booleans()
    | st.sampled_from([_Dec("10"), Decimal("1E+2"), Decimal("-0.50")])
)
def test_an_int_or_decimal_of_exact_type_is_written_as_the_long_way_writes_it(value: Any) -> None:
    """fix_value's exact-type branches (an int by %d, a Decimal by _plain) give what its
    isinstance chain gives; a bool or a subclass still takes the chain."""
    if isinstance(value, Decimal):
        expected = fc._plain(value).encode()
    else:
        expected = str(value).encode()
    assert fc.fix_value(value) == expected
