"""Helpers for the kill-switch and heartbeat tests that run the real system: a client, order
submission once intake is open, the simulated venue's ground truth and its fault control."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import zmq

from actors.venuesim.__main__ import control_request as sim_control_request
from actors.venuesim.actor import venue_state_dir
from actors.venuesim.store import inspect
from protocol.client import ExecutionClient, NotReady
from protocol.codec import Sender, decode, encode
from protocol.messages import ExecAck, ExecReport, OrderView, StreamEvent
from tests.helpers import SystemUnderTest, eventually


@contextlib.contextmanager
def client(sut: SystemUnderTest, **kwargs: Any) -> Iterator[ExecutionClient]:
    c = ExecutionClient(sut.cfg, retry_interval_s=0.2, **kwargs)
    try:
        yield c
    finally:
        c.close()


def submit_when_open(
    c: ExecutionClient,
    venue: str,
    side: str = "BUY",
    qty: str = "10",
    price: str = "95.00",
    *,
    timeout_s: float = 20.0,
    **kwargs: Any,
) -> OrderView:
    """Submit once the OMS has opened intake (every venue reconciled since it started)."""

    def attempt() -> OrderView | None:
        try:
            return c.submit(venue, "AAPL", side, qty, "LIMIT", price=price, **kwargs)
        except NotReady:
            return None

    return eventually(attempt, timeout_s, interval_s=0.05, message=f"submit to {venue}")


def venue_orders(sut: SystemUnderTest, venue: str) -> list[dict[str, Any]]:
    """Every order the simulated venue ever received (its persisted ground truth)."""
    orders: list[dict[str, Any]] = inspect(venue_state_dir(sut.state_dir, venue))["orders"]
    return orders


def venue_order(sut: SystemUnderTest, venue: str, cl_ord_id: str) -> dict[str, Any] | None:
    for o in venue_orders(sut, venue):
        if cl_ord_id in o["cl_ord_ids"]:
            return o
    return None


def venue_status(sut: SystemUnderTest, venue: str, cl_ord_id: str) -> str | None:
    """The venue's status of the order (None: the venue never saw it)."""
    order = venue_order(sut, venue, cl_ord_id)
    return None if order is None else str(order["status"])


def venue_position(sut: SystemUnderTest, venue: str, symbol: str = "AAPL") -> Decimal:
    positions = inspect(venue_state_dir(sut.state_dir, venue))["positions"]
    row = positions.get(symbol)
    return Decimal(row["net_qty"]) if row else Decimal(0)


def sim_fault(sut: SystemUnderTest, venue: str, command: str, value: str | None = None) -> None:
    args = {} if value is None else {"value": value}
    reply = sim_control_request(sut.cfg, venue, command, args, timeout_s=5.0)
    assert reply.status == "ok", reply


def kill_switch(sut: SystemUnderTest) -> dict[str, Any]:
    state: dict[str, Any] = sut.status()["kill_switch"]
    return state


def subscribe_connected(sut: SystemUnderTest, c: ExecutionClient, timeout_s: float = 10.0) -> None:
    """Subscribe `c` to the event stream and return once it receives (a PUB drops what it
    publishes before a subscriber is connected): a probe event is published through the OMS,
    as other actors publish theirs, until the client sees one."""
    c.subscribe()
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sender = Sender("test-probe", 1)
    deadline = time.monotonic() + timeout_s
    try:
        sock.connect(sut.cfg.endpoint("oms"))
        while time.monotonic() < deadline:
            sock.send_multipart(
                encode(sender.envelope(StreamEvent(event_seq=0, event="test_probe")))
            )
            for ev in c.events(timeout_s=0.05):
                if isinstance(ev, StreamEvent) and ev.event == "test_probe":
                    return
        raise AssertionError(f"event stream not connected within {timeout_s} s")
    finally:
        sock.close(0)
        ctx.term()


def deliver_as_connector(sut: SystemUnderTest, report: ExecReport) -> None:
    """Deliver an execution to the OMS the way the venue's connector does (DEALER, acked by
    exec id): what a venue would have sent, without having to make the venue send it."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.ROUTING_ID, f"connector.{report.venue}:test".encode())
    try:
        sock.connect(sut.cfg.endpoint("oms"))
        sock.send_multipart(encode(Sender(f"connector.{report.venue}", 1).envelope(report)))
        assert sock.poll(10_000), "no ExecAck from the OMS"
        ack = decode(sock.recv_multipart()).body
        assert isinstance(ack, ExecAck) and ack.exec_ids == [report.exec_id]
    finally:
        sock.close(0)
        ctx.term()
