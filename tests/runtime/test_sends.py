"""No send on an actor's loop blocks (issue 15, section 1): a request to a peer whose queue
is full (down, or not reading) fails at once, its callback told on the next loop turn; the
host counts it. (Replies to a requester that does not read: tests/adversarial/test_peers.py.)"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
import zmq

from actors.runtime import peer as peer_module
from actors.runtime.peer import Peer
from protocol.codec import Envelope, Sender
from protocol.messages import GetOrder
from protocol.sockets import Context


class StubHost:
    actor_id = "oms"
    epoch = 1

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.sender = Sender("oms", 1)
        self.later: list[tuple[float, Callable[[], None]]] = []
        self.dropped: list[tuple[str, str, str, str]] = []

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> None:
        self.later.append((delay_s, fn))

    def decode_or_count(self, frames: list[bytes], source: str) -> Envelope | None:
        return None

    def on_peer_message(self, peer: Peer, env: Envelope) -> None:
        pass

    def send_dropped(self, kind: str, reason: str, peer: str, type_: str) -> None:
        self.dropped.append((kind, reason, peer, type_))


@pytest.fixture
def host() -> Iterator[StubHost]:
    ctx: Context = zmq.Context()
    yield StubHost(ctx)
    ctx.destroy(linger=0)


def _small_dealer(
    ctx: Context, endpoint: str, identity: str, zap_domain: bytes | None = None
) -> zmq.Socket[bytes]:
    """A DEALER whose queue holds one message, and whose blocking send would time out."""
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, 1)
    sock.setsockopt(zmq.SNDTIMEO, 1000)
    sock.connect(endpoint)
    return sock


def test_a_request_to_a_peer_whose_queue_is_full_fails_without_blocking(
    host: StubHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nobody serves the endpoint and the queue holds one message: the second request does
    not wait (a blocking send would: SNDTIMEO makes that an error here instead of a hang);
    it is counted at once, and its callback gets None from the loop at the request's
    deadline, as for a lost one (not at once: a caller that asks again on None would spin),
    never inside `request`."""
    monkeypatch.setattr(peer_module, "connect_dealer", _small_dealer)
    peer = Peer(host, "risk", f"ipc:///tmp/tp-nobody-{uuid.uuid4().hex}.sock")
    answers: list[Envelope | None] = []
    sent = [peer.request(GetOrder(client_order_id=f"c{i}"), answers.append, 5.0) for i in range(3)]
    assert sent[0] and not sent[1]  # (then connected again: `Peer._revive`; sent[2] queued)
    assert host.dropped[-1] == ("request", "hwm", "risk", "get_order")
    assert answers == []  # not from inside request()
    assert not [d for d, _ in host.later if d < 5.0]  # nothing sooner than the deadline
    assert peer.in_flight == len([s for s in sent if s])
    for _delay, fn in [item for item in host.later if item[0] == 5.0]:
        fn()
    assert None in answers
