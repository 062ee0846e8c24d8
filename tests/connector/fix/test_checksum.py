"""`fix_checksum` is `sum(data) & 0xFF` for any bytes, bytearray or memoryview of them."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from actors.connector.fix.checksum import fix_checksum


@given(st.binary(max_size=3000))
@example(b"")
@example(b"\xff" * 256)  # the largest sum one chunk holds
@example(b"\xff" * 257)
@example(b"\xff" * 100_000)
@example(b"\x00" * 513)
def test_the_sum_of_the_bytes_modulo_256(data: bytes) -> None:
    expected = sum(data) & 0xFF
    assert fix_checksum(data) == expected
    assert fix_checksum(bytearray(data)) == expected
    assert fix_checksum(memoryview(bytearray(data + b"tail"))[: len(data)]) == expected


def test_a_real_frame_checks() -> None:
    body = b"8=FIX.4.4\x019=5\x0135=0\x01"
    assert fix_checksum(body) == sum(body) % 256 == 163


@given(st.binary(max_size=1200))
@example(b"")
@example(b"\xff" * 1024)
def test_a_strided_memoryview_sums_as_sum_does(data: bytes) -> None:
    """A memoryview with a step is not C-contiguous: zlib refuses its buffer
    (BufferError) where `sum()` iterates it; the checksum falls back to `sum`."""
    for view in (memoryview(data)[::2], memoryview(data)[1::3], memoryview(data)[::-1]):
        assert fix_checksum(view) == sum(view) & 0xFF
