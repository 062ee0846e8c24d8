"""A `Peer`'s request deadlines without a timer per request (issue 16, "RSS flat after the
first 10,000"): the OMS held one timer, its closure and its heap entry for every request
until its deadline, ~20,000 at 1,500 orders/s with the bench's 10 s timeouts, and the peak
stayed in CPython's arenas. Now the pending requests are swept by one timer per peer,
armed for the earliest deadline; what each caller sees is the same (None at the deadline,
the reply otherwise, each callback once)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from actors.risk.actor import RiskActor
from actors.runtime.peer import Peer
from protocol.codec import Envelope
from protocol.messages import Ack, StreamEvent
from tests.actor_stubs import Harness


@pytest.fixture
def h() -> Iterator[Harness]:
    harness = Harness()
    yield harness
    harness.close()


def _probe(n: int) -> StreamEvent:
    return StreamEvent(event_seq=0, event=f"probe-{n}", data={})


def _peer(h: Harness) -> tuple[Peer, list[float]]:
    """The risk actor's peer to the (stub) OMS, and the delays of the timers it arms."""
    actor = h.start(RiskActor, "risk")
    armed: list[float] = []
    call_later = actor.call_later

    def counting(delay_s: float, fn: Callable[[], None]) -> None:
        armed.append(delay_s)
        call_later(delay_s, fn)

    actor.call_later = counting  # type: ignore[method-assign]
    return actor.oms, armed


def _recorder(got: dict[str, list[Envelope | None]], key: str) -> Callable[[Envelope | None], None]:
    got[key] = []
    return got[key].append


def test_many_pending_requests_hold_one_timer(h: Harness) -> None:
    """2,000 requests in flight arm one deadline timer between them, not one each."""
    peer, armed = _peer(h)
    h.oms.answering = False
    got: dict[str, list[Envelope | None]] = {}
    for n in range(2000):
        assert peer.request(_probe(n), _recorder(got, str(n)), 30.0)
    assert peer.in_flight >= 2000  # (and the actor's own asks of the OMS)
    assert len(armed) == 1


def test_unanswered_requests_get_none_at_their_own_deadline(h: Harness) -> None:
    """A short timeout asked after a long one still ends at its own deadline; the long one
    ends at its own, later; each callback gets None once."""
    peer, _ = _peer(h)
    h.oms.answering = False
    got: dict[str, list[Envelope | None]] = {}
    t0 = time.monotonic()
    peer.request(_probe(1), _recorder(got, "long"), 1.5)
    peer.request(_probe(2), _recorder(got, "short"), 0.2)
    h.pump(lambda: got["short"], timeout_s=5.0, what="the short request's deadline")
    assert got["short"] == [None] and time.monotonic() - t0 >= 0.2
    assert got["long"] == []
    h.pump(lambda: got["long"], timeout_s=5.0, what="the long request's deadline")
    assert got["long"] == [None] and time.monotonic() - t0 >= 1.5
    h.pump_for(0.3)
    assert got == {"long": [None], "short": [None]}


def test_an_answered_request_is_not_expired(h: Harness) -> None:
    """The reply reaches the callback; its deadline passing later calls nothing."""
    peer, _ = _peer(h)
    got: dict[str, list[Envelope | None]] = {}
    peer.request(_probe(1), _recorder(got, "a"), 0.3)
    h.pump(lambda: got["a"], timeout_s=5.0, what="the reply")
    h.pump_for(0.5)
    assert len(got["a"]) == 1 and isinstance(got["a"][0], Envelope)
    assert isinstance(got["a"][0].body, Ack)


def test_requests_after_fail_pending_still_expire(h: Harness) -> None:
    """`fail_pending` answers every pending request None at once (not again at its
    deadline); a request made afterwards, with a later deadline than the timer armed
    before, still gets None at its own."""
    peer, _ = _peer(h)
    h.oms.answering = False
    got: dict[str, list[Envelope | None]] = {}
    peer.request(_probe(1), _recorder(got, "old"), 0.2)
    peer.fail_pending()
    assert got["old"] == [None]
    t0 = time.monotonic()
    peer.request(_probe(2), _recorder(got, "new"), 0.6)
    h.pump(lambda: got["new"], timeout_s=5.0, what="the new request's deadline")
    assert got["new"] == [None] and time.monotonic() - t0 >= 0.6
    assert got["old"] == [None]
