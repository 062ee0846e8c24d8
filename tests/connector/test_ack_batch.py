"""The connector's Acks of one adapter flush go as one `Acks` per requester (a lone one as
today's correlated `Ack`), in request order; a refusal inside the flush first sends the
Acks held before it, so the socket's order is today's. The OMS's `Peer` hands each ref of
an `Acks` to its own pending request as the lone `Ack` it stands for; one whose callback
raises fails alone; a ref no longer pending goes to the host as a late Ack would; a
request the batch does not name keeps waiting for its own deadline."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgpack
import pytest

from actors.connector.ack_batch import AckBatch
from actors.connector.adapter import RequestFailed
from actors.runtime.peer import Peer, _Pending
from protocol.codec import Envelope, Sender, decode
from protocol.exceptions import ProtocolError
from protocol.messages import MAX_ACK_BATCH, Ack, Acks, ErrorCode, Message, RequestRejected


class _Reply:
    def __init__(self, sent: list[tuple[bytes, Message, str]], who: bytes) -> None:
        self._sent, self.identity = sent, who

    def __call__(self, body: Message) -> None:
        self._sent.append((self.identity, body, "direct"))

    def reject(self, code: ErrorCode, reason: str, field: str | None = None) -> None:
        self(RequestRejected(code=code, reason=reason))


def _rig() -> tuple[AckBatch, list[tuple[bytes, Message, str]]]:
    sent: list[tuple[bytes, Message, str]] = []

    def send(identity: list[bytes], body: Message, corr: str) -> bool:
        sent.append((identity[0], body, corr))
        return True

    return AckBatch(send), sent


def _done(batch: AckBatch, sent: list[Any], msg_id: str, who: bytes = b"oms:1") -> Any:
    code: Callable[[RequestFailed], ErrorCode] = lambda e: ErrorCode.INVALID_ORDER  # noqa: E731
    return batch.sent_reply(_Reply(sent, who), msg_id, code)  # type: ignore[arg-type]


def test_the_acks_of_a_flush_go_as_one_message_in_order() -> None:
    batch, sent = _rig()
    dones = [_done(batch, sent, f"m{i}") for i in range(3)]
    batch.open()
    for d in dones:
        d(None)
    assert sent == []
    batch.close()
    assert sent == [(b"oms:1", Acks(refs=["m0", "m1", "m2"]), "")]


def test_a_lone_ack_is_todays_correlated_ack_and_outside_a_flush_it_goes_at_once() -> None:
    batch, sent = _rig()
    batch.open()
    _done(batch, sent, "m0")(None)
    batch.close()
    _done(batch, sent, "m1")(None)
    assert sent == [(b"oms:1", Ack(ref="m0"), "m0"), (b"oms:1", Ack(ref="m1"), "direct")]


def test_a_refusal_inside_a_flush_follows_the_acks_held_before_it() -> None:
    batch, sent = _rig()
    batch.open()
    _done(batch, sent, "m0")(None)
    _done(batch, sent, "m1")(None)
    _done(batch, sent, "m2")(RequestFailed(ErrorCode.INVALID_ORDER, "not sendable"))
    _done(batch, sent, "m3")(None)
    batch.close()
    assert [(type(b).__name__, c) for _, b, c in sent] == [
        ("Acks", ""), ("RequestRejected", "direct"), ("Ack", "m3"),
    ]  # fmt: skip


def test_acks_go_per_requester_and_at_most_the_bound_a_message() -> None:
    batch, sent = _rig()
    batch.open()
    for i in range(MAX_ACK_BATCH + 2):
        _done(batch, sent, f"a{i}", b"oms:1")(None)
    _done(batch, sent, "b0", b"oms:2")(None)
    batch.close()
    assert [(w, len(b.refs) if isinstance(b, Acks) else 1) for w, b, _ in sent] == [
        (b"oms:1", MAX_ACK_BATCH), (b"oms:1", 2), (b"oms:2", 1),
    ]  # fmt: skip


class _Host:
    def __init__(self) -> None:
        self.late: list[Envelope] = []
        self.failed: list[str] = []

    def on_peer_message(self, peer: Peer, env: Envelope) -> None:
        self.late.append(env)

    def count_failed(self, type_: str) -> None:
        self.failed.append(type_)


def _peer(host: _Host, pending: dict[str, Callable[[Envelope | None], None]]) -> Peer:
    peer = Peer.__new__(Peer)  # no socket: `_on_acks` only matches and calls back
    peer._actor = host  # type: ignore[assignment]
    peer._pending = {k: _Pending(cb, 1e18, 1e18) for k, cb in pending.items()}
    peer._by_timeout = {}
    peer._sweep_due = None
    return peer


def test_the_peer_hands_each_ref_to_its_own_request_one_raising_fails_alone() -> None:
    host, got = _Host(), []

    def boom(env: Envelope | None) -> None:
        raise RuntimeError("a bug in one callback")

    peer = _peer(host, {"m0": got.append, "m1": boom, "m2": got.append, "m9": got.append})
    acks = Acks(refs=["m0", "m1", "m2", "late"])
    env = decode(Sender("connector.simA", 4).encode(acks))
    peer._on_acks(env, acks)
    assert [(e.corr_id, e.body, e.type, e.epoch) for e in got] == [
        ("m0", Ack(ref="m0"), "ack", 4), ("m2", Ack(ref="m2"), "ack", 4),
    ]  # fmt: skip
    assert host.failed == ["ack"]
    assert [e.body for e in host.late] == [Ack(ref="late")]
    assert list(peer._pending) == ["m9"]  # not named: waits for its own deadline


@pytest.mark.parametrize("refs", [[], ["r"] * (MAX_ACK_BATCH + 1), ["r", 5]])
def test_a_malformed_acks_is_refused_whole(refs: list[Any]) -> None:
    obj = msgpack.unpackb(Sender("connector.simA", 1).encode(Acks(refs=["a", "b"]))[0])
    obj["body"]["refs"] = refs
    for fast in (True, False):
        with pytest.raises(ProtocolError, match="acks"):
            decode([msgpack.packb(obj)], fast=fast)
