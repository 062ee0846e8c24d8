"""A `Requests` (several requests in one message): the requester's `Peer.request_many` sends
one message for N requests, each with its own id, callback and deadline (one alone goes as
itself; one that cannot be sent gets None at its deadline); the receiver serves each item
as the lone request it stands for, in order (`actors/runtime/batch_serve.py`): a malformed
item is counted and not served, one from a sender not allowed is refused alone, one that
raises is answered INTERNAL alone, the rest are served; a malformed envelope is refused
whole by the codec."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import msgpack
import pytest

from actors.runtime.actor import Actor
from actors.runtime.batch_serve import serve_batch
from actors.runtime.peer import Peer, Replier
from actors.runtime.ratelog import LogBudget
from protocol.codec import Envelope, Sender, decode
from protocol.exceptions import ProtocolError
from protocol.messages import (
    MAX_ACK_BATCH,
    CancelOnVenue,
    ErrorCode,
    Message,
    RequestRejected,
    Requests,
    Side,
)
from protocol.wire_out import dump
from tests.log_stub import RecordingLog


def _cancel(i: int) -> CancelOnVenue:
    return CancelOnVenue(cl_ord_id=f"x{i}", orig_cl_ord_id=f"c{i}", symbol="AAPL",
                         side=Side.BUY, qty="1")  # fmt: skip


class _PeerHost:
    def __init__(self) -> None:
        self.sender = Sender("oms", 2)
        self.later: list[tuple[float, Callable[[], None]]] = []

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> None:
        self.later.append((delay_s, fn))


class _NoInput:
    """A socket with nothing to read (the deadline sweep asks before it expires)."""

    def get(self, option: int) -> int:
        return 0


def _peer(sent: list[Message], room: bool = True) -> tuple[Peer, _PeerHost]:
    host = _PeerHost()
    peer = Peer.__new__(Peer)  # no socket: `send` is the test's
    peer.sock = _NoInput()  # type: ignore[assignment]
    peer._actor = host  # type: ignore[assignment]
    peer._pending = {}
    peer._by_timeout = {}
    peer._sweep_due = None

    def send(body: Message, corr_id: str = "") -> str | None:
        sent.append(body)
        return "batch-id" if room else None

    def send_body(type_: str, body: dict[str, Any], corr_id: str = "") -> str | None:
        assert type_ == "requests"  # what `request_many` writes is a valid `Requests`
        return send(Requests.model_validate(body), corr_id)

    peer.send = send  # type: ignore[method-assign]
    peer._send_body = send_body  # type: ignore[method-assign]
    return peer, host


def test_request_many_sends_one_message_each_item_its_own_id_and_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent: list[Message] = []
    peer, host = _peer(sent)
    got: list[tuple[int, Envelope | None]] = []
    items = [(_cancel(i), lambda env, i=i: got.append((i, env))) for i in range(3)]
    peer.request_many(items, 2.0)  # type: ignore[arg-type]
    [batch] = sent
    assert isinstance(batch, Requests)
    assert [r["body"] for r in batch.requests] == [dump(_cancel(i)) for i in range(3)]
    ids = [r["id"] for r in batch.requests]
    assert len(set(ids)) == 3 and set(peer._pending) == set(ids)
    assert [d for d, _ in host.later] == [2.0]  # one deadline sweep for the peer
    for i in (0, 2):  # the first and third answered (as a reply does) before the deadline
        assert peer._forget(ids[i]) is not None
    now = time.monotonic() + 2.5
    monkeypatch.setattr("actors.runtime.peer.time.monotonic", lambda: now)
    host.later[0][1]()  # the deadline: the second alone times out
    assert got == [(1, None)] and peer._pending == {}


def test_a_lone_request_goes_as_itself_and_an_unsent_batch_times_out_at_its_deadline() -> None:
    sent: list[Message] = []
    peer, host = _peer(sent)
    peer.request = lambda body, cb, t: sent.append(body) or ""  # type: ignore[method-assign,func-returns-value]
    peer.request_many([(_cancel(0), lambda env: None)], 2.0)
    assert sent == [_cancel(0)]
    sent2: list[Message] = []
    peer, host = _peer(sent2, room=False)
    got: list[Envelope | None] = []
    peer.request_many([(_cancel(i), got.append) for i in range(2)], 2.0)
    assert got == [] and peer._pending == {}  # never inside the call
    for _, fn in host.later:
        fn()
    assert got == [None, None]


class _Host:
    """What `serve_batch` uses of an actor, `serve` and `refuse` being the real ones."""

    guarded = True
    serve = Actor.serve
    serve_request = Actor.serve_request
    refuse = Actor.refuse
    count_refused = Actor.count_refused
    count_failed = Actor.count_failed
    actor_id = "connector.simA"

    def __init__(self, poison: str = "") -> None:
        self.log = RecordingLog()
        self._failed_log, self._refused_log = LogBudget(), LogBudget()
        self.poison = poison
        self.served: list[tuple[str, str]] = []
        self.replies: list[tuple[str, Message]] = []
        self.bad: list[str] = []
        self.crash_points: list[str] = []

    def on_request(self, env: Envelope, reply: Replier) -> None:
        assert isinstance(env.body, CancelOnVenue)
        if env.body.cl_ord_id == self.poison:
            raise ArithmeticError("a bug in us")
        self.served.append((env.msg_id, env.body.cl_ord_id))

    def send_router(self, identity: list[bytes], body: Message, corr_id: str = "") -> bool:
        self.replies.append((corr_id, body))
        return True

    def count_bad(self, source: str, error: str) -> None:
        self.bad.append(error)

    def crash_point(self, name: str) -> None:
        self.crash_points.append(name)


def _env(items: list[dict[str, Any]], sender: str = "oms") -> tuple[Envelope, Requests]:
    env = decode(Sender(sender, 2).encode(Requests.model_construct(requests=items)))
    assert isinstance(env.body, Requests)
    return env, env.body


def _item(i: int, **change: Any) -> dict[str, Any]:
    return {"id": f"r{i}", "type": "cancel_on_venue", "body": dump(_cancel(i))} | change


def test_each_item_is_served_as_its_lone_request_in_order() -> None:
    host = _Host()
    env, batch = _env([_item(i) for i in range(3)])
    serve_batch(host, [b"oms:2"], env, batch)  # type: ignore[arg-type]
    assert host.served == [("r0", "x0"), ("r1", "x1"), ("r2", "x2")]
    assert host.crash_points == ["mid_request_batch"]


def test_a_malformed_item_is_counted_and_the_others_served() -> None:
    host = _Host()
    bad = [
        _item(1, body={**dump(_cancel(1)), "qty": "lots"}),
        _item(2, type="requests"),  # a batch in a batch
        {"id": "r3", "body": {}},  # no type
        _item(4, id=""),
    ]
    env, batch = _env([_item(0), *bad, _item(5)])
    serve_batch(host, [b"oms:2"], env, batch)  # type: ignore[arg-type]
    assert host.served == [("r0", "x0"), ("r5", "x5")]
    assert len(host.bad) == 4 and "qty" in host.bad[0]
    assert host.replies == []  # no answer, as a malformed lone message gets none


def test_an_item_that_raises_is_answered_internal_alone() -> None:
    host = _Host(poison="x1")
    env, batch = _env([_item(i) for i in range(3)])
    serve_batch(host, [b"oms:2"], env, batch)  # type: ignore[arg-type]
    assert host.served == [("r0", "x0"), ("r2", "x2")]
    [(corr, body)] = host.replies
    assert corr == "r1" and isinstance(body, RequestRejected)
    assert body.code is ErrorCode.INTERNAL
    assert host.log.names() == ["request_failed"]


def test_an_item_its_sender_may_not_send_is_refused_alone() -> None:
    host = _Host()
    env, batch = _env([_item(0)], sender="risk")
    serve_batch(host, [b"risk:2"], env, batch)  # type: ignore[arg-type]
    assert host.served == []
    [(corr, body)] = host.replies
    assert corr == "r0" and isinstance(body, RequestRejected)
    assert body.code is ErrorCode.NOT_ALLOWED


@pytest.mark.parametrize("items", [[], [{}] * (MAX_ACK_BATCH + 1), ["not a map"]])
def test_a_malformed_batch_is_refused_whole(items: list[Any]) -> None:
    obj = msgpack.unpackb(Sender("oms", 1).encode(Requests(requests=[_item(0), _item(1)]))[0])
    obj["body"]["requests"] = items
    for fast in (True, False):
        with pytest.raises(ProtocolError, match="requests"):
            decode([msgpack.packb(obj)], fast=fast)
