"""Client batching of submits against a running system: `ExecutionClient.submit_many`
(several orders in one `SubmitOrders`, one outcome per order) and the OMS's answers to a
batch (one `Replies` per client and turn, after the journal commit), with a raw DEALER for
what the wire carries."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import pytest
import zmq

from protocol.client import ExecutionClient, InvalidOrder, OrderSpec
from protocol.codec import Envelope, Sender, decode, decode_item
from protocol.exceptions import RiskRejected
from protocol.messages import OrderAck, OrderStatus, OrderView, Replies, SubmitOrder
from protocol.wire_out import dump
from tests.helpers import eventually
from tests.integration.oms_support import overrides, start, systems
from tests.system_ops import SYMBOL, VENUE, client, submit_when_open

pytestmark = pytest.mark.integration


def _spec(coid: str, qty: str = "10", price: str = "95.00") -> OrderSpec:
    return OrderSpec(VENUE, SYMBOL, "BUY", qty, "LIMIT", price=price, client_order_id=coid)


def _orders(c: ExecutionClient, prefix: str) -> dict[str, OrderView]:
    return {o.client_order_id: o for o in c.list_orders() if o.client_order_id.startswith(prefix)}


@contextmanager
def _dealer(endpoint: str) -> Iterator[zmq.Socket[bytes]]:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    try:
        yield sock
    finally:
        sock.close(0)
        ctx.term()


def _replies(sock: zmq.Socket[bytes], ids: set[str], timeout_s: float = 10.0) -> list[Envelope]:
    """The envelopes that answer `ids` (a `Replies` counts as its items), until all have."""
    got: list[Envelope] = []
    answered: set[str] = set()

    def poll() -> bool:
        while sock.poll(0):
            env = decode(sock.recv_multipart())
            got.append(env)
            if isinstance(env.body, Replies):
                answered.update(str(r["corr"]) for r in env.body.replies)
            answered.add(env.corr_id)
        return ids <= answered

    eventually(poll, timeout_s, interval_s=0.01, message=f"answers to {len(ids)} submits")
    return got


def test_submit_many_returns_one_outcome_per_order_and_resends_create_nothing(
    short_tmp: Path,
) -> None:
    """Five orders in one call: three accepted, one refused by risk (over max_order_qty),
    one invalid before anything is sent; each outcome in its place, the refusal and the
    invalid one as exception values. The same call again (same client order ids) returns
    the same orders as duplicates and the OMS holds each once."""
    with systems() as started:
        sut = start(started, root=short_tmp, overrides=overrides())
        with client(sut) as c:
            submit_when_open(c, VENUE, client_order_id="probe-0")
            specs = [
                _spec("many-0"),
                _spec("many-1", price="94.00"),
                _spec("many-2", qty="20000"),  # over the risk limit (max_order_qty 10000)
                _spec("many-3", qty="not-a-number"),
                _spec("many-4", price="93.00"),
            ]
            first = c.submit_many(specs, timeout_s=20.0)
            assert len(first) == 5
            for i in (0, 1, 4):
                view = first[i]
                assert isinstance(view, OrderView), view
                assert view.client_order_id == f"many-{i}"
                assert view.status is not OrderStatus.REJECTED
            assert isinstance(first[2], RiskRejected), first[2]
            assert isinstance(first[3], InvalidOrder), first[3]
            again = c.submit_many(specs, timeout_s=20.0)
            assert [type(o) for o in again] == [type(o) for o in first]
            held = _orders(c, "many-")
            assert sorted(held) == ["many-0", "many-1", "many-2", "many-4"]
            assert held["many-2"].status is OrderStatus.REJECTED
            assert c.submit_many([], timeout_s=1.0) == []


def test_batch_answers_come_as_one_replies_and_a_malformed_item_fails_alone(
    short_tmp: Path,
) -> None:
    """On the wire: a `SubmitOrders` of three items, the middle one malformed (no such
    side), gets answers for the other two, correlated to their own ids (several ready
    in one turn: inside a `Replies`); the malformed one is counted as a bad message and
    answered nothing. A lone `SubmitOrder` still gets a lone `OrderAck`."""
    with systems() as started:
        sut = start(started, root=short_tmp, overrides=overrides())
        with client(sut) as c:
            submit_when_open(c, VENUE, client_order_id="probe-1")
        bad_before = sut.metric("tradepulse_bad_messages_total", actor="oms") or 0.0
        sender = Sender("raw-batch", 1)
        good = [SubmitOrder(client_order_id=f"raw-{i}", venue=VENUE, symbol=SYMBOL, side="BUY",
                            qty=Decimal(10), order_type="LIMIT", price=Decimal("95"))
                for i in range(3)]  # fmt: skip
        ids = [sender.next_id() for _ in good]
        items = [{"id": i, "body": dump(b)} for i, b in zip(ids, good, strict=True)]
        items[1]["body"] = {**items[1]["body"], "side": "SIDEWAYS"}
        with _dealer(sut.cfg.client_endpoint) as sock:
            _, frames = sender.encode_body("submit_orders", {"orders": items})
            sock.send_multipart(frames)
            got = _replies(sock, {ids[0], ids[2]})
            answers: dict[str, object] = {}
            for env in got:
                if isinstance(env.body, Replies):
                    for r in env.body.replies:
                        answers[str(r["corr"])] = decode_item(str(r["type"]), r["body"])
                else:
                    answers[env.corr_id] = env.body
            assert set(answers) == {ids[0], ids[2]}
            assert any(isinstance(env.body, Replies) for env in got), got  # one verdicts msg
            for msg_id, coid in ((ids[0], "raw-0"), (ids[2], "raw-2")):
                ack = answers[msg_id]
                assert isinstance(ack, OrderAck) and ack.order.client_order_id == coid
            eventually(
                lambda: (
                    (sut.metric("tradepulse_bad_messages_total", actor="oms") or 0.0) > bad_before
                ),
                10.0,
                message="the malformed item counted",
            )
            lone = good[1].model_copy(update={"client_order_id": "raw-lone"})
            msg_id, frames = sender.encode_body("submit_order", dump(lone))
            sock.send_multipart(frames)
            (reply,) = _replies(sock, {msg_id})
            assert reply.corr_id == msg_id and isinstance(reply.body, OrderAck)
        with client(sut) as c:
            assert sorted(_orders(c, "raw-")) == ["raw-0", "raw-2", "raw-lone"]


def test_one_call_of_10000_orders_never_stops_the_oms_beating(short_tmp: Path) -> None:
    """One `submit_many` of 10,000 orders (found by review: the endpoint served up to
    256,000 submits in one turn and the call sent all its batches at once, so the OMS
    was hang-killed, over and over with each resend): every order answered, the OMS never
    restarted."""
    with systems() as started:
        sut = start(started, root=short_tmp, overrides=overrides())
        with client(sut) as c:
            submit_when_open(c, VENUE, client_order_id="probe-0")
            specs = [_spec(f"big-{i}", qty="1", price="90.00") for i in range(10_000)]
            out = c.submit_many(specs, timeout_s=120.0)
        assert all(isinstance(o, OrderView | RiskRejected) for o in out), {
            type(o).__name__ for o in out
        }
        unavailable = [
            o for o in out if isinstance(o, RiskRejected) and "no risk verdict" in o.reason
        ]
        assert not unavailable  # risk answered every order: none given up on (fail closed)
        assert sum(isinstance(o, OrderView) for o in out) >= 9_000
        assert (sut.metric("tradepulse_actor_restarts_total", actor="oms") or 0.0) == 0.0
