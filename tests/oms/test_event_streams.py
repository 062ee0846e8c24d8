"""`EventStreams` (issue 16): the OMS's event stream goes to clients at once; an approved
order's PENDING_SUBMIT and ACCEPTED go to risk up to `[oms] risk_stream_lag_s` later, so an
order's path wakes no risk turn; every other message goes to risk at once, after what
waits, and what waits goes before any message the OMS sends risk."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

import actors.runtime.peer as peer_module
from actors.oms.event_wire import RISK_QUEUE_MAX, EventStreams
from actors.runtime.peer import Peer
from protocol.codec import Sender
from protocol.messages import RiskCheck, StreamEvent
from tests.runtime.test_peer_queued_replies import _Host

_SENDER = Sender("oms", 1)


def _event(status: str, *, external: bool = False, fill: str | None = None) -> list[Any]:
    """A lone order event's frames, as the OMS writes them (`order_event_body`'s shape)."""
    order = {"client_order_id": "c1", "venue": "simA", "symbol": "AAPL", "side": "BUY",
             "qty": "1", "order_type": "LIMIT", "price": "90", "tif": "DAY",
             "status": status, "cl_ord_id": "c1", "venue_order_id": "", "cum_qty": "0",
             "avg_px": "0", "reason": "", "external": external, "ts_ns": 1}  # fmt: skip
    body = {"event_seq": 1, "order": order, "fill_qty": fill, "fill_px": fill and "90"}
    return _SENDER.encode_body("order_event", body)[1]


E1, E2, E3 = _event("PENDING_SUBMIT"), _event("ACCEPTED"), _event("PENDING_SUBMIT")
_NAMES = {id(E1): "e1", id(E2): "e2", id(E3): "e3"}


class _Pub:
    def __init__(self, log: list[str], name: str) -> None:
        self.log, self.name = log, name
        self.sent: list[list[Any]] = []

    def send_multipart(self, frames: list[Any], copy: bool = True) -> None:
        self.sent.append(frames)
        self.log.append(f"{self.name} {_NAMES.get(id(frames), frames[0])!r}")


class _Streams:
    def __init__(self, lag_s: float = 0.005) -> None:
        self.log: list[str] = []
        self.clients, self.risk = _Pub(self.log, "clients"), _Pub(self.log, "risk")
        self.timers: list[tuple[float, Callable[[], None]]] = []
        self.streams = EventStreams(self.clients, self.risk, lag_s, self._later)  # type: ignore[arg-type]

    def _later(self, delay_s: float, fn: Callable[[], None]) -> None:
        self.timers.append((delay_s, fn))

    def fire(self) -> None:
        timers, self.timers = self.timers, []
        for _, fn in timers:
            fn()


def test_clients_get_each_message_at_once_and_risk_an_orders_path_after_the_lag() -> None:
    s = _Streams()
    s.streams.send_multipart(E1)
    s.streams.send_multipart(E2)
    assert s.clients.sent == [E1, E2]
    assert s.risk.sent == []
    assert [delay for delay, _ in s.timers] == [0.005]  # one timer for what waits
    s.fire()
    assert s.risk.sent == [E1, E2]  # the same messages, in the same order
    s.streams.send_multipart(E3)
    assert [delay for delay, _ in s.timers] == [0.005]  # armed again by the next one
    s.fire()
    assert s.risk.sent == [E1, E2, E3]


@pytest.mark.parametrize(
    "frames",
    [
        _event("PARTIALLY_FILLED", fill="1"),  # a fill: its price, a loss
        _event("ACCEPTED", fill="1"),
        _event("CANCELLED"),
        _event("REJECTED"),
        _event("UNKNOWN"),
        _event("ACCEPTED", external=True),  # adopted: exposure risk never approved
        _SENDER.encode(StreamEvent(event_seq=2, event="opening_positions", data={})),
        _SENDER.encode_body("order_events", {"events": []})[1],  # a turn's batch
        [b"not msgpack"],
    ],
    ids=[
        "fill",
        "accepted-fill",
        "cancelled",
        "rejected",
        "unknown",
        "adopted",
        "stream",
        "batch",
        "garbage",
    ],  # fmt: skip
)
def test_anything_else_goes_to_risk_at_once_after_what_waits(frames: list[Any]) -> None:
    s = _Streams()
    s.streams.send_multipart(E1)
    s.streams.send_multipart(frames)
    assert s.risk.sent == [E1, frames]  # in the stream's order


def test_a_lag_of_zero_sends_risk_its_copy_at_once() -> None:
    s = _Streams(lag_s=0)
    s.streams.send_multipart(E1)
    assert s.log == ["clients 'e1'", "risk 'e1'"]
    assert s.timers == []


def test_a_long_queue_goes_to_risk_without_waiting_for_the_lag() -> None:
    s = _Streams()
    for _ in range(RISK_QUEUE_MAX - 1):
        s.streams.send_multipart(E1)
    assert s.risk.sent == []
    s.streams.send_multipart(E2)
    assert len(s.risk.sent) == RISK_QUEUE_MAX and s.risk.sent[-1] is E2
    s.fire()  # the timer finds nothing left
    assert len(s.risk.sent) == RISK_QUEUE_MAX


@pytest.fixture
def risk_router(short_tmp: Path) -> Iterator[tuple[zmq.Context[zmq.Socket[bytes]], str]]:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    endpoint = f"ipc://{short_tmp}/risk.sock"
    router = ctx.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    router.bind(endpoint)
    try:
        yield ctx, endpoint
    finally:
        ctx.destroy(linger=0)


def test_what_waits_goes_to_risk_just_before_the_oms_asks_it_anything(
    risk_router: tuple[zmq.Context[zmq.Socket[bytes]], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A RiskCheck sent while events wait for the lag: risk's copy of them goes first."""
    ctx, endpoint = risk_router
    s = _Streams()
    risk = s.streams.follows(Peer(_Host(ctx), "risk", endpoint))  # type: ignore[arg-type]
    sent = peer_module.send_nowait

    def logged(sock: zmq.Socket[bytes], frames: list[Any]) -> str | None:
        s.log.append("risk check")
        return sent(sock, frames)

    monkeypatch.setattr(peer_module, "send_nowait", logged)
    s.streams.send_multipart(E1)
    check = RiskCheck(client_order_id="o1", venue="simA", symbol="AAPL", side="BUY",
                      qty="1", price="90", order_type="LIMIT")  # fmt: skip
    try:
        risk.request(check, lambda _reply: None, 1.0)
        assert s.log == ["clients 'e1'", "risk 'e1'", "risk check"]
        risk.request(check, lambda _reply: None, 1.0)  # nothing waits: the check alone
        assert s.log[3:] == ["risk check"]
    finally:
        risk.sock.close(linger=0)
