"""Where the FIX store's sent application messages are (`FixStore`): for each of the newest
`size` sequence numbers, an int the store gave (its record's place in the session file),
number `seq` in slot `seq % cap`, numbers and places in two arrays. The slots start few
(`FIRST_CAP`) and double when a number still in the window would take an occupied slot,
up to `size`: a venue that sent a few messages holds a few hundred bytes; with no probing,
numbers scattered over the window fill the bound fast (~100 messages spread over 11,000
numbers reach it), so this helps an idle venue only. No dict of int keys and no message
bytes: 16 B per slot (~180 KiB at 11,024), allocated as the slots grow and then fixed.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator

FIRST_CAP = 64  # slots at the first message


def slot_for(seqs: array[int], seq: int, newest: int, size: int) -> int | None:
    """The slot number `seq` takes (`seq % len(seqs)`), or None while a number still in
    the window (within `size` of `newest`) holds it and the slots can grow."""
    i = seq % len(seqs)
    held = seqs[i]
    if held in (0, seq) or held <= newest - size or len(seqs) == size:
        return i
    return None


class SentMessages:
    def __init__(self, size: int) -> None:
        self.size = size
        self._seq = array("q")  # slot -> the number of the message held there, 0: none
        self._loc = array("Q")  # slot -> the place the store gave for it
        self._newest = 0  # every message held is numbered within `size` of this

    def __len__(self) -> int:
        return sum(1 for _ in self.between(1, self._newest))

    @property
    def newest(self) -> int:
        """The highest number held or dropped since (0: none yet)."""
        return self._newest

    def put(self, seq: int, loc: int) -> None:
        """Hold message `seq`'s place `loc` (numbers that leave the window are not returned
        again; their slots are reused)."""
        if seq <= self._newest - self.size:
            return  # older than the window
        self._newest = max(self._newest, seq)
        if not self._seq:
            self._grow(min(self.size, FIRST_CAP))
        while (i := slot_for(self._seq, seq, self._newest, self.size)) is None:
            self._grow(min(self.size, 2 * len(self._seq)))
        self._seq[i], self._loc[i] = seq, loc

    def _grow(self, cap: int) -> None:
        """`cap` slots, the messages in the window moved over (distinct modulo the old
        count, they are distinct modulo its double; modulo `size` as numbers of one window)."""
        kept = list(self.between(1, self._newest))
        self._seq, self._loc = array("q", bytes(8 * cap)), array("Q", bytes(8 * cap))
        for s, loc in kept:
            self._seq[s % cap], self._loc[s % cap] = s, loc

    def between(self, begin: int, end: int) -> Iterator[tuple[int, int]]:
        """(number, place) of the messages held numbered begin..end, in order."""
        if not self._seq:
            return
        cap = len(self._seq)
        for s in range(max(begin, self._newest - self.size + 1, 1), min(end, self._newest) + 1):
            i = s % cap
            if self._seq[i] == s:
                yield s, self._loc[i]

    def places(self, begin: int, end: int) -> tuple[array[int], array[int]]:
        """`between` as two arrays (numbers, places): no object per message."""
        seqs, locs = array("q"), array("Q")
        for s, loc in self.between(begin, end):
            seqs.append(s)
            locs.append(loc)
        return seqs, locs

    def drop_below(self, seq: int) -> None:
        for s, _ in list(self.between(1, seq - 1)):
            self._drop(s % len(self._seq))

    def drop_from(self, seq: int) -> None:
        """Forget the messages numbered `seq` and up (the numbers go to new messages)."""
        gone = self._newest - self.size  # numbers that left the window: not brought back
        for i, s in enumerate(self._seq):
            if s >= seq or (s and s <= gone):
                self._drop(i)
        self._newest = min(self._newest, seq - 1)

    def forget(self, seq: int) -> None:
        """Forget message `seq` only (if held)."""
        if self._seq and self._seq[i := seq % len(self._seq)] == seq:
            self._drop(i)

    def clear(self) -> None:
        self.drop_from(1)

    def _drop(self, i: int) -> None:
        self._seq[i] = 0
