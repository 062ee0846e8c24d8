"""The checker's reached-the-venue-once checks (sends.py) against an exchange's refusals:
a refusal excuses no send it is not of (another symbol or side), one resubmit explains one
extra send, and a client id refused after the exchange took it was sent again (a resubmit
of an order in flight, or a replace's leg sent twice). Pure: hand-made inspections.
(From the fresh-eyes review of branch soak; each failed at a5160bb.)"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from tests.chaos.checker import Observations, check
from tests.chaos.test_checker import consistent, entry, oms_order
from tests.chaos.xview import exchange_view

BASELINE = {"BTC": "1000", "ETH": "1000"}
SYMBOLS = ["BTC/USDT", "ETH/USDT"]
NO_FUNDS = "Account has insufficient balance for requested action."
SENT_ONCE = ("acked_order_at_venue_exactly_once", "no_inflight_resubmit")


def _xorder(oid: int, cl: str, status: str, qty: str, filled: str, created: int) -> Any:
    return {
        "order_id": oid, "client_order_id": cl, "symbol": "BTC/USDT", "market_id": "BTCUSDT",
        "side": "BUY", "type": "LIMIT", "time_in_force": "GTC", "qty": qty,
        "price": "60000.00", "status": status, "filled_qty": filled,
        "created_ms": created, "updated_ms": created,
    }  # fmt: skip


def _refusal(cl: str, at_ms: int, *, symbol: str = "BTC/USDT", side: str = "BUY") -> Any:
    """A refusal as an older exchange log shows it (no qty, no prior order id): the view
    judges `after_order` by the times."""
    return {"client_order_id": cl, "symbol": symbol, "market_id": symbol.replace("/", ""),
            "side": side, "code": -2010, "msg": NO_FUNDS, "time_ms": at_ms}  # fmt: skip


def _inspection(orders: list[Any], trades: list[Any], refusals: list[Any], btc: str) -> Any:
    return {
        "venue": "bx", "orders": orders, "trades": trades, "refusals": refusals,
        "balances": {"BTC": {"free": btc, "locked": "0", "total": btc},
                     "USDT": {"free": "1000000", "locked": "0", "total": "1000000"}},
    }  # fmt: skip


def _violations(obs: Observations) -> dict[str, int]:
    inv = check(obs).invariants
    return {k: inv[k].violations for k in SENT_ONCE}


def _oms(coid: str, status: str, **kw: Any) -> dict[str, Any]:
    return oms_order(coid, status, venue="bx", **kw) | {"symbol": "BTC/USDT"}


def test_a_resubmit_refused_after_the_exchange_took_the_order_is_a_second_send() -> None:
    """c1 was taken by the exchange at t=1 and filled; later (t=5) the OMS resubmitted c1
    (a reconciliation pass judged it unseen while the submit was in flight: issue 16) and
    the exchange refused the resubmit for funds, so no second order exists. The exchange
    HAD c1 when it was resubmitted: `no_inflight_resubmit` must say so, as it does when the
    resubmit is taken (a second order) or refused as a duplicate (c1 still open).
    (Was valid: the refusal + order passed as 'refused, answer lost, resubmitted'.)"""
    orders = [_xorder(1, "c1", "FILLED", "0.001", "0.001", created=1)]
    trades = [{"trade_id": 1, "order_id": "1", "symbol": "BTC/USDT", "side": "BUY",
               "qty": "0.001", "price": "60000"}]  # fmt: skip
    view = exchange_view(
        _inspection(orders, trades, [_refusal("c1", at_ms=5)], "1000.001"), BASELINE, SYMBOLS
    )
    obs = Observations(
        history=[entry("c1", venue="bx")],
        oms_orders=[_oms("c1", "FILLED", cum="0.001", avg="60000", qty="0.001")],
        oms_positions=[],
        venues={"bx": view},
        resubmits=[{"venue": "bx", "cl_ord_id": "c1", "client_order_id": "c1"}],
    )
    assert _violations(obs)["no_inflight_resubmit"] == 1, _violations(obs)
    # as the sim records it: the order id it had under c1 when it refused (the same ms)
    sim = _refusal("c1", at_ms=1) | {"qty": "0.001", "prior_order_id": 1}
    view = exchange_view(_inspection(orders, trades, [sim], "1000.001"), BASELINE, SYMBOLS)
    assert view["rejects"][0]["after_order"]
    assert _violations(replace(obs, venues={"bx": view}))["no_inflight_resubmit"] == 1
    # refused first (no prior order), answer lost, resubmitted and taken: one send each
    first = _refusal("c1", at_ms=1) | {"qty": "0.001", "prior_order_id": None}
    view = exchange_view(_inspection(orders, trades, [first], "1000.001"), BASELINE, SYMBOLS)
    assert _violations(replace(obs, venues={"bx": view})) == dict.fromkeys(SENT_ONCE, 0)


@pytest.mark.parametrize(
    ("n_refusals", "orders"),
    [(3, []), (2, [_xorder(1, "c1", "CANCELED", "0.001", "0", created=9)])],
    ids=["three_refusals_one_resubmit", "two_refusals_and_an_order_one_resubmit"],
)
def test_more_sends_than_one_plus_the_resubmits_is_a_violation(
    n_refusals: int, orders: list[Any]
) -> None:
    """One resubmit explains one extra send, not two: three sends of c1 (refusals, or
    refusals and an order) with one `order_resubmitted` is a send nobody asked for.
    (Was valid: any resubmit of c1 excused any number of sends.)"""
    refusals = [_refusal("c1", at_ms=i + 1) for i in range(n_refusals)]
    view = exchange_view(_inspection(orders, [], refusals, "1000"), BASELINE, SYMBOLS)
    status = "CANCELLED" if orders else "REJECTED"
    obs = Observations(
        history=[entry("c1", venue="bx")],
        oms_orders=[_oms("c1", status, cum="0", avg="0", qty="0.001", reason=NO_FUNDS)],
        oms_positions=[],
        venues={"bx": view},
        resubmits=[{"venue": "bx", "cl_ord_id": "c1", "client_order_id": "c1"}],
    )
    assert _violations(obs)["acked_order_at_venue_exactly_once"] >= 1


def test_a_refusal_of_another_symbol_and_side_is_not_this_orders_send() -> None:
    """The OMS has c1 as a BUY of BTC/USDT, REJECTED; the exchange's only refusal under c1
    is a SELL of ETH/USDT (the connector sent something else under c1, or the refusal is
    another order's). The refusal says nothing about the BTC buy reaching the exchange.
    (Was valid: refusals were matched by client id only.)"""
    view = exchange_view(
        _inspection([], [], [_refusal("c1", 1, symbol="ETH/USDT", side="SELL")], "1000"),
        BASELINE,
        SYMBOLS,
    )
    obs = Observations(
        history=[entry("c1", venue="bx")],
        oms_orders=[_oms("c1", "REJECTED", cum="0", avg="0", qty="0.001", reason=NO_FUNDS)],
        oms_positions=[],
        venues={"bx": view},
    )
    assert _violations(obs)["acked_order_at_venue_exactly_once"] >= 1


def test_a_second_send_refused_as_a_duplicate_without_a_resubmit_is_a_second_send() -> None:
    """c1 rests at the exchange; a new order c1 came again (not a resubmit: no
    `order_resubmitted`) and the exchange refused it as a duplicate: c1 was sent twice
    (had c1 been filled, the exchange would have taken it: a second trade)."""
    orders = [_xorder(1, "c1", "NEW", "0.001", "0", created=1)]
    dup = _refusal("c1", 5) | {"msg": "Duplicate order sent.", "qty": "0.001", "prior_order_id": 1}
    view = exchange_view(_inspection(orders, [], [dup], "1000"), BASELINE, SYMBOLS)
    obs = Observations(
        history=[entry("c1", venue="bx")],
        oms_orders=[_oms("c1", "ACCEPTED", cum="0", avg="0", qty="0.001")],
        oms_positions=[],
        venues={"bx": view},
    )
    assert check(obs).invariants["no_duplicate_cl_ord_id"].violations == 1


@pytest.mark.parametrize("poss_dup", [False, True])
def test_a_fix_venues_duplicate_reject_without_a_resubmit(poss_dup: bool) -> None:
    """A FIX venue refused r1 as a duplicate ClOrdID and nobody resubmitted r1: a new D
    under r1 came again, a second send; in a PossDup copy (the venue asked for its
    messages again after a restart and got the same D) it is none."""
    world = consistent()
    world["venues"]["simA"]["rejects"] = [
        {"cl_ord_id": "r1", "exec_id": "R1", "text": "duplicate ClOrdID", "ord_rej_reason": 6,
         "poss_dup": poss_dup},
    ]  # fmt: skip
    found = check(Observations(**world)).invariants["no_duplicate_cl_ord_id"].violations
    assert found == (0 if poss_dup else 1)


def test_a_replace_leg_sent_again_after_the_exchange_took_it_is_a_second_send() -> None:
    """c1 was replaced: the exchange took the new leg c1.r1 at t=3; at t=5 a new order
    c1.r1 came again and was refused for funds. The exchange held c1.r1 when it came: a
    second send of the replace's leg. No invariant counts the sends of a replace's leg
    (refusals are looked up by the chain head only); two accepted c1.r1 would be
    `no_duplicate_cl_ord_id`. (Was valid.)"""
    orders = [
        _xorder(1, "c1", "CANCELED", "0.001", "0", created=1),
        _xorder(2, "c1.r1", "NEW", "0.002", "0", created=3),
    ]
    view = exchange_view(
        _inspection(orders, [], [_refusal("c1.r1", at_ms=5)], "1000"), BASELINE, SYMBOLS
    )
    obs = Observations(
        history=[entry("c1", venue="bx")],
        oms_orders=[_oms("c1", "ACCEPTED", cum="0", avg="0", qty="0.002")],
        oms_positions=[],
        venues={"bx": view},
    )
    assert check(obs).invariants["no_duplicate_cl_ord_id"].violations == 1


@pytest.mark.parametrize(
    ("qty", "valid"), [("0.001", True), ("0.0010", True), ("0.002", False)], ids=str
)
def test_a_refusal_of_another_quantity_is_not_this_orders_send(qty: str, valid: bool) -> None:
    """The only refusal under c1 is a BUY of BTC/USDT as the OMS's c1, of `qty`: of the
    OMS's 0.001 it is c1's send (the run is valid), of 0.002 it is some other order's."""
    ref = _refusal("c1", 1) | {"qty": qty, "prior_order_id": None}
    view = exchange_view(_inspection([], [], [ref], "1000"), BASELINE, SYMBOLS)
    obs = Observations(
        history=[entry("c1", venue="bx")],
        oms_orders=[_oms("c1", "REJECTED", cum="0", avg="0", qty="0.001", reason=NO_FUNDS)],
        oms_positions=[],
        venues={"bx": view},
    )
    assert check(obs).valid is valid
