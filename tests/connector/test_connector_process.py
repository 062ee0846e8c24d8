"""The connector as a real process against the real venue simulator process, with the
test playing the OMS (tests/connector/rig.py)."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from decimal import Decimal
from functools import partial
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
    QueriedOrder,
    ReplaceOnVenue,
    RequestRejected,
    Side,
    TimeInForce,
    VenueConnState,
)
from tests.connector.rig import VENUE, ConnectorRig
from tests.helpers import eventually
from tests.system_ops import inspect_venue

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

    asks = [QueriedOrder(cl_ord_id=cl, symbol="AAPL", side=Side.BUY) for cl in ("m1", "l1.r1")]
    never = QueriedOrder(cl_ord_id="never", symbol="AAPL", side=Side.SELL)
    status = rig.request(OrderStatusQuery(orders=[*asks, never])).body
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
        OrderStatusQuery(orders=[QueriedOrder(cl_ord_id="x", symbol="AAPL", side=Side.BUY)]),
        MassCancel(),
    ):
        reply = rig.request(body).body
        assert isinstance(reply, RequestRejected) and reply.code is ErrorCode.VENUE_DOWN, reply
    rig.spawn("venuesim")
    rig.wait_state(S.CONNECTED, since=mark)
    assert isinstance(rig.request(limit("y", Side.BUY, "1", "99")).body, Ack)


def test_reconnects_with_growing_delays_goes_down_and_comes_back() -> None:
    """The venue drops the session and refuses logons until told otherwise: the connector
    retries with delays 0.05, 0.1, 0.2, 0.4 s (reporting DISCONNECTED, CONNECTING), is DOWN
    after 4 failed attempts and retries at the 1 s maximum until the venue takes it again.

    The refusal ends on a `clear`, not on a timer: a 2.5 s window set by one control CLI
    run and counted from there ran out during the next CLI run (the drop) on a busy machine
    (a CLI start takes seconds at load 10), and the connector got back in before DOWN."""
    rig = ConnectorRig(venue_overrides(down_after_failures=4))
    try:
        rig.start()
        rig.sim_control("refuse_logons_s", "600")
        rig.sim_control("drop_session")
        # 0.75 s of delays and 4 refused logons; the deadline is for a loaded machine
        rig.wait_state(S.DOWN, timeout_s=30)
        epoch = rig.epochs["connector.simA"]
        # the states come over ZeroMQ, the log lines through the rig's reader thread
        rig.pump_until(
            lambda: len(rig.connector.events("reconnect")) >= 6, 30, "two retries at the maximum"
        )
        assert rig.states[-1] == (S.DOWN, epoch)  # still refused: still DOWN
        mark = rig.mark()
        rig.sim_control("clear")
        rig.wait_state(S.CONNECTED, timeout_s=30, since=mark)
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
        rig.pump_until(lambda: rig.connector.events("connect_failed"), 10, "connect_failed logged")
        delays = [e["delay_s"] for e in rig.connector.events("reconnect")]
        assert delays[:4] == [0.05, 0.1, 0.2, 0.4]
        assert all(d == 1.0 for d in delays[4:]) and len(delays) >= 6
        attempts = [e["attempt"] for e in rig.connector.events("reconnect")]
        assert attempts == list(range(1, len(attempts) + 1))
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
    rig.pump_until(lambda: rig.connector.events("oms_restarted"), 5, "oms_restarted logged")


def _last_state_is(rig: ConnectorRig, state: S) -> bool:
    """The last venue state the OMS got from the current connector is `state`."""
    return rig.states[-1:] == [(state, rig.epochs[f"connector.{VENUE}"])]


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


class _Stream:
    """Market orders sent one after the other like the OMS would: a request with no answer
    (lost with a dead connector) or refused VENUE_DOWN is resent with the same ClOrdID
    once the venue is CONNECTED again."""

    def __init__(self, rig: ConnectorRig, n: int) -> None:
        self.rig = rig
        self.orders = {
            f"k{i:03d}": market(f"k{i:03d}", (Side.BUY, Side.SELL)[i % 2], "600") for i in range(n)
        }
        self.ids = list(self.orders)
        self.waiting: dict[str, str] = {}  # request msg id -> ClOrdID
        self.resend: set[str] = set()

    def send(self, ids: list[str]) -> None:
        for cl in ids:
            self.waiting[self.rig.send(self.orders[cl])] = cl
            self.rig.pump(0.002)

    def collect(self) -> None:
        for msg_id, cl in list(self.waiting.items()):
            env = self.rig.replies.pop(msg_id, None)
            if env is not None:
                del self.waiting[msg_id]
                if not isinstance(env.body, Ack):
                    self.resend.add(cl)

    def restart_connector(self) -> None:
        self.rig.kill9("connector")
        self.recover()

    def recover(self) -> None:
        """Start the next connector incarnation, resend what has no confirmed Ack."""
        mark = self.rig.mark()
        self.rig.spawn("connector")
        self.rig.wait_state(S.CONNECTED, since=mark)
        try:
            self.rig.pump_until(lambda: not self.waiting, 1.0)  # replies still on their way
        except AssertionError:
            pass
        self.collect()
        self.resend |= set(self.waiting.values())  # lost with the dead process: unknown
        self.waiting.clear()
        for cl in sorted(self.resend):
            self.resend_until_acked(cl)
        self.resend.clear()

    def resend_until_acked(self, cl: str, timeout_s: float = 30.0) -> None:
        """Resend `cl` until the connector takes it. A VENUE_DOWN refusal (the venue dropped
        the session again meanwhile: it drops every 40 messages) is resent once the venue is
        CONNECTED again. The venue states reach the rig on another socket than the replies,
        so a refusal can arrive before the DISCONNECTED that caused it: "connected again" is
        judged on states received after the refusal, and a refusal with the old CONNECTED
        still last is simply retried (each retry is a round trip, so the states keep coming)."""
        rig = self.rig
        deadline = time.monotonic() + timeout_s
        while True:
            reply = rig.request(self.orders[cl]).body
            if isinstance(reply, Ack):
                return
            assert isinstance(reply, RequestRejected), reply
            assert reply.code is ErrorCode.VENUE_DOWN, reply
            assert time.monotonic() < deadline, f"{cl} refused for {timeout_s} s: {reply}"
            rig.pump_until(partial(_last_state_is, rig, S.CONNECTED), timeout_s)

    def wait_all_terminal(self, timeout_s: float = 30.0) -> None:
        """Every order terminal. One the connector took that the venue never read (its D
        died with a dropped connection or a killed connector, and the next logon's
        ResendRequest got a gap fill for it: see fix transmit) is resent as the OMS's
        reconciliation resubmits it: same ClOrdID, when the venue's state lacks it after
        a grace (one on its way is refused there as a duplicate)."""

        def missing() -> list[str]:
            return [cl for cl, o in self.orders.items() if not _terminal(self.rig, o)]

        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.rig.pump_until(lambda: not missing(), 2.0)
                return
            except AssertionError:
                assert time.monotonic() < deadline, f"not terminal: {missing()}"
            held = inspect_venue(self.rig, VENUE, cli=False)["orders"]
            known = {cl for o in held for cl in o["cl_ord_ids"]}
            for cl in missing():
                if self.orders[cl].cl_ord_id not in known:
                    self.resend_until_acked(cl)

    def check_against_the_venue(self) -> None:
        """Every fill the venue made is applied once at the OMS, nothing else is; each
        order's fills add up to the venue's cum qty; one accepted per order."""
        rig = self.rig
        venue = rig.inspect()
        venue_orders = {o["cl_ord_id"]: o for o in venue["orders"]}
        assert set(venue_orders) == set(self.orders)
        # terminal at the OMS (its last fill) does not mean every report arrived: with
        # reordered reports the accepted or a partial fill can come after the last fill
        want = {f["exec_id"] for o in venue["orders"] for f in o["fills"]}

        def all_arrived() -> bool:
            applied = list(rig.applied.values())
            fills = {e.exec_id for e in applied if e.kind == "fill"}
            accepted = {e.cl_ord_id for e in applied if e.kind == "accepted"}
            return want <= fills and set(self.orders) <= accepted

        rig.pump_until(all_arrived, 10, "every venue fill and an accepted per order at the OMS")
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


def test_kill9_of_the_connector_mid_stream_loses_no_execution_and_applies_none_twice() -> None:
    """A stream of market orders sweeping the book (new, fills, IOC cancels); the OMS
    stops acking, then the connector is `kill -9`ed while executions are in flight and
    restarted. Afterwards the OMS has every fill the venue made (its inspection is the
    truth), each exec id once, each order's fills adding up to the venue's cum qty; orders
    whose request was lost are resent with the same ClOrdID (the venue says duplicate for
    those it had). Both recovery paths ran: the outbox (unacked executions reloaded) and
    the FIX resend (executions the dead process never read)."""
    rig = ConnectorRig(venue_overrides(), ack_delay_s=0.003)
    try:
        rig.start()
        stream = _Stream(rig, 90)
        stream.send(stream.ids[:30])
        rig.ack_execs = False  # executions now pile up unacked in the connector
        seen = len(rig.exec_msgs)
        stream.send(stream.ids[30:45])
        rig.pump_until(lambda: len(rig.exec_msgs) >= seen + 20, 5, "unacked executions")

        def resent() -> bool:  # sent again: so certainly durable in the outbox by now
            ids = [e.exec_id for e in rig.exec_msgs[seen:]]
            return len(ids) > len(set(ids))

        rig.pump_until(resent, 5, "an unacked execution sent again")
        # reports the connector will never read: held back by the venue until it is frozen
        rig.sim_control("delay_exec_ms", "300")
        before = rig.sim_control("status")["data"]["fix_next_out"]
        acks = [rig.request(stream.orders[cl]) for cl in stream.ids[45:50]]
        assert all(isinstance(a.body, Ack) for a in acks)
        rig.freeze("connector")
        rig.pump_until(lambda: rig.sim_control("status")["data"]["fix_next_out"] >= before + 5, 10)
        rig.kill9("connector")
        rig.sim_control("delay_exec_ms", "0")
        rig.ack_execs = True
        stream.send(stream.ids[50:55])  # to a dead connector, or its next incarnation
        stream.recover()
        recovered = rig.pump_until(lambda: rig.connector.events("connector_recovered"), 5)
        assert recovered[0]["pending_execs"] > 0
        rig.pump_until(lambda: rig.connector.events("fix_resend_requested"), 5)
        stream.send(stream.ids[55:])
        stream.wait_all_terminal()
        stream.check_against_the_venue()
        assert len(rig.exec_msgs) > len(rig.applied)  # some were delivered more than once
    finally:
        rig.close()


def test_repeated_kill9_with_duplicated_reordered_reports_and_venue_drops() -> None:
    """The venue duplicates and reorders its execution reports and drops the session every
    40 messages, and the connector is killed three times during the stream: the OMS still
    ends up with exactly the venue's fills."""
    rig = ConnectorRig(venue_overrides(), ack_delay_s=0.002)
    try:
        rig.start()
        rig.sim_control("duplicate_exec", "on")
        rig.sim_control("reorder_exec", "on")
        rig.sim_control("disconnect_after", "40")
        stream = _Stream(rig, 80)
        for chunk in (stream.ids[:20], stream.ids[20:40], stream.ids[40:60]):
            stream.send(chunk)
            stream.restart_connector()
        stream.send(stream.ids[60:])
        stream.wait_all_terminal()
        rig.sim_control("clear")
        stream.check_against_the_venue()
        rig.pump_until(
            lambda: rig.connector.events("reconnect") or len(rig.all_procs) > 4,
            5,
            "a reconnect logged (or a fourth connector incarnation)",
        )
    finally:
        rig.close()


def test_graceful_stop_logs_out_and_the_next_start_resumes_the_session() -> None:
    """SIGTERM: the connector logs out and exits 0; the next incarnation logs on without a
    reset (sequence numbers resumed) and has nothing to ask again. The password from the
    env var goes in the Logon and appears in no log line."""
    rig = ConnectorRig(venue_overrides(password_env="TP_TEST_VENUE_PW"))
    rig.env["TP_TEST_VENUE_PW"] = "hunter2-secret"
    try:
        rig.start()
        rig.request(market("m1", Side.BUY, "10"))
        rig.pump_until(lambda: len(rig.applied) >= 2)
        first = rig.connector
        first.popen.send_signal(signal.SIGTERM)
        assert first.popen.wait(timeout=10) == 0
        first.kill()  # already gone: reads its log to the end
        assert first.events("fix_logout") and first.events("actor_stopped")
        mark = rig.mark()
        rig.spawn("connector")
        rig.wait_state(S.CONNECTED, since=mark)
        # the log line is read by a thread: it may come after the state message
        logon = eventually(lambda: rig.connector.events("fix_logon"), 10.0)[0]
        assert logon["reset"] is False and logon["seq_in"] > 1
        assert not rig.connector.events("fix_resend_requested")
        for proc in (first, rig.connector):
            text = json.dumps(proc.lines) + "\n".join(proc.stderr)
            assert "hunter2-secret" not in text
    finally:
        rig.close()
