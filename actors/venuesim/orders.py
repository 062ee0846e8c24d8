"""One order's state, the book its resting orders queue in, and its execution report.

`SimOrder` (the venue's order) is mutable and changes only through `Ledger.apply`; readers
get frozen views. `OrderState` is the same state as a plain class, the simulated
exchange's base (`actors.exchangesim.orders.XOrder`). The book, the matching and the
reports take either (`Resting`). Also the small parsers that turn loose input (strings,
Decimals, None) into typed values without raising.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterator
from decimal import Context, Decimal, InvalidOperation
from enum import Enum
from typing import Any, Protocol, TypeVar

import msgspec

from actors.venuesim.model import ZERO, ExecEvent, ExecType, OrdRejReason, OrdStatus
from protocol.messages import OrdType, Side, TimeInForce

Record = dict[str, Any]
E = TypeVar("E", bound=Enum)
CTX = Context(prec=28)  # explicit, so a caller's decimal context never changes our numbers


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


def dec(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


class _State(Protocol):
    chain: tuple[str, ...] | list[str]
    order_qty: Decimal
    cum_qty: Decimal
    notional: Decimal
    status: OrdStatus


# the derived values of `SimOrder` and `OrderState`, written once
def _cl_ord_id(o: _State) -> str:
    return o.chain[-1]


def _leaves_qty(o: _State) -> Decimal:
    return o.order_qty - o.cum_qty if o.status.is_open else ZERO


def _avg_px(o: _State) -> Decimal:
    return CTX.divide(o.notional, o.cum_qty) if o.cum_qty else ZERO


class Resting(Protocol):
    """What the book, the matching and an execution report read of an order."""

    oid: int
    order_id: str
    symbol: str
    side: Side | None
    ord_type: OrdType | None
    tif: TimeInForce | None
    order_qty: Decimal
    price: Decimal | None
    status: OrdStatus
    cum_qty: Decimal
    text: str
    rej_reason: OrdRejReason | None
    book_px: Decimal | None

    @property
    def cl_ord_id(self) -> str: ...

    @property
    def leaves_qty(self) -> Decimal: ...

    @property
    def avg_px(self) -> Decimal: ...


class SimOrder(msgspec.Struct, gc=False, eq=False):
    """One of the venue's orders, mutable; read it through `Ledger.view()`.

    Never tracked by the cyclic collector (`gc=False`), nor are its values: str, ints,
    Decimals, enums and tuples of those (never a list). The venue holds tens of thousands
    of resting orders and, as a plain object with three lists, each added five objects a
    full collection traversed (0.5 s under load at 54,000); a SimOrder refers to nothing
    that refers back to it, so reference counting frees it
    (tests/venuesim/test_order_gc.py). `eq=False`: identity, as the book's queues need."""

    oid: int
    order_id: str
    chain: tuple[str, ...]  # every ClOrdID, first one first
    symbol: str
    side: Side | None
    ord_type: OrdType | None
    tif: TimeInForce | None
    order_qty: Decimal
    price: Decimal | None
    status: OrdStatus
    prio: int
    received_ns: int
    text: str
    rej_reason: OrdRejReason | None
    cum_qty: Decimal = ZERO
    notional: Decimal = ZERO
    fills: tuple[tuple[int, Decimal, Decimal, int], ...] = ()  # exec seq, qty, px, ts
    execs: tuple[tuple[int, str], ...] = ()  # exec seq, ExecType value (a str: untracked)
    book_px: Decimal | None = None  # the price level it rests at, None if not resting

    @classmethod
    def from_record(cls, rec: Record, order_id: str, status: OrdStatus) -> SimOrder:
        """The order an "acc" or "rej" record creates."""
        return cls(
            rec["oid"],
            order_id,
            (rec["cl"],),
            rec["sym"],
            parse_enum(Side, rec["side"]),
            parse_enum(OrdType, rec["typ"]),
            parse_enum(TimeInForce, rec["tif"]),
            dec(rec["qty"]) or ZERO,
            dec(rec["px"]),
            status,
            rec.get("prio", 0),
            rec["ts"],
            rec.get("text", ""),
            OrdRejReason(rec["why"]) if "why" in rec else None,
        )

    cl_ord_id = property(_cl_ord_id)
    leaves_qty = property(_leaves_qty)
    avg_px = property(_avg_px)


class OrderState:
    """One order's mutable state as a plain class (the simulated exchange's `XOrder`)."""

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
        self.order_qty: Decimal = dec(rec["qty"]) or ZERO
        self.price: Decimal | None = dec(rec["px"])
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

    cl_ord_id = property(_cl_ord_id)
    leaves_qty = property(_leaves_qty)
    avg_px = property(_avg_px)


class SideBook:
    """The client's resting limit orders on one side of one symbol, price-time priority."""

    __slots__ = ("side", "levels", "prices")

    def __init__(self, side: Side) -> None:
        self.side = side
        self.levels: dict[Decimal, deque[Resting]] = {}
        self.prices: list[Decimal] = []  # ascending

    def add(self, o: Resting, price: Decimal) -> None:
        level = self.levels.get(price)
        if level is None:
            level = self.levels[price] = deque()
            bisect.insort(self.prices, price)
        level.append(o)
        o.book_px = price

    def remove(self, o: Resting) -> None:
        price = o.book_px
        assert price is not None
        level = self.levels[price]
        level.remove(o)
        if not level:
            del self.levels[price]
            self.prices.remove(price)
        o.book_px = None

    def best(self) -> Resting | None:
        if not self.prices:
            return None
        return self.levels[self.prices[-1] if self.side is Side.BUY else self.prices[0]][0]

    def ordered(self) -> Iterator[Resting]:
        """Every resting order, best first (price, then time); lazy, so do not change the
        book while iterating."""
        prices = reversed(self.prices) if self.side is Side.BUY else iter(self.prices)
        for p in prices:
            yield from self.levels[p]


def exec_event(
    o: Resting,
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
