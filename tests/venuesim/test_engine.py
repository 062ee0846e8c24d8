"""The matching engine: priority, order types, time in force, cancel/replace, duplicates,
status, positions and bad input. The market maker quotes 99.99/99.98/99.97 against
100.01/100.02/100.03, 100 each, unless a test turns it off (NO_MM)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from actors.venuesim import (
    NO_ORDER_ID,
    STATUS_EXEC_ID,
    CxlRejReason,
    CxlRejResponseTo,
    ExecType,
    OrdRejReason,
    OrdStatus,
)
from protocol.messages import OrderStatus, Side
from tests.venuesim.support import NO_MM, D, Sim, execs, fills, only_cancel_reject, types

MakeSim = Callable[..., Sim]


def test_limit_order_rests_and_is_acknowledged(sim: Sim) -> None:
    """A limit order that does not cross is answered with one NEW and rests, open."""
    (ack,) = execs(sim.order("b1", "BUY", 10, "99.50"))
    assert ack.exec_type is ExecType.NEW and ack.ord_status is OrdStatus.NEW
    assert (ack.order_id, ack.exec_id) == ("bk-O00000001", "bk-E000000000001")
    assert (ack.order_qty, ack.price, ack.leaves_qty, ack.cum_qty) == (
        D(10),
        D("99.50"),
        D(10),
        D(0),
    )
    assert [o.cl_ord_id for o in sim.venue.open_orders()] == ["b1"]


def test_better_price_trades_first_then_earlier_order(make_sim: MakeSim) -> None:
    """Resting sells trade best price first and, at one price, in arrival order; the trade
    price is the resting order's."""
    sim = make_sim(**NO_MM)
    sim.order("A", "SELL", 10, "101")
    sim.order("B", "SELL", 10, "100.5")
    sim.order("C", "SELL", 10, "100.5")
    events = sim.order("buy", "BUY", 25, "101")
    assert [f for f in fills(events) if f[0] != "buy"] == [
        ("B", D(10), D("100.5")),
        ("C", D(10), D("100.5")),
        ("A", D(5), D("101")),
    ]
    last = execs(events)[-1]
    assert (last.cl_ord_id, last.ord_status, last.avg_px) == ("buy", OrdStatus.FILLED, D("100.6"))
    a = sim.venue.status("A")
    assert a is not None and (a.ord_status, a.leaves_qty) == (OrdStatus.PARTIALLY_FILLED, D(5))


def test_orders_at_one_price_fill_in_time_order(make_sim: MakeSim) -> None:
    sim = make_sim(**NO_MM)
    for cl in ("A", "B", "C"):
        sim.order(cl, "BUY", 10, "99.5")
    events = sim.order("sell", "SELL", 15, "99.5")
    assert [f[:2] for f in fills(events) if f[0] != "sell"] == [("A", D(10)), ("B", D(5))]
    c = sim.venue.status("C")
    assert c is not None and c.cum_qty == 0


def test_resting_client_order_goes_before_the_market_maker_at_one_price(sim: Sim) -> None:
    sim.order("s1", "SELL", 30, "100.02")  # beside the market maker's 100.02 offer
    events = sim.order("m1", "BUY", 150)
    assert [f for f in fills(events) if f[0] == "m1"] == [
        ("m1", D(100), D("100.01")),
        ("m1", D(30), D("100.02")),
        ("m1", D(20), D("100.02")),
    ]
    assert fills(events, "s1") == [("s1", D(30), D("100.02"))]
    assert sim.venue.quotes("AAPL", Side.SELL)[1] == (D("100.02"), D(80))


def test_limit_order_sweeps_quote_levels_and_rests_the_rest(sim: Sim) -> None:
    """A buy limit through two quote levels fills both partially-filling itself, then the
    remainder rests at its limit."""
    events = sim.order("b1", "BUY", 250, "100.02")
    assert types(events) == ["0", "F", "F"]
    assert fills(events) == [("b1", D(100), D("100.01")), ("b1", D(100), D("100.02"))]
    last = execs(events)[-1]
    assert last.ord_status is OrdStatus.PARTIALLY_FILLED
    assert (last.cum_qty, last.leaves_qty, last.avg_px) == (D(200), D(50), D("100.015"))
    assert sim.venue.quotes("AAPL", Side.SELL) == [
        (D("100.01"), 0),
        (D("100.02"), 0),
        (D("100.03"), D(100)),
    ]
    assert [o.cl_ord_id for o in sim.venue.open_orders()] == ["b1"]


def test_ioc_remainder_is_cancelled(sim: Sim) -> None:
    events = sim.order("i1", "BUY", 250, "100.02", tif="IOC")
    assert types(events) == ["0", "F", "F", "4"]
    last = execs(events)[-1]
    assert (last.ord_status, last.cum_qty, last.leaves_qty) == (OrdStatus.CANCELED, D(200), D(0))
    assert types(sim.order("i2", "BUY", 10, "99", tif="IOC")) == ["0", "4"]
    assert sim.venue.open_orders() == []


def test_fok_fills_completely_or_not_at_all(sim: Sim) -> None:
    """A FOK for more than is available at its limit is cancelled without trading (quotes
    untouched); one that fits fills completely."""
    before = sim.venue.quotes("AAPL", Side.SELL)
    assert types(sim.order("f1", "BUY", 201, "100.02", tif="FOK")) == ["0", "4"]
    assert sim.venue.quotes("AAPL", Side.SELL) == before
    events = sim.order("f2", "BUY", 200, "100.02", tif="FOK")
    assert types(events) == ["0", "F", "F"]
    assert execs(events)[-1].ord_status is OrdStatus.FILLED


def test_market_orders_take_quotes_best_price_first(sim: Sim) -> None:
    buy = sim.order("m1", "BUY", 250)
    assert fills(buy) == [
        ("m1", D(100), D("100.01")),
        ("m1", D(100), D("100.02")),
        ("m1", D(50), D("100.03")),
    ]
    assert execs(buy)[-1].avg_px == D("100.018")
    sell = sim.order("m2", "SELL", 120)
    assert fills(sell) == [("m2", D(100), D("99.99")), ("m2", D(20), D("99.98"))]


def test_market_order_remainder_without_liquidity_is_cancelled(make_sim: MakeSim) -> None:
    """Beyond the last quote (or with none at all) a market order's rest is cancelled."""
    sim = make_sim()
    events = sim.order("m1", "BUY", 400)
    assert types(events) == ["0", "F", "F", "F", "4"]
    last = execs(events)[-1]
    assert (last.ord_status, last.cum_qty, last.leaves_qty) == (OrdStatus.CANCELED, D(300), D(0))
    empty = make_sim("empty", **NO_MM)
    events = empty.order("m2", "BUY", 10)
    assert types(events) == ["0", "4"] and "no liquidity" in execs(events)[-1].text


def test_cancel_by_orig_clordid(sim: Sim) -> None:
    """A cancel names the order by OrigClOrdID; afterwards both ClOrdIDs name the order."""
    sim.order("b1", "BUY", 10, "99.50")
    (ev,) = execs(sim.cancel("c1", "b1"))
    assert (ev.exec_type, ev.ord_status) == (ExecType.CANCELED, OrdStatus.CANCELED)
    assert (ev.cl_ord_id, ev.orig_cl_ord_id, ev.leaves_qty) == ("c1", "b1", D(0))
    assert sim.venue.status("b1") == sim.venue.status("c1")
    order = sim.venue.status("b1")
    assert order is not None and order.cl_ord_ids == ("b1", "c1")
    assert sim.venue.open_orders() == []


def test_cancel_of_a_finished_order_is_too_late(sim: Sim) -> None:
    sim.order("b1", "BUY", 10, "99.50")
    sim.cancel("c1", "b1")
    rej = only_cancel_reject(sim.cancel("c2", "b1"))
    assert (rej.cxl_rej_reason, rej.ord_status) == (
        CxlRejReason.TOO_LATE_TO_CANCEL,
        OrdStatus.CANCELED,
    )
    assert rej.cxl_rej_response_to is CxlRejResponseTo.ORDER_CANCEL_REQUEST
    assert rej.order_id == "bk-O00000001"
    sim.order("m1", "BUY", 10)
    rej = only_cancel_reject(sim.cancel("c3", "m1"))
    assert (rej.cxl_rej_reason, rej.ord_status) == (
        CxlRejReason.TOO_LATE_TO_CANCEL,
        OrdStatus.FILLED,
    )


def test_cancel_or_replace_of_an_unknown_order_is_rejected(sim: Sim) -> None:
    rej = only_cancel_reject(sim.cancel("c1", "nope"))
    assert (rej.cxl_rej_reason, rej.order_id, rej.ord_status) == (
        CxlRejReason.UNKNOWN_ORDER,
        NO_ORDER_ID,
        OrdStatus.REJECTED,
    )
    rej = only_cancel_reject(sim.replace("r1", "nope", 5, "99"))
    assert rej.cxl_rej_reason is CxlRejReason.UNKNOWN_ORDER
    assert rej.cxl_rej_response_to is CxlRejResponseTo.ORDER_CANCEL_REPLACE_REQUEST
    assert sim.venue.status("c1") is None and sim.venue.status("r1") is None


def test_cancel_or_replace_with_a_used_clordid_is_rejected(sim: Sim) -> None:
    sim.order("b1", "BUY", 10, "99.50")
    sim.order("b2", "BUY", 10, "99.40")
    assert only_cancel_reject(sim.cancel("b2", "b1")).cxl_rej_reason is (
        CxlRejReason.DUPLICATE_CL_ORD_ID
    )
    assert only_cancel_reject(sim.replace("b2", "b1", 5)).cxl_rej_reason is (
        CxlRejReason.DUPLICATE_CL_ORD_ID
    )
    assert len(sim.venue.open_orders()) == 2


def test_replace_reducing_qty_keeps_time_priority(make_sim: MakeSim) -> None:
    sim = make_sim(**NO_MM)
    sim.order("A", "BUY", 10, "99.5")
    sim.order("B", "BUY", 10, "99.5")
    (rep,) = execs(sim.replace("A2", "A", 5))
    assert (rep.exec_type, rep.ord_status) == (ExecType.REPLACED, OrdStatus.NEW)
    assert (rep.cl_ord_id, rep.orig_cl_ord_id, rep.order_qty, rep.leaves_qty) == (
        "A2",
        "A",
        D(5),
        D(5),
    )
    assert rep.price == D("99.5")
    assert fills(sim.order("s", "SELL", 5, "99.5"), "A2") == [("A2", D(5), D("99.5"))]


@pytest.mark.parametrize(
    ("first_price", "new_qty", "new_price"),
    [("99.5", 20, "99.5"), ("99.4", 10, "99.5")],
    ids=["qty-up", "price-change"],
)
def test_replace_increasing_qty_or_changing_price_loses_time_priority(
    make_sim: MakeSim, first_price: str, new_qty: int, new_price: str
) -> None:
    """After a replace that raises the qty or moves the price, the order queues behind
    orders already resting at its (new) price."""
    sim = make_sim(**NO_MM)
    sim.order("A", "BUY", 10, first_price)
    sim.order("B", "BUY", 10, "99.5")
    assert types(sim.replace("A2", "A", new_qty, new_price)) == ["5"]
    assert [f[0] for f in fills(sim.order("s", "SELL", 10, "99.5")) if f[0] != "s"] == ["B"]


def test_replace_to_qty_at_or_below_cum_qty_leaves_the_order_done(sim: Sim) -> None:
    sim.order("b1", "BUY", 300, "100.02")  # 200 filled, 100 resting
    (rep,) = execs(sim.replace("b2", "b1", 150))
    assert (rep.exec_type, rep.ord_status) == (ExecType.REPLACED, OrdStatus.FILLED)
    assert (rep.order_qty, rep.cum_qty, rep.leaves_qty) == (D(200), D(200), D(0))
    assert "done" in rep.text
    assert sim.venue.open_orders() == []


def test_replace_to_a_marketable_price_trades_at_once(sim: Sim) -> None:
    sim.order("b1", "BUY", 50, "99.50", tif="GTC")
    events = sim.replace("b2", "b1", 50, "100.01")
    assert types(events) == ["5", "F"]
    assert fills(events) == [("b2", D(50), D("100.01"))]
    last = execs(events)[-1]
    assert (last.ord_status, last.tif) == (OrdStatus.FILLED, "GTC")


def test_replace_of_a_filled_order_is_too_late(sim: Sim) -> None:
    sim.order("m1", "BUY", 10)
    rej = only_cancel_reject(sim.replace("m2", "m1", 20, "100"))
    assert rej.cxl_rej_reason is CxlRejReason.TOO_LATE_TO_CANCEL


def test_duplicate_clordid_is_rejected_whichever_way_it_was_used(sim: Sim) -> None:
    """A ClOrdID once seen (new order, replace, cancel, even a rejected order) rejects a new
    order with OrdRejReason 6 and leaves the first order alone."""
    sim.order("b1", "BUY", 10, "99.50")
    sim.replace("b1r", "b1", 10, "99.40")
    sim.order("b2", "BUY", 10, "99.30")
    sim.cancel("b2c", "b2")
    sim.order("bad", "BUY", 10, "99", symbol="ZZZ")
    for cl in ("b1", "b1r", "b2c", "bad"):
        (rej,) = execs(sim.order(cl, "BUY", 1, "99"))
        assert (rej.exec_type, rej.ord_status) == (ExecType.REJECTED, OrdStatus.REJECTED)
        assert (rej.ord_rej_reason, rej.order_id) == (OrdRejReason.DUPLICATE_ORDER, NO_ORDER_ID)
    assert [o.cl_ord_id for o in sim.venue.open_orders()] == ["b1r"]


def test_status_of_known_and_unknown_orders(sim: Sim) -> None:
    """A known order's status report is ExecType I with ExecID 0; an unknown ClOrdID gets a
    distinct answer: OrdStatus REJECTED with OrdRejReason UNKNOWN_ORDER (and None)."""
    sim.order("b1", "BUY", 10, "99.50")
    rep = sim.venue.status_report("b1", 1)
    assert (rep.exec_type, rep.exec_id, rep.ord_status) == (
        ExecType.ORDER_STATUS,
        STATUS_EXEC_ID,
        OrdStatus.NEW,
    )
    assert rep.leaves_qty == D(10)
    assert sim.venue.status("nope") is None
    unknown = sim.venue.status_report("nope", 1)
    assert (unknown.exec_type, unknown.ord_status, unknown.ord_rej_reason, unknown.order_id) == (
        ExecType.ORDER_STATUS,
        OrdStatus.REJECTED,
        OrdRejReason.UNKNOWN_ORDER,
        NO_ORDER_ID,
    )


def test_positions_use_average_cost(sim: Sim) -> None:
    """Buys average in; a partial sell keeps the average; selling through flat starts a
    short at the fill price. Untraded symbols are absent."""
    sim.order("m1", "BUY", 100)  # 100 @ 100.01
    sim.order("m2", "BUY", 100)  # 100 @ 100.02
    pos = sim.venue.positions()["AAPL"]
    assert (pos.net_qty, pos.avg_px) == (D(200), D("100.015"))
    sim.order("m3", "SELL", 150)  # 100 @ 99.99, 50 @ 99.98
    pos = sim.venue.positions()["AAPL"]
    assert (pos.net_qty, pos.avg_px) == (D(50), D("100.015"))
    sim.order("m4", "SELL", 100)  # 50 @ 99.98, 50 @ 99.97
    pos = sim.venue.positions()["AAPL"]
    assert (pos.net_qty, pos.avg_px, pos.bought_qty, pos.sold_qty) == (
        D(-50),
        D("99.97"),
        D(200),
        D(250),
    )
    assert set(sim.venue.positions()) == {"AAPL"}


def test_client_orders_trade_with_each_other(make_sim: MakeSim) -> None:
    """The one client's crossing orders trade (both sides get a fill); the position nets."""
    sim = make_sim(**NO_MM)
    sim.order("s", "SELL", 10, "100")
    events = sim.order("b", "BUY", 10, "100")
    assert fills(events) == [("s", D(10), D(100)), ("b", D(10), D(100))]
    pos = sim.venue.positions()["AAPL"]
    assert (pos.net_qty, pos.avg_px, pos.bought_qty, pos.sold_qty) == (D(0), D(0), D(10), D(10))


def test_mass_cancel_and_mass_status_cover_every_open_order(sim: Sim) -> None:
    sim.order("b1", "BUY", 10, "99.50")
    sim.order("b2", "SELL", 10, "101", symbol="AAPL")
    sim.order("b3", "BUY", 10, "290", symbol="MSFT")
    sim.order("m1", "BUY", 10)
    statuses = sim.venue.mass_status(5)
    assert [(s.cl_ord_id, s.exec_type, s.exec_id) for s in statuses] == [
        (cl, ExecType.ORDER_STATUS, "0") for cl in ("b1", "b2", "b3")
    ]
    events = execs(sim.venue.mass_cancel(6))
    assert [(e.cl_ord_id, e.exec_type, e.text) for e in events] == [
        (cl, ExecType.CANCELED, "mass cancel") for cl in ("b1", "b2", "b3")
    ]
    assert sim.venue.open_orders() == [] and sim.venue.mass_cancel(7) == []


def test_end_of_day_expires_day_orders_only(sim: Sim) -> None:
    sim.order("day", "BUY", 10, "99.50")
    sim.order("gtc", "BUY", 10, "99.50", tif="GTC")
    (ev,) = execs(sim.venue.end_of_day(9))
    assert (ev.cl_ord_id, ev.exec_type, ev.ord_status) == (
        "day",
        ExecType.EXPIRED,
        OrdStatus.EXPIRED,
    )
    assert [o.cl_ord_id for o in sim.venue.open_orders()] == ["gtc"]


_BAD_ORDERS: list[tuple[dict[str, Any], OrdRejReason]] = [
    ({"symbol": "ZZZ"}, OrdRejReason.UNKNOWN_SYMBOL),
    ({"qty": D(0)}, OrdRejReason.INCORRECT_QUANTITY),
    ({"qty": D(-5)}, OrdRejReason.INCORRECT_QUANTITY),
    ({"qty": None}, OrdRejReason.INCORRECT_QUANTITY),
    ({"qty": "abc"}, OrdRejReason.INCORRECT_QUANTITY),
    ({"qty": Decimal("NaN")}, OrdRejReason.INCORRECT_QUANTITY),
    ({"qty": 1.5}, OrdRejReason.INCORRECT_QUANTITY),  # floats are never quantities
    ({"price": None}, OrdRejReason.OTHER),
    ({"price": D(0)}, OrdRejReason.OTHER),
    ({"side": "SIDEWAYS"}, OrdRejReason.OTHER),
    ({"ord_type": "STOP"}, OrdRejReason.UNSUPPORTED_ORDER_CHARACTERISTIC),
    ({"tif": "GTD"}, OrdRejReason.UNSUPPORTED_ORDER_CHARACTERISTIC),
]


@pytest.mark.parametrize(("bad", "reason"), _BAD_ORDERS, ids=lambda v: repr(v))
def test_bad_order_is_rejected_and_remembered_never_raised(
    sim: Sim, bad: dict[str, Any], reason: OrdRejReason
) -> None:
    args: dict[str, Any] = {
        "cl_ord_id": "x1",
        "symbol": "AAPL",
        "side": "BUY",
        "qty": D(10),
        "ord_type": "LIMIT",
        "price": D("99"),
        "tif": "DAY",
        "now_ns": 1,
    }
    args.update(bad)
    (rej,) = execs(sim.venue.new_order(**args))
    assert (rej.exec_type, rej.ord_status, rej.ord_rej_reason) == (
        ExecType.REJECTED,
        OrdStatus.REJECTED,
        reason,
    )
    assert rej.text and rej.order_id == "bk-O00000001"
    order = sim.venue.status("x1")
    assert order is not None and order.ord_status.order_status is OrderStatus.REJECTED


def test_order_without_clordid_is_rejected(sim: Sim) -> None:
    (rej,) = execs(sim.venue.new_order("", "AAPL", "BUY", D(1), "LIMIT", D(99), "DAY", 1))
    assert (rej.ord_rej_reason, rej.order_id) == (OrdRejReason.OTHER, NO_ORDER_ID)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"qty": D(0)},
        {"qty": "x"},
        {"ord_type": "STOP"},
        {"tif": "GTD"},
        {"price": D(-1)},
        {"symbol": "MSFT"},
        {"side": "SELL"},
        {"cl_ord_id": ""},
    ],
    ids=repr,
)
def test_bad_replace_is_a_cancel_reject_and_changes_nothing(
    sim: Sim, kwargs: dict[str, Any]
) -> None:
    sim.order("b1", "BUY", 10, "99.50")
    args: dict[str, Any] = {
        "cl_ord_id": "b2",
        "orig_cl_ord_id": "b1",
        "qty": D(5),
        "price": D("99.4"),
        "ord_type": None,
        "tif": None,
        "now_ns": 1,
    }
    args.update(kwargs)
    rej = only_cancel_reject(sim.venue.replace(**args))
    assert rej.cxl_rej_reason is CxlRejReason.OTHER and rej.text
    order = sim.venue.status("b1")
    assert order is not None and (order.order_qty, order.price) == (D(10), D("99.50"))
    assert sim.venue.status("b2") is None


def test_forced_reject_for_fault_injection(sim: Sim) -> None:
    events = sim.venue.new_order(
        "f1", "AAPL", "BUY", D(1), "LIMIT", D(99), "DAY", 1, force_reject="injected"
    )
    (rej,) = execs(events)
    assert (rej.ord_rej_reason, rej.text) == (OrdRejReason.OTHER, "injected")


def test_exec_ids_are_unique_and_increasing(sim: Sim) -> None:
    events = [
        *sim.order("b1", "BUY", 250, "100.02"),
        *sim.order("b1", "BUY", 1, "99"),
        *sim.replace("b2", "b1", 400, "100.02"),
        *sim.order("m1", "SELL", 50),
        *sim.cancel("c1", "b2"),
        *sim.venue.mass_cancel(1),
    ]
    ids = [e.exec_id for e in execs(events)]
    assert ids == sorted(set(ids)) and len(ids) == 9


def test_open_statuses_are_new_and_partially_filled() -> None:
    """`OrdStatus.is_open` (each member's attribute since issue 16, a property before):
    open exactly while NEW or PARTIALLY_FILLED, also for a member looked up by value."""
    assert {s for s in OrdStatus if s.is_open} == {OrdStatus.NEW, OrdStatus.PARTIALLY_FILLED}
    assert OrdStatus("1").is_open and not OrdStatus("2").is_open
