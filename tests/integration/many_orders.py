"""Many open orders, fast: a raw DEALER pipelines resting limit buys to the OMS's client
socket (a window in flight), for the tests and benchmarks of big venue answers (mass
status with thousands of open orders). Each order counts once its OrderAck (durable,
risk-approved) has come; `wait_open_at_venue` then waits until the venue holds them."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import zmq

from actors.venuesim.control import VenueSimUnavailable
from actors.venuesim.control import control_request as sim_control_request
from protocol.codec import Sender, decode, encode
from protocol.messages import OrderAck, OrdType, RequestRejected, Side, SubmitOrder, TimeInForce
from tests.helpers import SystemUnderTest, eventually, raw_dealer
from tests.integration.oms_support import overrides
from tests.system_ops import SYMBOL, VENUE, client, submit_when_open


def many_orders_overrides(*, oms: dict[str, Any] | None = None) -> dict[str, Any]:
    """Limits out of the way of tens of thousands of open orders (risk, OMS queue, the
    venue's rate limit); the supervisor's hang detection stays at its test default."""
    cfg = overrides(oms={"venue_queue_bound": 1_000_000, "request_timeout_s": 5.0, **(oms or {})})
    cfg["venues"][0] |= {"rate_limit_per_s": 100_000.0, "rate_burst": 10_000}
    return cfg | {
        "risk": {
            "max_open_orders_per_venue": 1_000_000, "max_orders_per_s_per_venue": 1e6,
            "max_orders_per_s": 1e6, "max_position": "1000000", "max_order_notional": "1e9",
        },
    }  # fmt: skip


def place_resting(
    sut: SystemUnderTest,
    n: int,
    *,
    prefix: str = "many",
    window: int = 64,
    timeout_s: float = 120.0,
) -> list[str]:
    """Submit `n` resting limit buys of 1 (prices 91.00..99.99, below the market) through
    the client socket, `window` in flight; the client order ids once every one is acked."""
    with client(sut) as c:  # intake open first (every venue reconciled)
        submit_when_open(c, VENUE, qty="1", price="90.00", client_order_id=f"{prefix}-probe")
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = raw_dealer(ctx, sut.cfg.client_endpoint)
    sender = Sender(prefix, 1)
    pending: dict[str, str] = {}  # msg id -> client order id
    acked: list[str] = []
    sent = 0
    deadline = time.monotonic() + timeout_s
    try:
        while len(acked) < n:
            while sent < n and len(pending) < window:
                coid = f"{prefix}-{sent:06d}"
                price = Decimal(f"{91 + sent % 9}.{sent % 100:02d}")
                order = SubmitOrder(
                    client_order_id=coid, venue=VENUE, symbol=SYMBOL, side=Side.BUY,
                    qty=Decimal(1), order_type=OrdType.LIMIT, price=price, tif=TimeInForce.DAY,
                )  # fmt: skip
                env = sender.envelope(order)
                pending[env.msg_id] = coid
                sock.send_multipart(encode(env))
                sent += 1
            left_ms = int((deadline - time.monotonic()) * 1000)
            assert left_ms > 0 and sock.poll(left_ms), f"{len(acked)}/{n} acked in {timeout_s} s"
            while sock.poll(0):
                reply = decode(sock.recv_multipart())
                coid_or_none = pending.pop(reply.corr_id, None)
                if coid_or_none is None:
                    continue
                body = reply.body
                if isinstance(body, OrderAck):
                    acked.append(coid_or_none)
                else:
                    why = body.code.value if isinstance(body, RequestRejected) else reply.type
                    raise AssertionError(f"{coid_or_none} refused: {why} {body}")
    finally:
        ctx.destroy(linger=0)
    return acked


def wait_open_at_venue(sut: SystemUnderTest, n: int, timeout_s: float = 120.0) -> None:
    """Until the venue simulator holds at least `n` open orders (its status command)."""

    def enough() -> bool:
        try:
            reply = sim_control_request(sut.cfg, VENUE, "status", {}, timeout_s=5.0)
        except VenueSimUnavailable:
            return False
        return int((reply.data or {}).get("open_orders", 0)) >= n

    eventually(enough, timeout_s, interval_s=0.5, message=f"{n} open orders at the venue")
