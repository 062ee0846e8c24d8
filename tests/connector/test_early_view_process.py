"""The open orders asked at logon, in the real connector and venue processes: a request
with nothing in between is answered from them, and a fill in between is not missed."""

from __future__ import annotations

from decimal import Decimal

import pytest

from protocol.messages import (
    Ack,
    OpenOrders,
    OpenOrdersRequest,
    OrdType,
    PlaceOrder,
    Side,
    TimeInForce,
)
from tests.connector.rig import ConnectorRig
from tests.connector.test_connector_process import kinds, venue_overrides

pytestmark = pytest.mark.integration
D = Decimal


def _best_bid(cl: str) -> PlaceOrder:
    """A buy of 5 at 100.00: above the market maker's 99.99 bid, below its 100.01 ask."""
    return PlaceOrder(
        cl_ord_id=cl, symbol="AAPL", side=Side.BUY, qty=D(5), order_type=OrdType.LIMIT,
        price=D("100.00"), tif=TimeInForce.DAY,
    )  # fmt: skip


def _restarted_with_a_resting_order(rig: ConnectorRig) -> None:
    """`b1` rests at the venue; then a new connector incarnation logs on while the OMS is
    silent (as while it replays its journal) and holds the open orders it asked at logon."""
    rig.start()
    assert isinstance(rig.request(_best_bid("b1")).body, Ack)
    rig.pump_until(lambda: kinds(rig, "b1") == ["accepted"])
    rig.kill9("connector")
    rig.answer_states = rig.ack_execs = False  # the OMS is silent
    rig.spawn("connector")
    rig.pump_until(lambda: rig.connector.events("open_orders_at_logon"), 15, "the logon's AF")
    assert rig.connector.events("open_orders_at_logon")[0]["held"] is True
    rig.answer_states = rig.ack_execs = True


def test_a_request_after_the_logon_is_answered_from_the_logon_view() -> None:
    """Nothing sent or read between the logon's answer and the request: the request is
    answered from it (no second AF), stamped with this connector's cut."""
    rig = ConnectorRig(venue_overrides(heartbeat_s=60))  # no heartbeat in between
    try:
        _restarted_with_a_resting_order(rig)
        opened = rig.request(OpenOrdersRequest()).body
        assert isinstance(opened, OpenOrders) and [o.cl_ord_id for o in opened.orders] == ["b1"]
        rig.pump_until(lambda: rig.connector.events("open_orders_from_logon"), 10, "logged")
        assert [e["orders"] for e in rig.connector.events("open_orders_from_logon")] == [1]
        assert opened.cut is not None and opened.cut.connector_epoch == rig.epochs["connector.simA"]
    finally:
        rig.close()


def test_a_fill_after_the_logon_view_is_in_the_answer() -> None:
    """`b1` is filled after the logon's answer (a sell at market takes the best bid): the
    OMS's request gets the venue's answer again, without `b1`, and its cut counts the
    fill; served from the logon view it would list `b1` open, unfilled."""
    rig = ConnectorRig(venue_overrides(heartbeat_s=60))
    try:
        _restarted_with_a_resting_order(rig)
        sell = PlaceOrder(
            cl_ord_id="s1", symbol="AAPL", side=Side.SELL, qty=D(5),
            order_type=OrdType.MARKET, tif=TimeInForce.IOC,
        )  # fmt: skip
        assert isinstance(rig.request(sell).body, Ack)
        rig.pump_until(lambda: "fill" in kinds(rig, "b1"), 10, "b1 filled")
        opened = rig.request(OpenOrdersRequest()).body
        assert isinstance(opened, OpenOrders) and opened.orders == []
        rig.pump_until(lambda: rig.connector.events("open_orders_at_logon_dropped"), 10, "drop")
        assert not rig.connector.events("open_orders_from_logon")
        fill = next(e for e in rig.applied.values() if e.cl_ord_id == "b1" and e.kind == "fill")
        assert opened.cut is not None and opened.cut.exec_seq >= fill.exec_seq
    finally:
        rig.close()
