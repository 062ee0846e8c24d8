"""The ccxt connector's intent log (actors/connector/ccxt/intents.py): persist before send."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from actors.connector.ccxt.intents import Intent, IntentLog
from protocol.exceptions import JournalCorrupt


def _intent(n: int, **kw: str) -> Intent:
    return Intent(cl_ord_id=f"o{n}", symbol="BTC/USDT", side="BUY", qty="0.5", **kw)


def test_an_intent_is_durable_only_after_sync(tmp_path: Path) -> None:
    log = IntentLog(tmp_path)
    log.add(_intent(1))
    assert log.dirty
    assert IntentLog(tmp_path).live == {}  # buffered, not written: nothing was sent yet
    log.sync()
    assert IntentLog(tmp_path).live == {"o1": _intent(1)}
    log.close()


def test_reload_keeps_live_intents_venue_ids_and_finished_ids(tmp_path: Path) -> None:
    log = IntentLog(tmp_path)
    log.add(_intent(1))
    log.add(_intent(2, cum_offset="0.2", orig_cl_ord_id="o0"))
    log.learn("o1", "v1")
    log.done("o2")
    log.sync()  # the connector's flush, once o2's executions are durable
    log.close()
    again = IntentLog(tmp_path)
    assert again.live == {"o1": _intent(1, venue_order_id="v1")}
    assert list(again.finished) == ["o2"]
    again.close()


def test_compaction_keeps_what_is_live_and_the_newest_finished(tmp_path: Path) -> None:
    log = IntentLog(tmp_path, compact_bytes=20_000, keep_finished=100)
    sizes = []
    for n in range(3000):
        log.add(_intent(n))
        if n % 3:
            log.done(f"o{n}")
        if n % 10 == 9:
            log.sync()
            sizes.append(os.path.getsize(log.path))
    log.close()
    again = IntentLog(tmp_path, keep_finished=100)
    assert set(again.live) == {f"o{n}" for n in range(3000) if n % 3 == 0}
    assert (
        len(again.finished) == 100 and "o2999" in again.finished and "o2000" not in again.finished
    )
    assert any(b < a for a, b in zip(sizes, sizes[1:], strict=False))  # rewritten, not ever growing
    written = sum(max(b - a, 0) for a, b in zip(sizes, sizes[1:], strict=False))
    assert sizes[-1] < written / 2
    again.close()


def test_a_torn_tail_is_cut_and_a_corrupt_middle_refused(tmp_path: Path) -> None:
    log = IntentLog(tmp_path)
    log.add(_intent(1))
    log.sync()
    log.add(_intent(2))
    log.sync()
    log.close()
    data = log.path.read_bytes()
    log.path.write_bytes(data[:-5])  # the last write cut short
    again = IntentLog(tmp_path)
    assert set(again.live) == {"o1"}
    again.add(_intent(3))
    again.close()
    data = log.path.read_bytes()
    start = data.index(b"TI", 12)  # the first record after the snapshot
    log.path.write_bytes(data[: start + 8] + b"\xff" + data[start + 9 :])
    with pytest.raises(JournalCorrupt):
        IntentLog(tmp_path)


def test_a_temp_left_by_a_compaction_cut_short_is_removed_at_open(tmp_path: Path) -> None:
    """A kill -9 during a compaction's `write_atomic` leaves a snapshot-sized temp file;
    the next open removes it (it stayed for ever: found by review), the log unchanged."""
    log = IntentLog(tmp_path)
    log.close()
    left = tmp_path / f".intents.log.{os.getpid() + 1}-0.tmp"
    left.write_bytes(b"x" * 4096)
    IntentLog(tmp_path).close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["intents.log"]
