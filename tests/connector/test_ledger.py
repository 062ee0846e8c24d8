"""The connector's own fill ledger (actors/connector/ledger.py): net qty per symbol from
the fills it received, each ExecID once, durable across a crash, bounded dedup state."""

from __future__ import annotations

import errno
import os
import random
import tracemalloc
from collections import deque
from decimal import Decimal
from pathlib import Path

import pytest

from actors.connector import ledger as ledger_mod
from actors.connector.ledger import LEDGER_NAME, FillLedger
from protocol.exceptions import JournalCorrupt
from protocol.messages import ExecReport, Side

D = Decimal
DAY_S = 86_400.0


def fill(exec_id: str, side: Side, qty: str, symbol: str = "AAPL") -> ExecReport:
    return ExecReport(
        venue="simA", exec_id=exec_id, kind="fill", cl_ord_id=f"c-{exec_id}", symbol=symbol,
        side=side, last_qty=D(qty), last_px=D("100"),
    )  # fmt: skip


def test_net_qty_per_symbol_each_exec_id_once(tmp_path: Path) -> None:
    """Buys add, sells subtract; a fill seen again (a FIX resend) and non-fills are not
    counted; a flat symbol is no row."""
    ledger = FillLedger(tmp_path, fsync=False)
    accepted = ExecReport(venue="simA", exec_id="a0", kind="accepted", cl_ord_id="c", side=Side.BUY)
    assert ledger.add([accepted, fill("e1", Side.BUY, "10"), fill("e2", Side.SELL, "3")]) == 2
    assert ledger.add([fill("e1", Side.BUY, "10"), fill("e3", Side.SELL, "5", "MSFT")]) == 1
    assert [(p.symbol, p.qty) for p in ledger.view("simA")] == [("AAPL", D(7)), ("MSFT", D(-5))]
    ledger.add([fill("e4", Side.SELL, "7")])
    assert [p.symbol for p in ledger.view("simA")] == ["MSFT"]
    ledger.close()


def test_a_bust_takes_the_trade_back_by_its_last_qty_once(tmp_path: Path) -> None:
    """A venue's bust (150=H) carries the busted trade's LastQty: the ledger takes it back,
    once per the bust's ExecID (a FIX resend of it is not counted again); a correction
    (150=G), whose old quantity the ledger does not keep, leaves it as it is."""
    ledger = FillLedger(tmp_path, fsync=False)
    ledger.add([fill("e1", Side.BUY, "10"), fill("e2", Side.BUY, "4")])
    bust = fill("b1", Side.BUY, "4").model_copy(
        update={"kind": "trade_cancel", "exec_ref_id": "e2"}
    )
    fix = fill("g1", Side.BUY, "9").model_copy(
        update={"kind": "trade_correct", "exec_ref_id": "e1"}
    )
    assert ledger.add([bust, fix]) == 1
    assert ledger.add([bust]) == 0
    assert [(p.symbol, p.qty) for p in ledger.view("simA")] == [("AAPL", D(10))]
    ledger.close()


def test_survives_a_crash_and_dedups_what_the_venue_sends_again(tmp_path: Path) -> None:
    """Synced fills are there after a crash (no close); the venue's resend of them is not
    counted twice; a torn tail (a write cut short) is cut and the rest kept."""
    ledger = FillLedger(tmp_path)
    ledger.add([fill("e1", Side.BUY, "10")])
    ledger.sync()  # the durability barrier; then kill -9: no close
    with open(tmp_path / LEDGER_NAME, "ab") as f:
        f.write(b"TL\x00\x00")  # a torn frame header
    again = FillLedger(tmp_path)
    assert again.add([fill("e1", Side.BUY, "10"), fill("e2", Side.BUY, "1")]) == 1
    again.sync()
    assert [(p.symbol, p.qty) for p in FillLedger(tmp_path).view("simA")] == [("AAPL", D(11))]


def test_dedup_ids_are_kept_for_today_and_yesterday_only(tmp_path: Path) -> None:
    """The ExecID set is bounded: ids of days before yesterday (UTC) are dropped, in memory
    and, after a compaction, on disk; positions are kept whatever their age."""
    now = [1_700_000_000.0]
    ledger = FillLedger(tmp_path, fsync=False, compact_bytes=1, clock=lambda: now[0])
    ledger.add([fill(f"d0-{i}", Side.BUY, "1") for i in range(50)])
    ledger.sync()
    now[0] += DAY_S
    ledger.add([fill("d1", Side.BUY, "1")])
    assert ledger.dedup_ids == 51
    now[0] += DAY_S
    ledger.add([fill("d2", Side.BUY, "1")])
    ledger.sync()
    assert ledger.dedup_ids == 2
    reopened = FillLedger(tmp_path, fsync=False, clock=lambda: now[0])
    assert reopened.dedup_ids == 2
    assert [(p.symbol, p.qty) for p in reopened.view("simA")] == [("AAPL", D(52))]


def test_unseeded_is_kept_until_the_file_is_archived(tmp_path: Path) -> None:
    """A ledger created on an existing install says it does not know earlier positions,
    and keeps saying so when reopened (the connector passes unseeded=False then)."""
    FillLedger(tmp_path, unseeded=True, fsync=False).close()
    assert FillLedger(tmp_path, fsync=False).unseeded
    assert not FillLedger(tmp_path / "new", fsync=False).unseeded


def test_a_snapshot_over_the_compaction_size_is_not_rewritten_at_every_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A day with many fills makes the snapshot itself bigger than `compact_bytes`: the
    next batches append, and compaction waits until the file doubled. Before, every batch
    rewrote (and fsynced) the whole file inside the durability barrier (found by review:
    ~20 ms a batch at 50k fills)."""
    ledger = FillLedger(tmp_path, fsync=False, compact_bytes=4096)
    ledger.add([fill(f"E{i:06d}", Side.BUY, "1") for i in range(1500)])
    ledger.sync()  # over 4096 bytes: compacted once, the snapshot is still over it
    snapshot = ledger.path.stat().st_size
    assert snapshot > 4096
    rewrites: list[int] = []
    original = FillLedger._write_snapshot

    def counted(self: FillLedger) -> None:
        rewrites.append(1)
        original(self)

    monkeypatch.setattr(FillLedger, "_write_snapshot", counted)
    for i in range(20):
        ledger.add([fill(f"N{i:06d}", Side.BUY, "1")])
        ledger.sync()
    assert rewrites == []
    ledger.add([fill(f"M{i:06d}", Side.BUY, "1") for i in range(3000)])
    ledger.sync()  # past twice the snapshot: compacted again
    assert rewrites == [1]
    assert [(p.symbol, p.qty) for p in FillLedger(tmp_path).view("simA")] == [("AAPL", D(4520))]


def test_dedup_ids_are_bounded_in_number_within_a_day(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a busy day the ExecID set keeps the newest KEEP_IDS ids, in memory and after a
    reopen: a resend of a recent fill is still a duplicate; positions count every fill."""
    from actors.connector import ledger as ledger_mod

    monkeypatch.setattr(ledger_mod, "KEEP_IDS", 100)
    ledger = FillLedger(tmp_path, fsync=False)
    ledger.add([fill(f"e{i}", Side.BUY, "1") for i in range(1000)])
    ledger.sync()
    assert ledger.dedup_ids == 100
    assert ledger.add([fill("e999", Side.BUY, "1")]) == 0
    ledger.close()
    reopened = FillLedger(tmp_path, fsync=False)
    assert reopened.dedup_ids == 100
    assert reopened.add([fill("e950", Side.BUY, "1")]) == 0
    assert [(p.symbol, p.qty) for p in reopened.view("simA")] == [("AAPL", D(1000))]


def test_a_batch_without_a_fill_does_not_read_the_clock(tmp_path: Path) -> None:
    """An order's New (no fill) costs no day computation on its way to the OMS (issue 16,
    p50: ~4.5 us before each forward); the first fill of a batch reads the day once, and
    dedup by ExecID is as before."""
    reads: list[float] = []

    def clock() -> float:
        reads.append(3 * DAY_S)
        return reads[-1]

    ledger = FillLedger(tmp_path, fsync=False, clock=clock)
    before = len(reads)
    accepted = ExecReport(venue="simA", exec_id="a0", kind="accepted", cl_ord_id="c", side=Side.BUY)
    assert ledger.add([accepted]) == 0 and len(reads) == before
    assert ledger.add([accepted, fill("e1", Side.BUY, "2"), fill("e2", Side.BUY, "1")]) == 2
    assert len(reads) == before + 1
    assert ledger.add([fill("e1", Side.BUY, "2")]) == 0
    assert [(p.symbol, p.qty) for p in ledger.view("simA")] == [("AAPL", D(3))]
    ledger.close()


def test_dedup_ids_memory_is_flat_once_the_first_fill_came(tmp_path: Path) -> None:
    """The ids sit in fixed arrays made at the first fill: 20,000 more fills (twice the
    bound) past 10,000 add under 64 KiB (the sets, deque and id strings grew ~1.7 MB)."""
    ledger = FillLedger(tmp_path, fsync=False, compact_bytes=1 << 30)
    for n in range(10):
        ledger.add([fill(f"simA-E{n * 1000 + i:012d}", Side.BUY, "1") for i in range(1000)])
        ledger.sync()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(10, 30):
            ledger.add([fill(f"simA-E{n * 1000 + i:012d}", Side.BUY, "1") for i in range(1000)])
            ledger.sync()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 64 * 1024, grown
    assert ledger.dedup_ids == 10_000
    ledger.close()


class _SetsAndDeque:
    """The dedup state the id ring replaced: a set per day and a FIFO deque of the ids,
    trimmed to `keep` after each batch (its live answers, days only moving forward)."""

    def __init__(self, keep: int) -> None:
        self.keep, self.ids, self.order = keep, dict[str, set[str]](), deque[str]()

    def seen(self, exec_id: str) -> bool:
        return any(exec_id in ids for ids in self.ids.values())

    def add(self, day: str, batch: list[str]) -> int:
        if day not in self.ids:
            self.ids[day] = set()
            for old_day in sorted(self.ids)[:-2]:
                del self.ids[old_day]
            self.order = deque(i for i in self.order if self.seen(i))
        new = 0
        for exec_id in batch:
            if not self.seen(exec_id):
                self.ids[day].add(exec_id)
                self.order.append(exec_id)
                new += 1
        while len(self.order) > self.keep:
            old = self.order.popleft()
            for ids in self.ids.values():
                ids.discard(old)
        return new


def test_dedup_answers_equal_the_sets_and_deque_it_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Random batches (repeats within a batch, the oldest held id resent after newer ones
    in the same batch) over days that pass: every count of new fills and `dedup_ids`
    equals the old per-day sets and deque's, with a small KEEP_IDS."""
    from actors.connector import ledger as ledger_mod

    monkeypatch.setattr(ledger_mod, "KEEP_IDS", 8)
    rnd = random.Random(11)
    now = [1_700_000_000.0]
    ledger = FillLedger(tmp_path, fsync=False, compact_bytes=1 << 30, clock=lambda: now[0])
    model = _SetsAndDeque(8)
    pool = [f"e{n}" for n in range(30)]
    for _ in range(3000):
        if rnd.random() < 0.02:
            now[0] += DAY_S * rnd.choice((0.4, 1, 2.5))
        batch = [rnd.choice(pool) for _ in range(rnd.randint(1, 6))]
        day = ledger_mod._day(now[0])
        assert ledger.add([fill(i, Side.BUY, "1") for i in batch]) == model.add(day, batch)
        assert ledger.dedup_ids == sum(len(ids) for ids in model.ids.values())
    ledger.close()


def test_an_exec_id_reused_on_a_later_day_stays_a_duplicate_after_a_restart(
    tmp_path: Path,
) -> None:
    """Day 1 fills X; on day 3 (day 1 no longer kept) the venue reuses X for a new fill:
    counted. After a restart on day 3, and on day 4 still (the day it was last received
    is kept), a resend of that fill is a duplicate (review of the reverted ring: the reopen
    kept X's first day, dropped it on day 4 and counted the resend twice)."""
    now = [1_700_000_000.0]
    ledger = FillLedger(tmp_path, fsync=False, compact_bytes=1 << 30, clock=lambda: now[0])
    assert ledger.add([fill("X", Side.BUY, "1")]) == 1
    ledger.sync()
    now[0] += DAY_S
    assert ledger.add([fill("Y", Side.BUY, "1")]) == 1
    ledger.sync()
    now[0] += DAY_S
    assert ledger.add([fill("X", Side.BUY, "1")]) == 1  # day 1 is gone: a new fill
    ledger.sync()
    reopened = FillLedger(tmp_path, fsync=False, compact_bytes=1 << 30, clock=lambda: now[0])
    assert reopened.add([fill("X", Side.BUY, "1")]) == 0
    now[0] += DAY_S
    assert reopened.add([fill("X", Side.BUY, "1"), fill("Z", Side.BUY, "1")]) == 1
    reopened.sync()
    again = FillLedger(tmp_path, fsync=False, clock=lambda: now[0])  # compacted: snapshot
    assert again.add([fill("X", Side.BUY, "1"), fill("Z", Side.BUY, "1")]) == 0
    assert [(p.symbol, p.qty) for p in again.view("simA")] == [("AAPL", D(4))]


def test_a_clock_stepped_back_two_days_counts_a_fill_once_and_raises_nothing(
    tmp_path: Path,
) -> None:
    """Fills on days 1, 2 and 3, then the clock steps back to day 1: a new fill is counted
    (as received on day 3, the newest kept: not dropped at once), its resend is not, in
    memory and after a compaction and a reopen; add() and sync() raise nothing (the per-day
    sets raised KeyError in add(); the reverted ring raised out of sync())."""
    start = 1_700_000_000.0
    now = [start]
    ledger = FillLedger(tmp_path, fsync=False, compact_bytes=1, clock=lambda: now[0])
    for n in range(3):
        now[0] = start + n * DAY_S
        assert ledger.add([fill(f"d{n}", Side.BUY, "1")]) == 1
        ledger.sync()
    now[0] = start
    assert ledger.add([fill("back", Side.SELL, "5")]) == 1
    assert ledger.add([fill("back", Side.SELL, "5"), fill("d2", Side.BUY, "1")]) == 0
    ledger.sync()
    reopened = FillLedger(tmp_path, fsync=False, clock=lambda: now[0])
    assert reopened.add([fill("back", Side.SELL, "5")]) == 0
    now[0] = start + 3 * DAY_S  # day 4: days 3 and 4 kept, so is the stepped-back fill
    assert reopened.add([fill("back", Side.SELL, "5")]) == 0
    reopened.sync()
    assert [(p.symbol, p.qty) for p in reopened.view("simA")] == [("AAPL", D(-2))]


@pytest.mark.parametrize(
    "record",
    [
        ["f", "20231114", [[]]],  # a fill row with no fields
        ["f", "20231114", [["e1", "AAPL"]]],  # a fill row short of its qty
        ["f", "20231114", [["e1", "AAPL", "x"]]],  # a qty that is no number
        ["f", "2023-11-14", [["e1", "AAPL", "1"]]],  # a day that is no YYYYMMDD
        ["f", "20231114", [[7, "AAPL", "1"]]],  # an exec id that is no text
    ],
)
def test_a_malformed_fill_record_before_a_good_one_is_journal_corrupt(
    tmp_path: Path, record: list[object]
) -> None:
    """A frame that is whole but holds no ledger record, followed by a valid one, is
    JournalCorrupt (the day-tagged ring's first reading raised IndexError for an empty row;
    a day or exec id of another type, which no ledger writes, was accepted before the ring
    and is refused now: the ring holds days as ints and ids as text)."""
    from actors.connector import ledger as ledger_mod

    FillLedger(tmp_path, fsync=False).close()
    with open(tmp_path / LEDGER_NAME, "ab") as f:
        f.write(ledger_mod._record(record))
        f.write(ledger_mod._record(["f", "20231114", [["e2", "AAPL", "1"]]]))
    with pytest.raises(JournalCorrupt):
        FillLedger(tmp_path, fsync=False)


def test_a_compacted_and_restarted_ledger_still_forgets_the_oldest_ids_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a compaction and a kill -9, new fills evict the oldest received ids, as in
    the ledger that never restarted: a resend of the newest fill is still a duplicate (the
    snapshot wrote each day's ids sorted: ids that do not sort in receipt order, E-9 and
    E-10, came back alphabetically, E-100 was evicted first and its resend counted twice)."""
    from actors.connector import ledger as ledger_mod

    monkeypatch.setattr(ledger_mod, "KEEP_IDS", 100)
    now = [1_700_000_000.0]
    live = FillLedger(tmp_path / "live", fsync=False, clock=lambda: now[0])
    ledger = FillLedger(tmp_path / "x", fsync=False, compact_bytes=1, clock=lambda: now[0])
    batch = [fill(f"E-{i}", Side.BUY, "1") for i in range(1, 101)]
    assert live.add(batch) == ledger.add(batch) == 100
    ledger.sync()  # compacts: the ids are in the snapshot
    os.close(ledger._fd)  # kill -9: no close, nothing flushed or synced after this
    ledger._fd = -1
    reopened = FillLedger(tmp_path / "x", fsync=False, compact_bytes=1 << 30, clock=lambda: now[0])
    for i in range(5):
        assert live.add([fill(f"N-{i}", Side.BUY, "1")]) == 1
        assert reopened.add([fill(f"N-{i}", Side.BUY, "1")]) == 1
    for exec_id in ("E-100", "E-99", "E-6"):  # the newest: still held
        assert live.add([fill(exec_id, Side.BUY, "1")]) == 0
        assert reopened.add([fill(exec_id, Side.BUY, "1")]) == 0, exec_id
    for exec_id in ("E-1", "E-5"):  # the 5 oldest went
        assert reopened.add([fill(exec_id, Side.BUY, "1")]) == 1, exec_id
    live.close()
    reopened.close()


def test_a_day_of_duplicates_only_is_a_kept_day_after_a_restart(tmp_path: Path) -> None:
    """Day 1: fill A; day 2: only A's resend (nothing new); day 3, after a restart: A again
    is counted, as by the ledger that never restarted (day 1 is no longer kept). The day of
    duplicates was never written: the reload kept days 1 and 2 and refused A."""
    now = [1_700_000_000.0]
    live = FillLedger(tmp_path / "live", fsync=False, clock=lambda: now[0])
    ledger = FillLedger(tmp_path / "x", fsync=False, clock=lambda: now[0])
    for x in (live, ledger):
        assert x.add([fill("A", Side.BUY, "1")]) == 1
        x.sync()
    now[0] += DAY_S
    for x in (live, ledger):
        assert x.add([fill("A", Side.BUY, "1")]) == 0  # a resend on day 2
        x.sync()
    size = (tmp_path / "x" / LEDGER_NAME).stat().st_size
    assert ledger.add([fill("A", Side.BUY, "1")]) == 0
    ledger.close()
    assert (tmp_path / "x" / LEDGER_NAME).stat().st_size == size  # the day is written once
    now[0] += DAY_S
    reopened = FillLedger(tmp_path / "x", fsync=False, clock=lambda: now[0])
    assert live.add([fill("A", Side.BUY, "1")]) == 1  # day 3: day 1's ids are gone
    assert reopened.add([fill("A", Side.BUY, "1")]) == 1
    assert [(p.symbol, p.qty) for p in reopened.view("simA")] == [("AAPL", D(2))]
    live.close()
    reopened.close()


def test_a_failed_write_keeps_the_fills_for_the_next_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk at a sync, after part of the batch reached the file: the file is cut back
    and the fills stay buffered, so the next sync writes them whole and a restarted ledger
    holds them (the buffer was cleared before the write: the fills were counted in memory,
    missing from the file, and the venue's resend of them counted again after a restart)."""
    ledger = FillLedger(tmp_path, fsync=False)
    ledger.add([fill("e1", Side.BUY, "10")])
    ledger.sync()

    def disk_full(fd: int, data: bytes) -> None:
        os.write(fd, data[:7])  # part of it got out
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ledger_mod, "write_all", disk_full)
    assert ledger.add([fill("e2", Side.BUY, "5")]) == 1
    with pytest.raises(OSError):
        ledger.sync()
    monkeypatch.undo()
    ledger.sync()  # space again
    again = FillLedger(tmp_path, fsync=False)  # kill -9, restart
    assert again.add([fill("e2", Side.BUY, "5")]) == 0  # the resend: a duplicate
    assert [(p.symbol, p.qty) for p in again.view("simA")] == [("AAPL", D(15))]
