"""The CRC-checked frames of the append-only logs (`actors.runtime.frames`): a damaged tail is
reported for truncation, a damaged frame with a valid one behind it is corruption."""

from __future__ import annotations

import pytest

from actors.runtime.frames import HEADER_SIZE, Frame, encode_frame, read_frames
from protocol.exceptions import JournalCorrupt

M = b"TX"
LOG = b"".join(encode_frame(p, M) for p in (b"one", b"two", b"three"))


def _payloads(data: bytes, start: int = 0) -> list[bytes | str]:
    return [f.payload if isinstance(f, Frame) else f"torn@{f.offset}"
            for f in read_frames("log", data, M, start)]  # fmt: skip


def test_intact_log_yields_every_frame_in_order() -> None:
    assert _payloads(LOG) == [b"one", b"two", b"three"]
    assert _payloads(b"") == []


@pytest.mark.parametrize("cut", [1, HEADER_SIZE - 1, HEADER_SIZE, HEADER_SIZE + 2])
def test_a_write_cut_short_is_a_torn_tail(cut: int) -> None:
    last = len(LOG) - len(encode_frame(b"three", M))
    assert _payloads(LOG[: last + cut]) == [b"one", b"two", f"torn@{last}"]


def test_zero_filled_tail_is_torn() -> None:
    assert _payloads(LOG + bytes(64))[-1] == f"torn@{len(LOG)}"


@pytest.mark.parametrize("where", ["magic", "length", "crc", "payload"])
def test_damage_before_a_valid_frame_is_corruption(where: str) -> None:
    data = bytearray(LOG)
    data[{"magic": 0, "length": 4, "crc": 7, "payload": HEADER_SIZE}[where]] ^= 0x5A
    with pytest.raises(JournalCorrupt, match="valid record follows"):
        list(read_frames("log", bytes(data), M))


def test_frames_before_the_corruption_are_yielded_first() -> None:
    data = bytearray(LOG)
    second = len(encode_frame(b"one", M))
    data[second + HEADER_SIZE] ^= 0x5A  # the second frame's payload
    seen: list[bytes] = []
    with pytest.raises(JournalCorrupt):
        for f in read_frames("log", bytes(data), M):
            assert isinstance(f, Frame)
            seen.append(f.payload)
    assert seen == [b"one"]


def test_frames_of_another_log_kind_are_not_ours() -> None:
    assert _payloads(b"HDR" + LOG, start=3) == [b"one", b"two", b"three"]
    with pytest.raises(JournalCorrupt, match="not a write cut short"):
        _payloads(encode_frame(b"x", b"TJ"))  # not ours, and no write of ours leaves it


@pytest.mark.parametrize("tail", [b"\x09\xd7 garbage", b"Z", b"TJ" + bytes(12)])
def test_a_tail_no_write_of_ours_can_leave_is_corruption_not_a_torn_tail(tail: bytes) -> None:
    """Seen on the demo: a journal segment replaced by garbage replayed as one torn tail
    at offset 0, cut to nothing, every acknowledged order gone without a word. A write
    cut short leaves the start of a frame (its magic) or zeros; anything else is refused
    and nothing is cut."""
    with pytest.raises(JournalCorrupt, match="not a write cut short") as info:
        _payloads(LOG + tail)
    assert info.value.offset == len(LOG)
    with pytest.raises(JournalCorrupt):
        _payloads(tail)


@pytest.mark.parametrize("tail", [b"T", b"TX", b"TX\x00\x00", bytes(1), bytes(40)])
def test_the_start_of_a_frame_or_zeros_stay_a_torn_tail(tail: bytes) -> None:
    assert _payloads(LOG + tail) == [b"one", b"two", b"three", f"torn@{len(LOG)}"]
