"""A message log line is what the log wrote before its byte searches changed (bytes
needles made `in` raise and clear a TypeError each): escapes and redaction, for any bytes."""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from actors.connector.fix import codec as fc
from actors.connector.fix.msglog import (
    MessageLog,
    Record,
    format_line,
    format_lines,
    redact,
    utc_iso,
)

_PATTERN = re.compile(rb"(?<=\x01)(553|554|925|96)=[^\x01]*")


def _reference(raw: bytes) -> bytes:
    for old, new in ((b"\\", b"\\\\"), (b"\n", b"\\n"), (b"\r", b"\\r")):
        if old in raw:
            raw = raw.replace(old, new)
    if any(n in raw for n in (b"\x01553=", b"\x01554=", b"\x01925=", b"\x0196=")):
        raw = _PATTERN.sub(lambda m: m.group(1) + b"=***", raw)
    return raw


_parts = st.sampled_from([b"\x01", b"\\", b"\n", b"\r", b"553=", b"554=", b"96=", b"925=", b"x"])


@given(st.lists(_parts | st.binary(max_size=4), max_size=12).map(b"".join))
def test_a_line_holds_the_message_escaped_and_redacted_as_before(raw: bytes) -> None:
    log = MessageLog(Path("/nonexistent-never-flushed"), clock=lambda: 0.5)
    log.record("IN", raw)
    assert [format_line(r) for r in log._buf] == [
        b"1970-01-01T00:00:00.500000Z IN - " + _reference(raw) + b"\n"
    ]
    assert redact(raw) == (_PATTERN.sub(lambda m: m.group(1) + b"=***", raw)
                           if any(n in raw for n in (b"\x01553=", b"\x01554=", b"\x01925=",
                                                     b"\x0196=")) else raw)  # fmt: skip


_raws = st.lists(_parts | st.binary(max_size=4), max_size=12).map(b"".join)
_records = st.tuples(
    st.floats(min_value=0, max_value=4e9, allow_nan=False),
    st.sampled_from(["IN", "OUT"]),
    st.sampled_from(["-", "bad_header", "garbled:bad_checksum"]),
    _raws | st.just(b"8=FIX.4.4\x0135=0\x01"),  # many a turn holds nothing to escape
)


@given(st.lists(_records, max_size=6))
def test_a_turn_s_lines_are_each_record_s_line(records: list[Record]) -> None:
    """`format_lines` (escapes and redaction looked for once a turn) writes what
    `format_line` writes of each record: a field split across two messages included."""
    assert format_lines(records) == b"".join(map(format_line, records))


@given(st.binary(max_size=8))
def test_fix_value_refuses_soh_as_before(value: bytes) -> None:
    refused = not value or b"\x01" in value
    try:
        assert fc.fix_value(value) == value
        assert not refused
    except ValueError:
        assert refused


def test_a_line_has_the_time_of_its_record_not_of_its_flush(tmp_path: Path) -> None:
    """The line is made at flush, off the message's path; its time is when it was recorded."""
    now = [0.5]
    log = MessageLog(tmp_path, clock=lambda: now[0])
    log.record("OUT", b"8=FIX.4.4\x01554=pw\x01")
    now[0] = 7200.25
    log.record("IN", b"8=FIX.4.4\x0158=a\nb\x01", "garbled:bad_checksum")
    log.close()
    assert (tmp_path / "messages.log").read_bytes() == (
        b"1970-01-01T00:00:00.500000Z OUT - 8=FIX.4.4\x01554=***\x01\n"
        b"1970-01-01T02:00:00.250000Z IN garbled:bad_checksum 8=FIX.4.4\x0158=a\\nb\x01\n"
    )


@given(st.floats(min_value=0, max_value=4e9, allow_nan=False))
def test_a_line_s_time_is_utc_iso_of_its_record(ts_s: float) -> None:
    assert format_line((ts_s, "IN", "-", b"x")) == utc_iso(ts_s).encode() + b" IN - x\n"
