"""A simulator process that runs several venues (`[venues.sim] runs_in`) when things go
wrong: its venues are the ones the supervisor started it with, whatever the file says
now (a restart-only change, refused by `reload`, must not move a simulator at the next
restart); a guest venue that cannot start is named in the log, not just its process."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from typing import Any

import pytest

from protocol.messages import OrderStatus
from tests.helpers import SystemUnderTest, make_config, to_toml
from tests.system_ops import client, sim_fault, submit_when_open

pytestmark = pytest.mark.integration

VENUES = ("simA", "simB", "simC")
DONE = {OrderStatus.FILLED, OrderStatus.REJECTED}


def _venues(runs_in: dict[str, str], **extra: dict[str, Any]) -> list[dict[str, Any]]:
    def one(name: str) -> dict[str, Any]:
        sim: dict[str, Any] = {"reference_prices": {"AAPL": "100.00"}}
        if name in runs_in:
            sim["runs_in"] = runs_in[name]
        return {"name": name, "target_comp_id": name.upper(), "sim": sim} | extra.get(name, {})

    return [one(n) for n in VENUES]


def _kill_shared(sut: SystemUnderTest) -> int:
    """kill -9 of venuesim.simA; returns the log mark from before it, once it is READY."""
    pid = sut.pid_of("venuesim.simA")
    since = sut.mark()
    os.kill(pid, signal.SIGKILL)
    sut.wait_event("actor_exited", since=since, child="venuesim.simA", pid=pid)
    sut.wait_event("actor_ready", since=since, child="venuesim.simA", timeout_s=20.0)
    return since


@pytest.mark.parametrize(
    "edited",
    [{}, {"simB": "simA", "simC": "simA"}],
    ids=["guest-made-its-own", "another-venue-made-a-guest"],
)
def test_a_restart_after_runs_in_was_edited_keeps_the_started_topology(
    start_system: Callable[..., SystemUnderTest], edited: dict[str, str]
) -> None:
    """simB runs in simA's process. The file is edited (simB on its own; or simC into
    simA's process too): `reload` refuses it (a restart-only field), and a kill -9 of
    venuesim.simA brings back simA and simB, as the supervisor spawns them, and leaves
    simC to venuesim.simC: every venue trades afterwards."""
    sut = start_system(venues=VENUES, overrides={"venues": _venues({"simB": "simA"})})
    changed = make_config(venues=VENUES, overrides={"venues": _venues(edited)})
    sut.config_path.write_text(to_toml(changed))
    refused = sut.cli("reload")
    assert refused.returncode != 0 and "runs_in" in refused.stdout + refused.stderr, refused
    since = _kill_shared(sut)
    for venue in ("simA", "simB"):
        sut.wait_event("sim_listening", since=since, venue=venue, actor="venuesim.simA")
    assert not sut.events("sim_listening", since=since, venue="simC"), sut.describe()
    with client(sut) as c:
        for venue in VENUES:
            coid = f"{venue}-after"
            submit_when_open(c, venue, qty="5", price=None, client_order_id=coid)
            view = c.wait_for_status(coid, {OrderStatus.FILLED}, timeout_s=20.0)
            assert view.status is OrderStatus.FILLED
    assert not [e for e in sut.events("actor_exited", since=since)
                if e["child"] != "venuesim.simA"]  # fmt: skip


def test_a_guest_that_cannot_listen_is_named(
    start_system: Callable[..., SystemUnderTest], taken_port: int
) -> None:
    """simB (in simA's process) is configured on a port another program holds: the shared
    process cannot start (simA goes down with it, one process), and its log says which
    venue and why: `sim_venue_failed` with venue simB and the error."""
    venues = _venues({"simB": "simA"}, simB={"port": taken_port})
    sut = start_system(venues=VENUES, overrides={"venues": venues}, wait_ready=False)
    failed = sut.wait_event("sim_venue_failed", venue="simB", timeout_s=20.0)
    assert failed["actor"] == "venuesim.simA" and "in use" in failed["error"], failed
    assert not sut.events("sim_venue_failed", venue="simA")


def test_a_hang_of_one_venue_leaves_the_other_and_the_process_alone(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """`hang 3` at simB (in simA's process; 5 x the supervisor's hang limit of 0.6 s) stops
    simB's session only: simA fills an order meanwhile, the shared process keeps its
    heartbeat (no `actor_hung`, same pid), and simB trades again once the hang is over."""
    sut = start_system(venues=VENUES, overrides={"venues": _venues({"simB": "simA"})})
    pid = sut.pid_of("venuesim.simA")
    since = sut.mark()
    with client(sut) as c:
        sim_fault(sut, "simB", "hang", "3")
        hung_at = time.monotonic()
        submit_when_open(c, "simA", qty="5", price=None, client_order_id="a-during")
        assert c.wait_for_status("a-during", DONE, 5.0).status is OrderStatus.FILLED
        assert time.monotonic() - hung_at < 3.0  # simA answered while simB was hung
        sut.wait_event("sim_hang_over", since=since, venue="simB", timeout_s=10.0)
        submit_when_open(c, "simB", qty="5", price=None, client_order_id="b-after")
        assert c.wait_for_status("b-after", DONE, 30.0).status is OrderStatus.FILLED
    assert sut.pid_of("venuesim.simA") == pid
    assert not sut.events("actor_hung", since=since), sut.events("actor_hung", since=since)
