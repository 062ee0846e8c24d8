"""Corrupt on-disk state through the real system (found by an adversarial pass over every
file an actor reads at start, see docs/runbook.md "Corrupt state"): a state file that cannot
be trusted stops its actor with one `state_corrupt` line and exit 65, never a crash loop;
the OMS's stops the system (exit 2, the kill-switch engaged), a connector's keeps its venue
DOWN while the other venues trade. Torn tails stay crash recovery (tests/oms,
tests/connector)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from actors.oms.journal import SNAPSHOT_NAME
from actors.oms.order_archive import ARCHIVE_NAME
from actors.risk import killswitch
from protocol import paths
from tests.helpers import SystemUnderTest, eventually
from tests.system_ops import client, submit_when_open

pytestmark = pytest.mark.integration

GARBAGE = b"\x09\xd7 not a tradepulse file \xff\x00" * 64


class Reruns:
    """A system that ran once and stopped cleanly (`first`), and `again()`: a new run over
    its state (the test damages a file in between)."""

    def __init__(self, first: SystemUnderTest) -> None:
        self.first = first
        self.runs: list[SystemUnderTest] = []

    def again(self, **overrides: Any) -> SystemUnderTest:
        self.runs.append(SystemUnderTest(root=self.first.root, overrides=overrides or None))
        return self.runs[-1].start(wait_ready=False)


@pytest.fixture
def reruns(start_system: Callable[..., SystemUnderTest]) -> Iterator[Reruns]:
    first = start_system()
    assert first.stop() == 0
    made = Reruns(first)
    yield made
    for sut in made.runs:
        sut.destroy()


def _no_traceback_one_line(sut: SystemUnderTest, path: str, word: str = "corrupt") -> None:
    tracebacks = [line for line in sut.stderr_lines if "Traceback" in line]
    assert not tracebacks, sut.stderr_lines[:20]
    assert len(sut.stderr_lines) == 1, sut.stderr_lines[:20]
    assert word in sut.stderr_lines[0] and path in sut.stderr_lines[0], sut.stderr_lines


@pytest.mark.parametrize("damage", [GARBAGE, b""], ids=["garbage", "emptied"])
def test_a_corrupt_exec_outbox_keeps_its_venue_down_while_the_others_trade(
    reruns: Reruns, damage: bytes
) -> None:
    """Seen on the demo (a flipped byte or garbage in fix/simA/outbox.log): the connector
    refused its outbox (`state_corrupt`, exit 65) and was restarted into the same bytes 14
    times in 6 s, one stderr line each, then retried every `max_s` for good. A restart
    cannot help: it stays DOWN (`actor_gave_up` reason=state_corrupt, spawned once), simB
    trades, and after the operator repairs the file `tradepulse restart` brings it back.
    An emptied outbox is damage too (it is created whole, never cut below its header): it
    was taken as a new one, and the executions in it were lost."""
    first = reruns.first
    outbox = paths.exec_outbox(first.state_dir, "simA")
    header = outbox.read_bytes()  # a clean stop leaves the header alone
    outbox.write_bytes(damage)
    sut = reruns.again()
    gave_up = sut.wait_event("actor_gave_up", child="connector.simA", timeout_s=30)
    assert gave_up["reason"] == "state_corrupt" and not gave_up.get("critical"), gave_up
    others = [a for a in sut.actor_ids() if a != "connector.simA"]
    status = sut.wait_ready(actors=others)
    assert status["venues"]["simA"]["state"] == "DOWN", status["venues"]
    assert "state is corrupt" in status["venues"]["simA"]["detail"], status["venues"]  # not
    # "restart budget exceeded" (it was): the operator repairs the file, no budget to wait out
    with client(sut) as c:  # the other venue trades meanwhile
        order = submit_when_open(c, "simB")
        assert order.venue == "simB"
    corrupt = sut.wait_event("state_corrupt", actor="connector.simA")  # log lines may lag
    assert len(sut.events("state_corrupt", actor="connector.simA")) == 1
    assert corrupt["path"] == str(outbox), corrupt
    assert len(sut.events("actor_spawned", child="connector.simA")) == 1  # never restarted
    assert sut.actor("connector.simA")["state"] == "gave_up"
    _no_traceback_one_line(sut, str(outbox))
    assert not killswitch.load(killswitch.kill_switch_path(sut.state_dir)).engaged

    outbox.write_bytes(header)  # the operator's repair, then the runbook's restart
    proc = sut.cli("restart", "connector.simA")
    assert proc.returncode == 0, proc.stderr
    back = sut.wait_ready()
    assert back["venues"]["simA"]["state"] != "DOWN", back["venues"]
    assert sut.stop() == 0


def test_a_corrupt_order_archive_refuses_the_start_in_one_line(
    reruns: Reruns,
) -> None:
    """Seen on the demo (state/oms/orders.sqlite replaced by garbage, checkpointed): SQLite's
    "file is not a database" escaped the OMS's setup, a traceback per start, until its budget
    ran out (kill-switch oms_restart_intensity, exit 1). As a corrupt journal: one
    `state_corrupt` line naming the file, not restarted, kill-switch oms_state_corrupt,
    exit 2."""
    first = reruns.first
    archive = paths.oms_dir(first.state_dir) / ARCHIVE_NAME
    with sqlite3.connect(archive) as db:  # what SQLite's automatic checkpoints do
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    archive.write_bytes(GARBAGE)
    sut = reruns.again(supervisor={"restart": {"max_restarts": 3}})  # a loop ends soon
    code = sut.wait_exit(timeout_s=60)
    assert code == 2, (code, sut.stderr_lines[:20])
    _no_traceback_one_line(sut, str(archive))
    (corrupt,) = sut.events("state_corrupt", actor="oms")
    assert corrupt["path"] == str(archive), corrupt
    assert len(sut.events("actor_spawned", child="oms")) == 1
    state = killswitch.load(killswitch.kill_switch_path(sut.state_dir))
    assert state.engaged and state.reason == "oms_state_corrupt", state


def test_a_journal_segment_of_garbage_is_refused_not_cut_to_nothing(
    start_system: Callable[..., SystemUnderTest], short_tmp: Path
) -> None:
    """Seen on the demo (the OMS's live segment replaced by garbage after kill -9): replay
    took the whole file for a torn tail at offset 0 and cut it to nothing; the OMS started
    without its acknowledged orders (the venue's copies adopted under other ids, the
    kill-switch engaged later for a position divergence). A write cut short never leaves
    such bytes: `state_corrupt`, exit 2, and the file left as it was."""
    sut = start_system(root=short_tmp)
    with client(sut) as c:
        acked = submit_when_open(c, "simA")
    sut.destroy()  # kill -9 of everything: the order's records are in the live segment
    (segment,) = paths.oms_dir(short_tmp / "state").glob("journal-*.log")
    assert acked.client_order_id.encode() in segment.read_bytes()
    damaged = GARBAGE[: segment.stat().st_size]
    segment.write_bytes(damaged)
    again = start_system(root=short_tmp, wait_ready=False)
    assert again.proc is not None
    proc = again.proc
    eventually(lambda: proc.poll() is not None or again.events("journal_replayed"), 60)
    replayed = again.events("journal_replayed")
    assert not replayed, f"the OMS started over it: {replayed}"
    code = again.wait_exit()
    assert code == 2, (code, again.stderr_lines[:20])
    _no_traceback_one_line(again, str(segment))
    (corrupt,) = again.events("state_corrupt", actor="oms")
    assert (corrupt["path"], corrupt["offset"]) == (str(segment), 0), corrupt
    assert segment.read_bytes() == damaged  # nothing cut: the operator decides


@pytest.mark.parametrize("name", [SNAPSHOT_NAME, ARCHIVE_NAME, f"{ARCHIVE_NAME}-wal"])
def test_an_oms_state_file_that_cannot_be_read_refuses_the_start_in_one_line(
    reruns: Reruns, name: str
) -> None:
    """Seen on the demo (a directory where oms/journal-00000001.log or orders.sqlite was,
    as a bad restore or a mount leaves it): IsADirectoryError or SQLite's "unable to open
    database file" escaped the OMS's setup, 11 tracebacks, exit 1. A restart meets the same
    file: `state_corrupt` naming it (unreadable), exit 2, kill-switch oms_state_corrupt."""
    path = paths.oms_dir(reruns.first.state_dir) / name
    path.unlink()
    path.mkdir()
    sut = reruns.again(supervisor={"restart": {"max_restarts": 3}})
    code = sut.wait_exit(timeout_s=60)
    assert code == 2, (code, sut.stderr_lines[:20])
    _no_traceback_one_line(sut, str(path), "unreadable")
    (corrupt,) = sut.events("state_corrupt", actor="oms")
    assert corrupt["path"] == str(path), corrupt
    state = killswitch.load(killswitch.kill_switch_path(sut.state_dir))
    assert state.engaged and state.reason == "oms_state_corrupt", state
