"""The event stream's queues are bounded in bytes: a message is up to a batch of
`MAX_EVENT_BATCH_BYTES`, so its high-water mark each way (the OMS's PUB, risk's SUB) is
`EVENT_STREAM_HWM` messages, `EVENT_STREAM_BYTES` of full batches. A subscriber that stops
reading gets at most about twice that many messages queued (its SUB's and the PUB's, plus
what the kernel buffers); the rest is dropped at the PUB (a gap it recovers from), never
held by the OMS without bound (at the generic 100,000 messages of up to 1 MiB: GiBs)."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator

import pytest
import zmq

from actors.oms.event_wire import bind_event_stream
from protocol.batch_messages import EVENT_STREAM_BYTES, EVENT_STREAM_HWM, MAX_EVENT_BATCH_BYTES
from protocol.sockets import Context, connect_subscriber

PUBLISHED = 20_000  # small messages: the HWM counts messages, whatever their size


@pytest.fixture
def ctx() -> Iterator[Context]:
    context: Context = zmq.Context()
    yield context
    context.destroy(linger=0)


def test_the_budget_is_in_full_batches() -> None:
    assert EVENT_STREAM_HWM * MAX_EVENT_BATCH_BYTES <= EVENT_STREAM_BYTES <= 64 << 20
    assert EVENT_STREAM_HWM >= 1000  # a few thousand turns' lone events before a drop


def test_a_subscriber_that_stops_reading_is_bounded(ctx: Context) -> None:
    where = tempfile.mkdtemp(prefix="tp-ev")  # short: the ipc path limit
    pub = bind_event_stream(ctx, f"ipc://{where}/events.sock")
    sub = connect_subscriber(ctx, f"ipc://{where}/events.sock", hwm=EVENT_STREAM_HWM)
    try:
        deadline = time.monotonic() + 10.0
        while not sub.poll(10):  # joined (a PUB drops what it sends before)
            assert time.monotonic() < deadline, "the subscriber never joined"
            pub.send(b"probe")
        while sub.poll(0):
            sub.recv()
        for i in range(PUBLISHED):  # while the subscriber reads nothing
            pub.send(i.to_bytes(4, "big") + b"x" * 300)
        got = 0
        while sub.poll(500):  # what was queued for it, until nothing more comes
            sub.recv()
            got += 1
    finally:
        sub.close(linger=0)
        pub.close(linger=0)
        shutil.rmtree(where, ignore_errors=True)
    assert 0 < got <= 3 * EVENT_STREAM_HWM, f"{got} of {PUBLISHED} messages were queued"
