"""The venue's retired ClOrdID hashes in fixed arrays (actors/venuesim/retired.py): the
same membership as the set and FIFO deque they replaced (a model of that code, driven at
random with a small bound and hashes chosen to collide in the table, so it probes, wraps
and moves entries back on removal), and no more memory after many times the bound."""

from __future__ import annotations

import random
import tracemalloc
from collections import deque

from actors.venuesim.retired import RetiredIds


def test_membership_equals_the_set_and_deque_it_replaced() -> None:
    """Random adds, re-adds and lookups (negative hashes, hashes sharing a home slot):
    every `in` and `len` answer equals the model's, the oldest forgotten first."""
    rnd = random.Random(16)
    for size in (1, 2, 5, 13, 64):
        ids, held, order = RetiredIds(size), set[int](), deque[int]()
        assert 5 not in ids and len(ids) == 0
        pool = [rnd.randrange(-(2**63), 2**63) for _ in range(3 * size)]
        pool += [k * 64 * size + 3 for k in range(size)]  # one home slot for all of them
        for _ in range(4000):
            h = rnd.choice(pool)
            ids.add(h)
            if h not in held:
                held.add(h)
                order.append(h)
            while len(order) > size:
                held.discard(order.popleft())
            assert len(ids) == len(held)
            for probe in rnd.sample(pool, min(len(pool), 8)):
                assert (probe in ids) == (probe in held)


def test_memory_does_not_grow_after_the_first_id() -> None:
    """Its arrays come with the first id: ten times the bound more add under 16 KiB (the
    set and deque grew ~80 B per id up to the bound)."""
    ids = RetiredIds(4096)
    ids.add(hash("first"))
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(40_960):
            ids.add(hash(f"order-{n:07d}"))
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 16 * 1024, grown
    assert hash("order-0040959") in ids and hash("order-0000000") not in ids
