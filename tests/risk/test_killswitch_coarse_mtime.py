"""The kill-switch file is read, not judged by its stat: a stat shortcut ("inode, size and
mtime as at the last look, mtime 50 ms old: unchanged") missed an in-place engage for good
on a filesystem with 1-second mtimes (ext4 with 128-byte inodes, ext3, HFS+, some NFS
servers: the write keeps inode, size and, within the second, mtime), and one whose mtime
was visible before its data (review of the hot-path work; the shortcut is reverted)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from actors.risk import killswitch
from tests.actor_stubs import Client, Harness
from tests.risk.test_actor import check, fast_timers, h, start, verdict  # noqa: F401 (fixtures)


@pytest.fixture
def one_second_mtime(monkeypatch: pytest.MonkeyPatch) -> None:
    """Emulate a filesystem that stores mtime in whole seconds."""
    real_save = killswitch.save

    def save(path: Path, state: killswitch.KillSwitchState) -> None:
        real_save(path, state)
        st = os.stat(path)
        sec = st.st_mtime_ns // 1_000_000_000 * 1_000_000_000
        os.utime(path, ns=(st.st_atime_ns, sec))

    monkeypatch.setattr(killswitch, "save", save)


def _early_in_a_second() -> None:
    while not 0.10 <= time.time() % 1 <= 0.30:
        time.sleep(0.01)


def test_an_in_place_engage_in_the_same_second_is_seen(
    tmp_path: Path, one_second_mtime: None
) -> None:
    path = killswitch.kill_switch_path(tmp_path)
    killswitch.ensure_file(path)
    _early_in_a_second()
    killswitch.reset(path, "start", "op")  # mtime = S (this second)
    watch = killswitch.KillSwitchWatcher(path)
    assert watch.poll(force=True) is not None  # looked at >= S + 0.1: "settled"
    assert watch.poll() is None
    killswitch.engage(path, "oms_restart_intensity", "supervisor")  # same second: mtime S
    assert killswitch.load(path).engaged  # durably written
    state = watch.poll()  # the header (its CRC) differs: seen
    assert state is not None and state.engaged, "engagement never seen"


def test_risk_refuses_after_an_engage_in_the_same_second(
    h: Harness,  # noqa: F811
    one_second_mtime: None,
) -> None:
    actor = start(h)
    client = Client(h, "risk")
    _early_in_a_second()
    killswitch.reset(actor.ks_path, "start", "op")  # mtime S
    assert verdict(client, check("a1", "1")).approved  # risk looks at >= S + 0.1
    killswitch.engage(actor.ks_path, "oms_restart_intensity", "supervisor")  # mtime S
    assert killswitch.load(actor.ks_path).engaged
    v = verdict(client, check("a2", "1"))  # the next turn reads the file
    assert not actor.engaged or v.reason_code == "kill_switch"
    assert v.reason_code == "kill_switch", f"approved after engage: {v}"


def test_an_engage_whose_mtime_was_visible_before_its_data_is_seen(
    tmp_path: Path,
) -> None:
    """Linux updates mtime (file_modified -> inode dirty -> a journal handle, which can
    block under fsync load) before pwrite copies the data. A reader that looks twice in that
    window, >= 50 ms apart, records (new mtime, old header) and then calls the file settled:
    the engage that lands right after is never read. Emulated with utime."""
    path = killswitch.kill_switch_path(tmp_path)
    killswitch.ensure_file(path)
    killswitch.reset(path, "start", "op")
    watch = killswitch.KillSwitchWatcher(path)
    assert watch.poll(force=True) is not None
    m2 = time.time_ns()
    os.utime(path, ns=(m2, m2))  # the engage's write began: mtime set, data not yet copied
    first = watch.poll()  # sees the new mtime, reads the old (valid) state
    assert first is None or not first.engaged
    time.sleep(0.06)
    assert watch.poll() is None  # still the old header, now looked at >= m2 + 50 ms
    engaged = killswitch.encode_file(
        killswitch.load(path).model_copy(update={"engaged": True, "reason": "x"})
    )
    fd = os.open(path, os.O_RDWR)
    os.pwrite(fd, engaged, 0)  # the data copy completes (mtime was set once, at m2)
    os.fdatasync(fd)
    os.close(fd)
    os.utime(path, ns=(m2, m2))
    assert killswitch.load(path).engaged
    state = watch.poll()
    assert state is not None and state.engaged, "engagement never seen"
