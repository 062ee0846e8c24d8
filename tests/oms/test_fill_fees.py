"""A fill's fee (`ExecReport.fee` / `fee_asset`) in the OMS book: a fee in the base asset
leaves the position (a 1 BTC buy paying 0.001 BTC holds 0.999, as the exchange's balance),
one in the quote asset is realised P&L, one in a third asset touches neither; each is on
its fill's journal record, applied once with its fill (a repeated exec id brings no second
fee), replayed and snapshotted alike, and shown per fill."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from actors.oms.cost_basis import CostBasis
from actors.oms.event_wire import merge_fill
from actors.oms.exec_cut import ExecLog
from actors.oms.journal_rows import RowReader
from actors.oms.order_book import OrderBook
from actors.oms.positions import Position, UnmatchedFill, fee_parts
from actors.oms.views import OmsViews
from actors.supervisor.commands.positions import format_positions
from protocol import commands as wire
from protocol.messages import (
    ExecCut,
    ExecReport,
    OrderStatus,
    OrdType,
    RiskVerdict,
    Side,
    SubmitOrder,
)

D = Decimal
V, BTC = "bx", "BTC/USDT"


def _book_with(coid: str, side: Side, qty: str, book: OrderBook | None = None) -> OrderBook:
    book = book or OrderBook()
    order = SubmitOrder(client_order_id=coid, venue=V, symbol=BTC, side=side, qty=D(qty),
                        order_type=OrdType.MARKET)  # fmt: skip
    assert book.submit(order, 1).applied
    assert book.risk_verdict(RiskVerdict(client_order_id=coid, approved=True), 2).applied
    live = book.get(coid)
    assert live is not None
    acc = ExecReport(venue=V, exec_id=f"{coid}:new", kind="accepted", cl_ord_id=live.cl_ord_id)
    assert book.apply_exec(acc, 3).applied
    return book


def _fill(coid: str, tid: str, qty: str, px: str, fee: str, asset: str, **kw: Any) -> ExecReport:
    return ExecReport(venue=V, exec_id=f"{coid}:t{tid}", kind="fill", cl_ord_id=coid,
                      symbol=BTC, last_qty=D(qty), last_px=D(px), fee=D(fee), fee_asset=asset,
                      **kw)  # fmt: skip


@pytest.mark.parametrize(
    ("fee", "asset", "parts"),
    [("0.001", "BTC", ("0.001", "0")), ("24", "USDT", ("0", "24")), ("0.01", "BNB", ("0", "0")),
     ("0", "", ("0", "0"))],
    ids=["base", "quote", "third_asset", "none"],
)  # fmt: skip
def test_fee_parts_split_by_the_symbols_assets(
    fee: str, asset: str, parts: tuple[str, str]
) -> None:
    assert fee_parts(BTC, D(fee), asset) == (D(parts[0]), D(parts[1]))
    assert fee_parts("AAPL", D(fee), asset) == (0, 0)  # no BASE/QUOTE: neither


def test_a_base_fee_leaves_the_position_and_a_quote_fee_is_realised() -> None:
    """Buy 1 at 60000.01 paying 0.001 BTC: 0.999 held at 60000.01, the fee's cost
    (60.00001) realised; sell 0.4 at 59999.99 paying 23.999996 USDT: 0.599 held, the
    sale's -0.008 and the fee realised. Without fees the position would be 0.6."""
    pos = Position(V, BTC)
    pos.take(pos.after_fill(Side.BUY, D(1), D("60000.01"), (D("0.001"), D(0))))
    assert (pos.qty, pos.avg_px, pos.realized_pnl) == (D("0.999"), D("60000.01"), D("-60.00001"))
    pos.take(pos.after_fill(Side.SELL, D("0.4"), D("59999.99"), (D(0), D("23.999996"))))
    assert (pos.qty, pos.avg_px) == (D("0.599"), D("60000.01"))
    assert pos.realized_pnl == D("-60.00001") - D("0.008") - D("23.999996")


def test_a_base_fee_on_a_short_grows_it_at_no_proceeds() -> None:
    """Short 1 at 100 and buy 1 at 90 paying 0.01 of the base: still short 0.01, whose
    later close at 90 makes the whole P&L 10 - 0.01 * 90 (the fee at its price then)."""
    pos = Position(V, BTC, D(-1), D(100))
    pos.take(pos.after_fill(Side.BUY, D(1), D(90), (D("0.01"), D(0))))
    assert pos.qty == D("-0.01") and pos.realized_pnl == D(10)
    pos.take(pos.after_fill(Side.BUY, D("0.01"), D(90)))
    assert pos.qty == 0 and pos.realized_pnl == D(10) - D("0.01") * D(90)


def test_the_book_applies_a_fee_once_with_its_fill_and_replays_it() -> None:
    """The fill record carries the fee; the position is net of it; the same exec id again
    (a connector's resend after a kill -9) is a duplicate: no second fee. Replay of the
    records and a snapshot round trip give the same position."""
    book = _book_with("b1", Side.BUY, "1")
    out = book.apply_exec(_fill("b1", "1", "1", "60000.01", "0.001", "BTC"), 4)
    assert out.applied
    [rec] = [r for r in out.records if r["kind"] == "fill"]
    assert (rec["fee"], rec["fee_asset"]) == ("0.001", "BTC")
    assert book.position(V, BTC).qty == D("0.999")
    assert book.position(V, BTC).fees == {"BTC": D("0.001")}
    again = book.apply_exec(_fill("b1", "1", "1", "60000.01", "0.001", "BTC"), 5)
    assert not again.applied and book.position(V, BTC).qty == D("0.999")
    replayed = OrderBook.from_dict(OrderBook().to_dict())
    for r in _records(book):
        replayed.apply_record(r)
    assert replayed.position(V, BTC).qty == D("0.999")
    restored = OrderBook.from_dict(book.to_dict()).position(V, BTC)
    assert (restored.qty, restored.fees) == (D("0.999"), {"BTC": D("0.001")})


def _records(book: OrderBook) -> list[dict[str, Any]]:
    """The records that built a book like `_book_with` + the fee-paying fill."""
    fresh = OrderBook()
    records: list[dict[str, Any]] = []
    order = SubmitOrder(client_order_id="b1", venue=V, symbol=BTC, side=Side.BUY, qty=D(1),
                        order_type=OrdType.MARKET)  # fmt: skip
    records += fresh.submit(order, 1).records
    records += fresh.risk_verdict(RiskVerdict(client_order_id="b1", approved=True), 2).records
    acc = ExecReport(venue=V, exec_id="b1:new", kind="accepted", cl_ord_id="b1")
    records += fresh.apply_exec(acc, 3).records
    records += fresh.apply_exec(_fill("b1", "1", "1", "60000.01", "0.001", "BTC"), 4).records
    return records


def test_a_record_without_a_fee_of_an_older_build_replays_as_none() -> None:
    book = _book_with("b1", Side.BUY, "1")
    order = book.get("b1")
    assert order is not None
    book.apply_record({"kind": "fill", "id": "b1", "exec_id": "x:t1", "qty": "1",
                       "px": "100", "status": "FILLED", "ts_ns": 5})  # fmt: skip
    assert book.position(V, BTC).qty == 1


def test_an_unmatched_fill_keeps_its_fee_until_placed() -> None:
    """A fill of no known order is recorded with its fee (an adoption that places it later
    books it with that fee); its record round-trips."""
    report = _fill("ext1", "9", "0.5", "100", "0.0005", "BTC", venue_order_id="77",
                   cum_qty=D("0.5"))  # fmt: skip
    fill = UnmatchedFill.from_report(report, 7)
    record = fill.to_record()
    assert (record["fee"], record["fee_asset"]) == ("0.0005", "BTC")
    assert UnmatchedFill.from_record(record) == fill
    plain = UnmatchedFill.from_report(_fill("ext2", "1", "1", "1", "0", ""), 7).to_record()
    assert "fee" not in plain  # no fee, no keys: an older build reads it as before


def test_the_fills_view_shows_each_fills_fee_and_the_cost_basis_follows_it() -> None:
    book = _book_with("b1", Side.BUY, "1")
    views = OmsViews(book)
    for r in book.apply_exec(_fill("b1", "1", "1", "60000.01", "0.001", "BTC"), 4).records:
        views.note(r)
    [row] = views.answer(wire.Fills(limit=5)).data["fills"]
    assert (row["fee"], row["fee_asset"], row["qty"]) == ("0.001", "BTC", "1")
    [pos] = views.positions(V)
    assert pos["qty"] == "0.999" and D(pos["realized_pnl"]) == D("-60.00001")
    assert pos["fees"] == {"BTC": "0.001"}
    assert "fees paid bx BTC/USDT: 0.001 BTC" in format_positions({"positions": [pos]})
    restored = OmsViews(book, views.state())  # the fill log packed with the fee, snapshotted
    [again] = restored.answer(wire.Fills(limit=5)).data["fills"]
    assert again == row


def test_an_unknown_cost_position_loses_the_fee_units_as_the_book_does() -> None:
    """An opening position of unknown cost, 2 BTC; a buy of 1 paying 0.001 BTC and a sell
    of 2.999 paying USDT: the book and its shadow both end flat (cost known again)."""
    cost = CostBasis()
    cost.opening({"venue": V, "symbol": BTC, "qty": "2", "avg_px": "0"})
    key = (V, BTC)
    cost.fill(key, Side.BUY, D(1), D(100), D("0.001"))
    assert not cost.known(key)
    cost.fill(key, Side.SELL, D("2.999"), D(100))
    assert cost.known(key)


def test_positions_as_of_a_cut_take_out_a_later_fill_net_of_its_fee() -> None:
    """The heartbeat and the reconciliation compare the venue's balance at a cut with the
    OMS's position as of that cut: now minus what came after it. A fill after the cut moved
    the position by 0.999 (1 less its 0.001 BTC fee), so that is what comes off: as of
    the cut before it the position is 0, not -0.001 (a false difference of the fee)."""
    book, log = _book_with("b1", Side.BUY, "1"), ExecLog()
    report = _fill("b1", "1", "1", "60000.01", "0.001", "BTC", exec_seq=5)
    log.note_outcome(report, 7, book.apply_exec(report, 4))
    now = {BTC: book.position(V, BTC).qty}
    assert now == {BTC: D("0.999")}

    def cut(seq: int) -> ExecCut:
        return ExecCut(connector_epoch=7, exec_seq=seq, oms_epoch=1)

    assert log.positions_as_of(V, cut(4), now) == {BTC: 0}
    assert log.positions_as_of(V, cut(5), now) == now


def test_journal_inspect_shows_a_fills_fee() -> None:
    book = _book_with("b1", Side.BUY, "1")
    [rec] = book.apply_exec(_fill("b1", "1", "1", "60000.01", "0.001", "BTC"), 4).records
    [row] = RowReader().rows({"kind": "record", "data": rec})
    assert row.detail == "exec b1:t1 fee 0.001 BTC"


@pytest.mark.parametrize(
    ("fee", "asset"),
    [("10", "BTC"), ("-1000", "BTC"), ("50", "USDT"), ("-0.06", "BTC")],
    ids=["base_over_fill", "base_negative", "quote_over_notional", "rebate_over_share"],
)
def test_an_absurd_fee_is_refused_escalated_and_the_fill_booked_without_it(
    fee: str, asset: str
) -> None:
    """A hostile or garbled venue answer: a fee (or rebate) of more than 5% of the fill in
    the asset it moves. Booked before, a 10 BTC fee on a 1 BTC buy left the OMS short 9 BTC
    (risk too: the event carried it). Now the fill is booked without it, its record keeps
    what the venue said (``fee_refused``) and replays alike, and a ``bad_fee`` escalation
    says so (counted: tradepulse_oms_bad_fees_total)."""
    book = _book_with("b1", Side.BUY, "1")
    out = book.apply_exec(_fill("b1", "1", "1", "10", fee, asset), 4)
    assert out.applied and out.fill_qty == 1
    assert [e.kind for e in out.escalations] == ["bad_fee"]
    [rec] = [r for r in out.records if r["kind"] == "fill"]
    assert "fee" not in rec and rec["fee_refused"] == f"{fee} {asset}"
    pos = book.position(V, BTC)
    assert (pos.qty, pos.realized_pnl, pos.fees) == (1, 0, {})
    replayed = _book_with("b1", Side.BUY, "1")
    replayed.apply_record(rec)
    assert replayed.position(V, BTC).qty == 1


@pytest.mark.parametrize(("fee", "asset"), [("0.05", "BTC"), ("0.5", "USDT"), ("-0.001", "BTC"),
                                            ("99", "BNB")])  # fmt: skip
def test_a_fee_within_its_bound_is_booked(fee: str, asset: str) -> None:
    """Up to 5% of the fill (a rebate too) is booked; a third asset's is kept as said."""
    book = _book_with("b1", Side.BUY, "1")
    out = book.apply_exec(_fill("b1", "1", "1", "10", fee, asset), 4)
    assert out.applied and not out.escalations
    assert book.position(V, BTC).fees == {asset: D(fee)}


def test_a_fee_of_a_fill_reconciliation_caught_up_first_is_booked_once() -> None:
    """A connector kill -9 loses a fill's report; the venue's status (cum 1) comes first
    and the book catches the fill up (``recon:``, no fee known); the trade's own report
    then comes (myTrades re-read) with its 0.001 BTC fee, a duplicate "counted by
    reconciliation". Before, its fee was dropped: the OMS held 1 BTC where the exchange
    held 0.999, for good. Now a ``fill_fee`` record books it alone, once (a resend brings
    none), replayed alike, and the order's event carries it for risk."""
    book = _book_with("b1", Side.BUY, "1")
    order = book.get("b1")
    assert order is not None
    status = ExecReport(venue=V, exec_id="", kind="status", cl_ord_id=order.cl_ord_id,
                        ord_status=OrderStatus.FILLED, cum_qty=D(1), avg_px=D(100),
                        leaves_qty=D(0))  # fmt: skip
    caught = book.apply_exec(status, 4)
    assert caught.applied
    trade = _fill("b1", "1", "1", "100", "0.001", "BTC", cum_qty=D(1))
    out = book.apply_exec(trade, 5)
    assert out.applied and out.fill_qty is None
    assert book.position(V, BTC).qty == D("0.999")
    assert book.position(V, BTC).fees == {"BTC": D("0.001")}
    assert not book.apply_exec(trade, 6).applied  # a resend: no second fee
    assert book.position(V, BTC).qty == D("0.999")
    event = merge_fill(merge_fill(None, caught), out)
    assert (event.qty, event.fee_base, event.fee_quote) == (1, D("0.001"), None)
    replayed = _book_with("b1", Side.BUY, "1")
    for rec in (*caught.records, *out.records):
        replayed.apply_record(rec)
    assert replayed.position(V, BTC).qty == D("0.999")
    restored = OrderBook.from_dict(book.to_dict())
    assert restored.position(V, BTC).qty == D("0.999")
    assert not restored.apply_exec(trade, 7).applied
