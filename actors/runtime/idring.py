"""Bounded first-in-first-out sets of ids in fixed arrays: the newest `size` ids, the
oldest forgotten first, with membership in ~1 us and no memory growth once allocated (at
the first `add`, so an idle process pays nothing).

A ring of the ids' 64-bit hashes in the order they came, and a hash table (linear probing)
of their places in the ring.
- `HashRing` holds the hashes only (the venue sim's retired ClOrdIDs: 1.8 MiB at 100,000
  where the set and deque it replaced took 8.2): two ids with one hash count as one.
- `IdRing` also keeps each id's bytes in a fixed slot (longer ones in a side dict) and
  compares them, so it answers exactly like a set; for ids whose false "seen" would drop
  something (the connector's execution dedupe), where a hash collision is not acceptable.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator

_LONG = 255  # `IdRing._lens` of an id kept in the side dict


class HashRing:
    """The newest `size` 64-bit hashes (Python ints in the int64 range)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._ring = array("q")  # place -> hash (allocated at the first `add`)
        self._table = array("i")  # table slot -> place in the ring, or -1
        self._mask = 0
        self._next = 0  # the place the next id takes
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
        if self.size <= 0:
            return
        self.reserve()
        if self._find(h)[1] < 0:
            self._take(h)

    def _take(self, h: int) -> int:
        """Put `h` (not held) at the next place, forgetting the oldest if full; its place."""
        p = self._next
        if self._held == self.size:
            self._unslot(self._slot_of(p))
        else:
            self._held += 1
        self._ring[p] = h
        i = h & self._mask
        while self._table[i] >= 0:
            i = (i + 1) & self._mask
        self._table[i] = p
        self._next = (p + 1) % self.size
        return p

    def _slot_of(self, p: int) -> int:
        """The table slot holding place `p` (held)."""
        mask, table = self._mask, self._table
        i = self._ring[p] & mask
        while table[i] != p:
            i = (i + 1) & mask
        return i

    def _unslot(self, i: int) -> None:
        unslot(self._table, self._ring, self._mask, i)

    def _places(self) -> Iterator[int]:
        """The held places, oldest first."""
        start = self._next if self._held == self.size else 0
        for k in range(self._held):
            yield (start + k) % self.size


def unslot(table: array[int], keys: array[int], mask: int, i: int) -> None:
    """Empty slot `i` of a linear-probing `table` of entry numbers (-1: none), entry `e`'s
    home slot being `keys[e] & mask`: the entries after it that probed past it move back
    (no tombstones). `HashRing` and the OMS's touched orders (`actors/oms/exec_cut.py`)."""
    j = i
    while True:
        j = (j + 1) & mask
        e = table[j]
        if e < 0:
            break
        home = keys[e] & mask
        if (home <= i < j) or (j < home <= i) or (i < j < home):
            table[i], i = e, j  # its home is at or before the hole: it may fill it
    table[i] = -1


class IdRing(HashRing):
    """The newest `size` string ids, exactly (a set's answers), each with an int `tag`.

    Ids up to `width` UTF-8 bytes sit in fixed slots; longer ones in a dict by place
    (bounded by `size` too). Memory: (8 + width + 1, + 4 if tagged) bytes per id and 8 or
    so per table slot, all at the first `add`."""

    def __init__(self, size: int, *, width: int = 40, tagged: bool = False) -> None:
        super().__init__(size)
        if not 0 < width < _LONG:
            raise ValueError(f"width must be 1..{_LONG - 1}, got {width}")
        self.width = width
        self._tagged = tagged
        self._data = bytearray()  # place -> the id's bytes, `width` per place
        self._lens = array("B")  # place -> length of those bytes, or _LONG
        self._long: dict[int, bytes] = {}  # place -> an id longer than `width`
        self._tags = array("i")

    def reserve(self) -> None:
        if not self._ring:
            super().reserve()
            self._data = bytearray(self.width * self.size)
            self._lens = array("B", bytes(self.size))
            if self._tagged:
                self._tags = array("i", bytes(4 * self.size))

    @staticmethod
    def _hash(key: bytes) -> int:
        return hash(key)  # a test forces collisions by replacing this

    def _locate(self, key: bytes, h: int) -> int:
        """The place of `key` (hash `h`), or -1."""
        mask, table, ring, lens, data = self._mask, self._table, self._ring, self._lens, self._data
        n, w = len(key), self.width
        i = h & mask
        while (p := table[i]) >= 0:
            if ring[p] == h:
                if n <= w:
                    if lens[p] == n and data[p * w : p * w + n] == key:
                        return p
                elif lens[p] == _LONG and self._long[p] == key:
                    return p
            i = (i + 1) & mask
        return -1

    def __contains__(self, exec_id: object) -> bool:
        if not self._held or not isinstance(exec_id, str):
            return False
        key = exec_id.encode()
        return self._locate(key, self._hash(key)) >= 0

    def add(self, exec_id: str, tag: int = 0) -> bool:  # type: ignore[override]  # str ids
        """Remember `exec_id` with `tag` (one already held stays where it is, tag unchanged);
        past `size`, the oldest is forgotten. Returns whether it was new."""
        if self.size <= 0:
            return True
        self.reserve()
        key = exec_id.encode()
        h = self._hash(key)
        if self._locate(key, h) >= 0:
            return False
        if self._held == self.size:
            self._long.pop(self._next, None)
        p, n, w = self._take(h), len(key), self.width
        if n <= w:
            self._data[p * w : p * w + n] = key
            self._lens[p] = n
        else:
            self._long[p] = key
            self._lens[p] = _LONG
        if self._tagged:
            self._tags[p] = tag
        return True

    def _id_at(self, p: int) -> str:
        n = self._lens[p]
        if n == _LONG:
            return self._long[p].decode()
        return self._data[p * self.width : p * self.width + n].decode()

    def items(self) -> Iterator[tuple[str, int]]:
        """(id, tag) of each held id, oldest first."""
        for p in self._places():
            yield self._id_at(p), (self._tags[p] if self._tagged else 0)

    def __iter__(self) -> Iterator[str]:
        return (i for i, _ in self.items())

    def clear(self) -> None:
        """Forget every id (the arrays are kept)."""
        if self._held:
            self._table[:] = array("i", [-1]) * len(self._table)
            self._long.clear()
            self._next = self._held = 0
