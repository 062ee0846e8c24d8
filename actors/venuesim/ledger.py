"""The venue's state and the one place that changes it: `Ledger.apply(record)`.

The engine decides what happens (matching, validation) and expresses every decision as a
plain record (a dict of strings and ints); applying the record is the only way state
changes. The store persists the same records, so a restart replays them through this very
code and gets the same orders, book priority, market-maker quotes, positions and counters,
exactly. `inspect()` replays them read-only for tests and chaos checks.

Records (`t` is the kind; Decimals are strings; `x` is the exec sequence number of the
event the record produced; `ts` is the caller's nanosecond clock):
  hdr   v, book                                   first record of a new store
  acc   oid cl sym side typ tif qty px prio x ts  order accepted (rests if a limit)
  rej   oid cl sym side typ tif qty px why text x ts   order rejected, ClOrdID consumed
  drej  cl why text x ts                          reject that creates no order (duplicate)
  fill  oid q px lvl x ts                         a trade; lvl: market-maker level consumed
  end   oid st cl text x ts                       cancelled (st "4") or expired (st "C")
  rep   oid cl qty px typ tif prio x ts           cancel/replace applied
  tick  n ref{sym: px} ts                         liquidity step: reference moved, quotes refilled
  bust  oid ref q px st x ts                      trade `ref` (its x) busted (q, px: its terms)
  corr  oid ref q px st x ts                      trade `ref` corrected to q at px

Bounded memory (the live venue's ledger, `keep_terminal` set): orders that ended (filled,
cancelled, rejected, expired) stay in memory while they are among the newest
`keep_terminal` to end; then they go, their ClOrdIDs kept as 64-bit hashes of the newest
`RETIRED_IDS` (fixed arrays, 1.8 MiB from the first order gone:
`actors.runtime.idring.HashRing`) so a reused ClOrdID is still rejected as a duplicate (a
hash collision would reject a new ClOrdID: ~n/2^64). A status query for an order gone from
memory is answered "unknown order"; the log keeps everything (`inspect` reads all).
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal

import msgspec

from actors.runtime.idring import HashRing
from actors.venuesim.liquidity import Ladder, LadderSpec
from actors.venuesim.model import (
    ZERO,
    ExecEvent,
    ExecType,
    Fill,
    Order,
    OrdRejReason,
    OrdStatus,
    Position,
    orderless_event,
)
from actors.venuesim.orders import (
    CTX,
    Record,
    SideBook,
    SimOrder,
    dec,
    exec_event,
    opposite,
)
from protocol.messages import OrdType, Side, TimeInForce

KEEP_TERMINAL = 5_000  # ended orders kept in memory by the live venue (status answers)
RETIRED_IDS = 100_000  # ClOrdIDs of orders gone from memory, for duplicate detection


class _Pos:
    __slots__ = ("net", "avg", "bought", "sold")

    def __init__(self) -> None:
        self.net = self.avg = self.bought = self.sold = ZERO

    def add(self, side: Side, qty: Decimal, px: Decimal) -> None:
        signed = qty if side is Side.BUY else -qty
        if side is Side.BUY:
            self.bought += qty
        else:
            self.sold += qty
        net, new = self.net, self.net + signed
        if net == ZERO or (net > ZERO) == (signed > ZERO):  # opening or adding
            self.avg = CTX.divide(self.avg * abs(net) + px * qty, abs(new))
        elif new == ZERO:
            self.avg = ZERO
        elif (new > ZERO) != (net > ZERO):  # flipped through flat
            self.avg = px
        self.net = new


class Ledger:
    """Orders, the client book, market-maker ladders, positions and id counters."""

    def __init__(
        self,
        references: dict[str, Decimal],
        spec: LadderSpec | None,
        keep_terminal: int | None = None,
    ) -> None:
        """`keep_terminal` None: every order stays in memory (inspection, replay)."""
        self.book_id = ""
        self.orders: dict[int, SimOrder] = {}
        self.open: dict[int, SimOrder] = {}
        self.by_cl: dict[str, SimOrder] = {}
        keep = None if keep_terminal is None else 1000  # drej records, newest (all: None)
        self.rejects: deque[Record] = deque(maxlen=keep)  # rejects that created no order
        self._keep = keep_terminal
        self._ended: dict[int, None] = {}  # oids of ended orders in memory, oldest first
        self._retired = HashRing(RETIRED_IDS)  # hash(ClOrdID) of orders gone from memory
        self.references = dict(references)
        self.step = 0
        self.last_exec = self.last_oid = self.last_prio = 0
        self._positions: dict[str, _Pos] = {}
        self._books: dict[tuple[str, Side], SideBook] = {}
        self._ladders: dict[tuple[str, Side], Ladder] = {}
        if spec is not None:
            for symbol, ref in self.references.items():
                for side in Side:
                    self._ladders[(symbol, side)] = Ladder(side, spec, ref)

    # ------------------------------------------------------------------ ids and lookups

    def exec_id(self, seq: int) -> str:
        return f"{self.book_id}-E{seq:012d}"

    def book(self, symbol: str, side: Side) -> SideBook:
        key = (symbol, side)
        book = self._books.get(key)
        if book is None:
            book = self._books[key] = SideBook(side)
        return book

    def known_cl(self, cl_ord_id: str) -> bool:
        """The venue has seen `cl_ord_id` (its order in memory or gone: a duplicate)."""
        return cl_ord_id in self.by_cl or hash(cl_ord_id) in self._retired

    def ladder(self, symbol: str, side: Side) -> Ladder | None:
        """The market maker's quotes; None without a `LadderSpec` (inspection) or for a
        symbol it does not quote."""
        return self._ladders.get((symbol, side))

    # ------------------------------------------------------------------ apply

    def apply_all(self, txns: list[list[Record]]) -> None:
        for txn in txns:
            for rec in txn:
                self.apply(rec)

    def apply(self, rec: Record) -> SimOrder | None:
        """Apply one record; returns the order it touched (None for hdr/drej/tick)."""
        kind = rec["t"]
        x = rec.get("x", 0)
        if x > self.last_exec:
            self.last_exec = x
        if kind == "hdr":
            self.book_id = rec["book"]
            return None
        if kind == "drej":
            self.rejects.append(rec)
            return None
        if kind == "tick":
            self._tick(rec)
            return None
        if kind in ("acc", "rej"):
            return self._new(rec)
        o = self.orders[rec["oid"]]
        if kind == "fill":
            self._fill(o, rec)
        elif kind == "end":
            o.status = OrdStatus(rec["st"])
            o.text = rec["text"]
            if rec["cl"]:
                self._add_cl(o, rec["cl"])
        elif kind == "rep":
            self._replace(o, rec)
        elif kind in ("bust", "corr"):
            self._take_back(o, rec)
        else:
            raise ValueError(f"unknown record kind {kind!r}")
        o.execs += ((rec["x"], _exec_type(rec)._value_),)
        self._sync(o)
        return o

    def _new(self, rec: Record) -> SimOrder:
        self.last_oid = max(self.last_oid, rec["oid"])
        self.last_prio = max(self.last_prio, rec.get("prio", 0))
        accepted = rec["t"] == "acc"
        status = OrdStatus.NEW if accepted else OrdStatus.REJECTED
        o = SimOrder.from_record(rec, f"{self.book_id}-O{rec['oid']:08d}", status)
        self.orders[o.oid] = o
        self.by_cl[o.cl_ord_id] = o
        o.execs += ((rec["x"], _exec_type(rec)._value_),)
        self._sync(o)
        return o

    def _fill(self, o: SimOrder, rec: Record) -> None:
        assert o.side is not None
        qty, px = Decimal(rec["q"]), Decimal(rec["px"])
        o.cum_qty += qty
        o.notional += qty * px
        o.fills += ((rec["x"], qty, px, rec["ts"]),)
        o.status = OrdStatus.FILLED if o.cum_qty >= o.order_qty else OrdStatus.PARTIALLY_FILLED
        if rec["lvl"] is not None:
            ladder = self.ladder(o.symbol, opposite(o.side))
            if ladder is not None:
                ladder.consume(Decimal(rec["lvl"]), qty)
        pos = self._positions.get(o.symbol)
        if pos is None:
            pos = self._positions[o.symbol] = _Pos()
        pos.add(o.side, qty, px)

    def _take_back(self, o: SimOrder, rec: Record) -> None:
        """A trade of `o` (exec seq `ref`) busted, or corrected to `q` at `px`: off the
        order and the position (its mirror; bought / sold as if it never traded), the
        corrected terms on in its place; the order's status as the operator's command
        decided it (`actors.venuesim.busts`)."""
        assert o.side is not None
        ref = rec["ref"]
        pos = self._positions.setdefault(o.symbol, _Pos())
        fills = []
        for x, q, px, ts in o.fills:
            if x != ref:
                fills.append((x, q, px, ts))
                continue
            o.cum_qty, o.notional = o.cum_qty - q, o.notional - q * px
            pos.add(opposite(o.side), q, px)
            pos.bought, pos.sold = pos.bought - q, pos.sold - q  # (the mirror's too)
            if rec["t"] == "corr":
                nq, npx = Decimal(rec["q"]), Decimal(rec["px"])
                o.cum_qty, o.notional = o.cum_qty + nq, o.notional + nq * npx
                pos.add(o.side, nq, npx)
                fills.append((x, nq, npx, ts))
        o.fills = tuple(fills)
        o.status = OrdStatus(rec["st"])

    def _replace(self, o: SimOrder, rec: Record) -> None:
        self._add_cl(o, rec["cl"])
        o.order_qty = Decimal(rec["qty"])
        o.price = dec(rec["px"])
        o.ord_type = OrdType(rec["typ"])
        o.tif = TimeInForce(rec["tif"])
        if o.cum_qty >= o.order_qty:
            o.status = OrdStatus.FILLED
        else:
            o.status = OrdStatus.PARTIALLY_FILLED if o.cum_qty else OrdStatus.NEW
        if rec["prio"] != o.prio or o.price != o.book_px:
            self.last_prio = max(self.last_prio, rec["prio"])
            o.prio = rec["prio"]
            if o.book_px is not None and o.side is not None:  # requeue: back of its new level
                self.book(o.symbol, o.side).remove(o)

    def _add_cl(self, o: SimOrder, cl_ord_id: str) -> None:
        o.chain += (cl_ord_id,)
        self.by_cl[cl_ord_id] = o

    def _sync(self, o: SimOrder) -> None:
        """Keep the open set and the book in step with the order's status."""
        is_open = o.status.is_open
        rests = is_open and o.ord_type is OrdType.LIMIT and o.price is not None
        if is_open:
            self.open[o.oid] = o
        else:
            self.open.pop(o.oid, None)
            if self._keep is not None:
                self._ended[o.oid] = None
                if len(self._ended) == 1:  # trading: the arrays now, not once it is busy
                    self._retired.reserve()
                if len(self._ended) > self._keep:
                    self._retire(next(iter(self._ended)))
        if o.side is None:
            return
        if o.book_px is not None and not rests:
            self.book(o.symbol, o.side).remove(o)
        if rests and o.book_px is None:
            assert o.price is not None
            self.book(o.symbol, o.side).add(o, o.price)

    def _retire(self, oid: int) -> None:
        """An ended order leaves memory; its ClOrdIDs stay known (as hashes, bounded)."""
        del self._ended[oid]
        o = self.orders.pop(oid)
        for cl in o.chain:
            if self.by_cl.get(cl) is o:
                del self.by_cl[cl]
            self._retired.add(hash(cl))

    def _tick(self, rec: Record) -> None:
        self.step = max(self.step, rec["n"])
        for symbol, ref in rec["ref"].items():
            price = self.references[symbol] = Decimal(ref)
            for side in Side:
                ladder = self._ladders.get((symbol, side))
                if ladder is not None:
                    ladder.refresh(price)

    # ------------------------------------------------------------------ views

    def view(self, o: SimOrder) -> Order:
        return Order(
            order_id=o.order_id,
            cl_ord_id=o.cl_ord_id,
            cl_ord_ids=o.chain,
            symbol=o.symbol,
            side=o.side,
            ord_type=o.ord_type,
            tif=o.tif,
            order_qty=o.order_qty,
            price=o.price,
            ord_status=o.status,
            cum_qty=o.cum_qty,
            leaves_qty=o.leaves_qty,
            avg_px=o.avg_px,
            text=o.text,
            ord_rej_reason=o.rej_reason,
            received_ns=o.received_ns,
            fills=tuple(Fill(self.exec_id(x), q, p, ts) for x, q, p, ts in o.fills),
        )

    def event(self, rec: Record, o: SimOrder | None) -> ExecEvent | None:
        """The execution report a just-applied record produced (None for hdr and tick):
        built from the record and the order's state after it, so live and replay agree."""
        kind = rec["t"]
        if kind in ("hdr", "tick"):
            return None
        exec_id, ts = self.exec_id(rec["x"]), rec["ts"]
        if o is None:
            why = OrdRejReason(rec["why"])
            return orderless_event(exec_id, ExecType.REJECTED, rec["cl"], rec["text"], why, ts)
        if kind == "fill":
            qty, px = Decimal(rec["q"]), Decimal(rec["px"])
            return exec_event(o, ExecType.TRADE, exec_id, ts, last_qty=qty, last_px=px)
        if kind in ("bust", "corr"):  # LastQty / LastPx: the busted trade's, the corrected
            qty, px = Decimal(rec["q"]), Decimal(rec["px"])
            ev = exec_event(o, _exec_type(rec), exec_id, ts, last_qty=qty, last_px=px)
            return msgspec.structs.replace(ev, exec_ref_id=self.exec_id(rec["ref"]))
        orig, text = rec.get("orig", ""), rec.get("text", "")
        return exec_event(o, _exec_type(rec), exec_id, ts, orig=orig, text=text)

    def positions(self) -> dict[str, Position]:
        return {
            s: Position(s, p.net, p.avg, p.bought, p.sold)
            for s, p in sorted(self._positions.items())
        }


_EXEC_TYPES = {
    "acc": ExecType.NEW,
    "rej": ExecType.REJECTED,
    "drej": ExecType.REJECTED,
    "fill": ExecType.TRADE,
    "rep": ExecType.REPLACED,
    "bust": ExecType.TRADE_CANCEL,
    "corr": ExecType.TRADE_CORRECT,
}


def _exec_type(rec: Record) -> ExecType:
    """The ExecType of the report a record produced ("end": its status, 4 or C)."""
    return _EXEC_TYPES.get(rec["t"]) or ExecType(rec["st"])
