"""A Peer's pending request is not judged timed out while its reply already sits in the
Peer's socket, left there by the turn budget (`actors/runtime/turn_budget.py`; found by the
integration review).

Four `RiskChecks` asked at once (the OMS's intake asks a turn's new orders in batches of
256, `RISK_RETRY_S` 0.5 s); risk answers all four at once (four `RiskVerdicts` of 256). One
OMS loop turn reads one of them (256 items = the budget); the turn's work (journal commit,
sends, replies) outlasts the deadline; the turn's timers then run the Peer's sweep, which
hands `None` to the three requests whose verdicts are already queued in our socket. The
OMS re-asks risk (or past `request_timeout_s` rejects the orders "risk_unavailable"). Before
the budget one readable event read all four (a drain of 1,000 messages); now the sweep
waits (up to `REPLY_GRACE_S`) while the socket has input.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import zmq

from actors.runtime import peer as peer_module
from actors.runtime.peer import Peer
from actors.runtime.zap import ZapGate
from protocol.codec import Envelope, Sender, decode
from protocol.messages import RiskCheck, RiskChecks, RiskVerdict, RiskVerdicts


class _Clock:
    """The Peer's `time.monotonic` and the host's timers: moved by the test, so the turn
    that outlasts the deadline does so whatever the machine's load (on the wall clock the
    reproducer's own work, under load, took past the deadline before the turn began)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


class _Host:
    def __init__(
        self,
        ctx: zmq.Context,  # type: ignore[type-arg]
        clock: _Clock | None = None,  # tests/oms/test_event_streams.py: none (runs no timers)
    ) -> None:
        self.ctx = ctx
        self.zap = ZapGate(ctx, "oms", lambda cred: None)  # the stubs bind in this process
        self.clock = clock or _Clock()
        self.actor_id = "oms"
        self.epoch = 1
        self.sender = Sender("oms", 1)
        self.timers: list[tuple[float, Callable[[], None]]] = []

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> None:
        self.timers.append((self.clock.now + delay_s, fn))

    def run_due(self) -> None:
        now = self.clock.now
        due = [t for t in self.timers if t[0] <= now]
        self.timers = [t for t in self.timers if t[0] > now]
        for _, fn in sorted(due, key=lambda t: t[0]):
            fn()

    def decode_or_count(self, frames: list[bytes], source: str) -> Envelope | None:
        return decode(frames)

    def on_peer_message(self, peer: Peer, env: Envelope) -> None:
        pass

    def send_dropped(self, kind: str, reason: str, peer: str, type_: str) -> None:
        raise AssertionError(reason)

    def count_failed(self, type_: str) -> None:
        raise AssertionError(type_)


@pytest.fixture
def ctx() -> Iterator[zmq.Context]:  # type: ignore[type-arg]
    context: zmq.Context = zmq.Context()  # type: ignore[type-arg]
    try:
        yield context
    finally:
        context.destroy(linger=0)


def _check(i: int) -> RiskCheck:
    return RiskCheck(client_order_id=f"o{i}", venue="simA", symbol="AAPL", side="BUY",
                     qty="1", price="90", order_type="LIMIT")  # fmt: skip


def test_a_reply_already_in_the_socket_is_not_judged_timed_out(
    ctx: zmq.Context,  # type: ignore[type-arg]
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # inproc: a reply sent is in our socket when `send` returns (over ipc the I/O threads
    # may not have moved the four yet, which a sleep only made likely)
    url = f"inproc://{tmp_path.name}"
    risk = ctx.socket(zmq.ROUTER)
    risk.setsockopt(zmq.LINGER, 0)
    risk.bind(url)
    clock = _Clock()
    monkeypatch.setattr(peer_module, "time", clock)
    host = _Host(ctx, clock)
    peer = Peer(host, "risk", url)  # type: ignore[arg-type]
    try:
        _run(peer, risk, host)
    finally:
        peer.sock.close(linger=0)
        risk.close(linger=0)


def _run(peer: Peer, risk: zmq.Socket, host: _Host) -> None:  # type: ignore[type-arg]
    got: dict[int, Envelope | None] = {}
    timeout_s = 0.5  # intake.RISK_RETRY_S
    for k in range(4):
        checks = [_check(256 * k + i) for i in range(256)]
        peer.request(RiskChecks(checks=checks), lambda r, k=k: got.__setitem__(k, r), timeout_s)
    sent_at = host.clock.now
    risk_sender = Sender("risk", 1)
    poller = zmq.Poller()
    poller.register(risk, zmq.POLLIN)
    for _ in range(4):  # risk answers each at once
        assert poller.poll(5000)
        frames = risk.recv_multipart()
        env = decode(frames[1:])
        assert isinstance(env.body, RiskChecks)
        verdicts = [RiskVerdict(client_order_id=c.client_order_id, approved=True)
                    for c in env.body.checks]  # fmt: skip
        risk.send_multipart([frames[0], *risk_sender.encode(RiskVerdicts(verdicts=verdicts),
                                                          corr_id=env.msg_id)])  # fmt: skip
    # all four verdicts are in our socket (inproc), before the deadline (no time passed)
    waiter = zmq.Poller()
    waiter.register(peer.sock, zmq.POLLIN)
    assert waiter.poll(0)
    # one loop turn: the handler, then the turn's work (commit, sends) takes past the
    # deadline, then the turn's due timers (the Peer's sweep)
    peer.on_readable()
    host.clock.now = sent_at + timeout_s + 0.05  # the turn's own work
    host.run_due()
    # the next turn reads what was left
    while waiter.poll(0):
        peer.on_readable()
    timed_out = sorted(k for k, r in got.items() if r is None)
    assert timed_out == [], f"requests {timed_out} judged timed out, their verdicts in our socket"
