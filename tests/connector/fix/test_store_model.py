"""Model check of FixStore's kept messages (`actors/connector/fix/sent.py`): random sends,
admin numbers, operator next-out changes, resets, reopens (kill -9 = no close) and
compactions. Every message returned for a resend must be the one sent with that number
(never a stale slot), and every application message among the last keep_msgs numbers must
be returned."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from actors.connector.fix import store as store_mod
from actors.connector.fix.store import FixStore


@pytest.mark.parametrize("seed", range(12))
def test_store_against_model(tmp_path: Path, seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rnd = random.Random(seed)
    keep = rnd.choice([3, 7, 20])
    monkeypatch.setattr(store_mod, "_PRUNE_SLACK", rnd.choice([1, 4, 16]))
    opened = [
        FixStore(tmp_path, fsync=False, keep_msgs=keep, max_bytes=rnd.choice([400, 4000, 1 << 20]))
    ]
    model: dict[int, bytes] = {}  # every app message ever sent and not forgotten by an operator
    gen = 0
    hi = 1  # highest next-out since the last reset: the window never comes back down

    def st() -> FixStore:
        return opened[-1]

    log: list[str] = []
    for _ in range(600):
        op = rnd.random()
        log.append(f"{op:.2f} next_out={st().next_out}")
        s = st()
        if op < 0.55:
            gen += 1
            seq = s.next_out
            raw = b"35=D\x0111=%d-%d\x01" % (seq, gen)
            s.save_sent(seq, raw)
            model[seq] = raw
        elif op < 0.75:
            s.set_next_out(s.next_out + 1)  # admin message
        elif op < 0.80:
            s.set_next_out(s.next_out + rnd.randint(1, 60))  # many admin messages
        elif op < 0.84:
            new = max(1, s.next_out + rnd.randint(-40, 40))
            s.set_numbers(next_out=new)
            for k in [k for k in model if k >= new]:
                del model[k]
        elif op < 0.85:
            s.reset()
            model.clear()
            hi = 1
        elif op < 0.93:
            s.flush()  # kill -9: page cache survives, not the store's close()
            import os

            os.close(s._fd)  # type: ignore[attr-defined]  # as the kernel would (no fd leak)
            s._fd = -1  # type: ignore[attr-defined]
            os.close(s._lock_fd)  # type: ignore[attr-defined]
            opened.append(FixStore(tmp_path, fsync=False, keep_msgs=keep, max_bytes=s._max_bytes))  # type: ignore[attr-defined]
        else:
            s.flush()
        s = st()
        last = s.next_out - 1
        hi = max(hi, s.next_out)
        got = s.sent_messages(1, 10**12)
        for n, raw in got:
            assert model.get(n) == raw, (seed, n, raw, model.get(n))
        got_nums = {n for n, _ in got}
        must = {n for n in model if n > hi - 1 - keep}
        assert must <= got_nums, (seed, sorted(must - got_nums), last, log[-12:])
        a = rnd.randint(-3, last + 3)
        b = rnd.randint(a, last + 5)
        assert s.sent_messages(a, b) == [(n, r) for n, r in got if a <= n <= b]
    st().close()
