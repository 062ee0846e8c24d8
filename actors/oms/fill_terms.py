"""What an order keeps of each fill it booked under a venue ExecID, so that a later bust
or correction of that fill (FIX ExecRefID) takes back exactly what was booked
(`actors.oms.trade_busts`): ``Order.fills`` maps the exec id to ``"qty px [fee asset]"``
(text: an `Order` holds no object the cyclic collector tracks), or to ``""`` once busted;
a correction's own exec id to ``"=<the fill's>"`` (venues name either in ExecRefID).

A fill counted from venue state (``recon:`` catch-ups, an adoption's cum) has no terms of
its own here: a bust naming the venue fill behind it is escalated, not guessed."""

from __future__ import annotations

from collections.abc import Container, Mapping
from decimal import Decimal
from typing import Any, Final, NamedTuple, Protocol

from protocol.domain import status_of
from protocol.messages import OrderStatus

BUSTED: Final = ""  # `Order.fills` value of a fill busted
ALIAS: Final = "="  # `Order.fills` value of a correction's exec id: "=" + the fill's


class Terms(NamedTuple):
    qty: Decimal
    px: Decimal
    fee: Decimal
    fee_asset: str


class _Filled(Protocol):
    cum_qty: Decimal
    notional: Decimal
    status: OrderStatus
    reason: str
    exec_ids: dict[str, None]
    fills: dict[str, str] | None


def packed(qty: Decimal | str, px: Decimal | str, fee: Any = None, fee_asset: str = "") -> str:
    """`Order.fills` value of a fill of `qty` at `px`, its fee if any."""
    return f"{qty} {px} {fee} {fee_asset}" if fee else f"{qty} {px}"


def terms(text: str) -> Terms:
    """The `Terms` of a `packed` value (not `BUSTED`)."""
    parts = text.split(" ")
    fee = Decimal(parts[2]) if len(parts) > 2 else Decimal(0)
    return Terms(Decimal(parts[0]), Decimal(parts[1]), fee, parts[3] if len(parts) > 3 else "")


def note_fill(order: _Filled, record: Mapping[str, Any]) -> None:
    """A ``fill`` record applied: keep its terms under its exec id (not of ``recon:``
    catch-ups, which stand for fills whose reports did not come)."""
    exec_id = record["exec_id"]
    if exec_id.startswith("recon:"):
        return
    if order.fills is None:
        order.fills = {}
    order.fills[exec_id] = packed(record["qty"], record["px"], record.get("fee"),
                                  str(record.get("fee_asset") or ""))  # fmt: skip


def apply_bust(order: _Filled, record: Mapping[str, Any]) -> tuple[Decimal, Decimal]:
    """Apply a ``trade_bust`` record to the order: the fill `ref` taken back (its qty and
    notional), a correction's terms booked in its place; returns the busted (-qty, px)."""
    qty, px = Decimal(record["qty"]), Decimal(record["px"])
    cum_qty, notional = order.cum_qty - qty, order.notional - qty * px
    after = BUSTED
    if "new_qty" in record:
        new_qty, new_px = Decimal(record["new_qty"]), Decimal(record["new_px"])
        cum_qty, notional = cum_qty + new_qty, notional + new_qty * new_px
        old = terms(order.fills[record["ref"]]) if order.fills else None
        after = packed(new_qty, new_px, old and old.fee, old.fee_asset if old else "")
    order.cum_qty, order.notional = cum_qty, notional
    if order.fills is None:
        order.fills = {}
    order.fills[record["ref"]] = after
    if "new_qty" in record:  # a later bust or correction may name the correction's id
        order.fills[record["exec_id"]] = ALIAS + record["ref"]
    order.exec_ids[record["exec_id"]] = None
    order.status = status_of(record["status"])
    order.reason = record.get("reason", order.reason)  # says so to its clients
    return -qty, px


def missed_fill_exec_id(cl_ord_id: str, venue_cum_qty: Decimal, taken: Container[str] = ()) -> str:
    """Synthetic exec id of a fill inferred from venue state: same state, same id; one
    `taken` (a bust took a fill back, the venue's cum came to that number again) gets one
    more trailing zero: the same number (`reconciled_cum` reads it), a new id."""
    exec_id, text = f"recon:{cl_ord_id}:{venue_cum_qty}", format(venue_cum_qty, "f")
    while exec_id in taken:
        text += "0" if "." in text else ".0"
        exec_id = f"recon:{cl_ord_id}:{text}"
    return exec_id
