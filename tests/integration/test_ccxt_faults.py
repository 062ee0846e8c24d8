"""The ccxt venue's harder cases through the real system (supervisor, OMS, the ccxt
connector, the local exchange as real processes): an answer lost after the exchange took
a replace's new order or a resting order, a 503 on a cancel, the connector killed -9 mid
submit of a resting order. Each ends with the OMS equal to the exchange's inspection
(`tests.integration.ccxt_support.compare`), nothing sent twice."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from protocol.client import ExecutionClient
from protocol.messages import OrderStatus
from tests.helpers import eventually
from tests.integration.ccxt_support import (
    BTC,
    CONNECTOR,
    CRASH_POINTS,
    VENUE,
    CcxtSystem,
    fills_once,
    running,
    settle,
)
from tests.system_ops import (
    client,
    exchange_fault,
    inspect_exchange,
    kill_switch,
    submit_when_open,
)

pytestmark = pytest.mark.integration
D = Decimal
LOW_BID = "59000.00"
TOP_ASK = "60000.05"
EXCHANGE = f"exchangesim.{VENUE}"
REPLACE_CUT = "ccxt_replace_before_cancel"  # a replace taken, its cancel not sent


@pytest.fixture(scope="module")
def sut() -> Iterator[CcxtSystem]:
    yield from running(CcxtSystem(crash_at=(*CRASH_POINTS, REPLACE_CUT)))


@pytest.fixture(scope="module")
def c(sut: CcxtSystem) -> Iterator[ExecutionClient]:
    with client(sut) as ec:
        yield ec


def _rest(c: ExecutionClient, coid: str, qty: str = "0.01", price: str = LOW_BID) -> None:
    submit_when_open(c, VENUE, "BUY", qty, price, client_order_id=coid, tif="GTC", symbol=BTC)


def _status(c: ExecutionClient, coid: str, *statuses: OrderStatus, timeout_s: float = 15.0) -> None:
    eventually(lambda: c.get_order(coid).status in statuses, timeout_s,
               message=lambda: f"{coid}: {c.get_order(coid)}")  # fmt: skip


def test_resting_order_answer_lost_after_acceptance(sut: CcxtSystem, c: ExecutionClient) -> None:
    """The exchange takes a resting limit order and withholds the answer: the lookup by
    client id finds it, ACCEPTED, once at the exchange."""
    since = sut.mark()
    exchange_fault(sut, VENUE, "timeout_after_accept", 1)
    _rest(c, "tmo-rest")
    _status(c, "tmo-rest", OrderStatus.ACCEPTED)
    sut.wait_event("ccxt_submit_failed", 5.0, since=since, cl_ord_id="tmo-rest")
    settle(c, sut, ["tmo-rest"])


def test_replace_whose_new_order_answer_is_lost(sut: CcxtSystem, c: ExecutionClient) -> None:
    """A replace is cancel + new; the exchange takes the new order and withholds the
    answer. The new order rests at the exchange: the OMS must end with the order replaced
    (the new qty and price, ACCEPTED under the replace's id), not cancelled with an order
    nobody manages left on the book."""
    _rest(c, "rep-tmo")
    _status(c, "rep-tmo", OrderStatus.ACCEPTED)
    exchange_fault(sut, VENUE, "timeout_after_accept", 1)
    since = sut.mark()
    c.replace("rep-tmo", qty="0.02", price="59100.00")
    final = settle(c, sut, ["rep-tmo"])
    assert not sut.events("exec_refused", since=since), sut.events("exec_refused", since=since)
    view = final.oms["rep-tmo"]
    assert (view.status, view.cl_ord_id) == (OrderStatus.ACCEPTED, "rep-tmo.r1")
    assert (view.qty, view.price) == (D("0.02"), D("59100.00"))
    assert final.order("rep-tmo.r1")["status"] == "NEW"


def test_cancel_met_by_a_503(sut: CcxtSystem, c: ExecutionClient) -> None:
    """The exchange answers 503 (not processed) to a cancel: the order is still resting;
    the OMS ends with it as the exchange has it, and a second cancel goes through."""
    _rest(c, "c503")
    _status(c, "c503", OrderStatus.ACCEPTED)
    exchange_fault(sut, VENUE, "http_5xx", 1)
    c.cancel("c503")
    settle(c, sut, ["c503"])
    if c.get_order("c503").status is not OrderStatus.CANCELLED:
        c.cancel("c503")
    _status(c, "c503", OrderStatus.CANCELLED)
    settle(c, sut, ["c503"])


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_kill9_mid_submit_of_a_resting_order(
    sut: CcxtSystem, c: ExecutionClient, point: str
) -> None:
    """The connector killed -9 at a crash point of a resting order's submit: the order
    ends ACCEPTED, once at the exchange."""
    coid = f"krest-{CRASH_POINTS.index(point)}"
    since = sut.mark()
    sut.arm(point)
    _rest(c, coid)
    sut.wait_event("injected_crash", 10.0, since=since, point=point)
    sut.wait_event("actor_ready", 15.0, since=since, child=CONNECTOR)
    _status(c, coid, OrderStatus.ACCEPTED, timeout_s=20.0)
    settle(c, sut, [coid])


def test_refused_by_the_exchange_and_expired_market_orders(
    sut: CcxtSystem, c: ExecutionClient
) -> None:
    """A sell of more than the account holds: REJECTED with the exchange's reason, never an
    order there. A market buy larger than the quoted liquidity: what is quoted fills, the
    rest expires (EXPIRED, cum as at the exchange)."""
    submit_when_open(c, VENUE, "SELL", "2000", None, client_order_id="nofunds", tif="IOC",
                     symbol=BTC)  # fmt: skip
    _status(c, "nofunds", OrderStatus.REJECTED)
    assert "insufficient" in c.get_order("nofunds").reason.lower(), c.get_order("nofunds")
    submit_when_open(c, VENUE, "BUY", "0.5", None, client_order_id="ioc-big", tif="IOC",
                     symbol=BTC)  # fmt: skip
    _status(c, "ioc-big", OrderStatus.EXPIRED)
    final = settle(c, sut, ["nofunds", "ioc-big"])
    assert D(0) < final.oms["ioc-big"].cum_qty < D("0.5")


def test_kill9_between_partial_fills(sut: CcxtSystem, c: ExecutionClient) -> None:
    """A buy crossing every ask level fills a little at each liquidity step. The connector
    is frozen (SIGSTOP) while the exchange fills more, then killed -9: its next
    incarnation finds the order in its intent log, polls it, and the OMS gets every trade
    once; FILLED as at the exchange."""
    submit_when_open(c, VENUE, "BUY", "0.6", TOP_ASK, client_order_id="walk-kill", tif="GTC",
                     symbol=BTC)  # fmt: skip
    eventually(lambda: c.get_order("walk-kill").cum_qty > 0, 10.0)
    pid = sut.pid_of(CONNECTOR)
    since = sut.mark()
    os.kill(pid, signal.SIGSTOP)
    try:
        seen = c.get_order("walk-kill").cum_qty
        eventually(lambda: D(_exchange_order(sut, "walk-kill")["filled_qty"]) > seen, 10.0)
    finally:
        os.kill(pid, signal.SIGKILL)
    sut.wait_event("actor_ready", 15.0, since=since, child=CONNECTOR)
    _status(c, "walk-kill", OrderStatus.FILLED)
    final = settle(c, sut, ["walk-kill"])
    assert final.oms["walk-kill"].cum_qty == D("0.6")
    fills_once(sut, final)


def test_exchange_killed_mid_fills(sut: CcxtSystem, c: ExecutionClient) -> None:
    """The exchange itself is killed -9 while a resting order fills step by step; the
    supervisor restarts it (its state survives), the connector's stream and requests come
    back, and the OMS ends with every trade once, FILLED as at the exchange."""
    submit_when_open(c, VENUE, "BUY", "0.6", TOP_ASK, client_order_id="walk-xkill", tif="GTC",
                     symbol=BTC)  # fmt: skip
    eventually(lambda: c.get_order("walk-xkill").cum_qty > 0, 10.0)
    since = sut.mark()
    os.kill(sut.pid_of(EXCHANGE), signal.SIGKILL)
    sut.wait_event("actor_ready", 15.0, since=since, child=EXCHANGE)
    _status(c, "walk-xkill", OrderStatus.FILLED, timeout_s=20.0)
    final = settle(c, sut, ["walk-xkill"])
    assert final.oms["walk-xkill"].cum_qty == D("0.6")
    fills_once(sut, final)


def test_answer_lost_and_lookups_refused(sut: CcxtSystem, c: ExecutionClient) -> None:
    """The exchange takes a resting order and withholds the answer, then answers 503 to
    the next requests (the connector's lookups among them): the connector cannot tell and
    says nothing, the OMS holds the order pending and never guesses (no resubmission);
    once the exchange answers again, its status query finds it: ACCEPTED, once there."""
    since = sut.mark()
    exchange_fault(sut, VENUE, "timeout_after_accept", 1)
    _rest(c, "lost-503")
    sut.wait_event("sim_answer_withheld", 5.0, since=since)  # it took the order
    exchange_fault(sut, VENUE, "http_5xx", 6)
    _status(c, "lost-503", OrderStatus.ACCEPTED, timeout_s=20.0)
    final = settle(c, sut, ["lost-503"])
    assert final.order("lost-503")["status"] == "NEW"
    assert not sut.events("order_resubmitted", since=since, client_order_id="lost-503")


def test_replace_to_a_marketable_price(sut: CcxtSystem, c: ExecutionClient) -> None:
    """A resting buy replaced to a price above every ask: the new exchange order fills at
    once and then step by step; the OMS hears the replace first (its fills would be
    refused before it) and every trade once, FILLED as at the exchange."""
    _rest(c, "rep-take", qty="0.3")
    _status(c, "rep-take", OrderStatus.ACCEPTED)
    since = sut.mark()
    c.replace("rep-take", price=TOP_ASK)
    _status(c, "rep-take", OrderStatus.FILLED)
    final = settle(c, sut, ["rep-take"])
    assert final.oms["rep-take"].cl_ord_id == "rep-take.r1"
    assert final.order("rep-take.r1")["status"] == "FILLED"
    fills_once(sut, final)
    assert not sut.events("exec_refused", since=since)


def test_cancel_while_it_fills(sut: CcxtSystem, c: ExecutionClient) -> None:
    """A cancel sent while the order fills step by step: it ends CANCELLED with what
    filled before, or FILLED (the cancel refused as too late), as at the exchange."""
    submit_when_open(c, VENUE, "BUY", "0.35", TOP_ASK, client_order_id="cx-walk", tif="GTC",
                     symbol=BTC)  # fmt: skip
    eventually(lambda: c.get_order("cx-walk").cum_qty > 0, 10.0)
    c.cancel("cx-walk")
    _status(c, "cx-walk", OrderStatus.CANCELLED, OrderStatus.FILLED)
    final = settle(c, sut, ["cx-walk"])
    fills_once(sut, final)


def test_kill9_mid_replace(sut: CcxtSystem, c: ExecutionClient) -> None:
    """A replace of a partly filled order: the old order is cancelled, the exchange takes
    the new one and withholds the answer, and the connector is killed -9 while it waits.
    The next incarnation and the OMS settle it: replaced (the new order rests under the
    replace's id, carrying the rest), cum kept, nothing sent twice."""
    submit_when_open(c, VENUE, "BUY", "0.5", "60000.01", client_order_id="rep-kill",
                     tif="GTC", symbol=BTC)  # fmt: skip
    eventually(lambda: c.get_order("rep-kill").cum_qty > 0, 10.0)
    since = sut.mark()
    exchange_fault(sut, VENUE, "timeout_after_accept", 1)
    c.replace("rep-kill", qty="0.6", price=LOW_BID)
    sut.wait_event("sim_answer_withheld", 10.0, since=since)
    os.kill(sut.pid_of(CONNECTOR), signal.SIGKILL)
    sut.wait_event("actor_ready", 15.0, since=since, child=CONNECTOR)
    eventually(lambda: c.get_order("rep-kill").cl_ord_id == "rep-kill.r1", 15.0)
    final = settle(c, sut, ["rep-kill"])
    cum = D(final.order("rep-kill")["filled_qty"])
    new = final.order("rep-kill.r1")
    assert final.oms["rep-kill"].cum_qty == cum > 0
    assert (new["status"], D(new["qty"])) == ("NEW", D("0.6") - cum)
    fills_once(sut, final)


def test_kill9_after_a_replace_is_taken_before_its_cancel_goes_out(
    sut: CcxtSystem, c: ExecutionClient
) -> None:
    """The connector takes a replace and is killed -9 before the old order's cancel goes
    out. Found by a 3-minute chaos soak: the order stayed PENDING_REPLACE for good while it
    rested unchanged at the exchange (the connector acknowledged a replace as sent on
    receipt, and the OMS never sends an acknowledged request again). A replace is now
    acknowledged once its flow is done, as a cancel is: the OMS sends it again after the
    next incarnation's pass, and it is carried out once."""
    _rest(c, "rep-cut")
    _status(c, "rep-cut", OrderStatus.ACCEPTED)
    since = sut.mark()
    sut.arm(REPLACE_CUT)
    c.replace("rep-cut", qty="0.02", price=LOW_BID)
    sut.wait_event("injected_crash", 10.0, since=since, point=REPLACE_CUT)
    sut.wait_event("actor_ready", 15.0, since=since, child=CONNECTOR)
    eventually(
        lambda: (o := c.get_order("rep-cut")).cl_ord_id == "rep-cut.r1"
        and o.status is OrderStatus.ACCEPTED and o.qty == D("0.02"), 30.0,
        message=lambda: f"{c.get_order('rep-cut')}",
    )  # fmt: skip
    final = settle(c, sut, ["rep-cut"])
    assert final.order("rep-cut")["status"] == "CANCELED"
    new = final.order("rep-cut.r1")
    assert (new["status"], D(new["qty"])) == ("NEW", D("0.02"))


def test_oms_killed_mid_fills(sut: CcxtSystem, c: ExecutionClient) -> None:
    """The OMS is killed -9 while a resting order fills step by step at the exchange; the
    next OMS incarnation replays its journal, the connector resends what it has not had
    acknowledged, reconciliation covers the rest: FILLED, every trade once."""
    submit_when_open(c, VENUE, "BUY", "0.6", TOP_ASK, client_order_id="walk-oms", tif="GTC",
                     symbol=BTC)  # fmt: skip
    eventually(lambda: c.get_order("walk-oms").cum_qty > 0, 10.0)
    since = sut.mark()
    os.kill(sut.pid_of("oms"), signal.SIGKILL)
    sut.wait_event("actor_ready", 15.0, since=since, child="oms")
    _status(c, "walk-oms", OrderStatus.FILLED, timeout_s=20.0)
    final = settle(c, sut, ["walk-oms"])
    assert final.oms["walk-oms"].cum_qty == D("0.6")
    fills_once(sut, final)


def test_replace_breaking_the_filters_leaves_the_order_alone(
    sut: CcxtSystem, c: ExecutionClient
) -> None:
    """A replace whose new quantity breaks the market's minimum notional is refused before
    the old order is touched: the order still rests at the exchange, ACCEPTED in the OMS
    with its old qty."""
    _rest(c, "rep-small")
    _status(c, "rep-small", OrderStatus.ACCEPTED)
    c.replace("rep-small", qty="0.00005")  # 2.95 USDT: below the 5 USDT minimum
    eventually(lambda: c.get_order("rep-small").status is OrderStatus.ACCEPTED
               and c.get_order("rep-small").qty == D("0.01"), 10.0)  # fmt: skip
    final = settle(c, sut, ["rep-small"])
    assert final.order("rep-small")["status"] == "NEW"
    assert "rep-small.r1" not in [o["client_order_id"] for o in final.exchange["orders"]]


def test_no_escalation_divergence_or_kill_switch(sut: CcxtSystem, c: ExecutionClient) -> None:
    """Through every case above (the last here): the OMS equals the exchange's inspection
    (its CLI), reconciliation never escalated, the position heartbeat never diverged, the
    kill-switch stayed off."""
    settle(c, sut, cli=True)
    assert not sut.events("reconcile_escalation")
    assert not sut.events("position_divergence")
    assert not kill_switch(sut)["engaged"]


def _exchange_order(sut: CcxtSystem, coid: str) -> dict[str, Any]:
    return next(
        o for o in inspect_exchange(sut, VENUE, cli=False)["orders"] if o["client_order_id"] == coid
    )
