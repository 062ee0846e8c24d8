"""The ccxt venue through the real system: supervisor, OMS, risk, heartbeat, the ccxt
connector and the local exchange (`actors.exchangesim`) as real processes, the connector
killed -9 for real, the exchange's faults set through its control socket.

One system serves the whole class (its tests run in file order, each with its own client
order ids; each ends with the OMS equal to the exchange's inspection: every order's status
and cum, each client id at most once at the exchange, positions = balances - starting
balances). The kill-switch test is last: it leaves the system halted.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

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
    settle,
)
from tests.integration.oms_support import check_journal_fills
from tests.system_ops import client, exchange_fault, submit_when_open

pytestmark = pytest.mark.integration
D = Decimal
BEST_ASK = "60000.01"
LOW_BID = "59000.00"  # a buy here rests: below every ask


@pytest.fixture(scope="class")
def sut() -> Iterator[CcxtSystem]:
    system = CcxtSystem()
    try:
        system.start(timeout_s=30.0)
        yield system
    finally:
        system.destroy()


@pytest.fixture(scope="class")
def c(sut: CcxtSystem) -> Iterator[ExecutionClient]:
    with client(sut) as ec:
        yield ec


def _submit(
    c: ExecutionClient,
    coid: str,
    qty: str,
    price: str | None = None,
    *,
    symbol: str = BTC,
    side: str = "BUY",
) -> None:
    tif = "GTC" if price is not None else "IOC"
    submit_when_open(c, VENUE, side, qty, price, client_order_id=coid, tif=tif, symbol=symbol)


def _status(c: ExecutionClient, coid: str, *statuses: OrderStatus, timeout_s: float = 10.0) -> None:
    eventually(lambda: c.get_order(coid).status in statuses, timeout_s,
               message=lambda: f"{coid}: {c.get_order(coid)}")  # fmt: skip


class TestCcxtVenue:
    def test_market_fill_limit_rest_and_cancel(self, sut: CcxtSystem, c: ExecutionClient) -> None:
        """A market buy fills at the ask; a limit buy below the asks rests (ACCEPTED, with
        the exchange's order id) and is cancelled at the exchange on request."""
        _submit(c, "mkt-1", "0.01")
        _status(c, "mkt-1", OrderStatus.FILLED)
        _submit(c, "lim-1", "0.02", LOW_BID)
        _status(c, "lim-1", OrderStatus.ACCEPTED)
        c.cancel("lim-1")
        _status(c, "lim-1", OrderStatus.CANCELLED)
        final = settle(c, sut, ["mkt-1", "lim-1"])
        assert final.oms["mkt-1"].cum_qty == D("0.01")
        assert D(final.oms["mkt-1"].avg_px) == D(BEST_ASK)
        assert final.order("lim-1")["status"] == "CANCELED"
        assert final.oms["lim-1"].venue_order_id == str(final.order("lim-1")["order_id"])

    def test_replace_of_a_resting_order(self, sut: CcxtSystem, c: ExecutionClient) -> None:
        """A resting limit order replaced with a new qty and price: the OMS's order takes the
        replace's ClOrdID, qty and price (ACCEPTED); at the exchange the old order is
        CANCELED and the new one rests with the new qty and price, under the new id."""
        _submit(c, "rep-1", "0.02", LOW_BID)
        _status(c, "rep-1", OrderStatus.ACCEPTED)
        c.replace("rep-1", qty="0.03", price="59100.00")
        eventually(lambda: c.get_order("rep-1").cl_ord_id == "rep-1.r1", 10.0)
        _status(c, "rep-1", OrderStatus.ACCEPTED)
        final = settle(c, sut, ["rep-1"])
        view = final.oms["rep-1"]
        assert (view.qty, view.price, view.cum_qty) == (D("0.03"), D("59100.00"), 0)
        assert final.order("rep-1")["status"] == "CANCELED"
        new = final.order("rep-1.r1")
        assert (new["status"], D(new["qty"]), D(new["price"])) == ("NEW", D("0.03"), D("59100"))

    def test_partial_fill_then_replace_keeps_the_cum(
        self, sut: CcxtSystem, c: ExecutionClient
    ) -> None:
        """A buy at the best ask takes the quoted 0.02 at once and rests (each liquidity
        step fills more); replaced to a price below the asks, the new exchange order
        carries the rest of the new total, and the OMS's cum is what the old one filled."""
        _submit(c, "prep-1", "0.5", BEST_ASK)
        eventually(lambda: c.get_order("prep-1").cum_qty > 0, 10.0)
        c.replace("prep-1", qty="0.6", price=LOW_BID)
        eventually(lambda: c.get_order("prep-1").cl_ord_id == "prep-1.r1", 10.0)
        final = settle(c, sut, ["prep-1"])
        old, new = final.order("prep-1"), final.order("prep-1.r1")
        cum = D(old["filled_qty"])
        assert cum >= D("0.02") and D(new["filled_qty"]) == 0
        assert final.oms["prep-1"].cum_qty == cum
        assert final.oms["prep-1"].status is OrderStatus.PARTIALLY_FILLED
        assert D(new["qty"]) == D("0.6") - cum and D(new["price"]) == D(LOW_BID)

    def test_orders_breaking_the_filters_are_rejected_unsent(
        self, sut: CcxtSystem, c: ExecutionClient
    ) -> None:
        """A quantity off the market's step and a notional below its minimum: REJECTED
        with the field named, and the exchange never saw either order."""
        _submit(c, "step-1", "0.000015", LOW_BID)
        _submit(c, "notional-1", "0.00001", LOW_BID)
        _status(c, "step-1", OrderStatus.REJECTED)
        _status(c, "notional-1", OrderStatus.REJECTED)
        step, notional = c.get_order("step-1").reason, c.get_order("notional-1").reason
        assert "amount" in step or "qty" in step, step
        assert "notional" in notional or "cost" in notional, notional
        settle(c, sut, ["step-1", "notional-1"])  # REJECTED: not at the exchange

    @pytest.mark.parametrize("point", CRASH_POINTS)
    def test_kill9_mid_submit(self, sut: CcxtSystem, c: ExecutionClient, point: str) -> None:
        """The connector is killed -9 at a crash point of a market buy's submit (intent
        fsynced and not sent; or sent, the answer not applied). Its next incarnation
        and the OMS settle it: the order is at the exchange once, FILLED as there, and the
        position moved once."""
        coid = f"kill-{CRASH_POINTS.index(point)}"
        since = sut.mark()
        sut.arm(point)
        _submit(c, coid, "0.01")
        sut.wait_event("injected_crash", 10.0, since=since, point=point)
        sut.wait_event("actor_ready", 15.0, since=since, child=CONNECTOR)
        _status(c, coid, OrderStatus.FILLED, timeout_s=20.0)
        final = settle(c, sut, [coid])
        assert final.order(coid)["status"] == "FILLED"
        check_journal_fills(sut, final.oms)

    def test_timeout_after_acceptance_is_resolved_by_lookup(
        self, sut: CcxtSystem, c: ExecutionClient
    ) -> None:
        """The exchange takes a market buy and withholds the answer past the connector's
        request timeout: the connector looks it up by client id and reports it FILLED;
        it is at the exchange once."""
        since = sut.mark()
        exchange_fault(sut, VENUE, "timeout_after_accept", 1)
        _submit(c, "tmo-1", "0.01")
        failed = sut.wait_event("ccxt_submit_failed", 10.0, since=since, cl_ord_id="tmo-1")
        assert failed["kind"] == "unknown", failed
        _status(c, "tmo-1", OrderStatus.FILLED)
        final = settle(c, sut, ["tmo-1"])
        assert final.order("tmo-1")["status"] == "FILLED"
        assert not sut.events("order_resubmitted", since=since)

    def test_http_5xx_on_a_submit(self, sut: CcxtSystem, c: ExecutionClient) -> None:
        """The exchange answers 503 (not processed) to a submit: nothing is at the exchange
        yet, the connector cannot tell, the OMS times the order out to UNKNOWN, its
        status query hears "never seen" and resubmits it; it ends FILLED, once."""
        for n in range(1, 4):  # the 503 may hit the heartbeat's balance request instead
            coid, since = f"e503-{n}", sut.mark()
            exchange_fault(sut, VENUE, "http_5xx", 1)
            _submit(c, coid, "0.01")
            _status(c, coid, OrderStatus.FILLED, timeout_s=20.0)
            if sut.events("ccxt_submit_failed", since=since, cl_ord_id=coid):
                break
        else:
            pytest.fail("no submit met the 503")
        final = settle(c, sut, [coid])
        assert final.order(coid)["status"] == "FILLED"
        assert sut.events("order_resubmitted", since=since)
