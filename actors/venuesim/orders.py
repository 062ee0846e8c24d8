"""One order's state, the book its resting orders queue in, and its execution report.

`OrderState` is mutable and changes only through `Ledger.apply`; readers get frozen views.
Also the small parsers that turn loose input (strings, Decimals, None) into typed values
without raising.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterator
from decimal import Context, Decimal, InvalidOperation
from enum import Enum
from typing import Any, TypeVar

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

    @property
    def cl_ord_id(self) -> str:
        return self.chain[-1]

    @property
    def leaves_qty(self) -> Decimal:
        return self.order_qty - self.cum_qty if self.status.is_open else ZERO

    @property
    def avg_px(self) -> Decimal:
        return CTX.divide(self.notional, self.cum_qty) if self.cum_qty else ZERO


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
