"""The FIX store's sent application messages in memory (`FixStore`): the newest `size`
sequence numbers, message `seq` in slot `seq % size` of a list allocated at the first one,
with the numbers in an array. No dict of int keys (~70 B per message) and no periodic
rebuild of one: a store's memory does not grow once the slots are filled.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator


class SentMessages:
    def __init__(self, size: int) -> None:
        self.size = size
        self._seq = array("q")  # slot -> the number of the message held there, 0: none
        self._raw: list[bytes | None] = []
        self._newest = 0  # every message held is numbered within `size` of this

    def __len__(self) -> int:
        return sum(1 for _ in self.between(1, self._newest))

    @property
    def newest(self) -> int:
        """The highest number held or dropped since (0: none yet)."""
        return self._newest

    def put(self, seq: int, raw: bytes) -> None:
        """Hold message `seq` (numbers below the window it leaves are dropped)."""
        if not self._seq:
            self._seq = array("q", bytes(8 * self.size))
            self._raw = [None] * self.size
        if seq > self._newest:
            for gap in range(max(self._newest + 1, seq - self.size + 1), seq):
                self._drop(gap % self.size)  # numbers skipped (admin messages): none held
            self._newest = seq
        elif seq <= self._newest - self.size:
            return  # older than the window
        i = seq % self.size
        self._seq[i], self._raw[i] = seq, raw

    def between(self, begin: int, end: int) -> Iterator[tuple[int, bytes]]:
        """The messages held numbered begin..end, in order."""
        if not self._seq:
            return
        for s in range(max(begin, self._newest - self.size + 1, 1), min(end, self._newest) + 1):
            i = s % self.size
            raw = self._raw[i]
            if self._seq[i] == s and raw is not None:
                yield s, raw

    def drop_below(self, seq: int) -> None:
        for s, _ in list(self.between(1, seq - 1)):
            self._drop(s % self.size)

    def drop_from(self, seq: int) -> None:
        """Forget the messages numbered `seq` and up (the numbers go to new messages)."""
        for s, _ in list(self.between(seq, self._newest)):
            self._drop(s % self.size)
        self._newest = min(self._newest, seq - 1)

    def clear(self) -> None:
        self.drop_from(1)

    def _drop(self, i: int) -> None:
        self._seq[i], self._raw[i] = 0, None
