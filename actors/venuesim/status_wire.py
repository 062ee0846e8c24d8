"""A mass status's reports (8, ExecType=I) written straight to FIX body bytes.

An OrderMassStatusRequest is answered with one 8 per open order: 10,000 at a warm start,
in series with it. The general path (`fixmap.event_out`: a dict of the instrument's tags,
lists filtered twice, `_clean`, then the session's `app_body` converting value by value)
costs ~12 us per report; the status of an open order needs none of its generality.
`StatusWriter.body` writes the same fields, in the same order, with the same bytes, as
one formatted string (`fc.Written`, which the session's encoder puts in as it is):

    37 11 17 150 39 55 54 38 40 44 59 151 14 6 60, then the answer's tail (584 911 [912])

That is the report of an open order as `event_out` makes it (no 41, 103 or 58: no
OrigClOrdID, rejection or text). Any other event (about no order, with an empty or
missing value, a text, a value holding SOH, which `_clean` would have made a space) gets
None: the caller takes the general path, so nothing it would have written differently
goes out. tests/venuesim/test_status_wire.py holds it to the general path's bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal

from actors.connector.fix import codec as fc
from actors.venuesim.model import NO_ORDER_ID, ExecEvent, ExecType
from protocol.messages import OrdType, Side, TimeInForce

_FIELDS = 15  # the report's own fields (the tail apart): one SOH each


def written_tail(fields: Iterable[tuple[int, fc.Value]]) -> bytes:
    """The answer's fields after each order's (its tail), as `encode` writes them; an
    empty text is left out, as `fixmap._clean` does."""
    return b"".join(
        b"%d=%s\x01"
        % (tag, fc.fix_value(value.replace("\x01", " ") if isinstance(value, str) else value))
        for tag, value in fields
        if not (isinstance(value, str) and not value)
    )


class StatusWriter:
    """Writes status reports with the venue's code tables (`fixmap.SIDE_FIX` and friends)."""

    def __init__(
        self,
        side: Mapping[Side, str],
        ord_type: Mapping[OrdType, str],
        tif: Mapping[TimeInForce, str],
    ) -> None:
        self._side, self._ord_type, self._tif = side, ord_type, tif
        self._utc_ns = -1
        self._utc = ""

    def body(self, ev: ExecEvent, tail: bytes) -> fc.Written | None:
        """The body `event_out(ev, {}, extra)` gives once encoded, `tail` being
        `written_tail(extra)`; None where the general path must write it (see above)."""
        if (
            ev.exec_type is not ExecType.ORDER_STATUS
            or ev.order_id == NO_ORDER_ID
            or ev.ord_rej_reason is not None
            or ev.orig_cl_ord_id
            or ev.text
            or ev.price is None
        ):
            return None
        side = self._side.get(ev.side) if ev.side else None
        ord_type = self._ord_type.get(ev.ord_type) if ev.ord_type else None
        tif = self._tif.get(ev.tif) if ev.tif else None
        if not (side and ord_type and tif and ev.order_id and ev.cl_ord_id and ev.exec_id):
            return None
        if not ev.symbol or not _all_decimal(ev):
            return None
        if ev.transact_ns != self._utc_ns:  # every report of one snapshot shares it
            self._utc = fc.sending_time(ev.transact_ns / 1e9)
            self._utc_ns = ev.transact_ns
        text = (
            f"37={ev.order_id}\x0111={ev.cl_ord_id}\x0117={ev.exec_id}\x01"
            f"150={ev.exec_type.value}\x0139={ev.ord_status.value}\x0155={ev.symbol}\x01"
            f"54={side}\x0138={ev.order_qty:f}\x0140={ord_type}\x0144={ev.price:f}\x01"
            f"59={tif}\x01151={ev.leaves_qty:f}\x0114={ev.cum_qty:f}\x016={ev.avg_px:f}\x01"
            f"60={self._utc}\x01"
        )
        if text.count("\x01") != _FIELDS:  # a value held SOH: `_clean` makes it a space
            return None
        return fc.Written(text.encode() + tail)


def _all_decimal(ev: ExecEvent) -> bool:
    """Its numbers are Decimals: ``:f`` writes what `fc.fix_value` does only for them."""
    return (
        type(ev.order_qty) is Decimal
        and type(ev.price) is Decimal
        and type(ev.leaves_qty) is Decimal
        and type(ev.cum_qty) is Decimal
        and type(ev.avg_px) is Decimal
    )
