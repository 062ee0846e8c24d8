"""The OMS marks each position's realised P&L at the start of the trading day of its fills
(`risk.day_start`, `protocol.day_clock`; `actors.oms.positions.Position.take`), live, on
replay and through a snapshot, so a risk that starts after a boundary it slept through
splits the day's loss there (`actors.risk.exposure.ExposureView.realized_pnl_at`)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from actors.oms.order_book import OrderBook
from protocol.config import RiskLimitsCfg
from protocol.day_clock import DayClock
from protocol.messages import ExecReport, OrdType, RiskVerdict, Side, SubmitOrder

D = Decimal
V = "simA"
NS = 1_000_000_000
CLOCK = DayClock.of(RiskLimitsCfg(day_start="17:00", day_timezone="America/New_York"))
# the trading day 2026-12-07 starts at 17:00 New York that Monday (22:00 UTC)
BOUNDARY = CLOCK.start_ns(dt.date(2026, 12, 7))
BEFORE, AFTER = BOUNDARY - 60 * NS, BOUNDARY + 60 * NS


def _round_trip(book: OrderBook, tag: str, buy_px: str, sell_px: str, ts_ns: int) -> None:
    """Buy 10 at `buy_px`, sell 10 at `sell_px`, every record stamped `ts_ns`."""
    for side, px in ((Side.BUY, buy_px), (Side.SELL, sell_px)):
        coid = f"{tag}-{side.value.lower()}"
        submit = SubmitOrder(client_order_id=coid, venue=V, symbol="ABC", side=side,
                             qty=D(10), order_type=OrdType.LIMIT, price=D(px))  # fmt: skip
        assert book.submit(submit, ts_ns).applied
        verdict = RiskVerdict(client_order_id=coid, approved=True)
        assert book.risk_verdict(verdict, ts_ns).applied
        order = book.get(coid)
        assert order is not None
        accepted = ExecReport(venue=V, exec_id=f"{coid}-a", kind="accepted",
                              cl_ord_id=order.cl_ord_id, venue_order_id=coid)  # fmt: skip
        assert book.apply_exec(accepted, ts_ns).applied
        fill = ExecReport(venue=V, exec_id=f"{coid}-f", kind="fill", cl_ord_id=order.cl_ord_id,
                          last_qty=D(10), last_px=D(px))  # fmt: skip
        assert book.apply_exec(fill, ts_ns).applied


def _book(records: list[dict[str, Any]] | None = None) -> OrderBook:
    book = OrderBook()
    book.day_clock = CLOCK
    for record in records or ():
        book.apply_record(record)
    return book


def test_the_first_fill_of_a_day_marks_the_realised_pnl_before_it() -> None:
    """A round trip loses 20 before 17:00 New York, another 30 after it: the position's
    realised P&L is -50, at the day's start (its mark) -20, its last fill after the
    boundary. Replayed from the journal's records, and through a snapshot, the same."""
    book = _book()
    records: list[dict[str, Any]] = []
    book.apply_record = _recording(book, records)  # type: ignore[method-assign]
    _round_trip(book, "rt1", "100", "98", BEFORE)
    view = book.position(V, "ABC").view()
    assert (view.realized_pnl, view.day_start_ns) == (D(-20), CLOCK.day_start_ns(BEFORE))
    _round_trip(book, "rt2", "100", "97", AFTER)
    view = book.position(V, "ABC").view()
    assert (view.realized_pnl, view.day_start_pnl) == (D(-50), D(-20))
    assert (view.day_start_ns, view.last_fill_ns) == (BOUNDARY, AFTER)

    assert _book(records).position(V, "ABC").view() == view  # a replay
    snapshot = OrderBook.from_dict(_book(records).to_dict())
    assert snapshot.position(V, "ABC").view() == view


def test_without_a_day_clock_only_the_last_fill_time_is_kept() -> None:
    """A book no clock was given to (a tool reading a journal) marks no day."""
    book = OrderBook()
    _round_trip(book, "rt1", "100", "98", AFTER)
    view = book.position(V, "ABC").view()
    assert (view.last_fill_ns, view.day_start_ns, view.day_start_pnl) == (AFTER, 0, D(0))


def _recording(book: OrderBook, records: list[dict[str, Any]]) -> Any:
    apply = book.apply_record

    def record(rec: dict[str, Any]) -> None:
        records.append(dict(rec))
        apply(rec)

    return record


def test_a_position_whose_fills_of_the_day_are_not_known_is_left_unmarked() -> None:
    """A snapshot of an older build kept no fill times: the first fill after it, past the
    boundary, cannot tell the P&L at the day's start (fills of the day may be in the
    snapshot), so no mark: risk counts the position's figure now and says so. A cold
    start's opening position is known as of its record's time: marked."""
    old = {"venue": V, "symbol": "ABC", "qty": "0", "avg_px": "0", "realized_pnl": "-20"}
    book = _book()
    book.apply_record({"kind": "opening_position", **old, "ts_ns": BEFORE})
    _round_trip(book, "rt1", "100", "97", AFTER)
    assert book.position(V, "ABC").view().day_start_ns == BOUNDARY
    snap = OrderBook.from_dict({"orders": [], "positions": [old], "unmatched": []})
    snap.day_clock = CLOCK
    _round_trip(snap, "rt1", "100", "97", AFTER)
    view = snap.position(V, "ABC").view()
    assert (view.realized_pnl, view.last_fill_ns, view.day_start_ns) == (D(-50), AFTER, 0)
