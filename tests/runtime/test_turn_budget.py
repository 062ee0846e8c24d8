"""One loop turn reads a bounded slice of what is queued (`actors/runtime/turn_budget.py`):
at most `TURN_ITEMS` items per socket, a batch counting as the items it carries, the rest
left queued and the socket still readable for the next turn (issue 16: a flood of submits
made OMS turns of 0.3-0.6 s and the supervisor killed it as hung). Applied on the OMS's
client endpoint and on every `Peer` (risk's verdict batches)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import zmq

from actors.oms.client_endpoint import ClientEndpoint
from actors.runtime.peer import Peer, Replier
from actors.runtime.turn_budget import TURN_ITEMS, TurnBudget, items_of
from actors.runtime.zap import ZapGate
from protocol.codec import Envelope, Sender, decode
from protocol.messages import RiskVerdict, RiskVerdicts, SubmitOrder

Ctx = zmq.Context[zmq.Socket[bytes]]


class _Ctx(zmq.Context):  # type: ignore[type-arg]
    """A context that closes every socket it made (linger 0) when the test ends."""

    made: list[zmq.Socket[bytes]]

    def socket(self, *args: object, **kwargs: object) -> zmq.Socket[bytes]:
        sock: zmq.Socket[bytes] = super().socket(*args, **kwargs)  # type: ignore[arg-type]
        self.made.append(sock)
        return sock


@pytest.fixture
def ctx() -> Iterator[Ctx]:
    context = _Ctx()
    context.made = []
    try:
        yield context
    finally:
        for sock in context.made:
            sock.close(linger=0)
        context.term()


def _pair(ctx: Ctx, tmp_path: Path) -> tuple[zmq.Socket[bytes], zmq.Socket[bytes]]:
    # inproc: a sent message is in the reader's queue when `send` returns, so a turn's
    # read sees every message sent before it (over ipc the I/O thread may not have moved
    # them yet: a first turn read 58 of 1,000 once in `make test`)
    url = f"inproc://{tmp_path.name}"
    reader, writer = ctx.socket(zmq.PULL), ctx.socket(zmq.PUSH)
    for sock in (reader, writer):
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDHWM, 0)
        sock.setsockopt(zmq.RCVHWM, 0)
    reader.bind(url)
    writer.connect(url)
    return reader, writer


def _wait_readable(sock: zmq.Socket[bytes]) -> bool:
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    return bool(poller.poll(5000))


def _verdicts(n: int, start: int = 0) -> RiskVerdicts:
    verdicts = [RiskVerdict(client_order_id=f"o{start + i}", approved=True) for i in range(n)]
    return RiskVerdicts(verdicts=verdicts)


def test_a_turn_reads_at_most_the_budget_and_leaves_the_rest_readable(
    ctx: Ctx, tmp_path: Path
) -> None:
    """1,000 queued messages: each turn reads `TURN_ITEMS`, the socket stays readable to
    the level-triggered poller until the last one, and nothing is lost or reordered."""
    reader, writer = _pair(ctx, tmp_path)
    for i in range(1000):
        writer.send_multipart([b"%d" % i])
    budget, got, turns = TurnBudget(), [], []
    while len(got) < 1000:
        assert _wait_readable(reader), f"{len(got)} read, the rest not readable"
        turn = [int(frames[0]) for frames in budget.read(reader)]
        assert 0 < len(turn) <= TURN_ITEMS
        turns.append(len(turn))
        got += turn
    assert got == list(range(1000))
    assert turns[:3] == [TURN_ITEMS] * 3


def test_a_batch_counts_as_its_items(ctx: Ctx, tmp_path: Path) -> None:
    """Four `RiskVerdicts` of 200: a turn stops after the second (400 items), not after
    four messages; a plain message counts one."""
    reader, writer = _pair(ctx, tmp_path)
    sender = Sender("risk", 1)
    for k in range(4):
        writer.send_multipart(sender.encode(_verdicts(200, start=200 * k)))
    assert _wait_readable(reader)
    budget, read = TurnBudget(), []
    for frames in budget.read(reader):
        env = decode(frames)
        budget.spend(env)
        read.append(env)
    assert [items_of(e) for e in read] == [200, 200]
    assert items_of(decode(sender.encode(RiskVerdict(client_order_id="x", approved=True)))) == 1
    assert _wait_readable(reader)  # the other two wait for the next turn


class _ClientHost:
    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx
        self.sender = Sender("oms", 1)
        self.served: list[Envelope] = []

    def decode_or_count(self, frames: list[bytes], source: str) -> Envelope | None:
        return decode(frames)

    def serve(self, env: Envelope, reply: Replier) -> None:
        self.served.append(env)

    def refuse(self, env: Envelope, reply: Replier, reason: str) -> None:
        raise AssertionError(reason)

    def send_dropped(self, kind: str, reason: str, peer: str, type_: str) -> None:
        raise AssertionError(reason)


def _submit(i: int) -> SubmitOrder:
    return SubmitOrder(client_order_id=f"f{i}", venue="simA", symbol="AAPL", side="BUY",
                       qty=Decimal(1), order_type="LIMIT", price=Decimal("90"))  # fmt: skip


def test_the_client_endpoint_serves_a_flood_a_bounded_slice_per_turn(
    ctx: Ctx, tmp_path: Path
) -> None:
    """1,000 submits sent back to back by one client: one readable event serves
    `TURN_ITEMS` of them (it served 1,000 in one turn), the next turns the rest."""
    host = _ClientHost(ctx)
    endpoint = ClientEndpoint(host, f"ipc://{tmp_path}/client.sock")
    dealer = ctx.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.setsockopt(zmq.SNDHWM, 0)
    dealer.connect(f"ipc://{tmp_path}/client.sock")
    sender = Sender("flood", 1)
    for i in range(1000):
        dealer.send_multipart(sender.encode(_submit(i)))
    sizes = []
    while len(host.served) < 1000:
        assert _wait_readable(endpoint.sock), f"{len(host.served)} served, the rest lost"
        before = len(host.served)
        endpoint.on_readable()
        sizes.append(len(host.served) - before)
    assert max(sizes) <= TURN_ITEMS, sizes
    assert [e.body.client_order_id for e in host.served] == [f"f{i}" for i in range(1000)]  # type: ignore[union-attr]


class _PeerHost:
    def __init__(self, ctx: Ctx) -> None:
        self.unsolicited: list[Envelope] = []
        self.zap = ZapGate(ctx, "oms", lambda cred: None)  # the writer is this process

    def decode_or_count(self, frames: list[bytes], source: str) -> Envelope | None:
        return decode(frames)

    def on_peer_message(self, peer: Peer, env: Envelope) -> None:
        self.unsolicited.append(env)

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> None:
        raise AssertionError("no timer expected")


def test_a_peer_reads_risks_verdict_batches_a_bounded_slice_per_turn(
    ctx: Ctx, tmp_path: Path
) -> None:
    """Eight `RiskVerdicts` of 200 queued on a `Peer`: one readable event takes two of
    them (400 verdicts; it took all 1,600), the rest at the next turns, in order."""
    reader, writer = _pair(ctx, tmp_path)
    sender = Sender("risk", 1)
    for k in range(8):
        writer.send_multipart(sender.encode(_verdicts(200, start=200 * k)))
    host = _PeerHost(ctx)
    peer = Peer.__new__(Peer)  # its socket is the test's PULL (no ZAP, no connect)
    peer._actor = host  # type: ignore[assignment]
    peer.sock = reader
    peer.target = "risk"
    peer._pending, peer._by_timeout = {}, {}
    peer._budget = TurnBudget()
    sizes = []
    while len(host.unsolicited) < 8:
        assert _wait_readable(reader)
        before = len(host.unsolicited)
        peer.on_readable()
        sizes.append(len(host.unsolicited) - before)
    assert sizes == [2, 2, 2, 2]
    firsts = [e.body.verdicts[0].client_order_id for e in host.unsolicited]  # type: ignore[union-attr]
    assert firsts == [f"o{200 * k}" for k in range(8)]
