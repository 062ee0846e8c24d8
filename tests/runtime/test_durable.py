"""Crash-safe file replacement (`actors.runtime.durable`) and its use by every state file: a write
is all or nothing, and temp files a crash left behind are tidied when the file is opened."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from actors.connector.fix.store import FixStore
from actors.connector.outbox import ExecOutbox
from actors.oms.journal import SNAPSHOT_NAME, Journal
from actors.runtime.durable import remove_stale_temps, write_atomic


def test_write_atomic_replaces_the_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "state.bin"
    write_atomic(target, b"old state, long")
    write_atomic(target, b"new")
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.bin"]


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "state.bin"
    write_atomic(target, b"old")

    def crash(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="No space"):
        write_atomic(target, b"new")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.bin"]


def test_stale_temps_are_removed_but_young_ones_kept_when_asked(tmp_path: Path) -> None:
    target = tmp_path / "kill_switch.json"
    old = tmp_path / ".kill_switch.json.abc123.tmp"
    young = tmp_path / ".kill_switch.json.def456.tmp"
    other = tmp_path / ".journal.abc.tmp"
    for p in (old, young, other):
        p.write_bytes(b"partial")
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))
    remove_stale_temps(target, older_than_s=60)
    assert not old.exists() and young.exists() and other.exists()
    remove_stale_temps(target)
    assert not young.exists() and other.exists()


def test_stale_temps_are_matched_by_name_not_as_a_glob_pattern(tmp_path: Path) -> None:
    """A state file whose name holds glob characters still has its own temps removed, and
    only those: `.a[1].x.tmp` is a temp of `a[1]`, not of `a1`; `.a[1].tmp` (nothing
    between the name and `.tmp`) and a missing directory are left alone."""
    temp = tmp_path / ".a[1].x1y2.tmp"
    not_a_temp = tmp_path / ".a[1].tmp"
    of_other = tmp_path / ".a1.x1y2.tmp"
    for p in (temp, not_a_temp, of_other):
        p.write_bytes(b"partial")
    remove_stale_temps(tmp_path / "a[1]")
    assert not temp.exists() and not_a_temp.exists() and of_other.exists()
    remove_stale_temps(tmp_path / "missing" / "state.bin")  # no directory: nothing to do


def _open_outbox(d: Path) -> Callable[[], object]:
    return lambda: ExecOutbox(d).close()


def _open_fix_store(d: Path) -> Callable[[], object]:
    return lambda: FixStore(d).close()


def _open_journal(d: Path) -> Callable[[], object]:
    return lambda: Journal.open(d)[0].close()


@pytest.mark.parametrize(
    ("opener", "name"),
    [(_open_outbox, "outbox.log"), (_open_fix_store, "session.log"),
     (_open_journal, SNAPSHOT_NAME)],
)  # fmt: skip
def test_opening_a_state_file_tidies_what_a_crashed_write_left(
    tmp_path: Path, opener: Callable[[Path], Callable[[], object]], name: str
) -> None:
    leftover = tmp_path / f".{name}.x1y2z3.tmp"
    leftover.write_bytes(b"half a file")
    opener(tmp_path)()
    assert not leftover.exists()
