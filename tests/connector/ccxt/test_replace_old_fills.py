"""A fill of a replace's OLD order that the connector never fetched must still reach the
OMS's book and position. The old order traded between our last look and the replace's
cancel (the stream silent); the cancel's answer shows the filled quantity, but fetching
the old order's trades fails (`Flows.apply_with_trades` logs it and queues no fill, "the
next poll tries again"). The replace then forgets the old order once "replaced" is queued
(`Replaces._replace`), so no poll fetches those trades: the fill's own report never comes.

It is not lost: the replace's outcome carries the old order's final cum (the cancel
answer's filled quantity and quote amount: "replaced" with cum_qty / avg_px, or the old
order's "cancelled" when the new order is refused), and the OMS books the quantity its
cum is short of as one implied fill at the price that makes its avg the venue's
(`actors.oms.executions._catch_up`). A replace refused for nothing left to replace keeps
the old order for the poll, which fetches the trades once it can.

The real connector classes (`Flows`, `Replaces`, `Tracker`) over the stub exchange of
test_positions_in_doubt.py, handing their executions to the OMS's real `OrderBook`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from actors.connector.ccxt import execs
from actors.oms.order_book import OrderBook
from actors.oms.orders import Order
from actors.oms.venue_request import venue_request
from protocol.messages import (
    OrderStatus,
    OrdType,
    ReplaceOnVenue,
    ReplaceOrder,
    RiskVerdict,
    Side,
    SubmitOrder,
)
from tests.connector.ccxt import binance as bn
from tests.connector.ccxt.test_mapping import ws_trade
from tests.connector.ccxt.test_positions_cut import BASELINE, BTC, VENUE, D, _Venue
from tests.connector.ccxt.test_positions_in_doubt import _Orders, with_c1

S = OrderStatus
NO_FUNDS = {"code": -2010, "msg": "Account has insufficient balance for requested action."}


class _Exchange(_Orders):
    """test_positions_in_doubt.py's exchange; a create refused when `refuse_create`."""

    refuse_create = False

    async def create_order(self, *args: Any) -> Any:
        if self.refuse_create:
            raise bn.raised(400, NO_FUNDS, method="POST")
        return await super().create_order(*args)


class _Oms:
    """The OMS's book with order c1 (buy 0.1 BTC at 50000) at `VENUE`; `hand_on` applies
    what the connector queued, as the OMS does, each report accepted or a duplicate."""

    def __init__(self, venue: _Venue) -> None:
        self.venue = venue
        self.book = OrderBook()
        self.ts_ns = 0
        submit = SubmitOrder(
            client_order_id="c1", venue=VENUE, symbol=BTC, side=Side.BUY, qty=D("0.1"),
            order_type=OrdType.LIMIT, price=D(50000),
        )  # fmt: skip
        assert self.book.submit(submit, self._ts()).applied
        assert self.book.risk_verdict(RiskVerdict(client_order_id="c1", approved=True),
                                      self._ts()).applied  # fmt: skip
        order = self.book.get("c1")
        assert order is not None
        self.order: Order = order

    def _ts(self) -> int:
        self.ts_ns += 1
        return self.ts_ns

    def hand_on(self) -> list[str]:
        """Apply the queued executions; the kinds of those that changed the book."""
        applied: list[str] = []
        for report in self.venue.tracker.take():
            out = self.book.apply_exec(report, self._ts())
            assert out.kind in ("applied", "duplicate"), (report, out)
            assert not out.escalations, (report, out.escalations)
            if out.applied:
                applied.append(report.kind)
        return applied

    def replace(self, **terms: Any) -> ReplaceOnVenue:
        """The client's replace of c1: what the OMS sends the connector."""
        assert self.book.request_replace(ReplaceOrder(client_order_id="c1", **terms),
                                         self._ts()).applied  # fmt: skip
        request = venue_request(self.order)
        assert isinstance(request, ReplaceOnVenue), request
        return request

    def position(self) -> tuple[Decimal, Decimal]:
        pos = self.book.position(VENUE, BTC)
        return pos.qty, pos.avg_px


def _exchange(venue: _Venue) -> _Exchange:
    assert isinstance(venue.account, _Exchange)
    return venue.account


@pytest.fixture
def venue(tmp_path: Path) -> Iterator[_Venue]:
    """c1 (buy 0.1 BTC at 50000, exchange order 28), which we answer for, is resting."""
    venue = with_c1(tmp_path, _Exchange)
    yield venue
    venue.intents.close()


@pytest.fixture
def oms(venue: _Venue) -> _Oms:
    """The OMS has c1 ACCEPTED (from the connector's poll), nothing filled."""
    oms = _Oms(venue)
    asyncio.run(venue.flows.poll_live())
    assert oms.hand_on() == ["accepted"]
    assert oms.order.status is S.ACCEPTED
    return oms


def _replace_missing_old_trades(venue: _Venue, request: ReplaceOnVenue) -> None:
    """c1 trades 0.04 at 50000 unseen (the stream is silent, no poll ran), then the replace
    runs with every trades fetch failing."""
    ex = _exchange(venue)
    ex.fill("c1", "0.04")
    ex.failing.add("fetch_my_trades")
    ex.create_answer.set()
    asyncio.run(venue.flows.replace(request))


def test_a_replaced_orders_unfetched_fill_is_booked_from_the_replaced_cum(
    venue: _Venue, oms: _Oms
) -> None:
    """c1 is replaced (price 49000) after trading 0.04 unseen; its trades' fetch fails and
    c1 is forgotten (no poll fetches them). "replaced" carries cum 0.04 at avg 50000 and
    the OMS books the 0.04 it lacks: its position is the exchange's. The new order's later
    fills (cum after the old order's) complete the order at exactly the exchange's total;
    the old order's own fill report, should the stream still bring it, is not counted twice."""
    ex = _exchange(venue)
    _replace_missing_old_trades(venue, oms.replace(price=D(49000)))
    assert "c1" not in venue.tracker.live  # forgotten: the old order's fills never come
    replaced = [r for r in venue.tracker.execs if r.kind == "replaced"]
    assert [(r.cl_ord_id, r.cum_qty, r.avg_px) for r in replaced] == [
        ("c1.r1", D("0.04"), D(50000))
    ]
    assert not [r for r in venue.tracker.execs if r.kind == "fill"]  # no fill of its own
    assert oms.hand_on() == ["replaced"]
    assert oms.order.cl_ord_id == "c1.r1" and oms.order.status is S.PARTIALLY_FILLED
    assert oms.order.cum_qty == D("0.04")
    assert oms.position() == (D("0.04"), D(50000)) and ex.btc - BASELINE == D("0.04")

    # at this exchange's commission, 0 (a fee the catch-up lacked is booked alone: late_fee)
    free = ws_trade(700, "0.04", "0.04", "50000.00", "2000.00") | {"n": "0", "N": None}
    _, [late] = bn.ws_feed([free])
    intent = venue.tracker.intent_for("c1", late)  # as `UserStream.watch_trades` does
    venue.tracker.queue(
        [
            execs.ws_fill_exec(
                VENUE, late, scope=intent.id_scope, cl_ord_id="c1", order_qty=intent.order_qty
            )
        ]
    )
    assert oms.hand_on() == []  # the fill's own report, late: counted already (cum 0.04)
    assert oms.position() == (D("0.04"), D(50000))

    ex.failing.clear()
    ex.fill("c1.r1", "0.06")
    asyncio.run(venue.flows.poll_live())
    assert oms.hand_on() == ["fill"]
    assert oms.order.status is S.FILLED and oms.order.cum_qty == D("0.1")
    assert oms.position() == (D("0.1"), (D("0.04") * 50000 + D("0.06") * 49000) / D("0.1"))
    assert ex.btc - BASELINE == D("0.1")


def test_a_refused_replaces_unfetched_old_fill_is_booked_from_the_cancel(
    venue: _Venue, oms: _Oms
) -> None:
    """The replace's new order is refused (no funds) after c1's cancel: c1 is reported
    cancelled (cum 0.04) and forgotten, its trades never fetched. The OMS books the 0.04
    its cum lacks before the cancel: c1 CANCELLED with 0.04 filled, the position 0.04."""
    ex = _exchange(venue)
    ex.refuse_create = True
    _replace_missing_old_trades(venue, oms.replace(price=D(49000)))
    assert "c1" not in venue.tracker.live
    assert oms.hand_on() == ["cancelled"]
    assert oms.order.status is S.CANCELLED and oms.order.cum_qty == D("0.04")
    assert oms.position() == (D("0.04"), D(50000)) and ex.btc - BASELINE == D("0.04")


def test_a_replace_with_nothing_left_keeps_the_old_order_for_the_poll(
    venue: _Venue, oms: _Oms
) -> None:
    """A replace down to 0.04 after c1 traded 0.04 unseen: nothing left to replace, the
    replace is refused and c1 stays cancelled; its trades' fetch failed, so c1 is kept
    (its cancel held back behind the fills). The next poll fetches them: the OMS books the
    fill, then the cancel."""
    ex = _exchange(venue)
    _replace_missing_old_trades(venue, oms.replace(qty=D("0.04")))
    assert "c1" in venue.tracker.live  # kept for the poll
    assert oms.hand_on() == ["cancel_rejected"]
    ex.failing.clear()
    asyncio.run(venue.flows.poll_live())
    assert oms.hand_on() == ["fill", "cancelled"]
    assert oms.order.status is S.CANCELLED and oms.order.cum_qty == D("0.04")
    assert oms.position() == (D("0.04"), D(50000)) and ex.btc - BASELINE == D("0.04")
