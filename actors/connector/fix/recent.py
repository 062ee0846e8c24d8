"""Bounded maps of the outbound queue's recent sends, allocated at the first send (an idle
connector pays nothing) and not growing after it: `SeqRequests` (MsgSeqNum -> the request
it carried) and `LastOrderSeq` (ClOrdID -> the MsgSeqNum of its last D / F / G). With the
default 10,000 each: ~1.5 MiB together, ClOrdID strings included, where the `OrderedDict`s
they replace held ~3.4 MiB (tracemalloc, 30,000 sends: nodes, int keys, tuples).
"""

from __future__ import annotations

from array import array

from actors.connector.fix import sent
from actors.connector.fix.sent import slot_for


class SeqRequests:
    """(MsgType, ref) of each MsgSeqNum among the newest `size` numbers: slot `seq % cap`
    of a ring (a number `size` or more below a newer send's is gone, as the FIX store's
    resend window forgets it). Was: the last `size` sends, whatever their numbers; the same
    but for admin messages in between, which take numbers and no entry. The slots start
    few (`sent.FIRST_CAP`) and double when a number still in the window would take an
    occupied one, up to `size` (`sent.SentMessages` does the same)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._seq = array("q")  # slot -> the MsgSeqNum held there, 0: none
        self._type: list[str] = []
        self._ref: list[str] = []
        self._newest = 0

    def __len__(self) -> int:
        return sum(1 for s in self._seq if s and s > self._newest - self.size)

    def put(self, seq: int, msg_type: str, ref: str) -> None:
        if seq <= self._newest - self.size:
            return  # older than the window (a number reused is dropped from first)
        self._newest = max(self._newest, seq)
        if not self._seq:
            self._grow(min(self.size, sent.FIRST_CAP))
        while (i := slot_for(self._seq, seq, self._newest, self.size)) is None:
            self._grow(min(self.size, 2 * len(self._seq)))
        self._seq[i], self._type[i], self._ref[i] = seq, msg_type, ref

    def _grow(self, cap: int) -> None:
        old = [(s, self._type[i], self._ref[i]) for i, s in enumerate(self._seq) if s]
        self._seq, self._type, self._ref = array("q", bytes(8 * cap)), [""] * cap, [""] * cap
        for s, msg_type, ref in old:
            if s > self._newest - self.size:
                self._seq[s % cap], self._type[s % cap], self._ref[s % cap] = s, msg_type, ref

    def drop_from(self, first: int) -> None:
        """Forget every number >= `first` (they go to new messages)."""
        gone = self._newest - self.size  # numbers that left the window: not brought back
        for i, seq in enumerate(self._seq):
            if seq >= first or (seq and seq <= gone):
                self._seq[i], self._type[i], self._ref[i] = 0, "", ""
        self._newest = min(self._newest, first - 1)

    def pop(self, seq: int) -> tuple[str, str] | None:
        if not self._seq or self._seq[i := seq % len(self._seq)] != seq:
            return None
        if seq <= self._newest - self.size:
            return None  # left the window (its slot not reused yet)
        found = self._type[i], self._ref[i]
        self._seq[i], self._type[i], self._ref[i] = 0, "", ""
        return found


class LastOrderSeq:
    """ClOrdID -> MsgSeqNum for the `size` ClOrdIDs first put most recently (a put on a
    held one updates it in place): a dict and a ring of its keys in the order they came,
    the oldest dropped when a new one takes its place."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._seq: dict[str, int] = {}
        self._ids: list[str | None] = []
        self._next = 0

    def __len__(self) -> int:
        return len(self._seq)

    def put(self, cl_ord_id: str, seq: int) -> None:
        if cl_ord_id not in self._seq:
            if not self._ids:
                self._ids = [None] * self.size
            old = self._ids[self._next]
            if old is not None:
                del self._seq[old]
            self._ids[self._next] = cl_ord_id
            self._next = (self._next + 1) % self.size
        self._seq[cl_ord_id] = seq

    def get(self, cl_ord_id: str) -> int | None:
        return self._seq.get(cl_ord_id)

    def drop_from(self, first: int) -> None:
        """Forget the ClOrdIDs whose last send was numbered >= `first` (the rest keep their
        order)."""
        n = len(self._ids)
        kept = [(c, self._seq[c]) for k in range(n) if (c := self._ids[(self._next + k) % n])]
        self._seq, self._ids, self._next = {}, [], 0
        for cl_ord_id, seq in kept:
            if seq < first:
                self.put(cl_ord_id, seq)
