"""The hashed ClOrdIDs of orders gone from the venue's memory (duplicate detection), the
newest `size` of them, in fixed arrays: a ring of the hashes in the order they came and a
hash table (linear probing) of their places in it. Allocated at the first one (the ledger
reserves them at its first ended order), so an idle venue pays nothing; then 1.8 MiB at
the default 100,000 whatever the count (the set and deque they replace were 8.2 MiB when
full, and grew in steps up to it)."""

from __future__ import annotations

from array import array


class RetiredIds:
    def __init__(self, size: int) -> None:
        self.size = size
        self._ring = array("q")  # place -> hash (allocated at the first `add`)
        self._table = array("i")  # table slot -> place in the ring, or -1
        self._mask = 0
        self._next = 0  # the place the next hash takes
        self._held = 0

    def reserve(self) -> None:
        """Allocate the arrays now (at once if they are; else at the first `add`)."""
        if not self._ring:
            cap = 1 << (2 * self.size - 1).bit_length()  # >= twice the entries
            self._ring = array("q", bytes(8 * self.size))
            self._table = array("i", [-1]) * cap
            self._mask = cap - 1

    def __len__(self) -> int:
        return self._held

    def _find(self, h: int) -> tuple[int, int]:
        """(table slot, place) of `h`, or (the empty slot where it would go, -1)."""
        mask, table, ring = self._mask, self._table, self._ring
        i = h & mask
        while (p := table[i]) >= 0:
            if ring[p] == h:
                return i, p
            i = (i + 1) & mask
        return i, -1

    def __contains__(self, h: int) -> bool:
        return self._held > 0 and self._find(h)[1] >= 0

    def add(self, h: int) -> None:
        """Remember `h` (a hash already held stays where it is); past `size`, the oldest
        is forgotten."""
        self.reserve()
        i, p = self._find(h)
        if p >= 0:
            return
        p = self._next
        if self._held == self.size:
            self._unslot(self._find(self._ring[p])[0])
            i = self._find(h)[0]
        else:
            self._held += 1
        self._ring[p] = h
        self._table[i] = p
        self._next = (p + 1) % self.size

    def _unslot(self, i: int) -> None:
        """Empty table slot `i`, moving back the entries after it that probed past it."""
        mask, table, ring = self._mask, self._table, self._ring
        j = i
        while True:
            j = (j + 1) & mask
            p = table[j]
            if p < 0:
                break
            home = ring[p] & mask
            if (home <= i < j) or (j < home <= i) or (i < j < home):
                table[i], i = p, j  # its home is at or before the hole: it may fill it
        table[i] = -1
