"""The FIX message log (actors/connector/fix/msglog.py) as the session writes it, and its
reader (msgview): every message both ways, garbled frames marked, credentials redacted,
buffered until the turn's flush, rotated at a size with N files kept."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.connector.fix import codec as fc
from actors.connector.fix import msgview
from actors.connector.fix.msglog import (
    IN,
    LOG_NAME,
    OUT,
    MessageLog,
    log_files,
    parse_line,
    redact,
)
from protocol.config import load_config
from protocol.exceptions import ConfigError
from tests.connector.fix.test_session import T0, FakeClock, Link, raw
from tests.helpers import REPO_ROOT, eventually


def _lines(directory: Path) -> list[bytes]:
    return [ln for p in log_files(directory) for ln in p.read_bytes().split(b"\n") if ln]


def _types(directory: Path, direction: str) -> list[str]:
    out = []
    for line in _lines(directory):
        entry = parse_line(line)
        assert entry is not None, line
        if entry.direction == direction:
            out.append(dict(fc.split_fields(entry.raw))[b"35"].decode())
    return out


@pytest.fixture
def link(tmp_path: Path) -> Iterator[Link]:
    """Two sessions in memory, each logging to its own dir (us_log, venue_log)."""
    link = Link(tmp_path, FakeClock())
    logs = [MessageLog(tmp_path / name, clock=link.clock) for name in ("us_log", "venue_log")]
    link.us.set_message_log(logs[0])
    link.venue.set_message_log(logs[1])
    yield link
    for log in logs:
        log.close()
    link.us_store.close()
    link.venue_store.close()


def test_every_message_in_and_out_is_logged_with_time_and_direction(
    link: Link, tmp_path: Path
) -> None:
    """Logon both ways, an order and its report: each side's log has its OUT messages and
    the peer's as IN, in order, stamped with the UTC time."""
    link.logon()
    link.us.send("D", [(11, "c-1"), (55, "AAPL"), (54, "1"), (60, "20240101-00:00:00")])
    link.pump()
    link.venue.send("8", [(37, "o-1"), (17, "e-1"), (150, "0"), (39, "0"), (54, "1")])
    link.pump()
    assert _types(tmp_path / "us_log", OUT) == ["A", "D"]
    assert _types(tmp_path / "us_log", IN) == ["A", "8"]
    assert _types(tmp_path / "venue_log", IN) == ["A", "D"]
    assert _types(tmp_path / "venue_log", OUT) == ["A", "8"]
    first = parse_line(_lines(tmp_path / "us_log")[0])
    assert first is not None and first.ts == "2023-11-14T22:13:20.000000Z"  # T0


def test_password_and_username_never_reach_the_disk(link: Link, tmp_path: Path) -> None:
    """Username(553) and Password(554) of the Logon are *** in both sides' logs."""
    link.us.logon(extra=[(553, "alice-user"), (554, "s3cret-pw")])
    link.pump()
    for side in ("us_log", "venue_log"):
        data = b"".join((tmp_path / side / LOG_NAME).read_bytes().split(b"\n"))
        assert b"s3cret-pw" not in data and b"alice-user" not in data
        assert b"\x01553=***\x01" in data and b"\x01554=***\x01" in data
    assert redact(b"8=FIX.4.4\x01554=x\x01") == b"8=FIX.4.4\x01554=***\x01"


def test_a_garbled_frame_is_logged_marked(link: Link, tmp_path: Path) -> None:
    """A frame with a bad checksum, ignored by the session, is in the log marked
    garbled:bad_checksum; the reader shows it as GARBLED."""
    link.logon()
    bad = raw("0", 2)[:-4] + b"000\x01"
    link.us.receive(bad)
    link.us.data_to_send()
    entries = [e for e in msgview.entries(tmp_path / "us_log") if e.direction == IN]
    assert entries[-1].mark == "garbled:bad_checksum" and entries[-1].raw == bad
    assert "GARBLED(bad_checksum)" in msgview.describe(entries[-1])


def test_nothing_is_written_before_the_turn_flushes(link: Link, tmp_path: Path) -> None:
    """Records wait in memory until data_to_send() (once per loop turn)."""
    link.us.logon()
    assert not (tmp_path / "us_log" / LOG_NAME).exists()
    link.us.data_to_send()
    assert len(_lines(tmp_path / "us_log")) == 1


def test_rotates_at_the_size_and_keeps_n_files(tmp_path: Path) -> None:
    """Past max_file_bytes the file becomes messages.log.1 (older ones shift), at most
    keep_files files exist, and the newest messages are in messages.log."""
    log = MessageLog(tmp_path, max_file_bytes=4096, keep_files=3, clock=lambda: T0)
    for i in range(200):
        log.record(OUT, raw("0", i + 1, [(112, f"T{i}")]))
        log.flush()
    log.close()
    files = log_files(tmp_path)
    assert [p.name for p in files] == [f"{LOG_NAME}.2", f"{LOG_NAME}.1", LOG_NAME]
    assert all(p.stat().st_size <= 4096 for p in files)
    seqs = [int(dict(fc.split_fields(e.raw))[b"34"]) for e in msgview.entries(tmp_path)]
    assert seqs == list(range(seqs[0], 201))  # in order, the oldest dropped
    assert seqs[0] > 1


def test_a_line_is_always_one_message(tmp_path: Path) -> None:
    """LF, CR and backslash inside a message are escaped and read back as they were."""
    log = MessageLog(tmp_path, clock=lambda: T0)
    odd = b"8=FIX.4.4\x019=5\x0158=a\nb\\c\rd\x0110=000\x01"
    log.record(IN, odd, "garbled:bad_body_length")
    log.close()
    (entry,) = msgview.entries(tmp_path)
    assert entry.raw == odd and entry.garbled


def test_describe_names_fields_and_enum_values(tmp_path: Path) -> None:
    log = MessageLog(tmp_path, clock=lambda: T0)
    log.record(OUT, raw("D", 7, [(11, "c-1"), (54, "1"), (40, "2"), (9999, "x")]))
    log.close()
    (entry,) = msgview.entries(tmp_path)
    line = msgview.describe(entry)
    assert line.startswith("2023-11-14T22:13:20.000Z  OUT  D NewOrderSingle  ")
    assert "MsgSeqNum=7 ClOrdID=c-1 Side=1(BUY) OrdType=2(LIMIT) 9999=x" in line
    assert "SenderCompID" not in line and "CheckSum" not in line
    wire = msgview.describe(entry, raw=True)
    assert wire.startswith("2023-11-14T22:13:20.000Z  OUT  8=FIX.4.4|9=")
    assert "|35=D|" in wire and "|11=c-1|54=1|40=2|9999=x|10=" in wire


def test_since_takes_an_age_or_an_iso_time() -> None:
    assert msgview.parse_since("10m", now_s=T0 + 600) == "2023-11-14T22:13:20.000000Z"
    assert msgview.parse_since("2023-11-14T22:13:20Z") == "2023-11-14T22:13:20.000000Z"
    assert msgview.parse_since("2023-11-14T23:13:20+01:00") == "2023-11-14T22:13:20.000000Z"
    with pytest.raises(ValueError, match="neither"):
        msgview.parse_since("yesterday")


def test_message_log_config_is_validated(tmp_path: Path) -> None:
    """[venues.message_log]: defaults 64 MiB x 4; a bad value or unknown key is an error."""
    base = '[[venues]]\nname = "simA"\n'
    path = tmp_path / "c.toml"
    path.write_text(base)
    cfg = load_config(path).venue("simA").message_log
    assert (cfg.max_file_bytes, cfg.keep_files) == (64 << 20, 4)
    for bad, field in (
        ("keep_files = 0", "keep_files"),
        ("max_file_bytes = 10", "max_file_bytes"),
        ("size = 1", "size"),
    ):
        path.write_text(base + "[venues.message_log]\n" + bad + "\n")
        with pytest.raises(ConfigError) as info:
            load_config(path)
        assert info.value.field == f"venues[simA].message_log.{field}"


def test_follow_reads_on_across_rotations(tmp_path: Path) -> None:
    """A follower started on the log sees every message written after, in order, while the
    writer rotates several times under it."""
    log = MessageLog(tmp_path, max_file_bytes=4096, keep_files=4, clock=lambda: T0)
    log.record(OUT, raw("0", 1))
    log.flush()
    seen: list[int] = []
    done = threading.Event()

    def run() -> None:
        for entry in msgview.follow(tmp_path, stop=done.is_set, poll_s=0.01):
            seen.append(int(dict(fc.split_fields(entry.raw))[b"34"]))

    follower = threading.Thread(target=run)
    follower.start()
    try:
        for seq in range(2, 120):
            log.record(OUT, raw("0", seq, [(112, "x" * 40)]))
            log.flush()
            if seq % 20 == 0:
                eventually(lambda s=seq: seen and seen[-1] == s, 5.0)  # type: ignore[misc]
        eventually(lambda: len(seen) == 119, 5.0)
    finally:
        done.set()
        follower.join(timeout=5)
        log.close()
    assert seen == list(range(1, 120))
    assert len(log_files(tmp_path)) == 4  # it did rotate (more than once: 4 KiB files)


_REDACT_WITHOUT_COMPILE = """
import re, sys
from actors.connector.fix import msglog

def refuse(*_a, **_kw):
    raise AssertionError("a regex compiled after import")

re.compile = refuse
sys.stdout.write(msglog.redact(b"8=FIX.4.4\\x0135=A\\x01553=me\\x01554=pw\\x0110=000\\x01").decode())
"""


def test_the_redaction_pattern_is_compiled_at_import() -> None:
    """A Logon's credentials are redacted with the pattern compiled when the module was
    imported (the fork server's), so no actor compiles a regex at its first Logon (issue 16:
    ~130-200 KiB of private memory in each connector and venue sim)."""
    proc = subprocess.run(
        [sys.executable, "-c", _REDACT_WITHOUT_COMPILE],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "8=FIX.4.4\x0135=A\x01553=***\x01554=***\x0110=000\x01"


def test_a_caller_may_write_the_log_after_the_bytes(link: Link, tmp_path: Path) -> None:
    """data_to_send(flush_log=False) hands out the bytes and leaves the records buffered;
    flush_log() then writes them (the adapter and the venue simulator: after the write)."""
    link.us.logon()
    assert link.us.data_to_send(flush_log=False).startswith(b"8=FIX.4.4")
    assert not (tmp_path / "us_log" / LOG_NAME).exists()
    link.us.flush_log()
    assert _types(tmp_path / "us_log", OUT) == ["A"]
