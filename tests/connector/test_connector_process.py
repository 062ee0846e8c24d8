"""The connector as a real process against the real venue simulator process, with the
test playing the OMS (tests/connector/rig.py)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from protocol.messages import (
    Ack,
    CancelOnVenue,
    ErrorCode,
    GetPositions,
    MassCancel,
    MassCancelDone,
    OpenOrders,
    OpenOrdersRequest,
    OrderStatus,
    OrderStatusAnswer,
    OrderStatusQuery,
    OrdType,
    PlaceOrder,
    Positions,
    ReplaceOnVenue,
    RequestRejected,
    Side,
    TimeInForce,
    VenueConnState,
)
from tests.connector.rig import ConnectorRig

pytestmark = pytest.mark.integration
D = Decimal
S = VenueConnState

# a still market: the market maker quotes 99.99 / 100.01 and up, 500 a level
STILL = {
    "venues": [
        {
            "name": "simA",
            "target_comp_id": "SIMA",
            "sim": {
                "reference_prices": {"AAPL": "100.00"},
                "volatility_bps": 0.0,
                "quote_qty": "500",
                "liquidity_interval_s": 0.2,
            },
        }
    ]
}


def venue_overrides(**venue: Any) -> dict[str, Any]:
    base = STILL["venues"][0] | {
        "reconnect": {"initial_s": 0.05, "factor": 2.0, "max_s": 1.0, "jitter": 0.0}
    }
    return {"venues": [base | venue]}


@pytest.fixture
def rig() -> Iterator[ConnectorRig]:
    r = ConnectorRig(venue_overrides())
    yield r
    r.close()


def limit(cl: str, side: Side, qty: str, px: str, tif: TimeInForce = TimeInForce.DAY) -> PlaceOrder:
    return PlaceOrder(
        cl_ord_id=cl,
        symbol="AAPL",
        side=side,
        qty=D(qty),
        order_type=OrdType.LIMIT,
        price=D(px),
        tif=tif,
    )


def market(cl: str, side: Side, qty: str) -> PlaceOrder:
    return PlaceOrder(
        cl_ord_id=cl,
        symbol="AAPL",
        side=side,
        qty=D(qty),
        order_type=OrdType.MARKET,
        tif=TimeInForce.IOC,
    )


def kinds(rig: ConnectorRig, cl: str) -> list[str]:
    return [e.kind for e in rig.applied.values() if cl in (e.cl_ord_id, e.orig_cl_ord_id)]


def test_orders_fills_cancel_replace_and_queries(rig: ConnectorRig) -> None:
    """Orders go to the venue as D/F/G and every execution comes back to the OMS once;
    the query answers agree with the venue's own inspection."""
    rig.start()
    assert isinstance(rig.request(market("m1", Side.BUY, "700")).body, Ack)
    assert isinstance(rig.request(limit("l1", Side.BUY, "100", "99.00")).body, Ack)
    rig.pump_until(lambda: kinds(rig, "m1") == ["accepted", "fill", "fill"] and kinds(rig, "l1"))
    replace = ReplaceOnVenue(
        cl_ord_id="l1.r1",
        orig_cl_ord_id="l1",
        symbol="AAPL",
        side=Side.BUY,
        qty=D("150"),
        order_type=OrdType.LIMIT,
        price=D("98.50"),
    )
    assert isinstance(rig.request(replace).body, Ack)
    rig.pump_until(lambda: "replaced" in kinds(rig, "l1.r1"))

    status = rig.request(OrderStatusQuery(cl_ord_ids=["m1", "l1.r1", "never"])).body
    assert isinstance(status, OrderStatusAnswer) and status.unknown == ["never"]
    by_id = {o.cl_ord_id: o for o in status.orders}
    assert by_id["m1"].status is OrderStatus.FILLED and by_id["m1"].cum_qty == D(700)
    assert by_id["l1.r1"].order_qty == D(150) and by_id["l1.r1"].price == D("98.50")
    opened = rig.request(OpenOrdersRequest()).body
    assert isinstance(opened, OpenOrders) and [o.cl_ord_id for o in opened.orders] == ["l1.r1"]
    positions = rig.request(GetPositions()).body
    assert isinstance(positions, Positions) and positions.source == "venue"
    assert [(p.symbol, p.qty) for p in positions.positions] == [("AAPL", D(700))]

    cancel = CancelOnVenue(
        cl_ord_id="l1.x1", orig_cl_ord_id="l1.r1", symbol="AAPL", side=Side.BUY, qty=D("150")
    )
    assert isinstance(rig.request(cancel).body, Ack)
    rig.pump_until(lambda: "cancelled" in kinds(rig, "l1.x1"))
    again = CancelOnVenue(
        cl_ord_id="l1.x2", orig_cl_ord_id="l1.r1", symbol="AAPL", side=Side.BUY, qty=D("150")
    )
    rig.request(again)
    rig.pump_until(lambda: "cxlrej:l1.x2" in rig.applied)
    assert rig.applied["cxlrej:l1.x2"].kind == "cancel_rejected"

    rig.request(limit("l2", Side.SELL, "10", "150.00"))
    done = rig.request(MassCancel(reason="test")).body
    assert isinstance(done, MassCancelDone) and done.accepted
    rig.pump_until(lambda: "cancelled" in kinds(rig, "l2"))
    dup = rig.request(market("m1", Side.BUY, "1")).body
    assert isinstance(dup, Ack)
    rig.pump_until(lambda: any(e.reject_reason == "DUPLICATE_ORDER" for e in rig.applied.values()))

    venue = rig.inspect()
    venue_fills = {f["exec_id"] for o in venue["orders"] for f in o["fills"]}
    ours = {e.exec_id for e in rig.applied.values() if e.kind == "fill"}
    assert ours == venue_fills and len(venue_fills) == 2


def test_requests_when_the_venue_is_gone_are_refused_venue_down(rig: ConnectorRig) -> None:
    """A dead venue: DISCONNECTED at once, every request RequestRejected(VENUE_DOWN)."""
    rig.start()
    mark = rig.mark()
    rig.kill9("venuesim")
    rig.wait_state(S.DISCONNECTED, since=mark)
    for body in (
        limit("x", Side.BUY, "1", "99"),
        OpenOrdersRequest(),
        GetPositions(),
        OrderStatusQuery(cl_ord_ids=["x"]),
        MassCancel(),
    ):
        reply = rig.request(body).body
        assert isinstance(reply, RequestRejected) and reply.code is ErrorCode.VENUE_DOWN, reply
    rig.spawn("venuesim")
    rig.wait_state(S.CONNECTED, since=mark)
    assert isinstance(rig.request(limit("y", Side.BUY, "1", "99")).body, Ack)


def test_reconnects_with_growing_delays_goes_down_and_comes_back() -> None:
    """The venue drops the session and refuses logons for a while: the connector retries
    with delays 0.05, 0.1, 0.2, 0.4 s (reporting DISCONNECTED, CONNECTING), is DOWN after
    4 failed attempts and retries at the 1 s maximum until the venue takes it again."""
    rig = ConnectorRig(venue_overrides(down_after_failures=4))
    try:
        rig.start()
        rig.sim_control("refuse_logons_s", "1.6")
        rig.sim_control("drop_session")
        rig.wait_state(S.DOWN, timeout_s=10)
        epoch = rig.epochs["connector.simA"]
        rig.pump_until(lambda: rig.states[-1] == (S.CONNECTED, epoch), 10, "CONNECTED again")
        states = [s for s, _ in rig.states]
        assert states == [
            S.CONNECTING,
            S.CONNECTED,
            S.DISCONNECTED,
            S.CONNECTING,
            S.DOWN,
            S.CONNECTED,
        ]
        assert rig.sup_states == states
        delays = [e["delay_s"] for e in rig.connector.events("reconnect")]
        assert delays[:4] == [0.05, 0.1, 0.2, 0.4]
        assert all(d == 1.0 for d in delays[4:]) and len(delays) >= 5
        attempts = [e["attempt"] for e in rig.connector.events("reconnect")]
        assert attempts == list(range(1, len(attempts) + 1))
        assert rig.connector.events("connect_failed")
    finally:
        rig.close()


def test_unacked_executions_are_resent_and_a_restarted_oms_learns_the_state(
    rig: ConnectorRig,
) -> None:
    """While the OMS does not ack, the execution is sent again (~0.5 s); a new OMS
    incarnation gets the venue state and the unacked executions (at once, or at the next
    retry when the first send went into the dead incarnation's connection)."""
    rig.start()
    rig.ack_execs = False
    rig.request(market("m1", Side.BUY, "10"))
    rig.pump_until(lambda: len([e for e in rig.exec_msgs if e.cl_ord_id == "m1"]) >= 4, 5)
    assert not rig.applied
    rig.restart_oms()
    rig.ack_execs = True
    rig.request(GetPositions())  # the new OMS shows itself to the connector
    rig.pump_until(lambda: len(rig.applied) == 2, 5)
    # at once, or at the 1 s retry if the first went down with the old OMS's connection
    rig.pump_until(lambda: (S.CONNECTED, 1, 2) in rig.state_msgs, 1.5)
    assert [e.kind for e in rig.applied.values()] == ["accepted", "fill"]
    assert rig.connector.events("oms_restarted")


def _terminal(rig: ConnectorRig, order: PlaceOrder) -> bool:
    """The OMS has the order's final execution: filled, cancelled, or really rejected."""
    for e in rig.applied.values():
        if e.cl_ord_id != order.cl_ord_id:
            continue
        if e.kind == "cancelled" or (e.kind == "fill" and e.cum_qty == order.qty):
            return True
        if e.kind == "rejected" and e.reject_reason != "DUPLICATE_ORDER":
            return True
    return False


def test_kill9_of_the_connector_mid_stream_loses_no_execution_and_applies_none_twice() -> None:
    """A stream of market orders sweeping the book (new, fills, IOC cancels); the OMS
    stops acking, then the connector is `kill -9`ed while executions are in flight and
    restarted. Afterwards the OMS has every fill the venue made (its inspection is the
    truth), each exec id once, each order's fills adding up to the venue's cum qty; orders
    whose request was lost are resent with the same ClOrdID (the venue says duplicate for
    those it had)."""
    rig = ConnectorRig(venue_overrides(), ack_delay_s=0.003)
    try:
        rig.start()
        orders = {
            f"k{i:03d}": market(f"k{i:03d}", (Side.BUY, Side.SELL)[i % 2], "600") for i in range(90)
        }
        ids = list(orders)
        waiting: dict[str, str] = {}  # request msg id -> ClOrdID
        resend: set[str] = set()

        def send(cl: str) -> None:
            waiting[rig.send(orders[cl])] = cl
            rig.pump(0.002)

        def collect() -> None:
            for msg_id, cl in list(waiting.items()):
                env = rig.replies.pop(msg_id, None)
                if env is not None:
                    del waiting[msg_id]
                    if not isinstance(env.body, Ack):
                        resend.add(cl)

        for cl in ids[:30]:
            send(cl)
        rig.ack_execs = False  # executions now pile up unacked in the connector
        seen = len(rig.exec_msgs)
        for cl in ids[30:45]:
            send(cl)
        rig.pump_until(lambda: len(rig.exec_msgs) >= seen + 20, 5, "unacked executions")
        rig.kill9("connector")
        rig.ack_execs = True
        for cl in ids[45:55]:
            send(cl)  # to a dead connector, or its next incarnation before it logs on
        mark = rig.mark()
        rig.spawn("connector")
        rig.wait_state(S.CONNECTED, since=mark)
        recovered = rig.connector.events("connector_recovered")
        assert recovered and recovered[0]["pending_execs"] > 0
        try:
            rig.pump_until(lambda: not waiting, 1.0)  # replies still on their way
        except AssertionError:
            pass
        collect()
        resend |= set(waiting.values())  # lost with the dead process: outcome unknown
        waiting.clear()
        for cl in sorted(resend):
            reply = rig.request(orders[cl]).body
            assert isinstance(reply, Ack), reply
        for cl in ids[55:]:
            send(cl)
        rig.pump_until(
            lambda: all(_terminal(rig, o) for o in orders.values()),
            20,
            lambda: str([cl for cl, o in orders.items() if not _terminal(rig, o)]),
        )
        collect()
        assert not waiting or all(cl in resend for cl in waiting.values())

        venue = rig.inspect()
        venue_orders = {o["cl_ord_id"]: o for o in venue["orders"]}
        assert set(venue_orders) == set(orders)
        venue_fills = {
            f["exec_id"]: (o["cl_ord_id"], D(f["qty"]), D(f["px"]))
            for o in venue["orders"]
            for f in o["fills"]
        }
        ours = {
            e.exec_id: (e.cl_ord_id, e.last_qty, e.last_px)
            for e in rig.applied.values()
            if e.kind == "fill"
        }
        assert ours == venue_fills  # nothing lost, nothing invented
        for cl, vo in venue_orders.items():
            fills = [e for e in rig.applied.values() if e.kind == "fill" and e.cl_ord_id == cl]
            assert sum((e.last_qty for e in fills), D(0)) == D(vo["cum_qty"]), cl
            accepted = [
                e for e in rig.applied.values() if e.kind == "accepted" and e.cl_ord_id == cl
            ]
            assert len(accepted) == 1, cl
        assert len(rig.exec_msgs) > len(rig.applied)  # some were delivered more than once
    finally:
        rig.close()
