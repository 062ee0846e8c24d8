"""A mass status's reports written ahead (actors/venuesim/status_wire.py) are, on the wire,
byte for byte what the general path (`event_out`, `app_body`) writes, for any event; the
events the writer is not made for take the general path."""

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


def _general(events: list[ExecEvent], req_id: str = "M1") -> list[bytes]:
    """The reports as the general path writes them (as the venue did before)."""
    frames = []
    for i, ev in enumerate(events, 1):
        last: tuple[fixmap.Field, ...] = ((912, "Y"),) if i == len(events) else ()
        out = fixmap.event_out(ev, {}, ((584, req_id), (911, len(events)), *last))
        frames.append(fc.encode(out.msg_type, _HEADER, app_body(out.fields)))
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
        {"ord_rej_reason": OrdRejReason.OTHER, "ord_status": OrdStatus.REJECTED},
        {"exec_type": ExecType.NEW},
        {"orig_cl_ord_id": "c-0"},
        {"text": "partly\x01hostile"},
        {"price": None},
        {"side": None},
        {"symbol": ""},
        {"cl_ord_id": "a\x01b"},  # `_clean` makes SOH a space
        {"symbol": "A\x0155=EVIL"},
        {"order_qty": 10},  # not a Decimal: `fix_value` writes it
    ],
)
def test_events_it_is_not_made_for_take_the_general_path(changes: dict[str, Any]) -> None:
    """An event about no order, a rejection, another ExecType, an OrigClOrdID, a text,
    no price or side or symbol, a value holding SOH or a number not a Decimal: written by
    the general path (a tuple of fields), with the same bytes as before."""
    events = [_event(**changes)]
    outs = _answer(events)
    assert not isinstance(outs[0].fields, fc.Written)
    assert _wire(outs) == _general(events)
    assert fc.split_fields(_wire(outs)[0])  # well formed: no SOH left inside a value


def test_a_hostile_request_id_is_cleaned_in_the_tail() -> None:
    """The request's MassStatusReqID is echoed as the general path writes it: SOH a
    space, an empty one left out."""
    events = [_event()]
    for req_id in ("a\x01b", ""):
        assert _wire(_answer(events, req_id)) == _general(events, req_id)
    assert written_tail([(584, ""), (911, 2)]) == b"911=2\x01"


_text = st.text(alphabet=st.sampled_from("ab9=\x01 é-"), max_size=6)
_maybe = st.just("") | _text
_decimal = st.decimals(allow_nan=False, allow_infinity=False) | st.builds(
    Decimal, st.tuples(st.integers(0, 1), st.tuples(*[st.integers(0, 9)] * 3), st.integers(-9, 9))
)


@settings(max_examples=300, deadline=None)
@given(
    order_id=_text | st.just(NO_ORDER_ID), cl_ord_id=_text, orig=_maybe, text=_maybe,
    symbol=_text, side=st.none() | st.sampled_from(Side),
    ord_type=st.none() | st.sampled_from(OrdType), tif=st.none() | st.sampled_from(TimeInForce),
    qty=_decimal, price=st.none() | _decimal, leaves=_decimal, cum=_decimal, avg=_decimal,
    status=st.sampled_from(OrdStatus),
    exec_type=st.just(ExecType.ORDER_STATUS) | st.sampled_from(ExecType),
    ts_ns=st.integers(0, 4_000_000_000 * 10**9),
)  # fmt: skip
def test_any_event_gives_the_general_paths_bytes(**kw: Any) -> None:
    """Whatever the event (odd texts, SOH, '=', non-ASCII, exponents, any status): the
    bytes on the wire are the general path's, or both refuse it alike."""
    ev = _event(
        order_id=kw["order_id"], cl_ord_id=kw["cl_ord_id"], orig_cl_ord_id=kw["orig"],
        text=kw["text"], symbol=kw["symbol"], side=kw["side"], ord_type=kw["ord_type"],
        tif=kw["tif"], order_qty=kw["qty"], price=kw["price"], leaves_qty=kw["leaves"],
        cum_qty=kw["cum"], avg_px=kw["avg"], ord_status=kw["status"],
        exec_type=kw["exec_type"], transact_ns=kw["ts_ns"],
    )  # fmt: skip
    try:
        expected: list[bytes] | type[Exception] = _general([ev, ev])
    except ValueError:
        expected = ValueError
    try:
        got: list[bytes] | type[Exception] = _wire(_answer([ev, ev]))
    except ValueError:
        got = ValueError
    assert got == expected


def test_written_body_is_encoded_as_it_is_and_read_back() -> None:
    """`fc.encode` puts a written body in unchanged (length and checksum over it), the
    session's `app_body` passes it through, `pairs()` reads its fields."""
    body = fc.Written(b"11=c-1\x0138=10\x01")
    frame = fc.encode("8", _HEADER, app_body(body))
    assert frame == fc.encode("8", _HEADER, [(11, b"c-1"), (38, b"10")])
    assert body.pairs() == [(11, b"c-1"), (38, b"10")]
    assert fc.Written(b"").pairs() == []
