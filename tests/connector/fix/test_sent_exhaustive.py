"""SentMessages (`actors/connector/fix/sent.py`) against a dict model, every op sequence up
to length 6 over small sizes (jumps of exactly size-1, size, size+1 numbers; lowering;
drops), with the slots at their full count and grown from one."""

from __future__ import annotations

import itertools

import pytest

from actors.connector.fix import sent as sent_mod
from actors.connector.fix.sent import SentMessages


def _check(size: int, seq_ops: tuple[str, ...]) -> None:
    sent, model, nxt, hi, gen = SentMessages(size), {}, 1, 0, 0
    for op in seq_ops:
        if op == "app":
            gen += 1
            sent.put(nxt, gen)
            if nxt > hi - size:
                model[nxt] = gen
            hi = max(hi, nxt)
            model = {k: v for k, v in model.items() if k > hi - size}
            nxt += 1
        elif op.startswith("skip"):
            nxt += int(op[4:])
        elif op.startswith("lower"):
            nxt = max(1, nxt - int(op[5:]))
            sent.drop_from(nxt)
            model = {k: v for k, v in model.items() if k < nxt}
            hi = min(hi, nxt - 1)
        else:
            sent.drop_below(nxt - 1)
            model = {k: v for k, v in model.items() if k >= nxt - 1}
        got = list(sent.between(-5, 10**9))
        for n, raw in got:
            assert model.get(n) == raw, (size, seq_ops, n)
        must = sorted(model)
        assert [n for n, _ in got] == must, (size, seq_ops, got, must)


def test_every_short_op_sequence() -> None:
    for size in (1, 2, 3):
        ops = [
            "app",
            "skip1",
            f"skip{size - 1}",
            f"skip{size}",
            f"skip{size + 1}",
            "lower1",
            "lower3",
            "dropb",
        ]
        for seq_ops in itertools.product(ops, repeat=6):
            _check(size, seq_ops)


def test_slots_grown_from_one_match_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same model with the slots starting at one and doubling (`FIRST_CAP`): a number
    still in the window never loses its message to a newer one's slot."""
    monkeypatch.setattr(sent_mod, "FIRST_CAP", 1)
    for size in (2, 3, 5, 8):
        ops = ["app", "skip1", f"skip{size - 1}", f"skip{size}", "lower1", "lower3", "dropb"]
        for seq_ops in itertools.product(ops, repeat=5):
            _check(size, seq_ops)
