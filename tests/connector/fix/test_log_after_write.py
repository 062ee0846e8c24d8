"""The FIX message log is written after the turn's bytes are on the wire, not before
(issue 16, p50: the log is a diagnostic record with no fsync, and its write sat between
the store's fsync and the D's send); nothing is lost from it. The store's sync still
comes before the write (tests/integration/test_fix_store_fsyncs.py shows it on the real
connector)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from actors.connector.fix.mapping import place_fields
from actors.connector.fix.msglog import LOG_NAME
from tests.connector.fix.test_adapter import Done, Harness, h, order

__all__ = ["h"]  # the fixture, imported


def test_the_d_is_on_the_wire_before_its_line_in_the_message_log(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = h.connected()
    log_file = Path(h.root / "fix" / "messages" / LOG_NAME)
    seen_at_write: list[bytes] = []
    write = a._tcp.write

    def watched(data: bytes = b"") -> None:
        if b"\x0135=D\x01" in data:
            seen_at_write.append(log_file.read_bytes() if log_file.exists() else b"")
        write(data)

    monkeypatch.setattr(a._tcp, "write", watched)
    done = Done()
    a.place(order("c1"), done)
    h.loop.run_until(lambda: done.calls)
    assert len(seen_at_write) == 1
    assert b"35=D\x01" not in seen_at_write[0]  # the log had not been written yet
    lines = [ln for ln in log_file.read_bytes().splitlines() if b"35=D\x01" in ln]
    assert len(lines) == 1 and b" OUT " in lines[0]  # written right after, in the same turn


def test_data_to_send_without_log_leaves_the_log_for_flush_message_log(h: Harness) -> None:
    """`data_to_send(log=False)` hands out the bytes and keeps the log's lines buffered
    until `flush_message_log()`; the default still flushes at once (other callers)."""
    a = h.connected()
    log_file = Path(h.root / "fix" / "messages" / LOG_NAME)
    before = log_file.read_bytes()
    a.session.send("D", place_fields(order("c9"), time.time()))
    data = a.session.data_to_send(log=False)
    assert b"\x0111=c9\x01" in data and log_file.read_bytes() == before
    a.session.flush_message_log()
    assert b"11=c9" in log_file.read_bytes()[len(before) :]
