"""The OMS's log of its last fills for the `tradepulse fills` view (`actors.oms.views`): a
ring of `size` fills, the oldest overwritten, in fixed arrays.

Each fill is one msgpack-packed bytes object (~110 B with its header: (ts_ns, venue, symbol,
side, qty, px, client_order_id, exec_id), qty and px as their str, so a Decimal read back
prints as it came); its time and its (venue, symbol) are in two arrays beside it, so a
query filters without unpacking and unpacks only the rows it returns. As `Fill` objects
(each with two Decimals, an int and its ids) a full log of 10,000 was ~4 MiB of the OMS's
memory in ~50,000 small objects that outlive everything around them; now ~1 MiB
(tests/oms/test_oms_views.py), and a filtered query walks two arrays.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, Protocol

import msgpack

# (ts_ns, venue, symbol, side, qty, px, client_order_id, exec_id[, fee, fee_asset]): the
# fee only when the fill has one (a fill without, most of them, takes no more room)
Packed = tuple[Any, ...]
_INT64 = 1 << 63


class FillLike(Protocol):
    @property
    def ts_ns(self) -> int: ...
    @property
    def venue(self) -> str: ...
    @property
    def symbol(self) -> str: ...
    @property
    def side(self) -> str: ...
    @property
    def qty(self) -> Decimal: ...
    @property
    def px(self) -> Decimal: ...
    @property
    def client_order_id(self) -> str: ...
    @property
    def exec_id(self) -> str: ...
    @property
    def fee(self) -> Decimal: ...
    @property
    def fee_asset(self) -> str: ...


def unpack(data: bytes) -> Packed:
    packed: Packed = msgpack.unpackb(data, use_list=False)
    return packed


class FillLog:
    """The last `size` fills, packed (see the module docstring)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.clear()

    def clear(self) -> None:
        self._data: list[bytes] = []  # grows to `size`, then slots are overwritten
        self._ts = array("q")
        self._key = array("i")  # index into `_keys`
        self._keys: list[tuple[str, str]] = []  # (venue, symbol): few, one entry each
        self._key_ix: dict[tuple[str, str], int] = {}
        self._big: dict[int, int] = {}  # slot -> a ts_ns past int64 (msgpack's uint64)
        self._next = 0  # the slot the next fill takes once full

    def __len__(self) -> int:
        return len(self._data)

    def append(self, fill: FillLike) -> None:
        fee = (str(fill.fee), fill.fee_asset) if fill.fee or fill.fee_asset else ()
        data: bytes = msgpack.packb(
            (fill.ts_ns, fill.venue, fill.symbol, fill.side, str(fill.qty), str(fill.px),
             fill.client_order_id, fill.exec_id, *fee),
        )  # fmt: skip
        pair = (fill.venue, fill.symbol)
        ix = self._key_ix.get(pair)
        if ix is None:
            ix = self._key_ix[pair] = len(self._keys)
            self._keys.append(pair)
        ts = fill.ts_ns if fill.ts_ns < _INT64 else _INT64 - 1  # >= -2**63: packed above
        if len(self._data) < self.size:
            i = len(self._data)
            self._data.append(data)
            self._ts.append(ts)
            self._key.append(ix)
        else:
            i = self._next
            self._data[i], self._ts[i], self._key[i] = data, ts, ix
            self._next = (i + 1) % self.size
            self._big.pop(i, None)
        if ts != fill.ts_ns:
            self._big[i] = fill.ts_ns

    def assign(self, venue: str, exec_id: str, client_order_id: str, side: str) -> bool:
        """Put the unmatched fill `exec_id` of `venue` (a row without an order) on the order
        `client_order_id` (`side`) in place: an adoption placed it (`actors.oms.views`).
        False: no such row (overwritten since). Walks the log: rare."""
        for i in self._slots_newest_first():
            row = unpack(self._data[i])
            if row[7] == exec_id and row[1] == venue and not row[6]:
                fixed = (*row[:3], side or row[3], *row[4:6], client_order_id, exec_id, *row[8:])
                self._data[i] = msgpack.packb(fixed)
                return True
        return False

    def _slots_newest_first(self) -> Iterator[int]:
        n, start = len(self._data), self._next
        for k in range(n):
            yield (start - 1 - k) % n

    def oldest_first(self) -> Iterator[Packed]:
        n = len(self._data)
        for k in range(n):
            yield unpack(self._data[(self._next + k) % n])

    def newest(
        self, venue: str | None, symbol: str | None, since_ns: int | None, limit: int
    ) -> tuple[list[Packed], int]:
        """Up to `limit` fills matching, newest first, and how many match."""
        keys = {
            ix
            for ix, (v, s) in enumerate(self._keys)
            if (venue is None or v == venue) and (symbol is None or s == symbol)
        }
        ts, key, since = self._ts, self._key, -_INT64 if since_ns is None else since_ns
        if self._big:  # a time past int64 is compared as itself
            big = self._big
            matched = [
                i
                for i in self._slots_newest_first()
                if key[i] in keys and big.get(i, ts[i]) >= since
            ]
        else:
            matched = [i for i in self._slots_newest_first() if key[i] in keys and ts[i] >= since]
        return [unpack(self._data[i]) for i in matched[:limit]], len(matched)
