"""The OMS client endpoint's batches (`actors/oms/client_endpoint.py`), over a real ROUTER
with a stub OMS: a `SubmitOrders` served item by item as lone submits, and the answers to
batch items held while a window is open, then sent per client as one `Replies`."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import zmq

from actors.oms.client_endpoint import REPLIES_CHUNK, ClientEndpoint, _fast_batch, _item
from actors.runtime.peer import Replier
from protocol.batch_messages import MAX_SUBMIT_BATCH, MAX_SUBMIT_BATCH_BYTES
from protocol.codec import Envelope, Sender, decode, decode_item
from protocol.exceptions import ProtocolError
from protocol.messages import Ack, Message, Replies, SubmitOrder, SubmitOrders
from protocol.wire_out import dump
from tests.helpers import eventually


class _Oms:
    """The slice of the OMS the endpoint uses; `serve` records, answers nothing itself."""

    def __init__(self) -> None:
        self.ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.sender = Sender("oms", 7)
        self.served: list[tuple[Envelope, Replier]] = []
        self.bad: list[str] = []

    def decode_or_count(self, frames: list[bytes], source: str) -> Envelope | None:
        try:
            return decode(frames)
        except ProtocolError as exc:
            self.count_bad(source, str(exc))
            return None

    def count_bad(self, source: str, error: str) -> None:
        self.bad.append(error)

    def serve(self, env: Envelope, reply: Replier) -> None:
        self.served.append((env, reply))

    def refuse(self, env: Envelope, reply: Replier, reason: str) -> None:
        raise AssertionError(f"refused {env.type}: {reason}")

    def send_dropped(self, kind: str, reason: str, peer: str, type_: str) -> None:
        raise AssertionError(f"dropped {type_} to {peer}: {reason}")


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[tuple[_Oms, ClientEndpoint, dict[str, zmq.Socket[bytes]]]]:
    oms = _Oms()
    endpoint = f"ipc://{tmp_path}/client.sock"
    ep = ClientEndpoint(oms, endpoint)
    clients: dict[str, zmq.Socket[bytes]] = {}
    for name in ("a", "b"):
        sock = oms.ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.IDENTITY, name.encode())
        sock.connect(endpoint)
        clients[name] = sock
    try:
        yield oms, ep, clients
    finally:
        for sock in clients.values():
            sock.close(0)
        ep.sock.close(0)
        oms.ctx.term()


def _order(coid: str) -> dict[str, Any]:
    return dump(SubmitOrder(client_order_id=coid, venue="simA", symbol="AAPL", side="BUY",  # type: ignore[arg-type]
                            qty=Decimal(1), order_type="LIMIT", price=Decimal("95")))  # type: ignore[arg-type]  # fmt: skip


def _serve(oms: _Oms, ep: ClientEndpoint, sock: zmq.Socket[bytes], frames: list[bytes]) -> None:
    """Send `frames` from `sock` and let the endpoint read until the stub saw something."""
    before = (len(oms.served), len(oms.bad))
    sock.send_multipart(frames)

    def read() -> bool:
        ep.on_readable()
        return (len(oms.served), len(oms.bad)) != before

    eventually(read, 5.0, interval_s=0.005, message="the endpoint read the message")


def _recv(sock: zmq.Socket[bytes]) -> Envelope:
    assert sock.poll(5000), "no message"
    return decode(sock.recv_multipart())


def _unpacked(env: Envelope) -> list[tuple[str, Message]]:
    """(corr, reply) of a lone reply or of each item of a `Replies`."""
    if isinstance(env.body, Replies):
        return [(str(r["corr"]), decode_item(str(r["type"]), r["body"])) for r in env.body.replies]
    return [(env.corr_id, env.body)]


def test_each_item_is_served_as_a_lone_submit_and_a_malformed_one_fails_alone(rig: Any) -> None:
    """Three items, the middle one with an unknown side: the first and the last are served
    as `submit_order` envelopes under their own ids, in order; the middle one is counted
    bad and not served. A batch over the byte bound, with no items or too many, is counted
    bad whole, nothing served; an item with an unknown key is counted bad alone."""
    oms, ep, clients = rig
    client = Sender("cl", 1)
    items = [{"id": f"id-{i}", "body": _order(f"o-{i}")} for i in range(3)]
    items[1]["body"] = {**items[1]["body"], "side": "SIDEWAYS"}
    _serve(oms, ep, clients["a"], client.encode_body("submit_orders", {"orders": items})[1])
    assert [(e.type, e.msg_id, e.body.client_order_id) for e, _ in oms.served] == [  # type: ignore[union-attr]
        ("submit_order", "id-0", "o-0"), ("submit_order", "id-2", "o-2")
    ]  # fmt: skip
    assert len(oms.bad) == 1 and "side" in oms.bad[0]
    fat = [{"id": f"f-{i}", "body": {**_order(f"f-{i}"), "client_order_id": f"{i:064d}"}}
           for i in range(MAX_SUBMIT_BATCH)]  # fmt: skip
    frames = client.encode_body("submit_orders", {"orders": fat})[1]
    if len(frames[0]) <= MAX_SUBMIT_BATCH_BYTES:  # pad the ids until the frame is over
        fat = [{**f, "id": f["id"] + "x" * 2048} for f in fat]
        frames = client.encode_body("submit_orders", {"orders": fat})[1]
    assert len(frames[0]) > MAX_SUBMIT_BATCH_BYTES
    _serve(oms, ep, clients["a"], frames)
    assert len(oms.served) == 2 and "over" in oms.bad[-1]
    many = [{"id": f"m-{i}", "body": _order(f"m-{i}")} for i in range(MAX_SUBMIT_BATCH + 1)]
    for envelope in ([], many, [{"id": "x", "body": _order("x"), "extra": 1}]):
        bad = len(oms.bad)  # no items, too many, or an item with an unknown key
        _serve(oms, ep, clients["a"], client.encode_body("submit_orders", {"orders": envelope})[1])
        assert len(oms.bad) == bad + 1 and len(oms.served) == 2


def test_batch_answers_wait_for_the_window_and_go_per_client_as_one_replies(rig: Any) -> None:
    """Inside a window, the answers to batch items are held: two for client a and one for
    client b go out at `release` as one `Replies` to a (in order) and a lone correlated
    answer to b; a lone request's reply is never held (a gets it first). Outside a window a
    batch item's answer goes at once. More than `REPLIES_CHUNK` go as several."""
    oms, ep, clients = rig
    client = Sender("cl", 1)
    items = [{"id": f"id-{i}", "body": _order(f"o-{i}")} for i in range(2)]
    _serve(oms, ep, clients["a"], client.encode_body("submit_orders", {"orders": items})[1])
    _serve(oms, ep, clients["b"], client.encode_body("submit_orders", {"orders": items[:1]})[1])
    (a0, ra0), (a1, ra1), (b0, rb0) = oms.served
    ep.hold()
    ra0(Ack(ref="a0"))
    rb0(Ack(ref="b0"))
    Replier(ep, [b"a"], "lone-1")(Ack(ref="lone"))  # a lone request's reply: not held
    ra1(Ack(ref="a1"))
    assert _unpacked(_recv(clients["a"])) == [("lone-1", Ack(ref="lone"))]
    assert not clients["a"].poll(50) and not clients["b"].poll(0)
    ep.release()
    batch = _recv(clients["a"])
    assert isinstance(batch.body, Replies) and batch.corr_id == ""
    assert _unpacked(batch) == [("id-0", Ack(ref="a0")), ("id-1", Ack(ref="a1"))]
    assert _unpacked(_recv(clients["b"])) == [("id-0", Ack(ref="b0"))]
    ra0(Ack(ref="now"))  # no window open: at once
    assert _unpacked(_recv(clients["a"])) == [("id-0", Ack(ref="now"))]
    ep.hold()
    for i in range(REPLIES_CHUNK + 3):
        ep.send_held([b"b"], Ack(ref=str(i)), f"m-{i}")
    ep.release()
    sizes = [len(_unpacked(_recv(clients["b"]))) for _ in range(2)]
    assert sizes == [REPLIES_CHUNK, 3]


def test_the_fast_path_yields_what_the_full_path_yields() -> None:
    """A well-formed batch's items from the fast path (`_fast_batch`) are the envelopes the
    codec's decode and the per-item path give: same ids, header values and bodies (as
    models, equal); a batch with one item it cannot vouch for is left to the full path."""
    client = Sender("cl", 3)
    items = [{"id": f"id-{i}", "body": _order(f"o-{i}")} for i in range(5)]
    frame = client.encode_body("submit_orders", {"orders": items})[1][0]
    fast = _fast_batch(frame)
    env = decode([frame])
    assert isinstance(env.body, SubmitOrders)
    full = [_item(env, item) for item in env.body.orders]
    assert fast == full and len(full) == 5
    items[3]["body"] = {**items[3]["body"], "qty": "1e2"}  # not a plain decimal
    assert _fast_batch(client.encode_body("submit_orders", {"orders": items})[1][0]) is None
    assert _fast_batch(client.encode_body("submit_order", _order("x"))[1][0]) is None
