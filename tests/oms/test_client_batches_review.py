"""Findings of the `subm` review, each fixed (tests/oms/test_client_batches.py has the rest).

- One loop turn of the client endpoint read up to 1000 messages, each now up to 256
  submits: 256,000 submits before the loop beat again (one `submit_many` of 10,000 orders
  got the OMS hang-killed over and over). A turn now reads `TURN_ITEMS` (one batch may
  pass it), the rest waits in the socket; and `submit_many` keeps `WINDOW` submits in
  flight, not all of them.
- A client's held answers were cut into `Replies` by count only: 256 answers carrying a
  venue's 17 KB text made a frame over the 4 MiB limit, which the client's socket refuses
  whole, at every resend. Now under `REPLIES_BYTES` too.
- An item whose values the codec refuses in any message (bin, NaN, non-text keys, too deep)
  makes the whole `SubmitOrders` malformed, as it does every batch message (documented).
"""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgpack
import zmq

from actors.oms.client_endpoint import ClientEndpoint
from actors.runtime.turn_budget import TURN_ITEMS
from protocol.batch_messages import MAX_SUBMIT_BATCH
from protocol.client_batch import WINDOW, request_many
from protocol.codec import Sender, decode
from protocol.messages import (
    OrderAck,
    OrderStatus,
    OrderView,
    SubmitOrder,
    SubmitOrders,
)
from protocol.sockets import connect_dealer
from tests.helpers import eventually
from tests.oms.test_client_batches import _Oms, _order, rig  # noqa: F401 - the fixture


def test_one_turn_serves_a_bounded_number_of_submits() -> None:
    """8 batches of 256 queued: each `on_readable` serves at most TURN_ITEMS (plus the
    rest of the batch that crossed it); all are served over the following turns."""
    oms = _Oms()
    endpoint = "inproc://client-turn"  # inproc: a sent message is queued at once
    ep = ClientEndpoint(oms, endpoint)
    sock = oms.ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.IDENTITY, b"a")
    sock.connect(endpoint)
    try:
        client = Sender("cl", 1)
        for b in range(8):
            items = [{"id": f"{b}-{i}", "body": _order(f"o-{b}-{i}")} for i in range(256)]
            sock.send_multipart(client.encode_body("submit_orders", {"orders": items})[1])
        eventually(lambda: ep.sock.poll(0), 5.0, message="queued")
        per_turn: list[int] = []
        while len(oms.served) < 8 * 256:
            assert len(per_turn) < 20, per_turn
            before = len(oms.served)
            ep.on_readable()
            per_turn.append(len(oms.served) - before)
        assert max(per_turn) <= TURN_ITEMS + MAX_SUBMIT_BATCH - 1, per_turn
        assert len(per_turn) >= 2
    finally:
        sock.close(0)
        ep.sock.close(0)
        oms.ctx.term()


def test_an_item_the_codec_refuses_makes_the_batch_malformed(rig: Any) -> None:  # noqa: F811
    """A bin price in one item: the envelope is malformed (counted), nothing is served."""
    oms, ep, clients = rig
    items = [{"id": f"id-{i}", "body": _order(f"o-{i}")} for i in range(3)]
    items[1]["body"] = {**items[1]["body"], "price": b"95"}
    env = {"v": 1, "type": "submit_orders", "sender": "cl", "epoch": 1, "seq": 1, "id": "e",
           "corr": "", "ts_ns": 1, "body": {"orders": items}}  # fmt: skip
    clients["a"].send_multipart([msgpack.packb(env, use_bin_type=True)])

    def read() -> bool:
        ep.on_readable()
        return bool(oms.served or oms.bad)

    eventually(read, 5.0, interval_s=0.005, message="read")
    assert oms.served == [] and len(oms.bad) == 1


def _ack(i: int, reason: str) -> OrderAck:
    view = OrderView(client_order_id=f"o-{i}", venue="simA", symbol="AAPL", side="BUY",  # type: ignore[arg-type]
                     qty=Decimal(1), order_type="LIMIT", status=OrderStatus.REJECTED,  # type: ignore[arg-type]
                     reason=reason)  # fmt: skip
    return OrderAck(order=view, duplicate=True)


def test_a_turns_replies_to_one_client_stay_under_the_frame_limit(tmp_path: Path) -> None:
    """256 held answers, each with a 17 KB venue text: all reach the client."""
    oms = _Oms()
    endpoint = f"ipc://{tmp_path}/client.sock"
    ep = ClientEndpoint(oms, endpoint)
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = connect_dealer(ctx, endpoint, "real-client")
    try:
        # connected once the endpoint can route to it
        eventually(lambda: ep.send_router([b"real-client"], _ack(0, "")), 5.0)
        assert sock.poll(5000)
        sock.recv_multipart()
        ep.hold()
        for i in range(MAX_SUBMIT_BATCH):
            ep.send_held([b"real-client"], _ack(i, "x" * 17_000), f"m-{i}")
        ep.release()
        got: set[str] = set()
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline and len(got) < MAX_SUBMIT_BATCH:
            if sock.poll(100):
                env = decode(sock.recv_multipart())
                if env.type == "replies":
                    got.update(str(r["corr"]) for r in env.body.replies)  # type: ignore[union-attr]
                else:
                    got.add(env.corr_id)
        assert got == {f"m-{i}" for i in range(MAX_SUBMIT_BATCH)}
    finally:
        sock.close(0)
        ctx.term()
        ep.sock.close(0)
        oms.ctx.term()


def test_submit_many_keeps_a_bounded_window_in_flight(tmp_path: Path) -> None:
    """A call of 3,000 submits against an OMS that answers only once nothing more comes
    for 100 ms: it never holds more than WINDOW unanswered (all 3,000 at once before),
    and every submit is answered, none sent twice."""
    endpoint = f"ipc://{tmp_path}/oms.sock"
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    router = ctx.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    router.bind(endpoint)
    stop = threading.Event()
    seen: dict[str, int] = {}  # client order id -> times received
    peak = [0]

    def oms() -> None:
        oms_sender = Sender("oms", 1)
        pending: list[tuple[bytes, str, str]] = []  # (client, message id, client order id)
        while not stop.is_set():
            if router.poll(100):
                frames = router.recv_multipart()
                body = decode(frames[1:]).body
                assert isinstance(body, SubmitOrders | SubmitOrder)
                items = (
                    [(o["id"], o["body"]["client_order_id"]) for o in body.orders]
                    if isinstance(body, SubmitOrders)
                    else [(decode(frames[1:]).msg_id, body.client_order_id)]
                )
                for msg_id, coid in items:
                    seen[coid] = seen.get(coid, 0) + 1
                    pending.append((frames[0], msg_id, coid))
                continue
            peak[0] = max(peak[0], len(pending))
            for who, msg_id, coid in pending:
                view = OrderView(client_order_id=coid, venue="simA", symbol="AAPL",
                                 side="BUY", qty=Decimal(1), order_type="LIMIT",  # type: ignore[arg-type]
                                 status=OrderStatus.PENDING_SUBMIT)  # fmt: skip
                router.send_multipart([who, *oms_sender.encode(OrderAck(order=view), msg_id)])
            pending.clear()

    thread = threading.Thread(target=oms, daemon=True)
    thread.start()
    sock = connect_dealer(ctx, endpoint, "many")
    try:
        bodies = submits("w-", 3000)
        out = request_many(sock, Sender("many", 1), bodies, retry_interval_s=30.0, timeout_s=120.0)
        assert all(isinstance(o, OrderAck) for o in out)
        assert set(seen) == {b.client_order_id for b in bodies}
        assert max(seen.values()) == 1  # none sent twice
        assert 0 < peak[0] <= WINDOW, peak[0]
    finally:
        stop.set()
        thread.join(5.0)
        sock.close(0)
        router.close(0)
        ctx.term()


def test_a_stalled_oms_is_not_handed_the_window_again_every_interval(tmp_path: Path) -> None:
    """An OMS that reads nothing for the whole call (a long turn, a restart): after the
    first window only one probe per `retry_interval_s` (each resend of the window was 512
    more submits queued at it, every second: found by the integration review)."""
    endpoint = f"ipc://{tmp_path}/oms.sock"
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    router = ctx.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    router.setsockopt(zmq.RCVHWM, 0)
    router.bind(endpoint)
    sock = connect_dealer(ctx, endpoint, "many")
    bodies = submits("w-", 3000)
    try:
        out = request_many(sock, Sender("many", 1), bodies, retry_interval_s=0.5, timeout_s=2.6)
        assert out == [None] * 3000  # nothing answered: each a Timeout for the client
        items: list[str] = []
        while router.poll(200):
            body = decode(router.recv_multipart()[1:]).body
            if isinstance(body, SubmitOrders):
                items += [o["body"]["client_order_id"] for o in body.orders]
            else:
                assert isinstance(body, SubmitOrder)
                items.append(body.client_order_id)
        assert len(set(items)) == WINDOW  # never past the window
        assert WINDOW < len(items) <= WINDOW + 5  # the probes: one an interval
    finally:
        sock.close(0)
        router.close(0)
        ctx.term()


def submits(prefix: str, n: int) -> list[SubmitOrder]:
    """`n` resting buys, client order ids `prefix` + their number."""
    return [
        SubmitOrder(
            client_order_id=f"{prefix}{i}",
            venue="simA",
            symbol="AAPL",
            side="BUY",  # type: ignore[arg-type]
            qty=Decimal(1),
            order_type="LIMIT",  # type: ignore[arg-type]
            price=Decimal(95),
        )
        for i in range(n)
    ]
