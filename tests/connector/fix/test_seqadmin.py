"""The operator's override of the next sequence numbers (seqadmin, FixStore.set_numbers,
read_numbers): durable at once, readable without the lock, and a lowered next-out never
brings back messages sent under the numbers it frees."""

from __future__ import annotations

from pathlib import Path

import pytest
import structlog
from structlog.testing import capture_logs

from actors.connector.fix.seqadmin import open_and_set, set_sequence
from actors.connector.fix.store import FixStore, read_numbers
from protocol.exceptions import StateDirLocked


def test_set_numbers_is_durable_and_read_without_the_lock(tmp_path: Path) -> None:
    with FixStore(tmp_path, fsync=False) as store:
        store.set_next_in(3)
        store.save_sent(1, b"one")
        store.flush()
        assert read_numbers(tmp_path) == (3, 2)  # the open store, as last flushed
        store.set_numbers(next_in=40)
        assert read_numbers(tmp_path) == (40, 2)
    with FixStore(tmp_path, fsync=False) as again:
        assert (again.next_in, again.next_out) == (40, 2)


def test_lowering_next_out_drops_the_messages_of_the_freed_numbers(tmp_path: Path) -> None:
    with FixStore(tmp_path, fsync=False) as store:
        for seq in range(1, 6):
            store.save_sent(seq, b"msg %d" % seq)
        store.set_numbers(next_out=3)
        assert store.next_out == 3
        assert store.sent_messages(1, 10) == [(1, b"msg 1"), (2, b"msg 2")]
    with FixStore(tmp_path, fsync=False) as again:  # not back after a restart either
        assert again.next_out == 3 and again.sent_messages(1, 10) == [(1, b"msg 1"), (2, b"msg 2")]


def test_out_of_range_numbers_are_refused(tmp_path: Path) -> None:
    with FixStore(tmp_path, fsync=False) as store:
        for bad in (0, 2**31):
            with pytest.raises(ValueError, match="out of range"):
                store.set_numbers(next_in=bad)
        assert (store.next_in, store.next_out) == (1, 1)


def test_set_sequence_logs_old_and_new_numbers_and_the_reason(tmp_path: Path) -> None:
    with FixStore(tmp_path, fsync=False) as store, capture_logs() as logs:
        data = set_sequence(store, next_in=7, next_out=None, reason="why", applied_by="me",
                            log=structlog.get_logger())  # fmt: skip
    assert data == {"old_next_in": 1, "next_in": 7, "old_next_out": 1, "next_out": 1,
                    "reason": "why", "applied_by": "me"}  # fmt: skip
    assert logs == [{**data, "event": "fix_seq_set", "log_level": "warning"}]


def test_open_and_set_refuses_a_store_in_use_or_missing(tmp_path: Path) -> None:
    log = structlog.get_logger()
    with pytest.raises(FileNotFoundError):
        open_and_set(tmp_path / "none", next_in=2, next_out=None, reason="r", log=log,
                     applied_by="t")  # fmt: skip
    with FixStore(tmp_path, fsync=False), pytest.raises(StateDirLocked):
        open_and_set(tmp_path, next_in=2, next_out=None, reason="r", log=log, applied_by="t")
