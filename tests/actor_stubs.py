"""Drive one real actor in the test process against hand-written stub peers.

The actor under test is constructed and `setup()` as in its own process, then its loop is
turned one iteration at a time (`Actor._iterate`) by `Harness.pump`, which also lets every
stub answer what it received. Stubs are ROUTER sockets bound at the real ipc endpoints of
the actors they stand for (`oms`, `connector.<venue>`, the supervisor's control socket) and
a PUB at the OMS event endpoint. Everything runs in one thread: no sleeps, no races between
the test and the actor; every wait is a condition with a deadline.

`Harness(clock=True)`: the actor's monotonic time is a `StepClock` the harness moves, for
tests whose outcome depends on answer windows (the heartbeat's 0.8 of a 0.05 s beat): on
the wall clock a process descheduled under load judged an answer the stub had given as
late, a miss it never was.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import structlog
import zmq

from actors.runtime.actor import Actor, ActorArgs
from actors.runtime.peer import Peer
from protocol.codec import Envelope, Sender, decode
from protocol.commands import Restart
from protocol.config import SystemConfig, load_config
from protocol.messages import (
    Ack,
    ControlReply,
    ControlRequest,
    ErrorCode,
    ExecCut,
    GetPositions,
    ListOrders,
    MassCancel,
    MassCancelDone,
    Message,
    OrderList,
    OrderView,
    Positions,
    PositionView,
    RequestRejected,
    Snapshot,
    SnapshotRequest,
    StreamEvent,
)
from protocol.paths import RISK_EVENTS
from protocol.sockets import bind_router, tune_socket
from protocol.wire_out import dump
from tests.fixlogs import collect as collect_fix_logs
from tests.helpers import make_config, to_toml

T = TypeVar("T")
Handler = Callable[[Envelope], Message | None]
# the runtime's modules that read the monotonic clock on the actor's loop (its turns, its
# timers, its peers' deadlines); `Harness(clock=True)` adds the actor class's own module
_CLOCKED_MODULES = ("actors.runtime.actor", "actors.runtime.timers", "actors.runtime.peer")
HELD_LIMIT_S = 60.0  # wall time a StepClock may stay held before the harness calls it stuck


class StepClock:
    """`time` for the actor under test, its `monotonic()` moved by the harness only: a
    step per turn in which nothing is in flight between the actor and the stubs
    (`Harness.in_flight`). A turn the machine descheduled costs no time on it, and a
    request a stub answered is never timed out; one it does not answer is, after its
    timeout's worth of turns. Everything else (`time()`, `perf_counter()`) is the real one."""

    def __init__(self, step_s: float = 0.002) -> None:  # the real poll of a `Harness.turn`
        self.step_s = step_s
        self.now = time.monotonic()  # near the real one: process-wide state compares them

    def monotonic(self) -> float:
        return self.now

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


class Stub:
    """A ROUTER standing in for an actor: records every request, answers with `handler`
    (None: no answer, as a hung or dead peer)."""

    def __init__(
        self, ctx: zmq.Context[zmq.Socket[bytes]], name: str, endpoint: str, handler: Handler
    ) -> None:
        self.name = name
        self.sock = bind_router(ctx, endpoint)
        self.handler = handler
        self.received: list[Envelope] = []
        self.seen: set[str] = set()  # the msg_ids received
        self.answered: set[str] = set()  # ... and answered
        self.sender = Sender(name, 1)

    def pump(self) -> None:
        while True:
            try:
                frames = self.sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            env = decode(frames[1:])
            self.received.append(env)
            self.seen.add(env.msg_id)
            answer = self.handler(env)
            if answer is not None:
                try:
                    self.sock.send_multipart([frames[0], *self.sender.encode(answer, env.msg_id)])
                except zmq.ZMQError:  # the asking incarnation is gone (ROUTER_MANDATORY)
                    continue
                self.answered.add(env.msg_id)

    def bodies(self, kind: type[T]) -> list[T]:
        return [e.body for e in self.received if isinstance(e.body, kind)]


class StubOms:
    """The OMS as risk and heartbeat see it: open orders, positions, the event stream."""

    def __init__(self, ctx: zmq.Context[zmq.Socket[bytes]], cfg: SystemConfig) -> None:
        self.orders: list[OrderView] = []
        self.positions: list[PositionView] = []
        self.answering = True
        self.stub = Stub(ctx, "oms", cfg.endpoint("oms"), self._answer)
        self.pub = ctx.socket(zmq.PUB)
        tune_socket(self.pub)
        for endpoint in (cfg.events_endpoint, cfg.endpoint(RISK_EVENTS)):  # one PUB, both
            Path(endpoint.removeprefix("ipc://")).unlink(missing_ok=True)
            self.pub.bind(endpoint)
        self.event_seq = 0
        # the event_seq the answers say they reflect (None: the last published, as the OMS)
        self.orders_seq: int | None = None
        self.positions_seq: int | None = None
        self.positions_at_cut: list[PositionView] | None = None  # GetPositions(as_of=...)
        self.epoch = 1
        self.sender = Sender("oms", self.epoch)

    def _answer(self, env: Envelope) -> Message | None:
        if not self.answering:
            return None
        body = env.body
        if isinstance(body, ListOrders):
            orders = [o for o in self.orders if body.venue in (None, o.venue)]
            seq = self.event_seq if self.orders_seq is None else self.orders_seq
            return OrderList(orders=orders, event_seq=seq)
        if isinstance(body, GetPositions) and body.as_of is not None:
            if self.positions_at_cut is None:
                return RequestRejected(code=ErrorCode.NOT_READY, reason="no view at the cut")
            rows = [p for p in self.positions_at_cut if p.venue == body.venue]
            return Positions(source="oms", venue=body.venue, positions=rows, cut=body.as_of)
        if isinstance(body, GetPositions):
            rows = [p for p in self.positions if body.venue in (None, p.venue)]
            seq = self.event_seq if self.positions_seq is None else self.positions_seq
            return Positions(source="oms", venue=body.venue, positions=rows, event_seq=seq)
        if isinstance(body, SnapshotRequest):  # a client's, after a gap in the stream
            seq = self.event_seq if self.orders_seq is None else self.orders_seq
            return Snapshot(event_seq=seq, orders=list(self.orders))
        if isinstance(body, StreamEvent):
            return Ack(ref=env.msg_id)
        return None

    def publish(self, body: Any, *, seq: int | None = None) -> None:
        """Publish an OrderEvent / StreamEvent (its `event_seq` is set to the next one)."""
        self.event_seq = self.event_seq + 1 if seq is None else seq
        body = body.model_copy(update={"event_seq": self.event_seq})
        self.pub.send_multipart(self.sender.encode(body))

    def publish_batch(self, events: list[Any], *, seq: int | None = None) -> None:
        """Publish OrderEvents as one `OrderEvents` (their `event_seq` the next ones, from
        `seq` if given), as the OMS publishes a turn's events."""
        items = []
        for event in events:
            self.event_seq = self.event_seq + 1 if seq is None or items else seq
            items.append(dump(event.model_copy(update={"event_seq": self.event_seq})))
        self.pub.send_multipart(self.sender.encode_body("order_events", {"events": items})[1])

    def new_epoch(self) -> None:
        self.epoch += 1
        self.event_seq = 0
        self.sender = Sender("oms", self.epoch)

    def listings(self) -> int:
        """ListOrders asked of this OMS so far (a rebuild's pages)."""
        return len(self.stub.bodies(ListOrders))

    def stream_events(self, name: str) -> list[StreamEvent]:
        return [e for e in self.stub.bodies(StreamEvent) if e.event == name]


class StubConnector:
    """A connector: `mode` is "done" (MassCancelDone accepted), "down" (VENUE_DOWN),
    "closed" (OUT_OF_SESSION) or "silent" (no answer); `positions` answer GetPositions."""

    def __init__(self, ctx: zmq.Context[zmq.Socket[bytes]], cfg: SystemConfig, venue: str) -> None:
        self.venue = venue
        self.mode = "done"
        self.positions: list[PositionView] = []
        self.source = "venue"  # Positions.source: "ledger" / "ledger_unseeded" without AN
        self.cut: ExecCut | None = None  # the execution cut its positions answer names
        self._down = RequestRejected(code=ErrorCode.VENUE_DOWN, reason="not logged on")
        self._closed = RequestRejected(code=ErrorCode.OUT_OF_SESSION, reason="session closed")

        def answer(env: Envelope) -> Message | None:
            if self.mode == "silent":
                return None
            if self.mode == "down":
                return self._down
            if self.mode == "closed":
                return self._closed
            if isinstance(env.body, MassCancel):
                return MassCancelDone(venue=venue, accepted=True)
            if isinstance(env.body, GetPositions):
                rows = list(self.positions)
                return Positions(source=self.source, venue=venue, positions=rows, cut=self.cut)
            return None

        self.stub = Stub(ctx, f"connector.{venue}", cfg.endpoint(f"connector.{venue}"), answer)

    @property
    def mass_cancels(self) -> list[MassCancel]:
        return self.stub.bodies(MassCancel)


class Harness:
    """Config + stubs + one actor of class `actor_cls`, all in this thread; with `clock`,
    the actor's monotonic time is `self.clock` (a `StepClock`), and so are the deadlines of
    `pump` and `pump_for`."""

    def __init__(
        self,
        *,
        venues: Sequence[str] = ("simA", "simB"),
        overrides: Mapping[str, Any] | None = None,
        clock: bool = False,
    ) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="tph", dir="/tmp"))
        self.state_dir = self.root / "state"
        self.config_path = self.root / "config.toml"
        self.config_path.write_text(to_toml(make_config(venues=venues, overrides=overrides)))
        self.cfg = load_config(
            self.config_path, state_dir=str(self.state_dir), runtime_dir=str(self.root / "rt")
        )
        self.cfg.runtime_path.mkdir(parents=True, exist_ok=True)
        self.ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.oms = StubOms(self.ctx, self.cfg)
        self.connectors = {v: StubConnector(self.ctx, self.cfg, v) for v in venues}
        self.control = Stub(
            self.ctx, "supervisor-control", self.cfg.control_endpoint, self._control
        )
        self.restart_requests: list[str] = []
        self.actor: Actor | None = None
        self.clients: list[Client] = []  # kept alive (and closed) with the harness
        self._extra: list[Stub] = []
        self._epoch = 0
        self.clock = StepClock() if clock else None
        self._unpatch: list[tuple[object, object]] = []  # (module, its own `time`)
        self._held_since: float | None = None  # wall time the clock was first held

    def _control(self, env: Envelope) -> Message | None:
        if isinstance(env.body, ControlRequest) and isinstance(env.body.command, Restart):
            self.restart_requests.append(env.body.command.actor)
        return ControlReply(status="ok")

    def start(self, actor_cls: type[Actor], actor_id: str) -> Actor:
        if self.actor is not None:
            self.actor.close()
        self._epoch += 1
        if self.clock is not None:
            self._patch_time([*_CLOCKED_MODULES, actor_cls.__module__])
        args = ActorArgs(
            actor_id=actor_id, kind=actor_id, epoch=self._epoch, config_path=str(self.config_path),
            state_dir=str(self.state_dir), runtime_dir=str(self.cfg.runtime_path),
        )  # fmt: skip
        self.actor = actor_cls(args, cfg=self.cfg)
        self.actor.setup()
        return self.actor

    def _patch_time(self, names: Sequence[str]) -> None:
        """The modules' `time` is the StepClock (each once; restored by `close`)."""
        patched = {id(module) for module, _ in self._unpatch}
        for name in names:
            module = sys.modules[name]
            if id(module) not in patched:
                self._unpatch.append((module, module.time))  # type: ignore[attr-defined]
                module.time = self.clock  # type: ignore[attr-defined]

    def now(self) -> float:
        """The actor's monotonic time (the StepClock's, or the real one)."""
        return self.clock.now if self.clock is not None else time.monotonic()

    def in_flight(self) -> int:
        """The actor's pending requests to a stub that the stub has not read yet, or has
        answered and the actor has not read the answer of yet."""
        if self.actor is None:
            return 0
        stubs = {stub.name: stub for stub in self.stubs()}
        peers = [getattr(h, "__self__", None) for h in self.actor._handlers.values()]
        count = 0
        for peer in peers:
            if isinstance(peer, Peer) and (stub := stubs.get(peer.target)) is not None:
                count += sum(1 for i in peer._pending if i not in stub.seen or i in stub.answered)
        return count

    def add_stub(self, actor_id: str, handler: Handler) -> Stub:
        """One more stub actor (e.g. `risk` for the heartbeat actor)."""
        stub = Stub(self.ctx, actor_id, self.cfg.endpoint(actor_id), handler)
        self._extra.append(stub)
        return stub

    def stubs(self) -> list[Stub]:
        return [
            self.oms.stub,
            self.control,
            *(c.stub for c in self.connectors.values()),
            *self._extra,
        ]

    def turn(self) -> None:
        """One turn of the actor's loop, then every stub answers what it read; with a
        StepClock, then one step of it unless something is in flight."""
        assert self.actor is not None
        self.actor._iterate(max_wait_s=0.002)
        for stub in self.stubs():
            stub.pump()
        if self.clock is None:
            return
        if (held := self.in_flight()) == 0:
            self.clock.now += self.clock.step_s
            self._held_since = None
            return
        wall = time.monotonic()
        self._held_since = self._held_since if self._held_since is not None else wall
        if wall - self._held_since > HELD_LIMIT_S:  # a message lost: no answer will come
            raise AssertionError(f"clock held {HELD_LIMIT_S} s: {held} requests in flight")

    def pump(self, until: Callable[[], T], timeout_s: float = 5.0, what: str = "") -> T:
        """Turn the actor's loop and the stubs until `until()` is truthy (returned)."""
        deadline = self.now() + timeout_s
        while True:
            self.turn()
            value = until()
            if value:
                return value
            if self.now() >= deadline:
                raise AssertionError(f"not within {timeout_s} s: {what or until!r}")

    def pump_for(self, duration_s: float) -> None:
        """Keep the loop turning for a while (to show that something does NOT happen)."""
        deadline = self.now() + duration_s
        while self.now() < deadline:
            self.turn()

    def close(self) -> None:
        if self.actor is not None:
            self.actor.close()
        for module, real in reversed(self._unpatch):
            module.time = real  # type: ignore[attr-defined]
        self.ctx.destroy(linger=0)
        structlog.contextvars.clear_contextvars()
        collect_fix_logs(self.root)
        shutil.rmtree(self.root, ignore_errors=True)


class Client:
    """A DEALER to the actor under test: requests and their replies by correlation id."""

    def __init__(
        self, harness: Harness, target: str, name: str = "oms", claims: str | None = None
    ) -> None:
        """`claims`: the envelopes' sender, when it is not `name` (a forged one)."""
        self.harness = harness
        self.sock = harness.ctx.socket(zmq.DEALER)
        tune_socket(self.sock)
        self.sock.setsockopt(zmq.ROUTING_ID, f"{name}:test".encode())
        self.sock.connect(harness.cfg.endpoint(target))
        self.sender = Sender(claims or name, 1)
        self.replies: dict[str, Envelope] = {}
        harness.clients.append(self)

    def send(self, body: Message) -> str:
        env = self.sender.envelope(body)
        from protocol.codec import encode

        self.sock.send_multipart(encode(env))
        return env.msg_id

    def _drain(self) -> None:
        while True:
            try:
                env = decode(self.sock.recv_multipart(zmq.NOBLOCK))
            except zmq.Again:
                return
            self.replies[env.corr_id] = env

    def reply_to(self, msg_id: str) -> Envelope | None:
        self._drain()
        return self.replies.get(msg_id)

    def request(self, body: Message, timeout_s: float = 5.0) -> Any:
        """Send and pump until the reply's body arrives."""
        msg_id = self.send(body)
        env = self.harness.pump(lambda: self.reply_to(msg_id), timeout_s, f"reply to {body.type}")
        assert env is not None
        return env.body
