"""A review of branch ``bust`` (trade busts and corrections in the OMS book): what a hostile
or unusual venue may send, each found applied where it must not be (or refused where it
must not be) before its fix."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, cast

import pytest

from actors.oms import escalation
from actors.oms.event_wire import event_parts, merge_fill
from actors.oms.orders import Order, Outcome
from actors.oms.trade_busts import UNKNOWN_FILL
from actors.risk.exposure import ExposureView
from actors.runtime import metrics
from protocol.messages import ExecReport, OrderEvent, OrderStatus
from tests.oms.test_trade_busts import BTC, V, _book, _bust, _fill, _state

D = Decimal
S = OrderStatus


def _status(exec_id: str, cum: str) -> ExecReport:
    """The venue's status of order o1 (a mass-status answer): cum `cum` at avg 100."""
    return ExecReport(venue=V, exec_id=exec_id, kind="status", cl_ord_id="o1", symbol=BTC,
                      cum_qty=D(cum), avg_px=D(100), ord_status=S.PARTIALLY_FILLED)  # fmt: skip


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


def test_a_fill_after_a_bust_of_a_fill_a_catch_up_counted_past_is_booked() -> None:
    """F1 (cum 1) booked, F2-F5 lost and caught up from the venue's status (``recon:o1:5``:
    venue cums up to 5 counted), then F1 busted (cum 4, the venue's 4 too): the venue's
    next fill F6 is at cum 5 again. It was taken for a late report of a counted fill
    ("duplicate", acked, nothing booked nor escalated: the OMS 4 where the venue has 5);
    it is booked."""
    book = _book(qty="10")
    _fill(book, "F1", "1", "100", "1")
    assert book.apply_exec(_status("ST1", "5"), 6).applied
    assert _bust(book, "B1", "F1", S.PARTIALLY_FILLED, "4").applied
    late = ExecReport(venue=V, exec_id="F3", kind="fill", cl_ord_id="o1", symbol=BTC,
                      last_qty=D(1), last_px=D(100), cum_qty=D(3))  # fmt: skip
    assert book.apply_exec(late, 7).kind == "duplicate"  # counted by the catch-up: still
    out = _fill(book, "F6", "1", "110", "5")
    assert out.applied and not out.escalations
    assert _state(book)[1] == 5 and book.position(V, BTC).qty == 5


def test_a_catch_up_to_a_cum_a_bust_took_back_gets_a_new_exec_id() -> None:
    """As above, F6's report lost too: the venue's status says cum 5, which a catch-up
    reached before the bust. Its exec id ``recon:o1:5`` was taken, so the catch-up was a
    "duplicate" and the order stayed at 4 for good; it is ``recon:o1:5.0`` (the same
    cum), booked once (the same status again changes nothing)."""
    book = _book(qty="10")
    _fill(book, "F1", "1", "100", "1")
    assert book.apply_exec(_status("ST1", "5"), 6).applied
    assert _bust(book, "B1", "F1", S.PARTIALLY_FILLED, "4").applied
    out = book.apply_exec(_status("ST2", "5"), 7)
    assert out.applied and [r["exec_id"] for r in out.records][:1] == ["recon:o1:5.0"]
    assert _state(book)[1] == 5 and book.position(V, BTC).qty == 5
    assert not book.apply_exec(_status("ST3", "5"), 8).records
    assert _state(book)[1] == 5


@pytest.mark.parametrize(
    "turn",
    [
        ["bust F2", "fill F3 1 130"],  # net 0: the event said no fill, risk's avg stayed 105
        ["fill F3 1 130", "bust F2"],
        ["correct F1 1 90", "fill F3 1 130"],  # a price-only correction folded away
        ["bust F2", "fill F3 1 130 0.5"],  # with their fees (F2's given back)
        ["correct F2 2 111", "bust F1"],
    ],
)
def test_risk_follows_a_bust_and_other_fills_of_the_order_in_one_turn(turn: list[str]) -> None:
    """Long 2 (F1 1 at 100, F2 1 at 110 paying 1 USDT); then, in one OMS turn (a
    connector's batch: one event per order), a bust or correction and another fill of the
    same order. Risk, fed the turn's events (`merge_fill`, `event_parts`), holds the OMS's
    position, average price and realised P&L (its daily loss)."""
    book, view, seq = _book(qty="4"), ExposureView(), 0

    def publish(outcomes: list[Outcome]) -> None:
        nonlocal seq
        fill = None
        for out in outcomes:
            fill = merge_fill(fill, out)
        assert fill is not None and outcomes[-1].order is not None
        for order, (qty, px, base, quote) in event_parts(outcomes[-1].order, fill):
            seq += 1
            view.apply_order_event(OrderEvent(
                event_seq=seq, order=order.view(), fill_qty=qty, fill_px=px,
                fill_fee_base=base, fill_fee_quote=quote,
            ))  # fmt: skip

    publish([_fill(book, "F1", "1", "100", "1")])
    publish([_fill(book, "F2", "1", "110", "2", fee=D(1), fee_asset="USDT")])
    outcomes, cum = [], D(2)
    for step in turn:
        what, ref, *terms = step.split()
        if what == "fill":
            cum += D(terms[0])
            fee = {"fee": D(terms[2]), "fee_asset": "USDT"} if len(terms) > 2 else {}
            outcomes.append(_fill(book, ref, terms[0], terms[1], str(cum), **fee))
        elif what == "bust":
            cum -= 1
            outcomes.append(_bust(book, f"B-{ref}", ref, S.PARTIALLY_FILLED, str(cum)))
        else:
            cum += D(terms[0]) - 1
            outcomes.append(_bust(book, f"G-{ref}", ref, S.PARTIALLY_FILLED, str(cum),
                                  kind="trade_correct", last_qty=D(terms[0]),
                                  last_px=D(terms[1])))  # fmt: skip
        assert outcomes[-1].applied
    publish(outcomes)
    pos, mine = book.position(V, BTC), view.position_view(V, BTC)
    assert (mine.qty, mine.avg_px, mine.realized_pnl) == (pos.qty, pos.avg_px, pos.realized_pnl)


def test_a_bust_or_correction_naming_a_corrections_exec_id_reaches_its_fill() -> None:
    """F1 (2 at 100) corrected by G1 to 2 at 101; the venue's next bust or correction names
    G1 in ExecRefID (the execution it last reported of that trade: venues differ on which
    they name). It was refused ``trade_bust_unknown_fill`` ("counted from venue state"),
    nothing booked, the OMS above the venue: it applies to F1's corrected terms, and a
    bust naming either id after it is a duplicate."""
    book = _book()
    _fill(book, "F1", "2", "100", "2")
    assert _bust(book, "G1", "F1", S.FILLED, "2", kind="trade_correct", last_qty=D(2),
                 last_px=D(101)).applied  # fmt: skip
    out = _bust(book, "G2", "G1", S.FILLED, "2", kind="trade_correct", last_qty=D(2),
                last_px=D(102))  # fmt: skip
    assert out.applied and out.records[0]["ref"] == "F1", out.escalations
    assert out.records[0]["px"] == "101"
    assert _state(book) == (S.FILLED, 2, 102, 2, 102, 0)
    out = _bust(book, "B1", "G2", S.CANCELLED, "0")
    assert out.applied and [e.kind for e in out.escalations] == ["trade_busted"]
    assert _state(book) == (S.CANCELLED, 0, 0, 0, 0, 0)
    assert _bust(book, "B2", "G1", S.CANCELLED, "0").kind == "duplicate"
    assert _bust(book, "B3", "F1", S.CANCELLED, "0").kind == "duplicate"


def test_a_new_fill_does_not_scan_the_orders_exec_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    """A parent order walking the book takes thousands of fills; each read
    `Order.reconciled_cum`, a scan of all its exec ids (O(fills) a fill: 0.15 ms a fill at
    the first 5,000, 1 ms at 20,000). A fill whose venue cum is above the order's cannot
    be a catch-up's (a late report): it is not read; a late report still is."""
    reads = 0
    real = Order.reconciled_cum

    def counted(order: Order) -> Decimal:
        nonlocal reads
        reads += 1
        return real.fget(order)  # type: ignore[no-any-return,attr-defined]

    monkeypatch.setattr(Order, "reconciled_cum", property(counted))
    book = _book(qty="100")
    for i in range(1, 51):
        _fill(book, f"F{i}", "1", "100", str(i))
    assert reads == 0
    assert book.apply_exec(_status("ST1", "60"), 6).applied  # a catch-up to 60
    late = ExecReport(venue=V, exec_id="F55", kind="fill", cl_ord_id="o1", symbol=BTC,
                      last_qty=D(1), last_px=D(100), cum_qty=D(55))  # fmt: skip
    assert book.apply_exec(late, 7).kind == "duplicate" and reads == 1


class _Log:
    def __init__(self) -> None:
        self.lines: list[tuple[str, dict[str, object]]] = []

    def error(self, event: str, **kw: object) -> None:
        self.lines.append((event, kw))

    warning = error


class _Host:
    """What `escalation.escalate` needs of the OMS: a log, a stream, its config."""

    def __init__(self) -> None:
        self.cfg = None  # (read only for the kill-switch of unmatched and bad fills)
        self.log = _Log()
        self.stream: list[str] = []
        self.kill_switch = None

    def publish_stream(self, event: str, data: dict[str, object]) -> None:
        self.stream.append(event)


def test_a_flood_of_unknown_busts_is_counted_and_streamed_every_one_logged_in_a_budget() -> None:
    """A venue sending 150=H for fills we never booked as fast as it can: each is refused
    and escalated (counted, on the client stream), but the log takes at most 10 lines a
    second of it, the next saying how many it left out (before: one error line each)."""
    host = _Host()
    counter = metrics.TRADE_BUSTS.labels(venue=V, outcome="unknown_fill")
    before = counter._value.get()  # noqa: SLF001
    for i in range(500):
        escalation.escalate(
            cast(Any, host), UNKNOWN_FILL, f"B{i}: bust of fill 'X{i}'", "o1", None, V
        )
    assert counter._value.get() - before == 500  # noqa: SLF001
    assert len(host.stream) == 500
    assert 1 <= len(host.log.lines) <= 10
    assert {event for event, _ in host.log.lines} == {UNKNOWN_FILL}
