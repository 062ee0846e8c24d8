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
    other = encode_frame(b"x", b"TJ")
    assert _payloads(other) == ["torn@0"]  # no TX frame anywhere: nothing to keep
    assert _payloads(b"HDR" + LOG, start=3) == [b"one", b"two", b"three"]
