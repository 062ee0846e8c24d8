"""Operations on a running system that the integration tests, the benchmarks and the chaos
harness share (one definition each): a client, order submission once the OMS has opened
intake, the simulated venue's ground truth (its own inspection) and its fault control (the
simulated exchange's of a ccxt venue likewise), the OMS journal and the kill-switch as the
system reports them, a connected event stream, and an execution delivered by the venue's
connector (through its exec outbox).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from actors.connector.outbox import ExecOutbox
from actors.exchangesim.store import inspect as exchange_inspect
from actors.venuesim.control import control_request as sim_control_request
from actors.venuesim.store import inspect
from protocol.client import ExecutionClient, NotReady
from protocol.control import control_request
from protocol.messages import ExecReport, OrderView
from protocol.paths import fix_dir, venue_state_dir
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
    symbol: str = SYMBOL,
) -> OrderView:
    """Submit once the OMS has opened intake (it answers NotReady until every venue is
    reconciled since it started); `price=None` is a market order. With a fixed
    `client_order_id`, a retry of a lost answer is a duplicate, not a second order.
    `timeout_s` bounds the wait for intake and each attempt."""
    kind = order_type or ("LIMIT" if price is not None else "MARKET")

    def attempt() -> OrderView | None:
        try:
            return c.submit(venue, symbol, side, qty, kind, price=price, tif=tif,
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


def inspect_exchange(sut: SystemUnderTest, venue: str, *, cli: bool = True) -> dict[str, Any]:
    """The simulated exchange's persisted ground truth (`python -m actors.exchangesim inspect
    --json`: every order it accepted, every trade, the balances); `cli=False` reads the
    same in-process (faster, for polling)."""
    sim = sut.cfg.venue(venue).sim
    assert sim is not None, f"{venue} has no [venues.sim]"
    if not cli:
        return exchange_inspect(sut.cfg.state_path, venue, sim)
    text = run_cli(sut, "-m", "actors.exchangesim", "inspect", "--config", str(sut.config_path),
                   "--state-dir", str(sut.state_dir), "--venue", venue, "--json")  # fmt: skip
    data: dict[str, Any] = json.loads(text)
    return data


def exchange_fault(
    sut: SystemUnderTest, venue: str, kind: str, value: str | int | None = None
) -> dict[str, Any]:
    """One fault (`actors.exchangesim.faults`), `clear` or `status` to the simulated
    exchange, on its own ROUTER; returns the reply's data."""
    args = {} if value is None else {"value": str(value)}
    reply = control_request(sut.cfg, kind, args, 5.0, target=f"exchangesim.{venue}")
    assert reply.status == "ok", reply
    return dict(reply.data)


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
    publishes before a subscriber is connected): the position heartbeat publishes a
    `position_snapshot` through the OMS every beat, so the first event of any kind shows
    the subscription is live. (A test cannot publish a probe itself: the OMS takes stream
    events only from risk and the heartbeat.)"""
    c.subscribe()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for _ev in c.events(timeout_s=0.2):
            return
    raise AssertionError(f"event stream not connected within {timeout_s} s ({sut.describe()})")


def deliver_through_connector(sut: SystemUnderTest, report: ExecReport) -> None:
    """Make the venue's connector deliver `report` to the OMS, as an execution the venue sent
    and the connector persisted but had not delivered when it crashed: with the connector
    frozen (SIGSTOP), `report` is added to its exec outbox, then it is killed; its next
    incarnation sends the outbox to the OMS. (A test cannot send it as a connector would:
    the OMS takes executions only from its connectors.)"""
    actor_id = f"connector.{report.venue}"
    pid = sut.actor(actor_id)["pid"]
    os.kill(pid, signal.SIGSTOP)
    try:
        outbox = ExecOutbox(fix_dir(sut.state_dir, report.venue))
        outbox.add([report])
        outbox.sync()
        outbox.close()
    finally:
        os.kill(pid, signal.SIGKILL)
    eventually(
        lambda: (
            sut.actor(actor_id)["pid"] not in (None, pid)
            and sut.actor(actor_id)["state"] == "running"
        ),
        30.0,
    )
