"""The OMS's operator views (`actors.oms.views`), pure: P&L per venue and symbol (realised
across partial closes and a flip through zero, unrealised against the last execution
price), the fill log (newest first, filtered, bounded, with the total), the orders view,
the venue's positions from the heartbeat's event, and survival across a snapshot."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from structlog.testing import capture_logs

from actors.oms import views as views_mod
from actors.oms.order_book import OrderBook
from actors.oms.views import OmsViews, unrealized_pnl
from protocol import commands as wire
from protocol.messages import ExecReport, OrdType, RiskVerdict, Side, SubmitOrder

D = Decimal
V = "sim"


class _Desk:
    """A book and its views, fed record by record the way the OMS actor does."""

    def __init__(self) -> None:
        self.book = OrderBook()
        self.views = OmsViews(self.book)
        self.n = 0

    def trade(
        self, side: Side, qty: str, px: str, *, symbol: str = "ABC", venue: str = V,
        ts_ns: int | None = None, limit: str | None = None,
    ) -> str:  # fmt: skip
        """A new order at `venue`, accepted, then filled `qty` at `px` (unless qty is 0)."""
        self.n += 1
        coid, ts = f"o{self.n}", ts_ns if ts_ns is not None else self.n * 1000
        total = D(limit) if limit else max(D(qty), D(1))
        msg = SubmitOrder(client_order_id=coid, venue=venue, symbol=symbol, side=side,
                          qty=total, order_type=OrdType.MARKET)  # fmt: skip
        self._feed(self.book.submit(msg, ts).records)
        self._feed(
            self.book.risk_verdict(RiskVerdict(client_order_id=coid, approved=True), ts).records
        )
        order = self.book.get(coid)
        assert order is not None
        ack = ExecReport(
            venue=venue, exec_id=f"A{self.n}", kind="accepted", cl_ord_id=order.cl_ord_id
        )
        self._feed(self.book.apply_exec(ack, ts).records)
        if D(qty):
            out = self.book.apply_fill(coid, f"E{self.n}", D(qty), D(px), ts)
            assert out.applied, out.reason
            self._feed(out.records)
        return coid

    def _feed(self, records: tuple[dict[str, object], ...] | list[dict[str, object]]) -> None:
        for rec in records:
            self.views.note(rec)

    def row(self, symbol: str = "ABC", venue: str = V) -> dict[str, Any]:
        [row] = [r for r in self.views.positions() if (r["venue"], r["symbol"]) == (venue, symbol)]
        return row


def test_unrealized_pnl_is_qty_times_the_move_from_the_average_price() -> None:
    """Long gains when the price rises, short when it falls; no last price: unknown."""
    assert unrealized_pnl(D(10), D(100), D(101.5)) == D("15.0")
    assert unrealized_pnl(D(-4), D(90), D(80)) == D(40)
    assert unrealized_pnl(D(0), D(0), D(80)) == D(0)
    assert unrealized_pnl(D(5), D(100), None) is None


def test_realised_pnl_across_partial_closes_and_a_flip_through_zero() -> None:
    """Buy 10 @ 100; sell 4 @ 110 (partial close: +40, 6 left at 100); sell 10 @ 90 (closes
    6 at -10 each: -20 in all, flips to short 4 opened at 90); buy 1 @ 80 (partial close of
    the short: +10, -10 in all). Unrealised moves with the last execution price."""
    desk = _Desk()
    desk.trade(Side.BUY, "10", "100")
    assert (desk.row()["qty"], desk.row()["realized_pnl"], desk.row()["unrealized_pnl"]) == (
        "10",
        "0",
        "0",
    )
    desk.trade(Side.SELL, "4", "110")
    row = desk.row()
    assert (row["qty"], D(row["avg_px"]), D(row["realized_pnl"])) == ("6", D(100), D(40))
    assert (row["last_px"], D(row["unrealized_pnl"])) == ("110", D(60))
    desk.trade(Side.SELL, "10", "90")
    row = desk.row()
    assert (row["qty"], D(row["avg_px"]), D(row["realized_pnl"])) == ("-4", D(90), D(-20))
    assert D(row["unrealized_pnl"]) == 0
    desk.trade(Side.BUY, "1", "80")
    row = desk.row()
    assert (row["qty"], D(row["avg_px"]), D(row["realized_pnl"])) == ("-3", D(90), D(-10))
    assert (row["last_px"], D(row["unrealized_pnl"])) == ("80", D(30))


def test_fills_newest_first_filtered_limited_with_the_total() -> None:
    """Fills come newest first; venue, symbol and since filter them; `limit` caps the rows
    but `total` counts every match."""
    desk = _Desk()
    desk.trade(Side.BUY, "1", "10", ts_ns=100)
    desk.trade(Side.BUY, "2", "20", symbol="XYZ", ts_ns=200)
    desk.trade(Side.SELL, "3", "30", venue="other", ts_ns=300)
    desk.trade(Side.BUY, "4", "40", ts_ns=400)
    data = desk.views.answer(wire.Fills()).data
    assert [f["qty"] for f in data["fills"]] == ["4", "3", "2", "1"] and data["total"] == 4
    assert data["fills"][0]["client_order_id"] == "o4" and data["fills"][0]["side"] == "BUY"
    only = desk.views.answer(wire.Fills(venue=V, symbol="ABC")).data
    assert [f["px"] for f in only["fills"]] == ["40", "10"]
    assert desk.views.answer(wire.Fills(since_ns=250)).data["total"] == 2
    capped = desk.views.answer(wire.Fills(limit=1)).data
    assert (len(capped["fills"]), capped["total"]) == (1, 4)


def test_the_fill_log_keeps_only_the_newest() -> None:
    """An unmatched fill is logged too (no order id, no position); past FILL_LOG_MAX the
    oldest go."""
    views = OmsViews(OrderBook())
    for i in range(views_mod.FILL_LOG_MAX + 5):
        rec = {"kind": "unmatched_fill", "venue": V, "exec_id": f"X{i}", "cl_ord_id": "?"}
        views.note(rec | {"symbol": "ABC", "side": None, "qty": "1", "px": "1", "ts_ns": i})
    data = views.answer(wire.Fills(limit=2000)).data
    assert data["total"] == views_mod.FILL_LOG_MAX
    assert data["fills"][0]["exec_id"] == f"X{views_mod.FILL_LOG_MAX + 4}"
    assert data["fills"][0]["client_order_id"] == "" and data["fills"][0]["side"] == ""
    assert views.positions() == []


def test_orders_view_filters_and_orders_newest_first() -> None:
    """`open_only` drops finished orders, `symbol`/`since_ns` filter, newest first, total."""
    desk = _Desk()
    desk.trade(Side.BUY, "5", "10", ts_ns=100)  # filled: finished
    desk.trade(Side.BUY, "0", "0", symbol="XYZ", ts_ns=200)  # accepted, open
    desk.trade(Side.BUY, "1", "10", ts_ns=300, limit="2")  # partially filled, open
    data = desk.views.answer(wire.Orders()).data
    assert [o["client_order_id"] for o in data["orders"]] == ["o3", "o2", "o1"]
    opened = desk.views.answer(wire.Orders(open_only=True)).data
    assert [o["client_order_id"] for o in opened["orders"]] == ["o3", "o2"]
    assert desk.views.answer(wire.Orders(symbol="XYZ")).data["total"] == 1
    assert desk.views.answer(wire.Orders(since_ns=250)).data["total"] == 1
    capped = desk.views.answer(wire.Orders(limit=1)).data
    assert (len(capped["orders"]), capped["total"]) == (1, 3)


def test_venue_positions_come_from_the_heartbeat_event() -> None:
    """The heartbeat's position_snapshot sets the venue column (dated when the venue
    answered: event time minus its age); a symbol only the venue holds gets a row with OMS
    qty 0; a malformed event changes nothing; other events are ignored."""
    desk = _Desk()
    desk.trade(Side.BUY, "10", "100")
    assert desk.row()["venue_qty"] is None
    data = {"venue": V, "venue_positions": {"ABC": "10", "ZZZ": "-2"}, "ts_ns": 5_000_000_000,
            "venue_age_s": 2.0, "source": "ledger"}  # fmt: skip
    desk.views.on_stream("position_snapshot", data)
    row = desk.row()
    assert (row["venue_qty"], row["venue_ts_ns"], row["venue_source"]) == (
        "10",
        3_000_000_000,
        "ledger",
    )
    assert (desk.row("ZZZ")["qty"], desk.row("ZZZ")["venue_qty"]) == ("0", "-2")
    desk.views.on_stream("position_snapshot", {"venue": V, "venue_positions": {"ABC": "x"}})
    desk.views.on_stream("kill_switch", {"venue": V, "venue_positions": {"ABC": "1"}})
    assert desk.row()["venue_qty"] == "10"


def test_fills_and_last_prices_survive_a_snapshot() -> None:
    """`state()` is the book's snapshot plus the views' part: a book and views rebuilt from
    it show the same fills and P&L (the book ignores the extra key)."""
    desk = _Desk()
    desk.trade(Side.BUY, "10", "100")
    desk.trade(Side.SELL, "4", "110")
    state = desk.views.state()
    book = OrderBook.from_dict(state)
    again = OmsViews(book, state)
    assert again.answer(wire.Fills()).data == desk.views.answer(wire.Fills()).data
    assert again.positions() == desk.views.positions()


def test_a_reply_stays_within_its_byte_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows stop before their JSON passes the budget (total still counts every match), and
    an order's long reason is cut, so no reply can pass the control message size limit."""
    desk = _Desk()
    for _ in range(10):
        desk.trade(Side.BUY, "1", "10")
    one = len(json.dumps(desk.views.answer(wire.Fills(limit=1)).data["fills"][0]))
    monkeypatch.setattr(views_mod, "REPLY_BUDGET_BYTES", one * 3 + 1)
    data = desk.views.answer(wire.Fills()).data
    assert (len(data["fills"]), data["total"]) == (3, 10)
    assert len(desk.views.answer(wire.Orders()).data["orders"]) < 3
    order = desk.book.get("o1")
    assert order is not None
    order.reason = "x" * 5000
    monkeypatch.setattr(views_mod, "REPLY_BUDGET_BYTES", 10**6)
    [row] = desk.views.answer(wire.Orders(since_ns=0, limit=2000, symbol="ABC")).data["orders"][-1:]
    assert row["client_order_id"] == "o1" and len(row["reason"]) == views_mod.REASON_CHARS


def _open(desk: _Desk, qty: str, avg_px: str, symbol: str = "ABC") -> None:
    """A cold start's opening position (the venue's figures), as the OMS journals it."""
    out = desk.book.set_opening_position(V, symbol, D(qty), D(avg_px), 1)
    desk._feed(out.records)


def test_a_position_taken_without_a_cost_shows_no_avg_price_or_pnl_until_flat() -> None:
    """A cold start took 100 from a venue that gave no average price (0): no AVG_PX and no
    P&L (null, cost_known false), not P&L against 0, while we add to it and partly close it;
    once it is flat the cost is known again, and the realised P&L booked against 0 is left
    out: what shows is our 100 @ 50's (sold in proportion: 50 @ 55, 50 @ 56), then a later
    round trip of our own adds only its own result."""
    desk = _Desk()
    _open(desk, "100", "0")
    desk.trade(Side.BUY, "100", "50")
    row = desk.row()
    assert row["qty"] == "200" and row["cost_known"] is False
    assert (row["avg_px"], row["realized_pnl"], row["unrealized_pnl"]) == (None, None, None)
    desk.trade(Side.SELL, "100", "55")
    assert desk.row()["cost_known"] is False and desk.row()["realized_pnl"] is None
    desk.trade(Side.SELL, "100", "56")
    row = desk.row()
    assert (row["qty"], row["cost_known"], D(row["realized_pnl"])) == ("0", True, D(550))
    desk.trade(Side.BUY, "10", "60")
    desk.trade(Side.SELL, "10", "61")
    assert D(desk.row()["realized_pnl"]) == D(560)
    state = desk.views.state()  # the remembered exclusion survives a snapshot
    assert OmsViews(OrderBook.from_dict(state), state).positions() == desk.views.positions()


def test_a_cost_unknown_short_that_flips_long_opens_at_the_fill_price() -> None:
    """Short 5 at no cost; buy 8 @ 20 flips to long 3 opened at 20: cost known, unrealised
    against 20, the close of the unknown short not counted as realised."""
    desk = _Desk()
    _open(desk, "-5", "0")
    assert desk.row()["cost_known"] is False
    desk.trade(Side.BUY, "8", "20")
    row = desk.row()
    assert (row["qty"], row["cost_known"], D(row["avg_px"])) == ("3", True, D(20))
    assert (D(row["realized_pnl"]), D(row["unrealized_pnl"])) == (0, 0)


def test_a_position_the_venue_gave_a_cost_for_is_known() -> None:
    """The venue's average price is the cost: P&L against it."""
    desk = _Desk()
    _open(desk, "10", "98")
    desk.trade(Side.BUY, "10", "100")
    row = desk.row()
    assert row["cost_known"] is True and D(row["unrealized_pnl"]) == D(20)


def test_the_last_price_keeps_its_time_through_a_snapshot() -> None:
    """last_px_ts_ns is the time of the execution that set last_px, and a snapshot keeps it."""
    desk = _Desk()
    desk.trade(Side.BUY, "10", "100", ts_ns=7_000)
    assert (desk.row()["last_px"], desk.row()["last_px_ts_ns"]) == ("100", 7_000)
    state = desk.views.state()
    assert OmsViews(OrderBook.from_dict(state), state).positions()[0]["last_px_ts_ns"] == 7_000


def test_the_positions_reply_is_limited_with_the_total() -> None:
    desk = _Desk()
    for i in range(5):
        desk.trade(Side.BUY, "1", "10", symbol=f"S{i}")
    data = desk.views.answer(wire.Positions(limit=2)).data
    assert (len(data["positions"]), data["total"]) == (2, 5)


@pytest.mark.parametrize(
    "views",
    [{"fills": [{"ts_ns": "x"}]}, {"last_px": [["v"]]}, {"fills": 5}, "junk"],
)
def test_an_unreadable_views_snapshot_starts_with_an_empty_fill_log(views: object) -> None:
    """A views part the OMS cannot read does not stop it: logged, no fills, no last prices.
    (The log is captured from structlog, not stdout: an actor built in-process by an earlier
    test of the same worker leaves the logging configured to write elsewhere.)"""
    desk = _Desk()
    desk.trade(Side.BUY, "10", "100")
    state = desk.views.state() | {"views": views}
    with capture_logs() as logs:
        again = OmsViews(OrderBook.from_dict(state), state)
    assert again.answer(wire.Fills()).data["fills"] == []
    assert again.positions()[0]["last_px"] is None
    assert [e["event"] for e in logs] == ["views_snapshot_unreadable"]


def test_a_full_fill_log_takes_little_memory() -> None:
    """FILL_LOG_MAX fills (exchange-length exec ids, a 19-digit ts_ns) take under 1.5 MiB
    (each one packed bytes object; as `Fill` objects they took ~4 MiB), and read back the
    same."""
    import tracemalloc

    views = OmsViews(OrderBook())
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(views_mod.FILL_LOG_MAX):
            views.note({"kind": "unmatched_fill", "venue": V, "symbol": "ABC", "side": "BUY",
                        "qty": "1.50", "px": "100.25", "exec_id": f"EXEC-{i:016d}",
                        "cl_ord_id": "?", "ts_ns": 1_733_000_000_000_000_000 + i})  # fmt: skip
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert used < 1.5 * 2**20, used
    [newest] = views.answer(wire.Fills(limit=1)).data["fills"]
    assert newest == {
        "ts_ns": 1_733_000_000_000_000_000 + views_mod.FILL_LOG_MAX - 1, "venue": V,
        "symbol": "ABC", "side": "BUY", "qty": "1.50", "px": "100.25", "client_order_id": "",
        "exec_id": f"EXEC-{views_mod.FILL_LOG_MAX - 1:016d}", "fee": "0", "fee_asset": "",
    }  # fmt: skip


def test_the_positions_risk_rebuilds_from_carry_the_last_execution_price() -> None:
    """`GetPositions`' rows (`wire_positions`) say each position's last execution price at
    its venue: a risk rebuilt from them prices a market order as one that read every
    event (tests/integration/test_risk_reference_rebuild.py)."""
    desk = _Desk()
    desk.trade(Side.BUY, "10", "100")
    desk.trade(Side.SELL, "4", "150.01", venue="simB")
    rows = {(p.venue, p.last_px) for p in desk.views.wire_positions()}
    assert rows == {(V, D(100)), ("simB", D("150.01"))}
