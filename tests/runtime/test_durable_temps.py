"""`write_atomic`'s temp files: named `.<name>.<pid>-<n><hex>.tmp` and created exclusively
without `tempfile` (whose first use in a process seeds a `random.Random` and copies ~100 KiB
of the fork server's pages into every actor that saves a file at its start: issue 16)."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import pytest

from actors.runtime import durable


def test_write_atomic_uses_no_tempfile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With `tempfile.mkstemp` refusing, a state file is still replaced whole, mode 0600,
    and no temp file is left."""

    def refuse(*_a: object, **_kw: object) -> None:
        raise AssertionError("tempfile.mkstemp called")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    target = tmp_path / "state.json"
    durable.write_atomic(target, b"one")
    durable.write_atomic(target, b"two")
    assert target.read_bytes() == b"two"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_a_name_a_crashed_process_left_is_skipped_and_tidied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A temp a crashed writer of the same pid left under the next name is neither reused
    nor overwritten; `remove_stale_temps` matches the names `write_atomic` makes."""
    monkeypatch.setattr(durable, "_TEMP_NUMBERS", iter(range(100)))
    monkeypatch.setattr(os, "urandom", lambda n: bytes(n))
    target = tmp_path / "state.json"
    left = tmp_path / f".state.json.{os.getpid()}-000000000.tmp"
    left.write_bytes(b"crashed")
    durable.write_atomic(target, b"new")
    assert target.read_bytes() == b"new"
    assert left.read_bytes() == b"crashed"
    durable.remove_stale_temps(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_names_taken_in_a_row_end_in_an_error_not_a_spin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every name taken (something else writes there): FileExistsError after
    `_TEMP_TRIES` names, not an endless loop inside an actor's turn (found by review: the
    names were predictable and the loop unbounded); nothing replaced."""
    target = tmp_path / "state.json"
    target.write_bytes(b"old")
    tries = []

    def taken(path: str, *_a: object) -> int:
        tries.append(path)
        raise FileExistsError(path)

    monkeypatch.setattr(os, "open", taken)
    with pytest.raises(FileExistsError):
        durable.write_atomic(target, b"new")
    monkeypatch.undo()
    assert len(tries) == durable._TEMP_TRIES and len(set(tries)) == len(tries)
    assert target.read_bytes() == b"old"
