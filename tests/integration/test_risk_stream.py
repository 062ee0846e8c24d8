"""Risk's copy of the OMS's event stream (`actors.oms.event_wire.EventStreams`, issue 16)
against a running system: `risk-events.sock` carries exactly the messages of the clients'
`events.sock`, byte for byte and in the same order, only later (`[oms] risk_stream_lag_s`)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import zmq

from protocol.client import OrderSpec
from protocol.codec import decode
from protocol.event_batch import read_events
from protocol.messages import OrderEvent, OrderStatus
from protocol.paths import RISK_EVENTS
from tests.integration.oms_support import overrides, start, systems
from tests.system_ops import SYMBOL, VENUE, client, submit_when_open

pytestmark = pytest.mark.integration

N = 12


def test_risk_reads_the_clients_stream_message_for_message(short_tmp: Path) -> None:
    with systems() as started:
        sut = start(started, root=short_tmp, overrides=overrides(oms={"risk_stream_lag_s": 0.05}))
        ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        subs = {}
        for name, endpoint in (("clients", sut.cfg.events_endpoint),
                               ("risk", sut.cfg.endpoint(RISK_EVENTS))):  # fmt: skip
            sub = subs[name] = ctx.socket(zmq.SUB)
            sub.setsockopt(zmq.LINGER, 0)
            sub.setsockopt(zmq.SUBSCRIBE, b"")
            sub.connect(endpoint)
        try:
            with client(sut) as c:
                joined: set[str] = set()
                for i in range(50):  # probes until both subscriptions have joined (PUB drops)
                    submit_when_open(c, VENUE, client_order_id=f"probe-{i}")
                    joined |= {n for n, s in subs.items() if s.poll(300)}
                    if len(joined) == 2:
                        break
                assert len(joined) == 2, joined
                for sub in subs.values():  # what came before the orders, until quiet
                    while sub.poll(300):
                        sub.recv_multipart()
                for i in range(N // 2):  # one at a time: the lag's timer sends risk's copy
                    c.submit(
                        VENUE, SYMBOL, "BUY", "1", price="95.00", client_order_id=f"rs-{i:02d}"
                    )
                coids = [f"rs-{i:02d}" for i in range(N // 2, N)]
                specs = [OrderSpec(VENUE, SYMBOL, "BUY", "1", "LIMIT", price="95.00",
                                   client_order_id=coid) for coid in coids]  # fmt: skip
                assert all(not isinstance(v, Exception) for v in c.submit_many(specs))
                got = {name: _until_accepted(sub) for name, sub in subs.items()}
        finally:
            ctx.destroy(linger=0)
    assert got["risk"] == got["clients"]  # the same bytes, in the same order


def _until_accepted(sub: zmq.Socket[bytes]) -> list[list[bytes]]:
    """The messages `sub` reads until every order of the test is ACCEPTED, then until it
    has been quiet for 0.3 s (longer than the lag)."""
    out: list[list[bytes]] = []
    accepted: set[str] = set()
    deadline = time.monotonic() + 20.0
    while len(accepted) < N and time.monotonic() < deadline:
        if not sub.poll(200):
            continue
        frames = sub.recv_multipart()
        out.append(frames)
        for event in _events(frames):
            if event.order.status is OrderStatus.ACCEPTED:
                accepted.add(event.order.client_order_id)
    assert len(accepted) == N, sorted(accepted)
    while sub.poll(300):
        out.append(sub.recv_multipart())
    return out


def _events(frames: list[bytes]) -> list[OrderEvent]:
    """The test's order events in a lone event or a turn's `OrderEvents`."""
    batch = read_events(frames)
    if batch is not None:
        events: list[object] = [item.decode() for item in batch[1]]
    else:
        events = [decode(frames).body]
    return [e for e in events if isinstance(e, OrderEvent) and e.order.client_order_id[:3] == "rs-"]
