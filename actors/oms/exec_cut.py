"""What the OMS applied recently, by the connectors' execution numbers (`ExecCut`), so it
can answer "as of the cut" and a reconciliation pass can tell which orders changed since.

Per venue:
- a bounded ring of the fills applied (connector epoch, exec_seq, position delta, net of
  a fee in the base asset as the position is: `actors.oms.positions.fee_parts`):
  the OMS's position as of a cut is the position now minus what was applied after it
  (`positions_as_of`). Every execution up to the cut is applied already (the connector
  holds its answer until they are acked: actors/connector/exec_cut.py), so this is exact
  while the ring still holds everything after the cut, and refused (None) otherwise;
- the orders touched by an execution, with a running count (`mark` / `touched_after` /
  `touched_since`): an order an execution changed after a pass began is judged by the next
  pass (its answer and our book may each hold executions the other lacks). Bounded too: a
  pass whose mark fell out of it can no longer tell (`remembers` is False, `touched_since`
  returns None).

Both are fixed arrays allocated when the venue's first execution is noted (~1.5 MiB per
venue at the default bounds; they were ~9 MiB of per-fill objects and a dict of ClOrdIDs,
filling until ~60,000 orders): the OMS's memory does not grow with them afterwards. A
touched order is remembered by its ClOrdID's 64-bit hash, not the string: two ids with the
same hash read as one, which can only make an order look touched after a mark (judged by
the next pass), never untouched.

Only applied executions are noted (a duplicate changed nothing now; one applied by an
earlier OMS incarnation is numbered below any cut the connector still names with this
OMS's epoch). A fill that matched no order moves no position: its number is kept (the
last `UNMATCHED` per venue; an adoption asks which came after the cut of the open-orders
answer it adopts from: `after_cut`) until an adoption places it on its order, or
the report of an outside replace to its ClOrdID does (a Replaced or status report, or a
fill naming the order as OrigClOrdID: `actors.oms.executions`), when it is noted as
applied then, at its own number (`note_placed`, `actors.oms.adoption`); so is the venue's
resend of it applied on its order (`note_outcome`).
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal

from actors.oms.orders import Outcome
from actors.oms.positions import FILL_FEE, TRADE_BUST, base_fee
from actors.runtime.idring import unslot
from protocol.messages import ExecCut, ExecReport, Side

RING = 16_384  # fills per venue (~3 s at 5,000 fills/s)
TOUCHED = 32_768  # orders per venue remembered as touched
UNMATCHED = 1_024  # unmatched fills per venue whose execution number is kept

_INT64 = 1 << 63


def after(epoch: int, seq: int, cut: ExecCut) -> bool:
    """Numbered after the cut: a later connector incarnation, or later in the same one
    (epochs grow: `actors.supervisor.daemon`)."""
    return epoch > cut.connector_epoch or (epoch == cut.connector_epoch and seq > cut.exec_seq)


def _packed(delta: Decimal) -> tuple[int, int] | None:
    """`delta` as (coefficient, exponent) fitting an int64 and an int8, or None. The
    exponent is kept as given, so the Decimal read back prints as it came ('1.0' stays)."""
    exp = delta.as_tuple().exponent
    if not isinstance(exp, int) or not -128 <= exp <= 127:
        return None  # NaN, infinity, or an exponent no quantity has
    num, den = delta.as_integer_ratio()
    coef = num * 10**-exp // den if exp < 0 else num // 10**exp
    return (coef, exp) if -_INT64 <= coef < _INT64 else None


class _Fills:
    """The ring of fills: one slot per fill in fixed arrays, the oldest overwritten."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._epoch = array("q", bytes(8 * size))
        self._seq = array("q", bytes(8 * size))
        self._symbol = array("i", bytes(4 * size))  # index into `_symbols`
        self._coef = array("q", bytes(8 * size))
        self._exp = array("b", bytes(size))
        self._odd: dict[int, Decimal] = {}  # slot -> a delta that does not pack
        self._symbols: list[str] = []  # the venue's symbols (few: one entry each)
        self._symbol_ix: dict[str, int] = {}
        self._next = 0  # the slot the next fill takes
        self._held = 0
        self.evicted: tuple[int, int] = (0, 0)  # the latest (epoch, seq) that left the ring

    def append(self, epoch: int, seq: int, symbol: str, delta: Decimal) -> None:
        if not (-_INT64 <= epoch < _INT64 and -_INT64 <= seq < _INT64):
            # no slot holds it: answered as if it had left the ring (a cut before it is
            # refused, never answered without it); no epoch or exec_seq comes near this
            self.evicted = max(self.evicted, (epoch, seq))
            return
        i = self._next
        if self._held == self.size:
            self.evicted = max(self.evicted, (self._epoch[i], self._seq[i]))
            self._odd.pop(i, None)
        else:
            self._held += 1
        self._next = (i + 1) % self.size
        ix = self._symbol_ix.get(symbol)
        if ix is None:
            ix = self._symbol_ix[symbol] = len(self._symbols)
            self._symbols.append(symbol)
        self._epoch[i], self._seq[i], self._symbol[i] = epoch, seq, ix
        packed = _packed(delta)
        if packed is None:
            self._odd[i] = delta
        else:
            self._coef[i], self._exp[i] = packed

    def after_cut(self, cut: ExecCut) -> Iterator[tuple[str, Decimal]]:
        """(symbol, delta) of the fills held numbered after the cut."""
        first = (self._next - self._held) % self.size
        for k in range(self._held):
            i = (first + k) % self.size
            if after(self._epoch[i], self._seq[i], cut):
                delta = self._odd.get(i)
                if delta is None:
                    delta = Decimal(self._coef[i]).scaleb(self._exp[i])
                yield self._symbols[self._symbol[i]], delta


class _Touched:
    """ClOrdID hash -> the count when an execution last touched it, the `size` most
    recently touched (least recently touched forgotten first): a hash table with linear
    probing over fixed arrays, and a list of its entries by last touch."""

    def __init__(self, size: int) -> None:
        self.size = size
        cap = 1 << (2 * size - 1).bit_length()  # >= twice the entries: short probes
        self._mask = cap - 1
        self._slot = array("i", [-1]) * cap  # table slot -> entry, or -1
        self._key = array("q", bytes(8 * size))  # entry -> ClOrdID hash
        self._at = array("q", bytes(8 * size))  # entry -> count when last touched
        self._older = array("i", [-1]) * size  # entry -> the entry touched before it
        self._newer = array("i", [-1]) * size
        self._oldest = self._newest = -1
        self._used = 0

    def _find(self, key: int) -> tuple[int, int]:
        """(table slot, entry) of `key`, or (the empty slot where it would go, -1)."""
        mask, slot, keys = self._mask, self._slot, self._key
        i = key & mask
        while (e := slot[i]) >= 0:
            if keys[e] == key:
                return i, e
            i = (i + 1) & mask
        return i, -1

    def get(self, key: int) -> int:
        e = self._find(key)[1]
        return self._at[e] if e >= 0 else 0

    def touch(self, key: int, count: int) -> int:
        """Note `key` touched at `count`; the count of the entry forgotten for it, or 0."""
        i, e = self._find(key)
        forgotten = 0
        if e >= 0:
            self._unlink(e)
        elif self._used < self.size:
            e = self._used
            self._used += 1
            self._slot[i] = e
        else:
            e = self._oldest
            forgotten = self._at[e]
            self._unlink(e)
            unslot(self._slot, self._key, self._mask, self._find(self._key[e])[0])
            i = self._find(key)[0]
            self._slot[i] = e
        self._key[e], self._at[e] = key, count
        self._older[e], self._newer[e] = self._newest, -1
        if self._newest >= 0:
            self._newer[self._newest] = e
        else:
            self._oldest = e
        self._newest = e
        return forgotten

    def _unlink(self, e: int) -> None:
        older, newer = self._older[e], self._newer[e]
        if older >= 0:
            self._newer[older] = newer
        else:
            self._oldest = newer
        if newer >= 0:
            self._older[newer] = older
        else:
            self._newest = older


class _VenueLog:
    def __init__(self, ring: int, touched: int) -> None:
        self.ring = _Fills(ring)
        self.count = 0  # executions noted
        self.touched = _Touched(touched)
        self.forgotten_below = 0  # touches before this count may have been forgotten
        self.unmatched: dict[str, tuple[int, int]] = {}  # exec id -> (epoch, exec_seq)

    def keep_unmatched(self, exec_id: str, epoch: int, seq: int) -> None:
        if len(self.unmatched) >= UNMATCHED:  # forgotten: a cut before it is refused
            oldest = next(iter(self.unmatched))
            self.ring.evicted = max(self.ring.evicted, self.unmatched.pop(oldest))
        self.unmatched[exec_id] = (epoch, seq)


class ExecLog:
    def __init__(self, ring: int = RING, touched: int = TOUCHED) -> None:
        self._ring, self._touched = ring, touched
        self._venues: dict[str, _VenueLog] = {}

    def _log(self, venue: str) -> _VenueLog:
        """The venue's log, made at its first execution: only `note` calls this (a read of
        a venue with none, or of a name no venue has, answers as an empty log and
        allocates nothing)."""
        log = self._venues.get(venue)
        if log is None:
            log = self._venues[venue] = _VenueLog(self._ring, self._touched)
        return log

    def note(
        self,
        venue: str,
        epoch: int,
        seq: int,
        client_order_id: str | None,
        symbol: str,
        delta: Decimal,
    ) -> None:
        """An execution was applied (`seq` 0: a connector that does not number them)."""
        log = self._log(venue)
        log.count += 1
        if client_order_id:
            forgotten = log.touched.touch(hash(client_order_id), log.count)
            if forgotten:
                log.forgotten_below = forgotten + 1
        if seq and delta:  # only fills move positions: the ring keeps only them
            log.ring.append(epoch, seq, symbol, delta)

    def note_outcome(self, report: ExecReport, epoch: int, outcome: Outcome) -> None:
        """What applying `report` (from connector incarnation `epoch`) did."""
        order = outcome.order
        if not outcome.applied:
            return
        if order is None:  # an unmatched fill: numbered, in case an adoption places it
            if report.kind == "fill" and report.exec_seq:
                self._log(report.venue).keep_unmatched(report.exec_id, epoch, report.exec_seq)
            return
        fill = outcome.fill_qty or Decimal(0)  # its fills (a bust: negative), a fee alone
        fills = [r for r in outcome.records if r["kind"] in ("fill", FILL_FEE, TRADE_BUST)]
        if fill and len(outcome.records) > 1:  # unmatched fills it placed: at their numbers
            placed = [r for r in fills if r["exec_id"] != report.exec_id
                      and not r["exec_id"].startswith("recon:")]  # fmt: skip
            if placed:
                fill -= sum((Decimal(r["qty"]) for r in placed), Decimal(0))
                fills = [r for r in fills if r not in placed]
                self.note_placed(report.venue, outcome)
        fees = sum((base_fee(order.symbol, r) for r in fills), Decimal(0))
        delta = (fill if order.side == Side.BUY else -fill) - fees  # the position's move
        seq, log = report.exec_seq, self._venues.get(report.venue)
        if fill and log is not None and report.exec_id in log.unmatched:
            # a resend of a fill first seen unmatched: it happened at its first number (a
            # positions answer's cut after that holds it, whenever the resend came)
            epoch, seq = log.unmatched.pop(report.exec_id)
        self.note(report.venue, epoch, seq, order.client_order_id, order.symbol, delta)

    def note_placed(self, venue: str, outcome: Outcome) -> None:
        """An adoption's outcome (`actors.oms.adoption`), or an outside replace's
        (`note_outcome`): each unmatched fill it placed on
        its order moved the position now, noted at the number it came with. One without a
        number kept here was recorded by an earlier OMS incarnation (below any cut the
        connector names with this one's epoch) or forgotten (a cut before it is refused)."""
        log, order = self._venues.get(venue), outcome.order
        if log is None or not log.unmatched or order is None or not outcome.applied:
            return
        for rec in outcome.records:
            at = log.unmatched.pop(rec["exec_id"], None) if rec["kind"] == "fill" else None
            if at is not None:
                qty = Decimal(rec["qty"])
                delta = (qty if order.side == Side.BUY else -qty) - base_fee(order.symbol, rec)
                self.note(venue, *at, order.client_order_id, order.symbol, delta)

    def after_cut(self, venue: str, exec_id: str, cut: ExecCut | None) -> bool:
        """Whether the unmatched fill `exec_id` is kept here numbered after `cut` (an
        open-orders answer's: the venue state it lists lacks it, `actors.oms.adoption`).
        One not kept (noted by an earlier OMS incarnation: numbered before any cut this one
        is answered with; or forgotten) is not, nor is any when there is no cut."""
        log = self._venues.get(venue)
        at = None if log is None or cut is None else log.unmatched.get(exec_id)
        return at is not None and cut is not None and after(*at, cut)

    def mark(self, venue: str) -> int:
        """Where the venue's executions stand now (for `touched_since`)."""
        log = self._venues.get(venue)
        return 0 if log is None else log.count

    def remembers(self, venue: str, mark: int) -> bool:
        """Whether every order touched after `mark` is still remembered (`touched_after`)."""
        log = self._venues.get(venue)
        return log is None or mark + 1 >= log.forgotten_below

    def touched_after(self, venue: str, mark: int, client_order_id: str) -> bool:
        """An execution changed the order after `mark` (exact while `remembers(mark)`)."""
        log = self._venues.get(venue)
        return log is not None and log.touched.get(hash(client_order_id)) > mark

    def touched_since(self, venue: str, mark: int, orders: Iterable[str]) -> set[str] | None:
        """Which of `orders` an execution changed after `mark`; None if that is no longer
        known (more orders touched since than remembered)."""
        log = self._venues.get(venue)
        if log is None:
            return set()
        if mark + 1 < log.forgotten_below:
            return None
        return {c for c in orders if log.touched.get(hash(c)) > mark}

    def positions_as_of(
        self, venue: str, cut: ExecCut, now: Mapping[str, Decimal]
    ) -> dict[str, Decimal] | None:
        """The venue's positions (symbol -> qty, `now`) as of `cut`; None if executions
        after the cut may have left the ring."""
        log = self._venues.get(venue)
        if log is None:
            return dict(now)  # nothing applied since this OMS started
        if after(*log.ring.evicted, cut):
            return None
        then = dict(now)
        for symbol, delta in log.ring.after_cut(cut):
            then[symbol] = then.get(symbol, Decimal(0)) - delta
        return then
