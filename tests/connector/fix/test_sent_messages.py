"""Where the FIX store's sent messages are (actors/connector/fix/sent.py): the newest
`size` sequence numbers in order (numbers skipped by admin messages hold nothing, an
operator's lower next-out forgets the numbers from it), and no growth once filled."""

from __future__ import annotations

import tracemalloc

from actors.connector.fix.sent import SentMessages


def _raw(seq: int) -> int:
    """The place a store would give message `seq` (any int: the slots keep what they get)."""
    return (seq * 977) << 32 | 180


def test_holds_the_newest_numbers_in_order() -> None:
    """Numbers within `size` of the newest are held in order, older ones and skipped ones
    not; drop_below and drop_from forget exactly the numbers they name."""
    sent = SentMessages(5)
    assert list(sent.between(1, 99)) == [] and len(sent) == 0
    for seq in (1, 2, 3, 5, 6, 8):  # 4 and 7: admin messages (not kept)
        sent.put(seq, _raw(seq))
    assert [s for s, _ in sent.between(1, 99)] == [5, 6, 8]
    assert list(sent.between(6, 6)) == [(6, _raw(6))]
    sent.put(2, _raw(2))  # below the window: ignored
    assert len(sent) == 3
    sent.drop_below(6)
    assert [s for s, _ in sent.between(1, 99)] == [6, 8]
    sent.drop_from(8)  # next-out lowered to 8: 8 goes to a new message
    sent.put(8, 12345)
    assert list(sent.between(1, 99)) == [(6, _raw(6)), (8, 12345)]
    sent.put(20, _raw(20))  # a jump past the whole window
    assert [s for s, _ in sent.between(1, 99)] == [20]
    sent.clear()
    assert list(sent.between(1, 99)) == []


def test_memory_does_not_grow_once_filled() -> None:
    """Past the first `size` messages, ten times as many more leave the memory held where it
    was (< 16 KiB; a dict and its periodic rebuilds grew ~70 B per message over the bytes)."""
    sent = SentMessages(2048)
    tracemalloc.start()
    try:
        for seq in range(1, 4097):
            sent.put(seq, _raw(seq))
        before = tracemalloc.get_traced_memory()[0]
        for seq in range(4097, 24_577):
            sent.put(seq, _raw(seq))
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 16 * 1024, grown
    assert len(sent) == 2048
