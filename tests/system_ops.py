"""Operations on a running system that the integration tests, the benchmarks and the chaos
harness share (one definition each): a client, order submission once the OMS has opened
intake, the simulated venue's ground truth (its own inspection) and its fault control, the
OMS journal and the kill-switch as the system reports them, and two ways in for a test
that plays a peer (an event-stream probe, an execution report sent as a connector would).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from collections.abc import Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

import zmq

from actors.venuesim.__main__ import control_request as sim_control_request
from actors.venuesim.store import inspect
from protocol.client import ExecutionClient, NotReady
from protocol.codec import Sender, decode, encode
from protocol.messages import ExecAck, ExecReport, OrderView, StreamEvent
from protocol.paths import venue_state_dir
from tests.helpers import SUPERVISOR, SystemUnderTest, eventually

VENUE = "simA"  # the first venue of `tests.helpers.make_config`
SYMBOL = "AAPL"


class Deployment(Protocol):
    """What reading a venue's ground truth needs of a running system (a SystemUnderTest,
    the connector rig): its state dir and a way to run a tool in its environment."""

    @property
    def state_dir(self) -> Path: ...

    def run_tool(
        self, argv: list[str], timeout_s: float = 60.0
    ) -> subprocess.CompletedProcess[str]: ...


# --------------------------------------------------------------------------- the client


@contextlib.contextmanager
def client(sut: SystemUnderTest, **kwargs: Any) -> Iterator[ExecutionClient]:
    """An ExecutionClient of the system (unless given: resends every 0.2 s, 30 s deadline),
    closed on exit."""
    kwargs.setdefault("retry_interval_s", 0.2)
    kwargs.setdefault("timeout_s", 30.0)
    c = ExecutionClient(sut.cfg, **kwargs)
    try:
        yield c
    finally:
        c.close()


def submit_when_open(
    c: ExecutionClient,
    venue: str,
    side: str = "BUY",
    qty: str = "10",
    price: str | None = "95.00",
    *,
    client_order_id: str | None = None,
    order_type: str | None = None,
    tif: str = "DAY",
    timeout_s: float = 30.0,
) -> OrderView:
    """Submit once the OMS has opened intake (it answers NotReady until every venue is
    reconciled since it started); `price=None` is a market order. With a fixed
    `client_order_id`, a retry of a lost answer is a duplicate, not a second order.
    `timeout_s` bounds the wait for intake and each attempt."""
    kind = order_type or ("LIMIT" if price is not None else "MARKET")

    def attempt() -> OrderView | None:
        try:
            return c.submit(venue, SYMBOL, side, qty, kind, price=price, tif=tif,
                            client_order_id=client_order_id, timeout_s=timeout_s)  # fmt: skip
        except NotReady:
            return None

    what = f"submit {client_order_id or side} to {venue}"
    return eventually(attempt, timeout_s, interval_s=0.05, message=what)


# --------------------------------------------------------------------------- ground truth


def run_cli(sut: Deployment, *argv: str, timeout_s: float = 30.0) -> str:
    """Run `python ARGV` from the repository in the system's environment; returns stdout
    (asserts exit 0)."""
    out = sut.run_tool(list(argv), timeout_s)
    assert out.returncode == 0, f"{argv}: exit {out.returncode}\n{out.stdout}\n{out.stderr}"
    return out.stdout


def inspect_venue(
    sut: Deployment, venue: str, *, cli: bool = True, timeout_s: float = 60.0
) -> dict[str, Any]:
    """The venue's persisted state (every order it ever received, its positions) through
    its inspection CLI (read-only, safe while it runs); `cli=False` reads the same
    in-process (faster, for polling)."""
    if not cli:
        return inspect(venue_state_dir(sut.state_dir, venue))
    text = run_cli(sut, "-m", "actors.venuesim", "inspect", "--state-dir", str(sut.state_dir),
                   "--venue", venue, "--json", timeout_s=timeout_s)  # fmt: skip
    data: dict[str, Any] = json.loads(text)
    return data


def find_venue_order(inspection: Mapping[str, Any], cl_ord_id: str) -> dict[str, Any] | None:
    """The order of a venue inspection that `cl_ord_id` names (any ClOrdID of its chain)."""
    for o in inspection["orders"]:
        if cl_ord_id in o["cl_ord_ids"]:
            return dict(o)
    return None


def venue_orders(sut: Deployment, venue: str) -> list[dict[str, Any]]:
    """Every order the simulated venue ever received (its persisted ground truth)."""
    orders: list[dict[str, Any]] = inspect_venue(sut, venue, cli=False)["orders"]
    return orders


def venue_order(sut: Deployment, venue: str, cl_ord_id: str) -> dict[str, Any] | None:
    """The venue's order that `cl_ord_id` names (None: the venue never saw it)."""
    return find_venue_order(inspect_venue(sut, venue, cli=False), cl_ord_id)


def venue_status(sut: Deployment, venue: str, cl_ord_id: str) -> str | None:
    """The venue's status of the order (None: the venue never saw it)."""
    order = venue_order(sut, venue, cl_ord_id)
    return None if order is None else str(order["status"])


def venue_position(sut: Deployment, venue: str, symbol: str = SYMBOL) -> Decimal:
    """The venue's signed net position in `symbol`."""
    row = inspect_venue(sut, venue, cli=False)["positions"].get(symbol)
    return Decimal(row["net_qty"]) if row else Decimal(0)


def sim_fault(sut: SystemUnderTest, venue: str, command: str, value: str | None = None) -> None:
    """One control command (a fault, `clear`) to the venue sim, through its own ROUTER."""
    args = {} if value is None else {"value": value}
    reply = sim_control_request(sut.cfg, venue, command, args, timeout_s=5.0)
    assert reply.status == "ok", reply


def journal_records(sut: SystemUnderTest, *, timeout_s: float = 120.0) -> list[dict[str, Any]]:
    """`supervisor.py journal inspect --json`: one dict per snapshot / record / torn tail."""
    args = SystemUnderTest.cli_args(sut)  # a subclass may add flags that only `run` takes
    text = run_cli(sut, str(SUPERVISOR), "journal", "inspect", *args, "--json",
                   timeout_s=timeout_s)  # fmt: skip
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def kill_switch(sut: SystemUnderTest) -> dict[str, Any]:
    """The kill-switch as the supervisor's status reports it."""
    state: dict[str, Any] = sut.status()["kill_switch"]
    return state


# --------------------------------------------------------------------------- playing a peer


def subscribe_connected(sut: SystemUnderTest, c: ExecutionClient, timeout_s: float = 10.0) -> None:
    """Subscribe `c` to the event stream and return once it receives (a PUB drops what it
    publishes before a subscriber is connected): a probe event is published through the OMS,
    as other actors publish theirs, until the client sees one."""
    c.subscribe()
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sender = Sender("test-probe", 1)
    deadline = time.monotonic() + timeout_s
    try:
        sock.connect(sut.cfg.endpoint("oms"))
        while time.monotonic() < deadline:
            sock.send_multipart(
                encode(sender.envelope(StreamEvent(event_seq=0, event="test_probe")))
            )
            for ev in c.events(timeout_s=0.05):
                if isinstance(ev, StreamEvent) and ev.event == "test_probe":
                    return
        raise AssertionError(f"event stream not connected within {timeout_s} s")
    finally:
        sock.close(0)
        ctx.term()


def deliver_as_connector(sut: SystemUnderTest, report: ExecReport) -> None:
    """Deliver an execution to the OMS the way the venue's connector does (DEALER, acked by
    exec id): what a venue would have sent, without having to make the venue send it."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.ROUTING_ID, f"connector.{report.venue}:test".encode())
    try:
        sock.connect(sut.cfg.endpoint("oms"))
        sock.send_multipart(encode(Sender(f"connector.{report.venue}", 1).envelope(report)))
        assert sock.poll(10_000), "no ExecAck from the OMS"
        ack = decode(sock.recv_multipart()).body
        assert isinstance(ack, ExecAck) and ack.exec_ids == [report.exec_id]
    finally:
        sock.close(0)
        ctx.term()
