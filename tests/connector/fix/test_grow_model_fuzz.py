"""SentMessages and SeqRequests grown from few slots against dict models, random op
sequences (jumps of size-1/size/size+1, lowering, drops, pops, non-power-of-two sizes).
SeqRequests' growth, its pop window check and its drop_from of numbers that left the
window are each caught here (found by review: the other tests pass with them broken)."""

from __future__ import annotations

import random

import pytest

from actors.connector.fix import sent as sent_mod
from actors.connector.fix.recent import SeqRequests
from actors.connector.fix.sent import SentMessages

_SIZES = (1, 2, 3, 5, 8, 13, 100)


def _jump(rng: random.Random, size: int) -> int:
    return rng.choice([1, 1, 1, 2, size - 1, size, size + 1, 3 * size, -1, -size + 1, -size])


def _run_sent(rng: random.Random, size: int) -> None:
    sent, model, newest = SentMessages(size), dict[int, int](), 0
    for _ in range(60):
        op = rng.random()
        if op < 0.55:
            seq, raw = max(1, newest + _jump(rng, size)), rng.randrange(10**9)
            sent.put(seq, raw)
            if seq > newest - size:
                newest, model[seq] = max(newest, seq), raw
                model = {k: v for k, v in model.items() if k > newest - size}
        elif op < 0.7:
            first = max(1, newest - rng.randrange(0, size + 3))
            sent.drop_from(first)
            model, newest = {k: v for k, v in model.items() if k < first}, min(newest, first - 1)
        elif op < 0.85:
            below = newest - rng.randrange(-2, size + 3)
            sent.drop_below(below)
            model = {k: v for k, v in model.items() if k >= below}
        else:
            b, e = rng.randrange(-3, newest + 3), rng.randrange(-3, newest + 3)
            assert list(sent.between(b, e)) == sorted(i for i in model.items() if b <= i[0] <= e)
        assert list(sent.between(1, 10**9)) == sorted(model.items())
        assert len(sent) == len(model) and sent.newest == newest and len(sent._seq) <= size


def _run_requests(rng: random.Random, size: int) -> None:
    reqs, model, newest = SeqRequests(size), dict[int, tuple[str, str]](), 0
    for _ in range(60):
        op = rng.random()
        if op < 0.55:
            seq = max(1, newest + _jump(rng, size))
            if seq <= newest - size:
                continue  # the queue never puts below the window (see the report)
            found = ("D", f"o{rng.randrange(10**9)}")
            reqs.put(seq, *found)
            newest, model[seq] = max(newest, seq), found
            model = {k: v for k, v in model.items() if k > newest - size}
        elif op < 0.7:
            first = max(1, newest - rng.randrange(0, size + 3))
            reqs.drop_from(first)
            model, newest = {k: v for k, v in model.items() if k < first}, min(newest, first - 1)
        else:
            seq = rng.randrange(1, newest + 3) if newest else 1
            assert reqs.pop(seq) == model.pop(seq, None)
        assert len(reqs) == len(model) and len(reqs._seq) <= size


@pytest.mark.parametrize("first_cap", [1, 2, 64])
def test_grown_maps_match_their_models(monkeypatch: pytest.MonkeyPatch, first_cap: int) -> None:
    monkeypatch.setattr(sent_mod, "FIRST_CAP", first_cap)
    for size in _SIZES:
        for seed in range(300):
            _run_sent(random.Random(seed * 1000 + size), size)
            _run_requests(random.Random(seed * 1000 + size), size)
