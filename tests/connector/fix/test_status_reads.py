"""A mass status reply's size estimate read from the message's index (no tag repeated)
counts what the pass over every field counts, for any report."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from actors.connector.fix import codec as fc
from actors.connector.fix import queries

_ORDER = [b"11", b"37", b"55", b"54", b"38", b"44", b"40", b"39", b"14", b"6", b"151"]


def _reference(pairs: list[tuple[bytes, bytes]]) -> int:
    """Every value of an order tag, a value that is not ASCII twice."""
    return sum(len(v) if v.isascii() else 2 * len(v) for t, v in pairs if t in set(_ORDER))


@given(
    st.lists(
        st.tuples(
            st.sampled_from([*_ORDER, b"35", b"58", b"911", b"17"]),
            st.binary(min_size=1, max_size=5) | st.sampled_from([b"\xe9", b"AAPL", b"99.5"]),
        ),
        max_size=14,
    )
)
def test_order_bytes_counts_every_value_as_the_full_pass_does(
    pairs: list[tuple[bytes, bytes]],
) -> None:
    """Repeated tags (the pass over every field) or not (the index), ASCII or not: the
    same count; a message not parsed by us (a plain simplefix message) as well."""
    assert queries._order_bytes(fc.to_message(list(pairs))) == _reference(pairs)
    if len({t for t, _ in pairs}) == len(pairs):
        parsed = fc.to_message(list(pairs), dict(pairs))  # as read_frame builds it
        assert queries._order_bytes(parsed) == _reference(pairs)
