"""Review of 66a6c81: SentMessages against a dict model, every op sequence up to length 7
over small sizes (jumps of exactly size-1, size, size+1 numbers; lowering; drops)."""

from __future__ import annotations

import itertools

from actors.connector.fix.sent import SentMessages


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
            sent, model, nxt, hi, gen = SentMessages(size), {}, 1, 0, 0
            for op in seq_ops:
                if op == "app":
                    gen += 1
                    sent.put(nxt, b"%d" % gen)
                    if nxt > hi - size:
                        model[nxt] = b"%d" % gen
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
