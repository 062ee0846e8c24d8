"""Execution reports (8) of an order written straight to FIX body bytes.

The general path (`fixmap.event_out`: a dict of the instrument's tags, lists filtered
twice, `_clean`, then the session's `app_body` converting value by value and `encode`
joining field by field) costs ~12 us per report; a report of one of the venue's orders
needs none of its generality. `ReportWriter.body` writes the same fields, in the same
order, with the same bytes, as one formatted string (`fc.Written`, which the session's
encoder puts in as it is). It was made for a mass status's reports (10,000 at a warm
start, in series with it); every order operation's report (a NewOrderSingle's New, in
series with the client's submit -> ACCEPTED) takes it too:

    37 11 [41] 17 150 39 [103] 55 54 38 40 [44] 59 [32 31] 151 14 6 60 [58], then the
    answer's tail (a mass status's 584 911 [912])

41 with an OrigClOrdID, 103 on a rejection, 44 with a price, 32 31 on a trade, 58 with a
text (SOH in it a space, as `_clean` makes it). An event it is not made for gets None and
the caller takes the general path, so nothing it would have written differently goes
out: one about no order, with a value missing (no symbol, side, order type or time in
force: the request's echo fills those), an empty ClOrdID, OrderID or ExecID (left out
there), a value not a plain str or a number not a Decimal, or SOH in any value but the
text. tests/venuesim/test_status_wire.py holds it to the general path's bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal

from actors.connector.fix import codec as fc
from actors.venuesim.model import NO_ORDER_ID, ExecEvent, ExecType
from protocol.messages import OrdType, Side, TimeInForce

_FIELDS = 14  # the fields every written report has (the tail apart): one SOH each


def written_tail(fields: Iterable[tuple[int, fc.Value]]) -> bytes:
    """The answer's fields after each order's (its tail), as `encode` writes them; an
    empty text is left out, as `fixmap._clean` does."""
    return b"".join(
        b"%d=%s\x01"
        % (tag, fc.fix_value(value.replace("\x01", " ") if isinstance(value, str) else value))
        for tag, value in fields
        if not (isinstance(value, str) and not value)
    )


class ReportWriter:
    """Writes execution reports with the venue's code tables (`fixmap.SIDE_FIX` and
    friends)."""

    def __init__(
        self,
        side: Mapping[Side, str],
        ord_type: Mapping[OrdType, str],
        tif: Mapping[TimeInForce, str],
    ) -> None:
        self._side, self._ord_type, self._tif = side, ord_type, tif
        self._utc_ns = -1
        self._utc = ""

    def body(self, ev: ExecEvent, tail: bytes = b"") -> fc.Written | None:
        """The body `event_out(ev, {}, extra)` gives once encoded, `tail` being
        `written_tail(extra)`; None where the general path must write it (see above)."""
        order_id, cl, orig, exec_id, symbol, text = (
            ev.order_id, ev.cl_ord_id, ev.orig_cl_ord_id, ev.exec_id, ev.symbol, ev.text
        )  # fmt: skip
        if ev.exec_ref_id:  # a bust or correction: the general path writes ExecRefID
            return None
        if not (
            order_id and cl and exec_id and symbol and order_id != NO_ORDER_ID
            and type(order_id) is str and type(cl) is str and type(orig) is str
            and type(exec_id) is str and type(symbol) is str and type(text) is str
        ):  # fmt: skip
            return None
        side = self._side.get(ev.side) if ev.side else None
        ord_type = self._ord_type.get(ev.ord_type) if ev.ord_type else None
        tif = self._tif.get(ev.tif) if ev.tif else None
        price, trade = ev.price, ev.exec_type is ExecType.TRADE
        if not (side and ord_type and tif and _all_decimal(ev, price, trade)):
            return None
        if ev.transact_ns != self._utc_ns:  # every report of one snapshot shares it
            self._utc = fc.sending_time(ev.transact_ns / 1e9)
            self._utc_ns = ev.transact_ns
        fields = _FIELDS
        parts = [f"37={order_id}\x0111={cl}\x01"]
        if orig:
            parts.append(f"41={orig}\x01")
            fields += 1
        exec_type, status = ev.exec_type._value_, ev.ord_status._value_
        parts.append(f"17={exec_id}\x01150={exec_type}\x0139={status}\x01")
        if ev.ord_rej_reason is not None:
            parts.append(f"103={int(ev.ord_rej_reason)}\x01")
            fields += 1
        parts.append(f"55={symbol}\x0154={side}\x0138={ev.order_qty:f}\x0140={ord_type}\x01")
        if price is not None:
            parts.append(f"44={price:f}\x01")
            fields += 1
        parts.append(f"59={tif}\x01")
        if trade:
            parts.append(f"32={ev.last_qty:f}\x0131={ev.last_px:f}\x01")
            fields += 2
        parts.append(
            f"151={ev.leaves_qty:f}\x0114={ev.cum_qty:f}\x016={ev.avg_px:f}\x0160={self._utc}\x01"
        )
        written = "".join(parts)
        if written.count("\x01") != fields:  # a value held SOH: `_clean` makes it a space
            return None
        if text:
            written += f"58={text.replace(chr(1), ' ')}\x01"
        return fc.Written(written.encode() + tail)


def _all_decimal(ev: ExecEvent, price: Decimal | None, trade: bool) -> bool:
    """Its numbers are Decimals: ``:f`` writes what `fc.fix_value` does only for them."""
    return (
        type(ev.order_qty) is Decimal
        and (price is None or type(price) is Decimal)
        and type(ev.leaves_qty) is Decimal
        and type(ev.cum_qty) is Decimal
        and type(ev.avg_px) is Decimal
        and (not trade or (type(ev.last_qty) is Decimal and type(ev.last_px) is Decimal))
    )
