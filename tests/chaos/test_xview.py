"""The ccxt venue in the chaos harness, without processes: the exchange's inspection as the
checker's venue view (chains of a replace, statuses, fills, positions from balances,
client ids used twice), the checker's verdict on them, and the nemesis's schedule with
and without an exchange."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

from tests.chaos.checker import Observations, check
from tests.chaos.nemesis import DEFAULT_MIX, EXCHANGE_FAULTS, VENUE_FAULTS, FaultPlanner
from tests.chaos.test_checker import entry, oms_order
from tests.chaos.xview import chain_head, exchange_view

BASELINE = {"BTC": "1000", "ETH": "1000"}
SYMBOLS = ["BTC/USDT", "ETH/USDT"]


def xorder(
    oid: int, cl: str, status: str, qty: str, filled: str = "0", symbol: str = "BTC/USDT"
) -> dict[str, Any]:
    """An order row of `python -m actors.exchangesim inspect --json`."""
    return {
        "order_id": oid, "client_order_id": cl, "symbol": symbol,
        "market_id": symbol.replace("/", ""),
        "side": "BUY", "type": "LIMIT", "time_in_force": "GTC", "qty": qty,
        "price": "60000.00", "status": status, "filled_qty": filled,
    }  # fmt: skip


def xtrade(
    tid: int, oid: int, qty: str, price: str = "60000", symbol: str = "BTC/USDT"
) -> dict[str, Any]:
    return {"trade_id": tid, "order_id": str(oid), "symbol": symbol, "side": "BUY",
            "qty": qty, "price": price}  # fmt: skip


def inspection(orders: list[dict[str, Any]], trades: list[dict[str, Any]], btc: str) -> Any:
    return {
        "venue": "bx",
        "orders": orders,
        "trades": trades,
        "balances": {"BTC": {"free": btc, "locked": "0", "total": btc},
                     "USDT": {"free": "1000000", "locked": "0", "total": "1000000"}},
    }  # fmt: skip


def test_chain_head_strips_one_request_suffix() -> None:
    assert chain_head("k1-0-5") == "k1-0-5"
    assert chain_head("k1-0-5.r2") == "k1-0-5"
    assert chain_head("k1-0-5.c1") == "k1-0-5"
    assert chain_head("h.ABCDEF.r1") == "h.ABCDEF"


def test_a_replaced_order_is_one_chain_with_the_fills_of_both_exchange_orders() -> None:
    """c1 filled 0.001 then was replaced (cancel + new 0.002 of the rest of 0.003): one
    order, 0.003 in total, both fills with the connector's exec ids, PARTIALLY_FILLED while
    the new one rests; the position is the BTC balance above the baseline."""
    view = exchange_view(
        inspection(
            [xorder(7, "c1.r1", "NEW", "0.002"), xorder(3, "c1", "CANCELED", "0.004", "0.001")],
            [xtrade(11, 3, "0.001", "60010")],
            "1000.001",
        ),
        BASELINE,
        SYMBOLS,
    )
    [order] = view["orders"]
    assert order["cl_ord_ids"] == ["c1", "c1.r1"] and order["order_id"] == "BTC/USDT:3"
    assert (order["status"], order["order_qty"], order["cum_qty"]) == (
        "PARTIALLY_FILLED",
        "0.003",
        "0.001",
    )
    assert order["fills"] == [{"exec_id": "BTC/USDT:3:t11", "qty": "0.001", "px": "60010"}]
    assert Decimal(order["avg_px"]) == Decimal("60010")
    assert view["positions"] == {"BTC/USDT": {"net_qty": "0.001"}, "ETH/USDT": {"net_qty": "0"}}
    assert view["duplicate_client_ids"] == []


def test_two_symbols_orders_and_trades_under_one_id_are_two_orders() -> None:
    """The exchange numbers orders and trades per symbol: BTC/USDT's order 3 (trade 11) and
    ETH/USDT's order 3 (trade 11) are two chains, each with its own fill, exec ids as the
    connector's (`<symbol>:<order id>:t<trade id>`), none "twice" for the checker."""
    view = exchange_view(
        inspection(
            [xorder(3, "c1", "FILLED", "0.001", "0.001"),
             xorder(3, "e1", "FILLED", "0.01", "0.01", symbol="ETH/USDT")],
            [xtrade(11, 3, "0.001"), xtrade(11, 3, "0.01", "3000", symbol="ETH/USDT")],
            "1000.001",
        ),
        BASELINE,
        SYMBOLS,
    )  # fmt: skip
    assert [(o["order_id"], o["cum_qty"], o["fills"]) for o in view["orders"]] == [
        ("BTC/USDT:3", "0.001", [{"exec_id": "BTC/USDT:3:t11", "qty": "0.001", "px": "60000"}]),
        ("ETH/USDT:3", "0.01", [{"exec_id": "ETH/USDT:3:t11", "qty": "0.01", "px": "3000"}]),
    ]


def test_exchange_statuses_in_the_oms_words() -> None:
    view = exchange_view(
        inspection(
            [
                xorder(1, "a", "NEW", "1"),
                xorder(2, "b", "CANCELED", "1"),
                xorder(3, "c", "EXPIRED", "1"),
                xorder(4, "d", "FILLED", "1", "1"),
            ],
            [xtrade(1, 4, "1")],
            "1001",
        ),
        BASELINE,
        SYMBOLS,
    )
    assert [o["status"] for o in view["orders"]] == ["ACCEPTED", "CANCELLED", "EXPIRED", "FILLED"]


def _observations(view: dict[str, Any], resubmits: list[dict[str, Any]]) -> Observations:
    return Observations(
        history=[entry("c1", venue="bx")],
        oms_orders=[],
        oms_positions=[],
        venues={"bx": view},
        resubmits=resubmits,
    )


def test_a_client_id_on_two_exchange_orders_is_a_duplicate() -> None:
    """The exchange took c1 again after the first c1 filled: a second send. Had the OMS
    resubmitted c1 (on the exchange's word that it never saw it), the resubmit is what is
    judged: it was of an order in flight."""
    orders = [xorder(1, "c1", "FILLED", "0.001", "0.001"), xorder(2, "c1", "NEW", "0.001")]
    view = exchange_view(inspection(orders, [xtrade(1, 1, "0.001")], "1000.001"), BASELINE, SYMBOLS)
    assert view["duplicate_client_ids"] == ["c1"]
    plain = check(_observations(view, [])).invariants
    assert plain["no_duplicate_cl_ord_id"].violations == 1
    assert plain["no_inflight_resubmit"].violations == 0
    resubmitted = check(_observations(view, [{"venue": "bx", "cl_ord_id": "c1"}])).invariants
    assert resubmitted["no_duplicate_cl_ord_id"].violations == 0
    assert resubmitted["no_inflight_resubmit"].violations == 1


NO_FUNDS = "Account has insufficient balance for requested action."


def refusal(
    cl: str, msg: str = NO_FUNDS, code: int = -2010, qty: str = "10", prior: int | None = None
) -> dict[str, Any]:
    """A `refusals` row of the exchange's inspection."""
    return {"client_order_id": cl, "symbol": "BTC/USDT", "market_id": "BTCUSDT",
            "side": "BUY", "qty": qty, "code": code, "msg": msg, "time_ms": 1,
            "prior_order_id": prior}  # fmt: skip


def _refused_world(refusals: list[dict[str, Any]], resubmits: list[Any] | None = None) -> Any:
    """r1 acknowledged to the client, REJECTED by the OMS with the exchange's reason; the
    exchange holds no order r1 and refused what `refusals` lists."""
    data = inspection([], [], "1000") | {"refusals": refusals}
    return Observations(
        history=[entry("r1", venue="bx")],
        oms_orders=[
            oms_order("r1", "REJECTED", venue="bx", cum="0", avg="0", reason=f"{NO_FUNDS} (-2010)")
            | {"symbol": "BTC/USDT"}
        ],  # fmt: skip
        oms_positions=[],
        venues={"bx": exchange_view(data, BASELINE, SYMBOLS)},
        resubmits=resubmits or [],
    )


def test_an_order_the_exchange_refused_once_reached_it_exactly_once() -> None:
    """The exchange refused r1 for funds (-2010) and recorded it: r1 reached the venue once
    and was refused there, as a FIX venue's reject; the run is valid and counts it."""
    view = exchange_view(inspection([], [], "1000") | {"refusals": [refusal("r1")]}, BASELINE,
                         SYMBOLS)  # fmt: skip
    assert view["rejects"] == [
        {"cl_ord_id": "r1", "code": -2010, "text": f"{NO_FUNDS} (-2010)", "time_ms": 1,
         "symbol": "BTC/USDT", "side": "BUY", "qty": "10", "after_order": False}
    ]  # fmt: skip
    result = check(_refused_world([refusal("r1")]))
    assert result.valid, result.to_dict()["invariants"]
    assert result.stats["venue_refusals"] == {"bx": 1}


def test_a_refusal_the_exchange_did_not_record_is_a_violation() -> None:
    """The OMS says the exchange refused r1, the exchange has no trace of it (no order, no
    refusal; or only another order's refusal): r1 is not at the venue."""
    for refusals in ([], [refusal("other")]):
        found = check(_refused_world(refusals)).invariants
        assert found["acked_order_at_venue_exactly_once"].violations == 1, refusals


def test_an_order_sent_twice_is_a_violation_whether_refused_or_accepted() -> None:
    """Two refusals of r1, or a refusal and an order r1: r1 was sent twice; fine only when
    the OMS resubmitted it on the exchange's word that it had no such order (then the
    resubmit is what `no_inflight_resubmit` judges). A duplicate's refusal ("Duplicate
    order sent.") leaves one order there, but c1 was sent twice."""
    twice = check(_refused_world([refusal("r1"), refusal("r1")])).invariants
    assert twice["acked_order_at_venue_exactly_once"].violations == 1
    resubmit = [{"venue": "bx", "cl_ord_id": "r1"}]
    again = check(_refused_world([refusal("r1"), refusal("r1")], resubmit)).invariants
    assert again["acked_order_at_venue_exactly_once"].violations == 0
    dup = refusal("c1", "Duplicate order sent.")
    orders = [xorder(1, "c1", "NEW", "0.001")]
    view = exchange_view(inspection(orders, [], "1000") | {"refusals": [dup]}, BASELINE, SYMBOLS)
    assert view["rejects"][0]["ord_rej_reason"] == 6
    obs = Observations(
        history=[entry("c1", venue="bx")],
        oms_orders=[oms_order("c1", "ACCEPTED", venue="bx", cum="0", avg="0", qty="0.001")],
        oms_positions=[],
        venues={"bx": view},
    )
    dup_found = check(obs).invariants
    assert dup_found["acked_order_at_venue_exactly_once"].violations == 0
    assert dup_found["no_duplicate_cl_ord_id"].violations == 1  # but c1 was sent again
    view = exchange_view(
        inspection(orders, [], "1000") | {"refusals": [refusal("c1")]}, BASELINE, SYMBOLS
    )
    found = check(replace(obs, venues={"bx": view})).invariants
    assert found["acked_order_at_venue_exactly_once"].violations == 1


def test_the_settle_converges_on_a_refused_order_resubmitted_and_accepted() -> None:
    """The exchange refused c1 for funds, the answer was lost, the OMS resubmitted c1 on the
    exchange's word that it had no such order and the exchange took it: the settle's
    check judges it as the final check does (the resubmit in the log), so the settle
    converges instead of waiting out its deadline (seed 21, under-funded, did: 122 s)."""
    from tests.chaos.settle import has_converged, settle_check

    orders = [xorder(1, "c1", "CANCELED", "0.001")]
    view = exchange_view(
        inspection(orders, [], "1000") | {"refusals": [refusal("c1")]}, BASELINE, SYMBOLS
    )
    obs = {
        "oms_orders": [oms_order("c1", "CANCELLED", venue="bx", cum="0", avg="0", qty="0.001")],
        "oms_positions": [],
        "venues": {"bx": view},
    }
    history = [entry("c1", venue="bx")]
    lines = [
        {"event": "order_accepted", "venue": "bx", "cl_ord_id": "c1"},
        {"event": "order_resubmitted", "venue": "bx", "cl_ord_id": "c1"},
    ]
    assert has_converged(settle_check(obs, history, lines, sweep=True))
    assert not has_converged(settle_check(obs, history, lines[:1], sweep=True))


def test_fix_only_schedule_is_the_one_drawn_before_exchanges_existed() -> None:
    """Without an exchange, no exchange fault is drawn and the rest of the schedule does
    not move (the default mix gained the exchange kinds)."""
    fix_mix = {k: w for k, w in DEFAULT_MIX.items() if k not in EXCHANGE_FAULTS}
    with_x = FaultPlanner(736, 2.0, DEFAULT_MIX, ("simA", "simB")).take(200)
    without = FaultPlanner(736, 2.0, fix_mix, ("simA", "simB")).take(200)
    assert with_x == without
    assert not {f.kind for f in with_x} & set(EXCHANGE_FAULTS)


def test_exchange_faults_target_the_exchanges_and_fix_faults_the_fix_venues() -> None:
    planner = FaultPlanner(3, 2.0, DEFAULT_MIX, ("simA", "simB"), exchanges=("bx",))
    faults = planner.take(400)
    assert {f.target for f in faults if f.kind in EXCHANGE_FAULTS} == {"bx"}
    assert {f.target for f in faults if f.kind in VENUE_FAULTS} == {"simA", "simB"}
    assert {f.kind for f in faults} >= set(EXCHANGE_FAULTS)
    assert "connector.bx" in {f.target for f in faults if f.kind == "sigkill"}
    assert all(f.params["count"] >= 1 for f in faults if f.kind == "http_5xx")
