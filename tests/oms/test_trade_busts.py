"""A venue's trade bust (150=H) and correction (150=G) in the OMS book: the fill named by
ExecRefID taken back as it was booked (order cum/avg, position, realised P&L, fee), the
status the venue's; an unknown ExecRefID escalated and nothing booked; a second bust a
duplicate; applied once, replayed and snapshotted alike; risk's view follows the event."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from actors.oms.event_wire import event_parts, merge_fill
from actors.oms.exec_cut import ExecLog
from actors.oms.journal_rows import RowReader
from actors.oms.order_book import OrderBook
from actors.oms.orders import Outcome
from actors.oms.positions import Position
from actors.oms.views import OmsViews
from actors.risk.exposure import ExposureView
from protocol import commands as wire
from protocol.fees import book_fill, fee_parts, unbook_fill
from protocol.messages import (
    ExecCut,
    ExecReport,
    OrderEvent,
    OrderStatus,
    OrdType,
    RiskVerdict,
    Side,
    SubmitOrder,
)

D = Decimal
S = OrderStatus
V, BTC = "bx", "BTC/USDT"


def _book(coid: str = "o1", qty: str = "2", side: Side = Side.BUY) -> OrderBook:
    book = OrderBook()
    order = SubmitOrder(client_order_id=coid, venue=V, symbol=BTC, side=side, qty=D(qty),
                        order_type=OrdType.LIMIT, price=D(200))  # fmt: skip
    assert book.submit(order, 1).applied
    assert book.risk_verdict(RiskVerdict(client_order_id=coid, approved=True), 2).applied
    acc = ExecReport(venue=V, exec_id=f"{coid}:new", kind="accepted", cl_ord_id=coid)
    assert book.apply_exec(acc, 3).applied
    return book


def _fill(book: OrderBook, tid: str, qty: str, px: str, cum: str, **kw: Any) -> Outcome:
    report = ExecReport(venue=V, exec_id=tid, kind="fill", cl_ord_id="o1", symbol=BTC,
                        last_qty=D(qty), last_px=D(px), cum_qty=D(cum), **kw)  # fmt: skip
    out = book.apply_exec(report, 4)
    assert out.applied
    return out


def _bust(
    book: OrderBook, exec_id: str, ref: str, status: S | None, cum: str, **kw: Any
) -> Outcome:
    report = ExecReport(venue=V, exec_id=exec_id, kind=kw.pop("kind", "trade_cancel"),
                        cl_ord_id="o1", exec_ref_id=ref, ord_status=status, cum_qty=D(cum),
                        **kw)  # fmt: skip
    return book.apply_exec(report, 5)


def _state(book: OrderBook) -> tuple[Any, ...]:
    order, pos = book.get("o1"), book.position(V, BTC)
    assert order is not None
    return order.status, order.cum_qty, order.avg_px, pos.qty, pos.avg_px, pos.realized_pnl


def test_a_bust_of_a_filled_orders_only_fill_takes_it_back_whole() -> None:
    """Filled 2 at 100 paying 0.002 BTC; the venue busts it and says the order is done
    (CANCELLED, cum 0): the order holds nothing, the position is flat at 0 realised (its
    fee back), the record is a ``trade_bust`` escalated ``trade_busted``, and its event is
    the fill negated."""
    book = _book()
    _fill(book, "F1", "2", "100", "2", fee=D("0.002"), fee_asset="BTC")
    assert book.position(V, BTC).qty == D("1.998")
    out = _bust(book, "B1", "F1", S.CANCELLED, "0")
    assert out.applied and [e.kind for e in out.escalations] == ["trade_busted"]
    assert _state(book) == (S.CANCELLED, 0, 0, 0, 0, 0)
    assert book.position(V, BTC).fees == {"BTC": 0}
    order = book.get("o1")
    assert order is not None and order.view().reason == "fill F1 (2 @ 100) busted by the venue (B1)"
    assert out.records[0]["kind"] == "trade_bust" and out.records[0]["ref"] == "F1"
    event = merge_fill(None, out)
    assert (event.qty, event.px, event.fee_base, event.fee_quote) == (-2, 100, D("-0.002"), None)


def test_a_bust_can_reopen_the_order_as_the_venue_says() -> None:
    """Two fills (1 at 100, 1 at 110) fill it; the second is busted and the venue says
    PARTIALLY_FILLED, cum 1: the order is live again with 1 left, avg 100, position 1 at
    100; no escalation of the cum (it agrees)."""
    book = _book()
    _fill(book, "F1", "1", "100", "1")
    _fill(book, "F2", "1", "110", "2")
    out = _bust(book, "B2", "F2", S.PARTIALLY_FILLED, "1")
    assert [e.kind for e in out.escalations] == ["trade_busted"]
    assert _state(book) == (S.PARTIALLY_FILLED, 1, 100, 1, 100, 0)
    order = book.get("o1")
    assert order is not None and order.leaves_qty == 1


def test_an_unknown_exec_ref_id_is_escalated_and_nothing_changes() -> None:
    book = _book()
    _fill(book, "F1", "2", "100", "2")
    before = _state(book)
    out = _bust(book, "B1", "NOPE", S.CANCELLED, "0")
    assert out.kind == "refused"
    assert [e.kind for e in out.escalations] == ["trade_bust_unknown_fill"]
    assert _state(book) == before and not out.records


def test_a_second_bust_of_the_same_fill_is_a_duplicate_and_a_resend_too() -> None:
    book = _book()
    _fill(book, "F1", "2", "100", "2")
    assert _bust(book, "B1", "F1", S.CANCELLED, "0").applied
    assert _bust(book, "B1", "F1", S.CANCELLED, "0").kind == "duplicate"  # same exec id
    assert _bust(book, "B9", "F1", S.CANCELLED, "0").kind == "duplicate"  # same fill
    assert _state(book) == (S.CANCELLED, 0, 0, 0, 0, 0)


def test_a_venue_cum_that_disagrees_is_escalated() -> None:
    """The venue says cum 1 after busting the only fill of 2: applied (the fill is gone),
    escalated ``trade_bust_cum_mismatch`` for reconciliation to settle."""
    book = _book()
    _fill(book, "F1", "2", "100", "2")
    out = _bust(book, "B1", "F1", S.PARTIALLY_FILLED, "1")
    assert [e.kind for e in out.escalations] == ["trade_busted", "trade_bust_cum_mismatch"]


def test_a_bust_of_a_fill_that_closed_a_position_books_the_mirror() -> None:
    """Long 2 at 100 (order o1), then a sell order's fill of 1 at 120 realised 20; its bust
    takes back the sale: 2 held, the 20 realised given back."""
    book = _book()
    _fill(book, "F1", "2", "100", "2")
    sell = SubmitOrder(client_order_id="o2", venue=V, symbol=BTC, side=Side.SELL, qty=D(1),
                       order_type=OrdType.MARKET)  # fmt: skip
    assert book.submit(sell, 6).applied
    assert book.risk_verdict(RiskVerdict(client_order_id="o2", approved=True), 7).applied
    fill = ExecReport(venue=V, exec_id="S1", kind="fill", cl_ord_id="o2", symbol=BTC,
                      last_qty=D(1), last_px=D(120), cum_qty=D(1))  # fmt: skip
    assert book.apply_exec(fill, 8).applied
    assert book.position(V, BTC).realized_pnl == 20
    bust = ExecReport(venue=V, exec_id="B1", kind="trade_cancel", cl_ord_id="o2",
                      exec_ref_id="S1", ord_status=S.CANCELLED)  # fmt: skip
    assert book.apply_exec(bust, 9).applied
    pos = book.position(V, BTC)
    assert (pos.qty, pos.realized_pnl) == (2, 0)


def test_a_correction_rebooks_the_fill_on_its_new_terms() -> None:
    """Filled 2 at 100; corrected to 2 at 101: the order's avg 101, the position 2 at 101;
    then a bust of the same fill takes back the corrected terms."""
    book = _book()
    _fill(book, "F1", "2", "100", "2")
    out = _bust(book, "G1", "F1", S.FILLED, "2", kind="trade_correct", last_qty=D(2),
                last_px=D(101))  # fmt: skip
    assert [e.kind for e in out.escalations] == ["trade_corrected"]
    assert _state(book) == (S.FILLED, 2, 101, 2, 101, 0)
    assert _bust(book, "B1", "F1", S.CANCELLED, "0").applied
    assert _state(book) == (S.CANCELLED, 0, 0, 0, 0, 0)


def test_a_bust_replays_and_survives_a_snapshot() -> None:
    """The journal's records rebuild the same book; a snapshot taken after the fill
    (the fill's terms in it) takes the bust alike."""
    book = _book()
    records: list[dict[str, Any]] = []
    records += _fill(book, "F1", "1", "100", "1").records
    records += _fill(book, "F2", "1", "110", "2").records
    snap = OrderBook.from_dict(book.to_dict())
    bust = _bust(book, "B2", "F2", S.PARTIALLY_FILLED, "1")
    replayed = _book()
    for rec in (*records, *bust.records):
        replayed.apply_record(rec)
    assert _state(replayed) == _state(book)
    assert _bust(snap, "B2", "F2", S.PARTIALLY_FILLED, "1").applied
    assert _state(snap) == _state(book)


def test_risk_follows_the_busts_event() -> None:
    """Risk's view, fed the order's events, holds the OMS's position and realised P&L after
    a bust that reopens the order (and counts its leaves open again), after a price-only
    correction (two events: taken back, then booked at its new price) and after a
    correction of size."""
    book = _book()
    view = ExposureView()
    seq = 0

    def publish(out: Outcome) -> None:
        nonlocal seq
        assert out.order is not None
        for order, (qty, px, base, quote) in event_parts(out.order, merge_fill(None, out)):
            seq += 1
            view.apply_order_event(OrderEvent(
                event_seq=seq, order=order.view(), fill_qty=qty, fill_px=px,
                fill_fee_base=base, fill_fee_quote=quote,
            ))  # fmt: skip

    def agree() -> None:
        pos, mine = book.position(V, BTC), view._positions[(V, BTC)]
        assert (mine.qty, mine.avg_px, view.realized_pnl()) == (
            pos.qty, pos.avg_px, pos.realized_pnl
        )  # fmt: skip

    publish(_fill(book, "F1", "1", "100", "1", fee=D(1), fee_asset="USDT"))
    publish(_fill(book, "F2", "1", "110", "2", fee=D("0.001"), fee_asset="BTC"))
    publish(_bust(book, "B2", "F2", S.PARTIALLY_FILLED, "1"))
    agree()
    assert view.open_qty(BTC, Side.BUY) == 1
    publish(_bust(book, "G1", "F1", S.PARTIALLY_FILLED, "1", kind="trade_correct",
                  last_qty=D(1), last_px=D(97)))  # fmt: skip
    agree()
    assert book.position(V, BTC).avg_px == 97
    publish(_bust(book, "G2", "F1", S.FILLED, "2", kind="trade_correct", last_qty=D(2),
                  last_px=D(98)))  # fmt: skip
    agree()
    assert view.open_qty(BTC, Side.BUY) == 0


def test_the_fills_view_and_journal_rows_say_a_fill_was_busted_or_corrected() -> None:
    """`tradepulse fills`: the busted fill's terms negated (its fee too) under "<exec id>
    busts <ref>", a correction's old terms negated and new ones under "corrects"; `journal
    inspect` shows the record with what it did."""
    book = _book()
    views = OmsViews(book)
    records = [*_fill(book, "F1", "1", "100", "1", fee=D("0.001"), fee_asset="BTC").records]
    records += _fill(book, "F2", "1", "110", "2").records
    records += _bust(book, "B1", "F1", S.PARTIALLY_FILLED, "1").records
    records += _bust(book, "G2", "F2", S.PARTIALLY_FILLED, "1", kind="trade_correct",
                     last_qty=D(1), last_px=D(111)).records  # fmt: skip
    views.replay(records)
    rows = views.answer(wire.Fills()).data["fills"]
    said = [(r["qty"], r["px"], r["fee"], r["exec_id"]) for r in reversed(rows)]
    assert said == [
        ("1", "100", "0.001", "F1"), ("1", "110", "0", "F2"),
        ("-1", "100", "-0.001", "B1 busts F1"),
        ("-1", "110", "0", "G2 corrects F2"), ("1", "111", "0", "G2 corrects F2"),
    ]  # fmt: skip
    reader = RowReader()
    details = [row.detail for rec in records for row in reader.rows(_item(rec))]
    assert details[-2:] == [
        "exec B1 busts fill F1 fee -0.001 BTC",
        "exec G2 corrects fill F2 to 1 @ 111",
    ]


def _item(record: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "record", "data": record}


def test_a_bust_of_an_order_the_oms_does_not_know_is_escalated() -> None:
    book = _book()
    report = ExecReport(venue=V, exec_id="B1", kind="trade_cancel", cl_ord_id="nobody",
                        exec_ref_id="F1")  # fmt: skip
    out = book.apply_exec(report, 5)
    assert out.kind == "refused" and [e.kind for e in out.escalations] == [
        "trade_bust_unknown_fill"
    ]


@pytest.mark.parametrize(
    ("fills", "busted"),
    [
        ([("1", "100", "0.001", "BTC")], 0),  # flat: as if never booked
        ([("2", "90", "0", ""), ("1", "120", "3", "USDT")], 1),  # added to a long
        ([("2", "90", "0", ""), ("-1", "120", "0.5", "USDT")], 1),  # closed part of it
        ([("-2", "90", "0", ""), ("1", "80", "0", "")], 1),  # a short's part bought back
    ],
)
def test_unbook_fill_undoes_book_fill_exactly_where_the_position_stays_on_its_side(
    fills: list[tuple[str, str, str, str]], busted: int
) -> None:
    """`protocol.fees.unbook_fill` of a fill booked by `book_fill` gives the position (qty,
    avg, realised P&L) as it was without that fill, its fee included."""

    def booked(skip: int | None) -> tuple[Decimal, Decimal, Decimal]:
        pos = Position(V, BTC)
        for i, (q, px, fee, asset) in enumerate(fills):
            if i != skip:
                book_fill(pos, D(q), D(px), fee_parts(BTC, D(fee), asset))
        return pos.qty, pos.avg_px, pos.realized_pnl

    pos = Position(V, BTC)
    for q, px, fee, asset in fills:
        book_fill(pos, D(q), D(px), fee_parts(BTC, D(fee), asset))
    q, px, fee, asset = fills[busted]
    base, quote = fee_parts(BTC, D(fee), asset)
    unbook_fill(pos, D(q), D(px), (-base, -quote))
    assert (pos.qty, pos.avg_px, pos.realized_pnl) == booked(busted)


def test_the_exec_cut_winds_a_bust_back_with_its_fee() -> None:
    """The positions as of a cut before the bust hold the fill (its base fee netted); at
    the bust's number they are flat: the heartbeat's cut sees what the book booked."""
    book, log = _book("o1", qty="1"), ExecLog()
    fill = ExecReport(venue=V, exec_id="F1", kind="fill", cl_ord_id="o1", symbol=BTC,
                      last_qty=D(1), last_px=D(100), cum_qty=D(1), fee=D("0.001"),
                      fee_asset="BTC", exec_seq=5)  # fmt: skip
    log.note_outcome(fill, 7, book.apply_exec(fill, 4))
    bust = ExecReport(venue=V, exec_id="B1", kind="trade_cancel", cl_ord_id="o1",
                      exec_ref_id="F1", ord_status=S.CANCELLED, exec_seq=6)  # fmt: skip
    log.note_outcome(bust, 7, book.apply_exec(bust, 5))
    now = {BTC: book.position(V, BTC).qty}
    assert now == {BTC: 0}

    def cut(seq: int) -> ExecCut:
        return ExecCut(connector_epoch=7, exec_seq=seq, oms_epoch=1)

    assert log.positions_as_of(V, cut(5), now) == {BTC: D("0.999")}
    assert log.positions_as_of(V, cut(6), now) == now
