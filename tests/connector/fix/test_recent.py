"""The outbound queue's recent-send maps (actors/connector/fix/recent.py): `LastOrderSeq`
answers as the bounded OrderedDict it replaced (a model of that code, at random, small
bound), `SeqRequests` holds each of the newest `size` sequence numbers (an operator's
lower numbers included), and neither grows once full."""

from __future__ import annotations

import random
import tracemalloc
from collections import OrderedDict

from actors.connector.fix.recent import LastOrderSeq, SeqRequests


def test_last_order_seq_answers_as_the_ordered_dict_it_replaced() -> None:
    """Random puts of new and held ClOrdIDs: every get equals the model's (a held id keeps
    its place, the first put longest ago goes first)."""
    rnd = random.Random(16)
    for size in (1, 3, 10):
        last, model = LastOrderSeq(size), OrderedDict[str, int]()
        assert last.get("x") is None
        for seq in range(1, 2000):
            cl = f"c{rnd.randrange(3 * size)}"
            last.put(cl, seq)
            model[cl] = seq
            if len(model) > size:
                model.popitem(last=False)
            assert len(last) == len(model)
            for probe in (f"c{i}" for i in range(3 * size)):
                assert last.get(probe) == model.get(probe)


def test_seq_requests_hold_the_newest_numbers_and_pop_once() -> None:
    """The newest `size` numbers are held, older ones gone, a pop answers once; numbers
    an operator lowered are forgotten from the new next-out on, then reused."""
    seqs = SeqRequests(4)
    assert seqs.pop(1) is None
    for seq in range(1, 11):
        seqs.put(seq, "D", f"o{seq}")
    assert [seqs.pop(s) for s in (6, 7)] == [None, ("D", "o7")]
    assert seqs.pop(7) is None and seqs.pop(10) == ("D", "o10") and len(seqs) == 2
    seqs.drop_from(2)  # next-out lowered by an operator (the queue's `_in_numbering`)
    seqs.put(2, "F", "c2")  # 2 reused
    assert seqs.pop(2) == ("F", "c2") and seqs.pop(8) is None and len(seqs) == 0


def test_neither_grows_after_the_bound_is_reached() -> None:
    """Past twice the bound (the dict's table has settled), ten times the bound more new
    sends grow neither (< 16 KiB, with 2,048 per map; the ClOrdIDs held are replaced)."""
    seqs, last = SeqRequests(2048), LastOrderSeq(2048)

    def send(first: int, end: int) -> None:
        for seq in range(first, end):
            cl = f"order-{seq:07d}"
            seqs.put(seq, "D", cl)
            last.put(cl, seq)

    tracemalloc.start()  # before the first put: what the maps hold is traced
    try:
        send(1, 4096)
        before = tracemalloc.get_traced_memory()[0]
        send(4096, 24_576)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 16 * 1024, grown
    assert last.get("order-0024575") == 24_575 and last.get("order-0022527") is None
