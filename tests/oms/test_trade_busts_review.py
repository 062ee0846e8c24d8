"""A review of branch ``bust`` (trade busts and corrections in the OMS book): what a hostile
or unusual venue may send, each found applied where it must not be (or refused where it
must not be) before its fix."""

from __future__ import annotations

from decimal import Decimal

from tests.oms.test_trade_busts import BTC, V, _book, _bust, _fill, _state

D = Decimal


def test_a_correction_to_terms_no_fill_could_have_is_refused_as_a_bad_fill() -> None:
    """A fill of 1000 at 1E+17 (notional 1E+20, out of every bound) is refused ``bad_fill``;
    a correction of a booked fill to those terms was applied (the position's value out of
    bounds): refused likewise, escalated, nothing booked."""
    book = _book(qty="2000")
    _fill(book, "F1", "1", "100", "1")
    before = _state(book)
    out = _bust(book, "G1", "F1", None, "1000", kind="trade_correct", last_qty=D(1000),
                last_px=D("1E+17"))  # fmt: skip
    assert out.kind == "refused" and out.reason == "bad_fill" and not out.records
    assert [e.kind for e in out.escalations] == ["bad_fill"]
    assert _state(book) == before
    assert book.position(V, BTC).qty == 1
