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
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterator
from decimal import Context, Decimal, InvalidOperation
from enum import Enum
from typing import Any, TypeVar

from actors.venues.sim.liquidity import Ladder, LadderSpec
from actors.venues.sim.model import (
    ZERO,
    ExecEvent,
    ExecType,
    Fill,
    Order,
    OrdRejReason,
    OrdStatus,
    Position,
)
from protocol.messages import OrdType, Side, TimeInForce

Record = dict[str, Any]
E = TypeVar("E", bound=Enum)
_CTX = Context(prec=28)  # explicit, so a caller's decimal context never changes our numbers


def opposite(side: Side) -> Side:
    return Side.SELL if side is Side.BUY else Side.BUY


def parse_enum(cls: type[E], value: object) -> E | None:
    """`cls(value)`, or None if `value` is not one of its values."""
    try:
        return cls._value2member_map_.get(value)  # type: ignore[return-value]
    except TypeError:  # unhashable
        return None


def parse_decimal(value: object) -> Decimal | None:
    """A finite Decimal from a Decimal, int or str; None for anything else."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        return None
    try:
        d = Decimal(value)
    except (InvalidOperation, ValueError):
        return None
    return d if d.is_finite() else None


def dec_str(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _dec(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


class OrderState:
    """One order's mutable state; read it through `Ledger.view()`."""

    __slots__ = (
        "oid", "order_id", "chain", "symbol", "side", "ord_type", "tif", "order_qty", "price",
        "status", "cum_qty", "notional", "prio", "received_ns", "fills", "execs", "text",
        "rej_reason", "book_px",
    )  # fmt: skip

    def __init__(self, rec: Record, order_id: str, status: OrdStatus) -> None:
        self.oid: int = rec["oid"]
        self.order_id = order_id
        self.chain: list[str] = [rec["cl"]]
        self.symbol: str = rec["sym"]
        self.side: Side | None = parse_enum(Side, rec["side"])
        self.ord_type: OrdType | None = parse_enum(OrdType, rec["typ"])
        self.tif: TimeInForce | None = parse_enum(TimeInForce, rec["tif"])
        self.order_qty: Decimal = _dec(rec["qty"]) or ZERO
        self.price: Decimal | None = _dec(rec["px"])
        self.status = status
        self.cum_qty = ZERO
        self.notional = ZERO
        self.prio: int = rec.get("prio", 0)
        self.received_ns: int = rec["ts"]
        self.fills: list[tuple[int, Decimal, Decimal, int]] = []  # exec seq, qty, px, ts
        self.execs: list[tuple[int, ExecType]] = []
        self.text: str = rec.get("text", "")
        self.rej_reason = OrdRejReason(rec["why"]) if "why" in rec else None
        self.book_px: Decimal | None = None  # the price level it rests at, None if not resting

    @property
    def cl_ord_id(self) -> str:
        return self.chain[-1]

    @property
    def leaves_qty(self) -> Decimal:
        return self.order_qty - self.cum_qty if self.status.is_open else ZERO

    @property
    def avg_px(self) -> Decimal:
        return _CTX.divide(self.notional, self.cum_qty) if self.cum_qty else ZERO


class SideBook:
    """The client's resting limit orders on one side of one symbol, price-time priority."""

    __slots__ = ("side", "levels", "prices")

    def __init__(self, side: Side) -> None:
        self.side = side
        self.levels: dict[Decimal, deque[OrderState]] = {}
        self.prices: list[Decimal] = []  # ascending

    def add(self, o: OrderState, price: Decimal) -> None:
        level = self.levels.get(price)
        if level is None:
            level = self.levels[price] = deque()
            bisect.insort(self.prices, price)
        level.append(o)
        o.book_px = price

    def remove(self, o: OrderState) -> None:
        price = o.book_px
        assert price is not None
        level = self.levels[price]
        level.remove(o)
        if not level:
            del self.levels[price]
            self.prices.remove(price)
        o.book_px = None

    def best(self) -> OrderState | None:
        if not self.prices:
            return None
        return self.levels[self.prices[-1] if self.side is Side.BUY else self.prices[0]][0]

    def ordered(self) -> Iterator[OrderState]:
        """Every resting order, best first (price, then time); lazy, so do not change the
        book while iterating."""
        prices = reversed(self.prices) if self.side is Side.BUY else iter(self.prices)
        for p in prices:
            yield from self.levels[p]


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
            self.avg = _CTX.divide(self.avg * abs(net) + px * qty, abs(new))
        elif new == ZERO:
            self.avg = ZERO
        elif (new > ZERO) != (net > ZERO):  # flipped through flat
            self.avg = px
        self.net = new


class Ledger:
    """Orders, the client book, market-maker ladders, positions and id counters."""

    def __init__(self, references: dict[str, Decimal], spec: LadderSpec | None) -> None:
        self.book_id = ""
        self.orders: dict[int, OrderState] = {}
        self.open: dict[int, OrderState] = {}
        self.by_cl: dict[str, OrderState] = {}
        self.rejects: list[Record] = []  # drej records: rejects that created no order
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

    def ladder(self, symbol: str, side: Side) -> Ladder | None:
        """The market maker's quotes; None without a `LadderSpec` (inspection) or for a
        symbol it does not quote."""
        return self._ladders.get((symbol, side))

    # ------------------------------------------------------------------ apply

    def apply(self, rec: Record) -> OrderState | None:
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
        else:
            raise ValueError(f"unknown record kind {kind!r}")
        o.execs.append((rec["x"], _EXEC_TYPE.get(kind) or ExecType(rec["st"])))
        self._sync(o)
        return o

    def _new(self, rec: Record) -> OrderState:
        self.last_oid = max(self.last_oid, rec["oid"])
        self.last_prio = max(self.last_prio, rec.get("prio", 0))
        accepted = rec["t"] == "acc"
        status = OrdStatus.NEW if accepted else OrdStatus.REJECTED
        o = OrderState(rec, f"{self.book_id}-O{rec['oid']:08d}", status)
        self.orders[o.oid] = o
        self.by_cl[o.cl_ord_id] = o
        o.execs.append((rec["x"], ExecType.NEW if accepted else ExecType.REJECTED))
        self._sync(o)
        return o

    def _fill(self, o: OrderState, rec: Record) -> None:
        assert o.side is not None
        qty, px = Decimal(rec["q"]), Decimal(rec["px"])
        o.cum_qty += qty
        o.notional += qty * px
        o.fills.append((rec["x"], qty, px, rec["ts"]))
        o.status = OrdStatus.FILLED if o.cum_qty >= o.order_qty else OrdStatus.PARTIALLY_FILLED
        if rec["lvl"] is not None:
            ladder = self.ladder(o.symbol, opposite(o.side))
            if ladder is not None:
                ladder.consume(Decimal(rec["lvl"]), qty)
        pos = self._positions.get(o.symbol)
        if pos is None:
            pos = self._positions[o.symbol] = _Pos()
        pos.add(o.side, qty, px)

    def _replace(self, o: OrderState, rec: Record) -> None:
        self._add_cl(o, rec["cl"])
        o.order_qty = Decimal(rec["qty"])
        o.price = _dec(rec["px"])
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

    def _add_cl(self, o: OrderState, cl_ord_id: str) -> None:
        o.chain.append(cl_ord_id)
        self.by_cl[cl_ord_id] = o

    def _sync(self, o: OrderState) -> None:
        """Keep the open set and the book in step with the order's status."""
        is_open = o.status.is_open
        rests = is_open and o.ord_type is OrdType.LIMIT and o.price is not None
        if is_open:
            self.open[o.oid] = o
        else:
            self.open.pop(o.oid, None)
        if o.side is None:
            return
        if o.book_px is not None and not rests:
            self.book(o.symbol, o.side).remove(o)
        if rests and o.book_px is None:
            assert o.price is not None
            self.book(o.symbol, o.side).add(o, o.price)

    def _tick(self, rec: Record) -> None:
        self.step = max(self.step, rec["n"])
        for symbol, ref in rec["ref"].items():
            price = self.references[symbol] = Decimal(ref)
            for side in Side:
                ladder = self._ladders.get((symbol, side))
                if ladder is not None:
                    ladder.refresh(price)

    # ------------------------------------------------------------------ views

    def view(self, o: OrderState) -> Order:
        return Order(
            order_id=o.order_id,
            cl_ord_id=o.cl_ord_id,
            cl_ord_ids=tuple(o.chain),
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

    def positions(self) -> dict[str, Position]:
        return {
            s: Position(s, p.net, p.avg, p.bought, p.sold)
            for s, p in sorted(self._positions.items())
        }


_EXEC_TYPE = {"fill": ExecType.TRADE, "rep": ExecType.REPLACED}  # "end": its status


def exec_event(
    o: OrderState,
    exec_type: ExecType,
    exec_id: str,
    ts: int,
    *,
    orig: str = "",
    text: str = "",
    last_qty: Decimal = ZERO,
    last_px: Decimal = ZERO,
) -> ExecEvent:
    """An execution report of `o` as it stands now."""
    rejected = o.status is OrdStatus.REJECTED
    return ExecEvent(
        exec_id=exec_id,
        order_id=o.order_id,
        cl_ord_id=o.cl_ord_id,
        orig_cl_ord_id=orig,
        exec_type=exec_type,
        ord_status=o.status,
        symbol=o.symbol,
        side=o.side,
        ord_type=o.ord_type,
        tif=o.tif,
        order_qty=o.order_qty,
        price=o.price,
        last_qty=last_qty,
        last_px=last_px,
        cum_qty=o.cum_qty,
        avg_px=o.avg_px,
        leaves_qty=o.leaves_qty,
        text=o.text if rejected else text,
        ord_rej_reason=o.rej_reason if rejected else None,
        transact_ns=ts,
    )
