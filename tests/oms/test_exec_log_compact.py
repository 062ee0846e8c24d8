"""The OMS's execution log in fixed arrays (actors/oms/exec_cut.py) answers exactly as the
per-fill objects and ClOrdID dict it replaced (a reference model of that code, driven at
random with small bounds so the ring wraps and the hash table probes and evicts), keeps
a delta's exponent, and holds no more memory after many times its bounds than after its
first execution."""

from __future__ import annotations

import random
import tracemalloc
from collections import deque
from decimal import Decimal as D

from actors.oms.exec_cut import ExecLog, after
from protocol.messages import ExecCut

V = "simA"


class _Reference:
    """The ExecLog before the arrays (main at af6d729), one venue."""

    def __init__(self, ring: int, touched: int) -> None:
        self.ring: deque[tuple[int, int, str, D]] = deque()
        self.ring_size, self.touched_size = ring, touched
        self.evicted = (0, 0)
        self.count = 0
        self.touched: dict[str, int] = {}
        self.forgotten_below = 0

    def note(self, epoch: int, seq: int, coid: str | None, symbol: str, delta: D) -> None:
        self.count += 1
        if coid:
            self.touched.pop(coid, None)
            self.touched[coid] = self.count
            if len(self.touched) > self.touched_size:
                oldest = next(iter(self.touched))
                self.forgotten_below = self.touched.pop(oldest) + 1
        if seq and delta:
            self.ring.append((epoch, seq, symbol, delta))
            if len(self.ring) > self.ring_size:
                gone = self.ring.popleft()
                self.evicted = max(self.evicted, gone[:2])

    def touched_since(self, mark: int, orders: list[str]) -> set[str] | None:
        if mark + 1 < self.forgotten_below:
            return None
        return {c for c in orders if self.touched.get(c, 0) > mark}

    def positions_as_of(self, cut: ExecCut, now: dict[str, D]) -> dict[str, D] | None:
        if after(*self.evicted, cut):
            return None
        then = dict(now)
        for epoch, seq, symbol, delta in self.ring:
            if after(epoch, seq, cut):
                then[symbol] = then.get(symbol, D(0)) - delta
        return then


def _cut(epoch: int, seq: int) -> ExecCut:
    return ExecCut(connector_epoch=epoch, exec_seq=seq, since=0)


def test_answers_as_the_dict_and_deque_it_replaced() -> None:
    """Random notes (re-touched and new orders, fills and acks, a connector restart, deltas
    with any exponent or too many digits to pack): every mark, touched_since, touched_after
    and positions_as_of answer equals the reference model's, to the Decimal's exponent."""
    rnd = random.Random(16)
    deltas = [D("1"), D("-1"), D("1.0"), D("-0.25"), D("3E+2"), D("12345678901234567890.5")]
    for ring, touched in ((1, 1), (3, 2), (5, 7), (64, 40)):
        log, ref = ExecLog(ring=ring, touched=touched), _Reference(ring, touched)
        epoch, seq, marks = 7, 0, [0]
        for _ in range(3000):
            if rnd.random() < 0.01:
                epoch, seq = epoch + 1, 0  # a new connector incarnation numbers from 1
            seq += 1
            coid = rnd.choice([None, f"o{rnd.randrange(3 * touched + 3)}"])
            delta = rnd.choice([D(0), *deltas])
            symbol = rnd.choice(["AAPL", "MSFT"])
            log.note(V, epoch, seq, coid, symbol, delta)
            ref.note(epoch, seq, coid, symbol, delta)
            assert log.mark(V) == ref.count
            marks.append(ref.count)
            mark = rnd.choice(marks[-3 * touched :])
            orders = [f"o{i}" for i in range(3 * touched + 3)]
            assert log.touched_since(V, mark, orders) == ref.touched_since(mark, orders)
            assert log.remembers(V, mark) == (mark + 1 >= ref.forgotten_below)
            if log.remembers(V, mark):
                for c in orders:
                    assert log.touched_after(V, mark, c) == (ref.touched.get(c, 0) > mark)
            cut = _cut(rnd.choice([epoch - 1, epoch]), rnd.randrange(seq + 1))
            now = {"AAPL": D("10"), "MSFT": D("-2.50")}
            got, want = log.positions_as_of(V, cut, now), ref.positions_as_of(cut, now)
            assert got == want
            if got is not None and want is not None:
                assert {k: str(v) for k, v in got.items()} == {k: str(v) for k, v in want.items()}


def test_memory_does_not_grow_once_the_venue_is_noted() -> None:
    """Its arrays are allocated with the venue's first execution: ten times its bounds of
    further executions (new orders, new fills) add under 64 KiB (the dict and per-fill
    objects grew ~9 MiB per venue at the default bounds)."""
    log = ExecLog(ring=2048, touched=4096)
    log.note(V, 7, 1, "first", "AAPL", D(1))
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for seq in range(2, 40_000):
            log.note(V, 7, seq, f"order-{seq:07d}", "AAPL", D(seq % 3 - 1))
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 64 * 1024, grown
