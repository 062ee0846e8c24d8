"""The persisted kill-switch: atomic writes, fail-safe reads, operator resets with reasons."""

from __future__ import annotations

import errno
import json
import os
import threading
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from actors.risk import killswitch
from actors.risk.killswitch import (
    FILE_BYTES,
    STATE_UNREADABLE,
    KillSwitchResetRefused,
    KillSwitchState,
    cold_reset,
    engage,
    ensure_file,
    kill_switch_path,
    load,
    reset,
    save,
)
from protocol import messages


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return kill_switch_path(tmp_path / "state")


def test_path_convention(tmp_path: Path) -> None:
    assert kill_switch_path(tmp_path) == tmp_path / "risk" / "kill_switch.json"


def test_missing_file_means_not_engaged(path: Path) -> None:
    assert load(path) == KillSwitchState()
    assert not load(path).engaged


def test_round_trip_keeps_every_field(path: Path) -> None:
    """save then load returns the same state, history included; the directory is created."""
    state = engage(path, "max_position breach 6x", "risk", ts_ns=11)
    state = reset(path, "limits fixed, checked with desk", "alice", ts_ns=22)
    state = engage(path, "heartbeat missing", "heartbeat", ts_ns=33)
    assert load(path) == state
    save(path, state)
    assert load(path) == state
    assert [(e.action, e.source, e.ts_ns) for e in state.history] == [
        ("engage", "risk", 11),
        ("reset", "alice", 22),
        ("engage", "heartbeat", 33),
    ]


def test_engaged_stays_engaged_across_loads(path: Path) -> None:
    """Every fresh load (a restart, a warm start) sees the switch engaged with its reason."""
    engage(path, "unmatched fill", "oms", ts_ns=5)
    for _ in range(3):
        state = load(path)
        assert (state.engaged, state.reason, state.source, state.ts_ns) == (
            True,
            "unmatched fill",
            "oms",
            5,
        )


def test_second_engage_keeps_the_first_cause_and_records_both(path: Path) -> None:
    engage(path, "first", "risk", ts_ns=1)
    state = engage(path, "second", "operator", ts_ns=2)
    assert (state.reason, state.source, state.ts_ns) == ("first", "risk", 1)
    assert [e.reason for e in state.history] == ["first", "second"]


@pytest.mark.parametrize("reason", ["", "   "])
def test_reset_without_reason_is_refused_and_changes_nothing(path: Path, reason: str) -> None:
    engage(path, "breach", "risk")
    before = path.read_bytes()
    with pytest.raises(KillSwitchResetRefused, match="reason is required"):
        reset(path, reason, "alice")
    assert path.read_bytes() == before
    assert load(path).engaged


def test_reset_without_operator_is_refused(path: Path) -> None:
    engage(path, "breach", "risk")
    with pytest.raises(KillSwitchResetRefused, match="operator is required"):
        reset(path, "fixed", "")


def test_reset_clears_and_records_who_and_why(path: Path) -> None:
    engage(path, "breach", "risk", ts_ns=1)
    with capture_logs() as logs:
        state = reset(path, "investigated: fat finger", "alice", ts_ns=2)
    assert not load(path).engaged
    assert (state.reason, state.source) == ("investigated: fat finger", "alice")
    assert state.history[-1].action == "reset"
    assert logs[-1]["event"] == "kill_switch" and logs[-1]["action"] == "reset"
    assert logs[-1]["previous_reason"] == "breach"


def test_cold_reset_clears_and_is_recorded(path: Path) -> None:
    engage(path, "breach", "risk", ts_ns=1)
    with capture_logs() as logs:
        state = cold_reset(path, ts_ns=2)
    assert not load(path).engaged
    assert state.history[-1].action == "cold_reset"
    assert [e["action"] for e in logs if e["event"] == "kill_switch"] == ["cold_reset"]


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{not json",
        b'{"engaged": "perhaps"}',
        b'{"version": 2, "engaged": false}',
        b'{"engaged": false, "surprise": 1}',
        b"\x00\xff\xfe",
        json.dumps([1, 2]).encode(),
    ],
    ids=["empty", "truncated", "bad_type", "future_version", "unknown_key", "binary", "list"],
)
def test_corrupt_file_fails_safe_as_engaged(path: Path, content: bytes) -> None:
    """A file that does not parse reads as ENGAGED, reason state_unreadable, and is logged."""
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    with capture_logs() as logs:
        state = load(path)
    assert state.engaged and state.reason == STATE_UNREADABLE and state.unreadable
    assert any(e["event"] == "kill_switch" and e["action"] == STATE_UNREADABLE for e in logs)


def test_unreadable_path_fails_safe(path: Path) -> None:
    """A path that exists but cannot be read as a file (a directory) is engaged too."""
    path.mkdir(parents=True)
    assert load(path).reason == STATE_UNREADABLE


def test_reset_of_a_corrupt_file_keeps_the_corrupt_copy(path: Path) -> None:
    """An operator reset writes a fresh state and moves the unreadable file aside."""
    path.parent.mkdir(parents=True)
    path.write_bytes(b"garbage")
    state = reset(path, "state file restored by hand", "alice", ts_ns=7)
    assert not state.engaged and load(path) == state
    aside = path.with_name("kill_switch.json.corrupt.7")
    assert aside.read_bytes() == b"garbage"


def test_engage_over_a_corrupt_file_stays_engaged_as_unreadable(path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.write_bytes(b"garbage")
    state = engage(path, "breach", "risk")
    assert load(path) == state
    assert state.engaged and state.reason == STATE_UNREADABLE


def test_leftover_temp_file_from_a_crash_is_ignored(path: Path) -> None:
    """A crash mid-write leaves a half-written temp file: load reads only the real file, and the
    next save tidies the leftover away once it is old."""
    engage(path, "breach", "risk", ts_ns=1)
    leftover = path.with_name(f".{path.name}.abc123.tmp")
    leftover.write_bytes(b'{"engaged": false, "hist')
    assert load(path).engaged
    old = 1_000_000_000.0
    os.utime(leftover, (old, old))
    young = path.with_name(f".{path.name}.young.tmp")
    young.write_bytes(b"{")
    save(path, load(path))
    assert not leftover.exists()
    assert young.exists()  # may belong to a writer still at work
    assert load(path).engaged


def test_save_replaces_atomically_and_leaves_no_temp(path: Path) -> None:
    """After a save the directory holds only the state file (no temp left behind)."""
    engage(path, "a", "risk")
    reset(path, "b", "alice")
    assert sorted(p.name for p in path.parent.iterdir()) == [
        "kill_switch.json",
        "kill_switch.json.lock",
    ]


def test_failed_first_write_leaves_no_file_and_no_temp(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the new file cannot be synced when it is created, no file and no temp remain."""

    def broken_fsync(fd: int) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk on fire"):
        engage(path, "breach", "risk")
    monkeypatch.undo()
    assert not path.exists()
    assert not list(path.parent.glob("*.tmp"))


def test_the_file_has_a_fixed_size_and_is_written_in_place(path: Path) -> None:
    """Created once at FILE_BYTES (its blocks allocated), then overwritten in place: the same
    inode and size whatever the state, so a write needs no new disk space."""
    ensure_file(path)
    first = path.stat()
    assert first.st_size == FILE_BYTES and not load(path).engaged
    engage(path, "breach", "risk")
    reset(path, "done", "alice")
    engage(path, "again", "risk")
    after = path.stat()
    assert (after.st_ino, after.st_size) == (first.st_ino, FILE_BYTES)
    assert load(path).engaged and load(path).reason == "again"


def test_a_torn_in_place_write_reads_engaged(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write that stops half way (crash, I/O error) fails the checksum: ENGAGED
    (`state_unreadable`), as a truncated file does; a reset (with a reason) clears it."""
    engage(path, "breach", "risk", ts_ns=1)
    reset(path, "cleared", "alice", ts_ns=2)
    real_pwrite = os.pwrite

    def torn_pwrite(fd: int, data: bytes, offset: int) -> int:
        real_pwrite(fd, data[:200], offset)  # the new header and the start of its body
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "pwrite", torn_pwrite)
    with pytest.raises(OSError):
        engage(path, "x" * 200, "risk", ts_ns=3)
    monkeypatch.undo()
    state = load(path)
    assert state.engaged and state.unreadable
    assert not reset(path, "checked", "alice").engaged


def test_a_long_history_keeps_its_newest_entries_in_the_slot(path: Path) -> None:
    """1000 engagements with 256-char reasons do not fit FILE_BYTES: the oldest go."""
    for i in range(500):
        engage(path, f"{i:03d}" + "r" * 250, "s" * 256, ts_ns=i + 1)
    state = load(path)
    assert path.stat().st_size == FILE_BYTES
    assert state.history[-1].reason.startswith("499") and len(state.history) < 500


def test_a_file_of_the_old_format_is_read_and_rewritten(path: Path) -> None:
    """A plain-JSON file (before the fixed-size format) reads as it says; `ensure_file`
    rewrites it at the fixed size, keeping the state."""
    path.parent.mkdir(parents=True, exist_ok=True)
    old = KillSwitchState(engaged=True, reason="old", source="operator", ts_ns=5)
    path.write_text(old.model_dump_json(indent=2))
    assert load(path) == old
    ensure_file(path)
    assert path.stat().st_size == FILE_BYTES and load(path) == old


def test_state_maps_to_the_wire_message(path: Path) -> None:
    state = engage(path, "breach", "risk", ts_ns=9)
    assert state.to_message() == messages.KillSwitchState(
        engaged=True, reason="breach", source="risk", ts_ns=9
    )


def test_history_is_bounded(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(killswitch, "HISTORY_LIMIT", 3)
    for i in range(5):
        engage(path, f"e{i}", "risk", ts_ns=i)
    assert [e.reason for e in load(path).history] == ["e2", "e3", "e4"]


def test_concurrent_writers_lose_no_update(path: Path) -> None:
    """Engages and resets from several writers at once: every one of them is in the history
    (each read-modify-write holds the flock; separate opens conflict even within a process)."""
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def writer(name: str) -> None:
        try:
            start.wait(timeout=10)
            for n in range(15):
                if name == "resetter":
                    reset(path, f"r{n}", "alice")
                else:
                    engage(path, f"{name}-{n}", name)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in ("a", "b", "c", "resetter")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors
    history = load(path).history
    assert len(history) == 4 * 15
    assert sorted(e.reason for e in history if e.action == "engage") == sorted(
        f"{w}-{n}" for w in "abc" for n in range(15)
    )


def test_an_old_format_file_with_a_huge_reason_is_rewritten_at_the_fixed_size(
    path: Path,
) -> None:
    """A legacy top-level reason of 1 MiB and no history: the padding went negative and
    the file was written oversized (every later save then needed new space). The reason
    and source are clipped; the file is exactly FILE_BYTES and is then written in place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    old = KillSwitchState(engaged=True, reason="r" * (1 << 20), source="s" * 5000, ts_ns=5)
    path.write_text(old.model_dump_json())
    ensure_file(path)
    assert path.stat().st_size == FILE_BYTES
    state = load(path)
    assert state.engaged and state.reason.startswith("rrr") and state.reason.endswith("...")
    inode = path.stat().st_ino
    engage(path, "again", "risk")
    assert (path.stat().st_ino, path.stat().st_size) == (inode, FILE_BYTES)
    assert len(killswitch.encode_file(old)) == FILE_BYTES


def test_a_state_that_cannot_fit_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(killswitch, "FILE_BYTES", 300)
    state = KillSwitchState(engaged=True, reason="r" * 400, source="s" * 400, ts_ns=5)
    with pytest.raises(OSError, match="over 300"):
        killswitch.encode_file(state)


def test_a_torn_header_is_read_again_under_the_lock(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read that catches a write whose header's length changed digit count sees a v2
    magic but no header match: it used to parse as old-format JSON and read
    `state_unreadable` at once. Now it is a torn read: read again under the lock."""
    engage(path, "breach", "risk", ts_ns=1)
    good = path.read_bytes()
    head_end = good.index(b"\n") + 1
    torn = good[: head_end - 1] + b"0" + good[head_end:]  # the old header's longer length
    assert not killswitch._HEADER.match(torn) and killswitch._HEADER.match(good)
    reads = iter([torn, good])
    real_read = Path.read_bytes
    monkeypatch.setattr(
        Path, "read_bytes", lambda self: next(reads) if self == path else real_read(self)
    )
    state = load(path)
    assert state.engaged and state.reason == "breach", state


def test_who_engaged_and_who_reset_are_kept_in_the_state_and_history(path: Path) -> None:
    """An operator's engage and reset carry the operator's identity (`who`); an automatic
    engage has none; a file written before the field existed still loads."""
    killswitch.engage(path, "divergence", "heartbeat")
    state = killswitch.engage(path, "drill", "operator", who="alice (uid 1000, pid 7)")
    assert state.operator == ""  # the first cause, automatic, stays in force
    assert [e.operator for e in state.history] == ["", "alice (uid 1000, pid 7)"]
    state = killswitch.reset(path, "all clear", "operator", who="bob (uid 1001, pid 8)")
    assert state.operator == "bob (uid 1001, pid 8)"
    assert killswitch.load(path).history[-1].operator == "bob (uid 1001, pid 8)"


def test_a_state_without_operator_fields_loads(tmp_path: Path) -> None:
    old = tmp_path / "kill_switch.json"
    event = {"action": "engage", "reason": "r", "source": "operator", "ts_ns": 1}
    data = {"version": 1, "engaged": True, "reason": "r", "source": "operator", "ts_ns": 1,
            "history": [event]}  # fmt: skip
    old.write_text(json.dumps(data))
    state = killswitch.load(old)
    assert state.engaged and state.reason == "r" and state.operator == ""


def test_a_file_removed_while_watched_reads_engaged(path: Path) -> None:
    """A switch file the watcher saw, then gone (no writer removes it: an `rm`), reads
    ENGAGED `state_unreadable` once (`removed`), not "never engaged"; a file never seen
    (a fresh state dir) is still "not engaged". `engage_removed` writes it back engaged."""
    watch = killswitch.KillSwitchWatcher(path)
    state = watch.poll(force=True)
    assert state is not None and not state.engaged and not watch.removed  # never seen
    engage(path, "desk halt", "operator")
    assert (state := watch.poll()) is not None and state.engaged
    path.unlink()
    state = watch.poll()
    assert state is not None and state.unreadable and watch.removed
    assert watch.poll() is None and not watch.removed  # said once
    again = killswitch.engage_removed(path, state)
    assert again.engaged and "removed while running" in again.reason
    assert load(path).engaged
