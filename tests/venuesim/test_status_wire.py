"""Execution reports written ahead (actors/venuesim/status_wire.py: a mass status's, and
every report `fixmap.event_out` makes of an order) are, on the wire, byte for byte what
the general path (`exec_fields`, `_clean`, `app_body`) writes, for any event; the events
the writer is not made for take the general path."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.connector.fix import codec as fc
from actors.connector.fix.transmit import app_body
from actors.venuesim import fixmap
from actors.venuesim.model import (
    NO_ORDER_ID,
    STATUS_EXEC_ID,
    ExecEvent,
    ExecType,
    OrdRejReason,
    OrdStatus,
)
from actors.venuesim.status_wire import written_tail
from protocol.messages import OrdType, Side, TimeInForce

_HEADER = [(49, b"SIM"), (56, b"TP"), (34, b"7"), (52, b"20261205-03:50:00.123")]
_TS_NS = 1_796_441_873_536_000_000


def _event(**changes: Any) -> ExecEvent:
    values: dict[str, Any] = dict(
        exec_id=STATUS_EXEC_ID, order_id="100001", cl_ord_id="c-1", orig_cl_ord_id="",
        exec_type=ExecType.ORDER_STATUS, ord_status=OrdStatus.NEW, symbol="AAPL",
        side=Side.BUY, ord_type=OrdType.LIMIT, tif=TimeInForce.DAY, order_qty=Decimal(10),
        price=Decimal("99.50"), last_qty=Decimal(0), last_px=Decimal(0), cum_qty=Decimal(0),
        avg_px=Decimal(0), leaves_qty=Decimal(10), text="", ord_rej_reason=None,
        transact_ns=_TS_NS,
    )  # fmt: skip
    values.update(changes)
    return ExecEvent(**values)


class _Str(str):
    """A str subclass (the general path makes a plain str of it)."""

    __slots__ = ()


class _Snapshot(list[ExecEvent]):
    """What `_status_parts` reads of a StatusSnapshot: its events, total, close()."""

    closed = False

    @property
    def total(self) -> int:
        return len(self)

    def close(self) -> None:
        self.closed = True


def _answer(events: list[ExecEvent], req_id: str = "M1") -> list[fixmap.Out]:
    snap = _Snapshot(events)
    outs = list(fixmap._status_parts(snap, ((584, req_id),)))  # type: ignore[arg-type]
    assert snap.closed
    return outs


def _general_out(
    ev: ExecEvent, echo: dict[int, str], extra: tuple[fixmap.Field, ...] = ()
) -> bytes:
    """One report as the general path writes it (as the venue did before)."""
    fields = fixmap._clean(fixmap.exec_fields(ev, echo) + list(extra))
    return fc.encode("8", _HEADER, app_body(fields))


def _general(events: list[ExecEvent], req_id: str = "M1") -> list[bytes]:
    """A mass status's reports as the general path writes them."""
    frames = []
    for i, ev in enumerate(events, 1):
        last: tuple[fixmap.Field, ...] = ((912, "Y"),) if i == len(events) else ()
        frames.append(_general_out(ev, {}, ((584, req_id), (911, len(events)), *last)))
    return frames


def _wire(outs: list[fixmap.Out]) -> list[bytes]:
    return [fc.encode(o.msg_type, _HEADER, app_body(o.fields)) for o in outs]


def test_open_orders_are_written_ahead_with_the_general_paths_bytes() -> None:
    """Open orders' reports take the written path (a `fc.Written` body), and each frame
    is the general path's, the last one with 912=Y; `pairs()` reads the fields back."""
    events = [_event(order_id=f"10000{i}", cl_ord_id=f"c-{i}") for i in range(3)]
    outs = _answer(events)
    assert all(isinstance(o.fields, fc.Written) for o in outs)
    assert [(o.msg_type, o.exec_type, o.exec_id) for o in outs] == [("8", "", "0")] * 3
    assert _wire(outs) == _general(events)
    last = dict(outs[-1].pairs())
    assert (last[11], last[911], last[912], last[44]) == (b"c-2", b"3", b"Y", b"99.50")


@pytest.mark.parametrize(
    "changes",
    [
        {"order_id": NO_ORDER_ID},
        {"side": None},
        {"ord_type": None},
        {"tif": None},
        {"symbol": ""},
        {"cl_ord_id": ""},  # left out there
        {"exec_id": ""},
        {"cl_ord_id": "a\x01b"},  # `_clean` makes SOH a space
        {"symbol": "A\x0155=EVIL"},
        {"orig_cl_ord_id": "c\x010"},
        {"order_qty": 10},  # not a Decimal: `fix_value` writes it
        {"price": 99},
        {"exec_type": ExecType.TRADE, "last_qty": 1},
        {"cl_ord_id": _Str("c-1")},  # not a plain str
    ],
)
def test_events_it_is_not_made_for_take_the_general_path(changes: dict[str, Any]) -> None:
    """An event about no order, a missing value (the request's echo fills it), an empty
    id, a value holding SOH (other than the text), a number not a Decimal or a text not a
    plain str: written by the general path (a tuple of fields), with the same bytes as
    before."""
    events = [_event(**changes)]
    outs = _answer(events)
    assert not isinstance(outs[0].fields, fc.Written)
    assert _wire(outs) == _general(events)
    assert fc.split_fields(_wire(outs)[0])  # well formed: no SOH left inside a value
    out = fixmap.event_out(events[0], {})
    assert not isinstance(out.fields, fc.Written)
    assert _wire([out]) == [_general_out(events[0], {})]


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"exec_type": ExecType.NEW},
        {"exec_type": ExecType.REPLACED, "orig_cl_ord_id": "c-0"},
        {"exec_type": ExecType.CANCELED, "ord_status": OrdStatus.CANCELED, "text": "a\x01b"},
        {"ord_rej_reason": OrdRejReason.OTHER, "ord_status": OrdStatus.REJECTED, "text": "no"},
        {"exec_type": ExecType.TRADE, "last_qty": Decimal(3), "last_px": Decimal("1E+2")},
        {"price": None, "ord_type": OrdType.MARKET},
    ],
)
def test_reports_of_orders_are_written_ahead(changes: dict[str, Any]) -> None:
    """A report of an order, whatever its ExecType, with an OrigClOrdID, a rejection, a
    trade, a text (SOH in it a space) or no price, is written ahead by `event_out` with
    the general path's bytes, and keeps its ExecType (faults apply) and ExecID."""
    ev = _event(**changes)
    out = fixmap.event_out(ev, {55: "AAPL", 54: "1"})
    assert isinstance(out.fields, fc.Written)
    assert (out.msg_type, out.exec_id) == ("8", ev.exec_id)
    assert out.exec_type == ("" if ev.exec_type is ExecType.ORDER_STATUS else ev.exec_type)
    assert _wire([out]) == [_general_out(ev, {})]


def test_a_price_echoed_from_the_request_takes_the_general_path() -> None:
    """A market order's report has no price of its own: the request's 44 (echoed) goes
    out as the general path writes it."""
    ev = _event(price=None, ord_type=OrdType.MARKET, exec_type=ExecType.NEW)
    out = fixmap.event_out(ev, {44: "101.5"})
    assert not isinstance(out.fields, fc.Written)
    assert dict(out.pairs())[44] == "101.5"
    assert _wire([out]) == [_general_out(ev, {44: "101.5"})]


def test_a_hostile_request_id_is_cleaned_in_the_tail() -> None:
    """The request's MassStatusReqID is echoed as the general path writes it: SOH a
    space, an empty one left out."""
    events = [_event()]
    for req_id in ("a\x01b", ""):
        assert _wire(_answer(events, req_id)) == _general(events, req_id)
    assert written_tail([(584, ""), (911, 2)]) == b"911=2\x01"


_text = st.text(alphabet=st.sampled_from("ab9=\x01 é-"), max_size=6)
_plain = st.text(alphabet=st.sampled_from("ab9=é-"), min_size=1, max_size=4)  # writable
_id = _plain | _text
_maybe = st.just("") | _plain | _text
_decimal = st.decimals(allow_nan=False, allow_infinity=False) | st.builds(
    Decimal, st.tuples(st.integers(0, 1), st.tuples(*[st.integers(0, 9)] * 3), st.integers(-9, 9))
)


@settings(max_examples=300, deadline=None)
@given(
    order_id=_id | st.just(NO_ORDER_ID), cl_ord_id=_id, orig=_maybe, text=_maybe,
    symbol=_id, side=st.sampled_from(Side) | st.none(),
    ord_type=st.sampled_from(OrdType) | st.none(), tif=st.sampled_from(TimeInForce) | st.none(),
    qty=_decimal, price=st.none() | _decimal, leaves=_decimal, cum=_decimal, avg=_decimal,
    last_qty=_decimal, last_px=_decimal,
    rej=st.none() | st.sampled_from(OrdRejReason), status=st.sampled_from(OrdStatus),
    exec_id=_id,
    exec_type=st.just(ExecType.ORDER_STATUS) | st.sampled_from(ExecType),
    ts_ns=st.integers(0, 4_000_000_000 * 10**9),
    echo=st.dictionaries(st.sampled_from((55, 54, 38, 40, 44, 59)), _maybe, max_size=3),
)  # fmt: skip
def test_any_event_gives_the_general_paths_bytes(**kw: Any) -> None:
    """Whatever the event (odd texts, SOH, '=', non-ASCII, exponents, any status, any
    ExecType, a rejection, a trade) and the request's echo: the bytes on the wire are the
    general path's, or both refuse it alike, for a mass status's reports and for
    `event_out`'s."""
    ev = _event(
        order_id=kw["order_id"], cl_ord_id=kw["cl_ord_id"], orig_cl_ord_id=kw["orig"],
        text=kw["text"], symbol=kw["symbol"], side=kw["side"], ord_type=kw["ord_type"],
        tif=kw["tif"], order_qty=kw["qty"], price=kw["price"], leaves_qty=kw["leaves"],
        cum_qty=kw["cum"], avg_px=kw["avg"], last_qty=kw["last_qty"], last_px=kw["last_px"],
        ord_rej_reason=kw["rej"], ord_status=kw["status"], exec_type=kw["exec_type"],
        transact_ns=kw["ts_ns"], exec_id=kw["exec_id"],
    )  # fmt: skip
    for expect, write in (
        (lambda: _general([ev, ev]), lambda: _wire(_answer([ev, ev]))),
        (
            lambda: [_general_out(ev, kw["echo"])],
            lambda: _wire([fixmap.event_out(ev, kw["echo"])]),
        ),
    ):
        try:
            expected: list[bytes] | type[Exception] = expect()
        except ValueError:
            expected = ValueError
        try:
            got: list[bytes] | type[Exception] = write()
        except ValueError:
            got = ValueError
        assert got == expected


@settings(max_examples=200, deadline=None)
@given(
    ids=st.tuples(_plain, _plain, _plain, _plain), orig=st.just("") | _plain, text=_maybe,
    side=st.sampled_from(Side), ord_type=st.sampled_from(OrdType),
    tif=st.sampled_from(TimeInForce), numbers=st.tuples(*[_decimal] * 6),
    price=st.none() | _decimal, rej=st.none() | st.sampled_from(OrdRejReason),
    status=st.sampled_from(OrdStatus), exec_type=st.sampled_from(ExecType),
)  # fmt: skip
def test_any_report_of_an_order_is_written_ahead(**kw: Any) -> None:
    """Every report of an order with its values present (any ExecType, status, text,
    rejection, OrigClOrdID, price or none, any Decimals) is written ahead, with the
    general path's bytes."""
    order_id, cl, exec_id, symbol = kw["ids"]
    qty, leaves, cum, avg, last_qty, last_px = kw["numbers"]
    ev = _event(
        order_id=order_id, cl_ord_id=cl, exec_id=exec_id, symbol=symbol,
        orig_cl_ord_id=kw["orig"], text=kw["text"], side=kw["side"], ord_type=kw["ord_type"],
        tif=kw["tif"], order_qty=qty, price=kw["price"], leaves_qty=leaves, cum_qty=cum,
        avg_px=avg, last_qty=last_qty, last_px=last_px, ord_rej_reason=kw["rej"],
        ord_status=kw["status"], exec_type=kw["exec_type"],
    )  # fmt: skip
    out = fixmap.event_out(ev, {})
    assert isinstance(out.fields, fc.Written)
    assert _wire([out]) == [_general_out(ev, {})]


def test_written_body_is_encoded_as_it_is_and_read_back() -> None:
    """`fc.encode` puts a written body in unchanged (length and checksum over it), the
    session's `app_body` passes it through, `pairs()` reads its fields."""
    body = fc.Written(b"11=c-1\x0138=10\x01")
    frame = fc.encode("8", _HEADER, app_body(body))
    assert frame == fc.encode("8", _HEADER, [(11, b"c-1"), (38, b"10")])
    assert body.pairs() == [(11, b"c-1"), (38, b"10")]
    assert fc.Written(b"").pairs() == []
