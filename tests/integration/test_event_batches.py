"""The OMS's event stream against a running system: the order events of one turn go out as
one `OrderEvents` (several orders risk-approved in one turn), and a client
(`ExecutionClient.events`) still sees every event one by one, in event_seq order with no
gap (so no snapshot), each order from PENDING_SUBMIT to ACCEPTED."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import zmq

from protocol.client import OrderSpec
from protocol.codec import decode
from protocol.messages import OrderEvent, OrderStatus, Snapshot
from tests.integration.oms_support import overrides, start, systems
from tests.system_ops import SYMBOL, VENUE, client, submit_when_open

pytestmark = pytest.mark.integration

N = 20


def test_a_turns_events_go_as_one_message_and_a_client_reads_them_one_by_one(
    short_tmp: Path,
) -> None:
    with systems() as started:
        sut = start(started, root=short_tmp, overrides=overrides())
        ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        raw = ctx.socket(zmq.SUB)
        raw.setsockopt(zmq.LINGER, 0)
        raw.setsockopt(zmq.SUBSCRIBE, b"")
        raw.connect(sut.cfg.events_endpoint)
        try:
            with client(sut) as c:
                c.subscribe()
                for i in range(50):  # probes until both subscriptions have joined (PUB drops)
                    submit_when_open(c, VENUE, client_order_id=f"probe-{i}")
                    if raw.poll(200) and list(c.events(timeout_s=0.2)):
                        break
                while raw.poll(200):  # what came before the orders
                    raw.recv_multipart()
                list(c.events(timeout_s=0.2))
                specs = [OrderSpec(VENUE, SYMBOL, "BUY", "1", "LIMIT", price="95.00",
                                   client_order_id=f"evb-{i:02d}") for i in range(N)]  # fmt: skip
                assert all(not isinstance(v, Exception) for v in c.submit_many(specs))
                seen: dict[str, list[OrderStatus]] = {}
                seqs: list[int] = []
                deadline = time.monotonic() + 20.0
                while time.monotonic() < deadline and not _all_accepted(seen):
                    for ev in c.events(timeout_s=0.5):
                        assert not isinstance(ev, Snapshot), "a gap in the stream"
                        seqs.append(ev.event_seq)
                        if isinstance(ev, OrderEvent) and ev.order.client_order_id in _coids():
                            seen.setdefault(ev.order.client_order_id, []).append(ev.order.status)
                        if _all_accepted(seen):
                            break
                assert _all_accepted(seen), seen
                assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # one by one, no gap
                for statuses in seen.values():
                    assert statuses[-1] is OrderStatus.ACCEPTED
                    assert statuses.index(OrderStatus.PENDING_SUBMIT) < len(statuses) - 1
            types = _types(raw)
            assert "order_events" in types, types  # N orders approved in a turn: batched
            assert set(types) <= {"order_event", "order_events", "stream_event"}
        finally:
            ctx.destroy(linger=0)


def _coids() -> set[str]:
    return {f"evb-{i:02d}" for i in range(N)}


def _all_accepted(seen: dict[str, list[OrderStatus]]) -> bool:
    return len(seen) == N and all(OrderStatus.ACCEPTED in s for s in seen.values())


def _types(raw: zmq.Socket[bytes]) -> list[str]:
    """The types of the messages the raw SUB received (until quiet for 0.5 s)."""
    out = []
    while raw.poll(500):
        out.append(decode(raw.recv_multipart()).type)
    return out
