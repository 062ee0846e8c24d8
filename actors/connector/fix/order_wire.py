"""A NewOrderSingle's (D) body written ahead, as one `codec.Written`, on the order path.

`mapping.place_fields` gives the body as a field list, which `transmit.app_body` then
encodes value by value (`codec.fix_value`) and `codec.encode` joins tag by tag: ~30 calls
before an order's D can be saved and fsynced. `place_body` writes the same bytes with one
format; it takes that way only where they are provably the same (each text non-empty and
without SOH, each number a `Decimal` whose `str` has no exponent), and otherwise returns
`place_fields`' list, which the session encodes, or refuses, as it always did.
tests/connector/fix/test_order_wire.py holds the two ways to the same frame and errors.
"""

from __future__ import annotations

from decimal import Decimal

from actors.connector.fix import codec as fc
from actors.connector.fix import mapping as fm
from protocol.messages import OrdType, PlaceOrder


def place_body(order: PlaceOrder, now_s: float) -> fc.Written | fm.Fields:
    """The D body of `order`: written ahead, or `fm.place_fields` where that is not plain."""
    cl_ord_id, symbol, qty, price = order.cl_ord_id, order.symbol, order.qty, order.price
    # the look-ups `place_fields` makes, in its order (an unknown member: its KeyError)
    side = fm.SIDE_TO_FIX[order.side]
    ord_type = fm.ORD_TYPE_TO_FIX[order.order_type]
    tif = fm.TIF_TO_FIX[order.tif]
    limit = order.order_type is OrdType.LIMIT and price is not None
    if not (
        type(cl_ord_id) is str
        and type(symbol) is str
        and type(qty) is Decimal
        and (type(price) is Decimal or not limit)
        and cl_ord_id
        and symbol
        and "\x01" not in cl_ord_id
        and "\x01" not in symbol
    ):
        return fm.place_fields(order, now_s)
    qty_text, price_text = str(qty), str(price) if limit else ""
    if "E" in qty_text or "e" in qty_text or "E" in price_text or "e" in price_text:
        return fm.place_fields(order, now_s)  # exponent form: `codec._plain`'s format
    price_field = f"44={price_text}\x01" if limit else ""
    text = (
        f"11={cl_ord_id}\x0155={symbol}\x0154={side}\x0138={qty_text}\x0140={ord_type}\x01"
        f"{price_field}59={tif}\x0160={fc.sending_time(now_s)}\x01"  # fm.transact_time
    )
    try:
        return fc.Written(text.encode())
    except UnicodeEncodeError:  # a lone surrogate: the long way refuses it, as it did
        return fm.place_fields(order, now_s)
