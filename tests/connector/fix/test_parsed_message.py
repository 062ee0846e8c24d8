"""A parsed FIX message answers `get` from an index of first occurrences (fast for the
10,000 reports of a mass status) exactly as `simplefix` answers it by scanning."""

from __future__ import annotations

import simplefix
from hypothesis import given
from hypothesis import strategies as st

from actors.connector.fix import codec as fc

TAGS = st.sampled_from([b"11", b"14", b"37", b"38", b"44", b"54", b"55", b"453", b"448"])
PAIRS = st.lists(st.tuples(TAGS, st.binary(min_size=1, max_size=4)), max_size=12)


def _scanned(pairs: list[tuple[bytes, bytes]]) -> simplefix.FixMessage:
    msg = simplefix.FixMessage()
    msg.pairs = list(pairs)
    return msg


@given(PAIRS, st.sampled_from([11, 14, 37, 38, 44, 54, 55, 453, 448, 999]))
def test_get_matches_simplefix_for_every_tag_and_repeat(
    pairs: list[tuple[bytes, bytes]], tag: int
) -> None:
    """First and later occurrences of a repeated tag (a party group), and absent tags."""
    parsed, scanned = fc.to_message(list(pairs)), _scanned(pairs)
    for nth in (1, 2, 3):
        assert parsed.get(tag, nth) == scanned.get(tag, nth)
    assert parsed.get(str(tag)) == scanned.get(str(tag))
    assert fc.get_str(parsed, tag) == fc.get_str(scanned, tag)


def test_fields_added_after_a_read_are_seen() -> None:
    """The index follows the message when fields are appended after it was first read."""
    msg = fc.to_message([(b"35", b"8"), (b"11", b"A")])
    assert msg.get(37) is None
    msg.append_pair(37, b"V1")
    msg.append_pair(11, b"B")
    assert (msg.get(37), msg.get(11), msg.get(11, 2)) == (b"V1", b"A", b"B")
