"""The venue's retired ClOrdID hashes in fixed arrays (actors/runtime/idring.py `HashRing`): the
same membership as the set and FIFO deque they replaced (a model of that code, driven at
random with a small bound and hashes chosen to collide in the table, so it probes, wraps
and moves entries back on removal), and no more memory after many times the bound."""

from __future__ import annotations

import random
import tracemalloc
from collections import deque

import pytest

from actors.runtime.idring import HashRing, IdRing


def test_membership_equals_the_set_and_deque_it_replaced() -> None:
    """Random adds, re-adds and lookups (negative hashes, hashes sharing a home slot):
    every `in` and `len` answer equals the model's, the oldest forgotten first."""
    rnd = random.Random(16)
    for size in (1, 2, 5, 13, 64):
        ids, held, order = HashRing(size), set[int](), deque[int]()
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
    ids = HashRing(4096)
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


class _Colliding(IdRing):
    """Every id hashes to one of three values: membership must come from the ids."""

    @staticmethod
    def _hash(key: bytes) -> int:
        return len(key) % 3


def test_id_ring_answers_exactly_like_the_set_and_deque() -> None:
    """Random adds and lookups of short, long (past `width`) and non-ASCII ids, with real
    hashes and with hashes that nearly all collide: every `in`, `len`, `add` result and
    the held (id, tag) list oldest first equal a set plus FIFO deque's; an id whose hash
    collides with a held one is never taken as held."""
    rnd = random.Random(4)
    for cls in (IdRing, _Colliding):
        for size in (1, 2, 7, 33):
            ids = cls(size, width=8, tagged=True)
            held, order = dict[str, int](), deque[str]()
            assert "x" not in ids and len(ids) == 0 and list(ids.items()) == []
            pool = [f"E{n}" for n in range(2 * size)] + [f"exec-long-{n:06d}" for n in range(size)]
            pool += ["é" * 5, "é" * 4, ""]
            for step in range(3000):
                exec_id, tag = rnd.choice(pool), step
                assert ids.add(exec_id, tag) == (exec_id not in held)
                if exec_id not in held:
                    held[exec_id] = tag
                    order.append(exec_id)
                while len(order) > size:
                    del held[order.popleft()]
                assert len(ids) == len(held)
                for probe in rnd.sample(pool, 6):
                    assert (probe in ids) == (probe in held)
                if step % 97 == 0:
                    assert list(ids.items()) == [(i, held[i]) for i in order]
            ids.clear()
            assert len(ids) == 0 and pool[0] not in ids and list(ids) == []
            ids.add("again")
            assert list(ids) == ["again"]


def test_id_ring_memory_does_not_grow_after_the_first_id() -> None:
    """Ten times the bound more ids (all within `width`) add under 16 KiB once the first
    one allocated the arrays; an id longer than `width` still fits (side dict)."""
    ids = IdRing(4096)
    ids.add("first")
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(40_960):
            ids.add(f"simA-E{n:012d}")
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 16 * 1024, grown
    assert "simA-E000000040959" in ids and "simA-E000000000000" not in ids
    ids.add("x" * 100)
    assert "x" * 100 in ids and "x" * 99 not in ids
    with pytest.raises(ValueError, match="width"):
        IdRing(4, width=0)


def test_a_ring_of_size_zero_holds_nothing() -> None:
    """A bound of 0 (as `deque(maxlen=0)`) remembers nothing and allocates nothing."""
    hashes, ids = HashRing(0), IdRing(0)
    hashes.add(5)
    assert ids.add("a") is True
    assert 5 not in hashes and "a" not in ids and len(ids) == len(hashes) == 0
