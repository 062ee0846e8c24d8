"""The packed fill log answers as a deque of the last `size` fills filtered in Python would
(`actors.oms.fill_log`)."""

from __future__ import annotations

import random
from collections import deque
from decimal import Decimal

import pytest

from actors.oms.fill_log import FillLog
from actors.oms.views import Fill

VENUES, SYMBOLS = ("simA", "simB", "simC"), ("AAPL", "MSFT")


def _fill(rng: random.Random, i: int) -> Fill:
    return Fill(
        ts_ns=rng.choice([i * 10, rng.randrange(0, 10 * i + 1), 2**63 + i, 2**64 - 1, -5]),
        venue=rng.choice(VENUES), symbol=rng.choice(SYMBOLS), side=rng.choice(["BUY", ""]),
        qty=Decimal(rng.choice(["1", "1.50", "0.000001", "1E+3"])),
        px=Decimal(rng.choice(["100.25", "99", "0.1000"])),
        client_order_id=rng.choice(["", f"o{i}"]), exec_id=f"E{i}",
    )  # fmt: skip


@pytest.mark.parametrize("seed", range(6))
def test_newest_matches_a_filtered_deque_before_and_after_the_ring_wraps(seed: int) -> None:
    """Random fills (times across int64's edge, exponents kept: '1.50', '1E+3'), queries
    by venue, symbol, since and limit after every append: the same rows, newest first, the
    same total; the snapshot's walk is oldest first; `clear` empties it."""
    rng = random.Random(seed)
    size = rng.choice([1, 7, 64])
    log, ref = FillLog(size), deque[Fill](maxlen=size)
    for i in range(rng.randrange(0, 3 * size + 5)):
        fill = _fill(rng, i)
        log.append(fill)
        ref.append(fill)
        venue = rng.choice([None, *VENUES, "nowhere"])
        symbol = rng.choice([None, *SYMBOLS])
        since = rng.choice([None, 0, 5 * i, 2**63 - 1, 2**63 + i // 2, 2**64])
        limit = rng.choice([1, 3, 1000])
        want = [
            f for f in reversed(ref)
            if (venue is None or f.venue == venue) and (symbol is None or f.symbol == symbol)
            and (since is None or f.ts_ns >= since)
        ]  # fmt: skip
        rows, total = log.newest(venue, symbol, since, limit)
        assert total == len(want)
        assert [Fill(r[0], r[1], r[2], r[3], Decimal(r[4]), Decimal(r[5]), r[6], r[7])
                for r in rows] == want[:limit]  # fmt: skip
        assert [str(Decimal(r[4])) for r in rows] == [str(f.qty) for f in want[:limit]]
    assert [r[7] for r in log.oldest_first()] == [f.exec_id for f in ref]
    assert len(log) == len(ref)
    log.clear()
    assert len(log) == 0 and log.newest(None, None, None, 10) == ([], 0)
