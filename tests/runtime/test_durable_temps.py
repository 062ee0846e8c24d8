"""`write_atomic`'s temp files: named `.<name>.<pid>-<n>.tmp` and created exclusively
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
    target = tmp_path / "state.json"
    left = tmp_path / f".state.json.{os.getpid()}-0.tmp"
    left.write_bytes(b"crashed")
    durable.write_atomic(target, b"new")
    assert target.read_bytes() == b"new"
    assert left.read_bytes() == b"crashed"
    durable.remove_stale_temps(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]
