"""Pure FIX <-> message mapping: our requests as FIX bodies, FIX answers as our messages."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import pytest

from actors.connector.fix import mapping as fm
from protocol.messages import (
    CancelOnVenue,
    OrderStatus,
    OrdType,
    PlaceOrder,
    QueriedOrder,
    ReplaceOnVenue,
    Side,
    TimeInForce,
    VenueOrder,
)
from tests.connector.fix.support import fix_message

D = Decimal
NOW_S = 1_700_000_000.125


def as_dict(fields: Sequence[tuple[int, object]]) -> dict[int, str]:
    return {tag: format(v, "f") if isinstance(v, Decimal) else str(v) for tag, v in fields}


def test_limit_order_becomes_a_new_order_single_with_every_required_field() -> None:
    """PlaceOrder -> D: ClOrdID, Symbol, Side 1, OrderQty, OrdType 2, Price, TIF, TransactTime."""
    order = PlaceOrder(
        cl_ord_id="c1",
        symbol="AAPL",
        side=Side.BUY,
        qty=D("10"),
        order_type=OrdType.LIMIT,
        price=D("101.50"),
        tif=TimeInForce.GTC,
    )
    f = as_dict(fm.place_fields(order, NOW_S))
    assert f == {
        11: "c1",
        55: "AAPL",
        54: "1",
        38: "10",
        40: "2",
        44: "101.50",
        59: "1",
        60: "20231114-22:13:20.125",
    }


def test_market_order_carries_no_price() -> None:
    order = PlaceOrder(
        cl_ord_id="c2",
        symbol="AAPL",
        side=Side.SELL,
        qty=D("5"),
        order_type=OrdType.MARKET,
        tif=TimeInForce.IOC,
    )
    f = as_dict(fm.place_fields(order, NOW_S))
    assert (f[54], f[40], f[59]) == ("2", "1", "3") and 44 not in f


@pytest.mark.parametrize(
    ("tif", "code"),
    [
        (TimeInForce.DAY, "0"),
        (TimeInForce.GTC, "1"),
        (TimeInForce.IOC, "3"),
        (TimeInForce.FOK, "4"),
    ],
)
def test_time_in_force_codes(tif: TimeInForce, code: str) -> None:
    order = PlaceOrder(
        cl_ord_id="c",
        symbol="S",
        side=Side.BUY,
        qty=D(1),
        order_type=OrdType.LIMIT,
        price=D(1),
        tif=tif,
    )
    assert as_dict(fm.place_fields(order, NOW_S))[59] == code


def test_cancel_and_replace_name_the_original_order() -> None:
    """F and G carry OrigClOrdID(41) and the new request's ClOrdID(11)."""
    cancel = CancelOnVenue(
        cl_ord_id="c1.x1", orig_cl_ord_id="c1", symbol="AAPL", side=Side.SELL, qty=D("3")
    )
    f = as_dict(fm.cancel_fields(cancel, NOW_S))
    assert (f[11], f[41], f[54], f[38], f[55]) == ("c1.x1", "c1", "2", "3", "AAPL") and 60 in f
    replace = ReplaceOnVenue(
        cl_ord_id="c1.r1",
        orig_cl_ord_id="c1",
        symbol="AAPL",
        side=Side.BUY,
        qty=D("7"),
        order_type=OrdType.LIMIT,
        price=D("99"),
    )
    g = as_dict(fm.replace_fields(replace, NOW_S))
    assert (g[11], g[41], g[38], g[40], g[44], g[59]) == ("c1.r1", "c1", "7", "2", "99", "0")


def test_query_requests() -> None:
    """H carries ClOrdID, Symbol and Side (FIX 4.4 requires all three) and the request id."""
    ask = QueriedOrder(cl_ord_id="c1", symbol="MSFT", side=Side.SELL)
    h = fm.status_request_fields(ask, "S-1.0")
    assert as_dict(h) == {790: "S-1.0", 11: "c1", 55: "MSFT", 54: "2"}
    assert as_dict(fm.mass_status_fields("M-1")) == {584: "M-1", 585: "7"}
    an = as_dict(fm.positions_request_fields("P-1", "ACCT", NOW_S))
    assert (an[710], an[724], an[1], an[581], an[715]) == ("P-1", "0", "ACCT", "1", "20231114")
    q = as_dict(fm.mass_cancel_fields("MC-1", NOW_S))
    assert (q[11], q[530]) == ("MC-1", "7")


def er(*pairs: tuple[int, str]) -> list[tuple[int, str]]:
    base = {
        37: "O1",
        17: "X1",
        11: "c1",
        55: "AAPL",
        54: "1",
        38: "10",
        44: "100",
        151: "10",
        14: "0",
        6: "0",
        39: "0",
        150: "0",
        60: "20231114-22:13:20.125",
    }
    base.update(dict(pairs))
    return list(base.items())


@pytest.mark.parametrize(
    ("exec_type", "status", "kind"),
    [
        ("0", "0", "accepted"),
        ("F", "1", "fill"),
        ("4", "4", "cancelled"),
        ("5", "0", "replaced"),
        ("C", "C", "expired"),
        ("8", "8", "rejected"),
        ("D", "0", "status"),
    ],
)
def test_exec_type_maps_to_the_contract_kind(exec_type: str, status: str, kind: str) -> None:
    report = fm.to_exec_report(fix_message(er((150, exec_type), (39, status))), "simA")
    assert report is not None
    assert (report.kind, report.exec_id, report.ord_status, report.venue) == (
        kind,
        "X1",
        fm.ORD_STATUS_FROM_FIX[status],
        "simA",
    )


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("0", OrderStatus.ACCEPTED),
        ("1", OrderStatus.PARTIALLY_FILLED),
        ("2", OrderStatus.FILLED),
        ("4", OrderStatus.CANCELLED),
        ("6", OrderStatus.PENDING_CANCEL),
        ("8", OrderStatus.REJECTED),
        ("A", OrderStatus.PENDING_SUBMIT),
        ("C", OrderStatus.EXPIRED),
        ("E", OrderStatus.PENDING_REPLACE),
        ("3", None),  # done for day: nothing we act on
        (None, None),  # absent
    ],
)
def test_ord_status_reaches_the_oms_as_our_status(code: str | None, status: object) -> None:
    """OrdStatus (39) is translated here, at the venue boundary: the OMS gets our
    OrderStatus, or None when the venue said nothing it acts on."""
    pairs = [p for p in er((150, "D"), (39, code or "")) if code is not None or p[0] != 39]
    report = fm.to_exec_report(fix_message(pairs), "v")
    assert report is not None and report.ord_status is status


def test_fill_carries_quantities_prices_and_the_venue_time() -> None:
    msg = fix_message(
        er((150, "F"), (39, "1"), (32, "4"), (31, "100.25"), (14, "4"), (6, "100.25"), (151, "6"))
    )
    r = fm.to_exec_report(msg, "v")
    assert r is not None
    assert (r.last_qty, r.last_px, r.cum_qty, r.avg_px, r.leaves_qty) == (
        D("4"),
        D("100.25"),
        D("4"),
        D("100.25"),
        D("6"),
    )
    assert (r.side, r.symbol, r.order_qty, r.price, r.venue_order_id) == (
        Side.BUY,
        "AAPL",
        D("10"),
        D("100"),
        "O1",
    )
    assert r.venue_ts_ns == 1_700_000_000_125_000_000


def test_cancelled_names_the_cancel_request_and_the_order() -> None:
    r = fm.to_exec_report(fix_message(er((150, "4"), (39, "4"), (11, "c1.x1"), (41, "c1"))), "v")
    assert r is not None and (r.cl_ord_id, r.orig_cl_ord_id) == ("c1.x1", "c1")


def test_duplicate_clordid_reject_is_flagged_for_the_oms() -> None:
    """OrdRejReason 6 -> reject_reason DUPLICATE_ORDER, and the text says duplicate."""
    msg = fix_message(
        er((150, "8"), (39, "8"), (103, "6"), (58, "ClOrdID already used"), (37, "NONE"))
    )
    r = fm.to_exec_report(msg, "v")
    assert r is not None and r.kind == "rejected" and r.reject_reason == "DUPLICATE_ORDER"
    assert "duplicate" in r.text.lower() and r.venue_order_id == ""
    other = fm.to_exec_report(fix_message(er((150, "8"), (39, "8"), (103, "1"))), "v")
    assert other is not None and other.reject_reason == ""


@pytest.mark.parametrize("exec_type", ["I", "6", "E", "A", "Z"])
def test_status_pending_and_unsupported_exec_types_are_not_forwarded(exec_type: str) -> None:
    assert fm.to_exec_report(fix_message(er((150, exec_type))), "v") is None


def test_an_exec_without_exec_id_is_not_forwarded() -> None:
    pairs = [p for p in er() if p[0] != 17]
    assert fm.to_exec_report(fix_message(pairs), "v") is None


def test_cancel_reject_gets_a_synthetic_exec_id() -> None:
    """35=9 has no ExecID: exec_id is cxlrej:<ClOrdID>, kind cancel_rejected."""
    msg = fix_message(
        [(37, "O1"), (11, "c1.x2"), (41, "c1"), (39, "2"), (434, "1"), (58, "too late")]
    )
    r = fm.cancel_reject_report(msg, "v")
    assert r is not None
    assert (r.exec_id, r.kind, r.cl_ord_id, r.orig_cl_ord_id, r.text, r.ord_status) == (
        "cxlrej:c1.x2",
        "cancel_rejected",
        "c1.x2",
        "c1",
        "too late",
        OrderStatus.FILLED,
    )


def test_status_answer_becomes_a_venue_order() -> None:
    msg = fix_message(er((150, "I"), (39, "1"), (14, "4"), (6, "100.5"), (151, "6"), (40, "2")))
    vo = fm.to_venue_order(msg)
    assert vo is not None
    assert (vo.cl_ord_id, vo.status, vo.cum_qty, vo.avg_px, vo.leaves_qty, vo.order_type) == (
        "c1",
        OrderStatus.PARTIALLY_FILLED,
        D("4"),
        D("100.5"),
        D("6"),
        OrdType.LIMIT,
    )
    assert not fm.is_unknown_order(msg)


@pytest.mark.parametrize(
    "fields",
    [
        [(150, "I"), (39, "1"), (14, "4"), (6, "100.5"), (151, "6"), (40, "2")],
        [(150, "I"), (39, "0"), (44, "junk"), (38, "1E+999"), (40, "9"), (37, "NONE")],
        [(150, "I"), (39, "?"), (14, "-0.00"), (55, "ES Z6")],
    ],
)
def test_a_venue_order_is_the_model_validation_would_build(fields: list[tuple[int, str]]) -> None:
    """`to_venue_order` builds without validating again (every value is checked as it is
    read): the same model, values, types and fields set as pydantic's validation of them."""
    vo = fm.to_venue_order(fix_message(er(*fields)))
    assert vo is not None
    checked = VenueOrder.model_validate(vo.model_dump())
    assert checked == vo and checked.model_fields_set == vo.model_fields_set
    assert [type(v) for v in checked.__dict__.values()] == [type(v) for v in vo.__dict__.values()]
    assert vo.model_fields_set == set(VenueOrder.model_fields)


def test_unknown_order_answer_is_recognised() -> None:
    """OrdStatus 8 with OrdRejReason 5 (or Text UNKNOWN_ORDER) means never seen."""
    assert fm.is_unknown_order(fix_message([(150, "I"), (39, "8"), (103, "5")]))
    assert fm.is_unknown_order(fix_message([(150, "I"), (39, "8"), (58, "unknown order")]))
    assert not fm.is_unknown_order(fix_message([(150, "I"), (39, "8"), (103, "6")]))


def test_position_report_nets_long_and_short() -> None:
    msg = fix_message([(710, "P"), (55, "AAPL"), (704, "10"), (705, "25"), (730, "101.5")])
    row = fm.to_position(msg, "v")
    assert row is not None and (row.symbol, row.qty, row.avg_px) == ("AAPL", D("-15"), D("101.5"))


def test_garbage_numbers_do_not_raise() -> None:
    msg = fix_message(er((150, "F"), (32, "abc"), (31, "NaN"), (14, "1e999999999")))
    r = fm.to_exec_report(msg, "v")
    assert r is not None and r.last_qty == 0 and r.last_px == 0
