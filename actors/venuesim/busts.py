"""An operator's bust or correction of one of the simulated venue's trades, as a real
venue's operations desk does it after an erroneous trade: through the control path's
fault command (`protocol.commands.VenueFault`), kinds

| kind          | value                      | effect                                       |
|---------------|----------------------------|----------------------------------------------|
| bust_trade    | "<ExecID>"                 | the trade is taken back: 35=8 150=H, 19=it   |
| correct_trade | "<ExecID> <qty> <price>"   | the trade is re-sized/re-priced: 150=G, 19   |

The trade comes off (or is corrected on) its order and the venue's position, persisted as
a record of the venue's log like every change (`actors.venuesim.ledger`: ``bust`` /
``corr``), so its inspection, status answers and position answers (AN) show it after a
restart too. The report is as strict as a real venue's: every field FIX 4.4 requires of
an ExecutionReport, ExecRefID (19) the busted trade's ExecID, LastQty (32) / LastPx (31)
the busted trade's (H) or the corrected ones (G), OrdStatus / CumQty / LeavesQty / AvgPx
the order after it. A filled order whose trade is busted is done (OrdStatus 4, nothing
put back on the book); a live one stays live with its leaves grown; a trade of an order
gone from memory, busted already, or not of this venue is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Final

from actors.venuesim.ledger import Ledger
from actors.venuesim.model import OrdStatus
from actors.venuesim.orders import Record, SimOrder
from actors.venuesim.store import exec_seq

KINDS: Final = ("bust_trade", "correct_trade")
Value = str | int | float | bool | None


class BustError(ValueError):
    """A bust or correction the venue cannot carry out (its reason for the operator)."""


def builder(kind: str, value: Value) -> Callable[[Ledger], Record]:
    """The record of command `kind` with `value` (see the module table), built from the
    venue's state when applied (`Venue.operator_record`); BustError if invalid."""
    words = str(value or "").split()
    want = 1 if kind == "bust_trade" else 3
    if len(words) != want:
        usage = "<ExecID>" if want == 1 else "<ExecID> <qty> <price>"
        raise BustError(f"{kind} takes {usage!r}, not {value!r}")
    exec_id, terms = words[0], _terms(words[1:])

    def build(ledger: Ledger) -> Record:
        seq = exec_seq(exec_id)
        if not seq or ledger.exec_id(seq) != exec_id:
            raise BustError(f"{exec_id!r} is no ExecID of this venue")
        order, trade = _trade_of(ledger, seq)
        qty, px = trade
        cum = order.cum_qty - qty + (terms[0] if terms else 0)
        if terms and cum > order.order_qty:
            raise BustError(f"correcting {exec_id} to {terms[0]} overfills {order.order_qty}")
        t, q, p = ("corr", *terms) if terms else ("bust", qty, px)
        return {"t": t, "oid": order.oid, "ref": seq, "q": str(q), "px": str(p),
                "st": _status_after(order, cum).value}  # fmt: skip

    return build


def _terms(words: list[str]) -> tuple[Decimal, Decimal] | None:
    if not words:
        return None
    try:
        qty, px = Decimal(words[0]), Decimal(words[1])
    except InvalidOperation:
        raise BustError(f"correct_trade: {words!r} are no qty and price") from None
    if not (qty.is_finite() and px.is_finite() and qty > 0 and px > 0):
        raise BustError(f"correct_trade: qty {qty} and price {px} must be positive")
    return qty, px


def _trade_of(ledger: Ledger, seq: int) -> tuple[SimOrder, tuple[Decimal, Decimal]]:
    for order in ledger.orders.values():
        for x, qty, px, _ts in order.fills:
            if x == seq:
                return order, (qty, px)
    raise BustError(f"trade {ledger.exec_id(seq)} not found (busted, or its order gone)")


def _status_after(order: SimOrder, cum: Decimal) -> OrdStatus:
    """Live stays live (filled if the correction completes it); filled and now short is
    done (cancelled), a cancelled or expired order stays so."""
    if cum >= order.order_qty:
        return OrdStatus.FILLED
    if order.status.is_open:
        return OrdStatus.PARTIALLY_FILLED if cum else OrdStatus.NEW
    return OrdStatus.CANCELED if order.status is OrdStatus.FILLED else order.status
