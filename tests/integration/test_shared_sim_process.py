"""Simulated venues sharing one process (`[venues.sim] runs_in`): venue simB's simulator runs
in simA's process (`venuesim.simA`), simC's in its own. Each venue keeps its own port,
state, FIX session and faults; a kill -9 of the shared process takes simA and simB down
together, and both come back trading with nothing sent twice."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from typing import Any

import pytest

from actors.venuesim.control import control_request as sim_control_request
from protocol import control as ctl
from protocol.messages import OrderStatus
from protocol.paths import sim_port_file
from tests.helpers import SystemUnderTest, eventually, process_alive
from tests.system_ops import client, inspect_venue, sim_fault, submit_when_open

pytestmark = pytest.mark.integration

VENUES = ("simA", "simB", "simC")
DONE = {OrderStatus.FILLED, OrderStatus.REJECTED}


def _venues() -> list[dict[str, Any]]:
    def sim(name: str) -> dict[str, Any]:
        return {"reference_prices": {"AAPL": "100.00"}} | (
            {"runs_in": "simA"} if name == "simB" else {}
        )

    return [{"name": n, "target_comp_id": n.upper(), "sim": sim(n)} for n in VENUES]


def _start(start_system: Callable[..., SystemUnderTest]) -> SystemUnderTest:
    return start_system(venues=VENUES, overrides={"venues": _venues()})


def _fill(c: Any, venue: str, coid: str) -> OrderStatus:
    submit_when_open(c, venue, qty="5", price=None, client_order_id=coid)
    return c.wait_for_status(coid, DONE, timeout_s=20.0).status  # type: ignore[no-any-return]


def _venue_coids(sut: SystemUnderTest, venue: str) -> list[str]:
    return [o["cl_ord_id"] for o in inspect_venue(sut, venue, cli=False)["orders"]]


def test_two_venues_in_one_process_trade_apart_and_come_back_together(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    sut = _start(start_system)
    ids = sut.actor_ids()
    assert {"venuesim.simA", "venuesim.simC"} <= set(ids) and "venuesim.simB" not in ids
    assert {"connector.simA", "connector.simB", "connector.simC"} <= set(ids)
    shared = sut.pid_of("venuesim.simA")
    ports = {v: int(sim_port_file(sut.cfg.runtime_path, v).read_text()) for v in VENUES}
    assert len(set(ports.values())) == 3, ports
    with client(sut) as c:
        assert _fill(c, "simA", "a-1") is OrderStatus.FILLED
        assert _fill(c, "simB", "b-1") is OrderStatus.FILLED
        # each venue's own book and state directory
        assert _venue_coids(sut, "simA") == ["a-1"] and _venue_coids(sut, "simB") == ["b-1"]
        status = sim_control_request(sut.cfg, "simB", "status", {}, timeout_s=5.0)
        assert status.status == "ok" and status.data["venue"] == "simB"
        assert status.data["port"] == ports["simB"] and status.data["session"] == "active"

        # a fault reaches the venue it names, and only it
        sim_fault(sut, "simB", "reject_next", "1")
        assert _fill(c, "simA", "a-2") is OrderStatus.FILLED
        assert _fill(c, "simB", "b-2") is OrderStatus.REJECTED
        assert _fill(c, "simB", "b-3") is OrderStatus.FILLED
        # a fault that names no venue, sent to the shared process, is refused, naming both
        reply = ctl.control_request(sut.cfg, "reject_next", {"value": "1"}, 5.0,
                                    target="venuesim.simA")  # fmt: skip
        assert reply.status == "error" and "simA, simB" in reply.reason, reply
        assert _fill(c, "simA", "a-3") is OrderStatus.FILLED

        # kill -9 of the shared process: one restart brings both venues back
        since = sut.mark()
        os.kill(shared, signal.SIGKILL)
        sut.wait_event("actor_exited", since=since, child="venuesim.simA", pid=shared)
        ready = sut.wait_event("actor_ready", since=since, child="venuesim.simA")
        assert ready["pid"] != shared and not process_alive(shared)
        for venue in ("simA", "simB"):
            sut.wait_event("sim_listening", since=since, venue=venue, port=ports[venue])
        assert _fill(c, "simB", "b-4") is OrderStatus.FILLED
        assert _fill(c, "simA", "a-4") is OrderStatus.FILLED
        assert _fill(c, "simC", "c-1") is OrderStatus.FILLED
    # every order at its venue once, none at another
    assert sorted(_venue_coids(sut, "simA")) == ["a-1", "a-2", "a-3", "a-4"]
    assert sorted(_venue_coids(sut, "simB")) == ["b-1", "b-2", "b-3", "b-4"]
    rejected = [o for o in inspect_venue(sut, "simB", cli=False)["orders"] if o["cum_qty"] == "0"]
    assert [o["cl_ord_id"] for o in rejected] == ["b-2"]
    assert _venue_coids(sut, "simC") == ["c-1"]
    exits = [e for e in sut.events("actor_exited") if e["child"] != "venuesim.simA"]
    assert not exits, exits


def test_the_venuesim_command_line_reaches_a_guest_and_refuses_to_run_it_alone(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """`python -m actors.venuesim control --venue simB` finds simB in simA's process (a
    fault and a status, simB's own); the supervisor's status shows each venue's heartbeat
    info; `run --venue simB` is refused in one line naming the process to run."""
    sut = _start(start_system)

    def cli(*args: str) -> Any:
        done = sut.run_tool(["-m", "actors.venuesim", *args], timeout_s=30)
        return done.returncode, done.stdout, done.stderr

    rc, out, err = cli("control", *sut.cli_args(), "--venue", "simB", "reject_next",
                       "--value", "2", "--json")  # fmt: skip
    assert rc == 0, out + err
    assert json.loads(out)["data"]["faults"] == {"reject_next": 2}
    rc, out, err = cli("control", *sut.cli_args(), "--venue", "simB", "status", "--json")
    data = json.loads(out)["data"]
    assert rc == 0 and data["venue"] == "simB" and data["faults"] == {"reject_next": 2}, out
    rc, out, err = cli("control", *sut.cli_args(), "--venue", "simA", "status", "--json")
    assert rc == 0 and json.loads(out)["data"]["faults"] == {}, out

    def infos() -> dict[str, Any]:
        return dict(sut.actor("venuesim.simA")["info"].get("venues") or {})

    eventually(lambda: infos().get("simB", {}).get("faults") == {"reject_next": 2}, 5.0)
    assert set(infos()) == {"simA", "simB"}
    assert "venues" not in sut.actor("venuesim.simC")["info"]

    refused = ctl.control_request(sut.cfg, "restart", {"actor": "venuesim.simB"}, 5.0)
    assert refused.status == "error" and "runs in venuesim.simA" in refused.reason, refused

    rc, out, err = cli("run", *sut.cli_args(), "--venue", "simB")
    assert rc == 2 and err.strip().splitlines() == [
        "venue 'simB' runs in the simulator process of venue 'simA': run --venue simA"
    ], err
