"""kill -9 of a simulator process that runs two venues (`[venues.sim] runs_in`) while orders
flow to both: simB's simulator runs in simA's process, and a client per venue keeps
submitting (market orders that fill, limit orders that rest) across two kills. Afterwards
the OMS agrees with each venue's ground truth (orders, statuses, quantities, positions), no
order is at its venue twice or at the other venue, no acknowledged order is lost and no
fill is journalled twice."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from typing import Any

import pytest

from protocol.client import NotReady
from protocol.messages import OrderStatus
from tests.helpers import SystemUnderTest, eventually, process_alive
from tests.integration.oms_support import check_journal_fills, settle, venue_cfg
from tests.system_ops import (
    client,
    inspect_venue,
    sim_fault,
    submit_when_open,
    venue_order,
    venue_position,
)

pytestmark = pytest.mark.integration

SHARED = ("simA", "simB")
KILLS = 3
AT_A_TIME = 25  # orders acknowledged at each venue between two kills


def _overrides() -> dict[str, Any]:
    return {
        "heartbeat": {"interval_s": 60.0, "engage_on_missing": False, "divergence_beats": 1000},
        "oms": {"request_timeout_s": 2.0},
        "venues": [
            venue_cfg("simA"),
            venue_cfg("simB", runs_in="simA"),
            venue_cfg("simC"),
        ],
    }


class _Flow(threading.Thread):
    """Submits `prefix-<n>` orders to `venue` one after the other until stopped: every
    third a resting limit buy, the others market orders (buy, sell) of 1 or 2. An order is
    acknowledged once the OMS answered it (a retry of a lost answer is a duplicate)."""

    def __init__(self, sut: SystemUnderTest, venue: str, stop: threading.Event) -> None:
        super().__init__(name=f"flow-{venue}", daemon=True)
        self.sut, self.venue, self.stop_evt = sut, venue, stop
        self.acked: list[str] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with client(self.sut, timeout_s=20.0) as c:
                n = 0
                while not self.stop_evt.is_set():
                    n += 1
                    coid = f"{self.venue}-{n}"
                    side = "BUY" if n % 2 else "SELL"
                    kind, price = ("LIMIT", "95.00") if n % 3 == 0 else ("MARKET", None)
                    qty = "2" if n % 5 == 0 else "1"
                    while not self.stop_evt.is_set():
                        try:
                            c.submit(self.venue, "AAPL", "BUY" if kind == "LIMIT" else side,
                                     qty, kind, price=price, client_order_id=coid,
                                     timeout_s=20.0)  # fmt: skip
                            self.acked.append(coid)
                            break
                        except NotReady:
                            self.stop_evt.wait(0.05)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc


def test_kill9_of_a_shared_sim_process_under_load_loses_and_doubles_nothing(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    sut = start_system(venues=("simA", "simB", "simC"), overrides=_overrides())
    assert "venuesim.simB" not in sut.actor_ids()
    stop = threading.Event()
    flows = [_Flow(sut, v, stop) for v in SHARED]
    for f in flows:
        f.start()
    try:
        for _ in range(KILLS):
            _acked_more(flows, AT_A_TIME)
            pid = sut.pid_of("venuesim.simA")
            since = sut.mark()
            os.kill(pid, signal.SIGKILL)
            sut.wait_event("actor_exited", since=since, child="venuesim.simA", pid=pid)
            sut.wait_event("actor_ready", since=since, child="venuesim.simA", timeout_s=20.0)
            assert not process_alive(pid)
            for venue in SHARED:
                sut.wait_event("sim_listening", since=since, venue=venue)
        _acked_more(flows, AT_A_TIME)
    finally:
        stop.set()
        for f in flows:
            f.join(30.0)
    for f in flows:
        assert f.error is None, f"{f.name}: {f.error!r}"
        assert not f.is_alive()
    with client(sut) as c:
        for f in flows:
            cmp = settle(c, sut, f.acked, venue=f.venue, timeout_s=60.0)
            check_journal_fills(sut, cmp.oms)
            # every order at its own venue, none at the other
            other = next(v for v in SHARED if v != f.venue)
            theirs = [o["cl_ord_ids"][0] for o in inspect_venue(sut, other, cli=False)["orders"]]
            assert not [h for h in theirs if h.startswith(f"{f.venue}-")], theirs
            assert c.positions(f.venue) is not None
            assert venue_position(sut, f.venue) == cmp.oms_positions.get("AAPL", 0)
    exits = [e for e in sut.events("actor_exited") if e["child"] != "venuesim.simA"]
    assert not exits, exits


def _acked_more(flows: list[_Flow], n: int, timeout_s: float = 60.0) -> None:
    """Until every flow has `n` more orders acknowledged, failing early if a flow died."""
    goal = {f.venue: len(f.acked) + n for f in flows}

    def done() -> bool:
        for f in flows:
            assert f.error is None, f"{f.name}: {f.error!r}"
        return all(len(f.acked) >= goal[f.venue] for f in flows)

    eventually(done, timeout_s, interval_s=0.05, message="orders acknowledged")


def test_kill9_of_a_shared_sim_process_with_reports_held_at_both_venues(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """Both venues of the shared process hold their execution reports back (delay_exec_ms):
    a market order and a resting limit order are done at each venue, the OMS still has them
    PENDING_SUBMIT, and the process is killed -9. After the restart (faults gone with the
    process) the OMS learns each order's outcome once, from its own venue: each equals its
    venue, nothing was resubmitted."""
    sut = start_system(venues=("simA", "simB", "simC"), overrides=_overrides())
    held = {v: [f"{v}-mkt", f"{v}-lmt"] for v in SHARED}
    with client(sut) as c:
        for venue in SHARED:
            submit_when_open(c, venue, qty="5", price=None, client_order_id=f"{venue}-warm")
            sim_fault(sut, venue, "delay_exec_ms", "30000")
        for venue in SHARED:
            submit_when_open(c, venue, qty="3", price=None, client_order_id=f"{venue}-mkt")
            submit_when_open(c, venue, qty="2", price="95.00", client_order_id=f"{venue}-lmt")
        for venue, coids in held.items():
            for coid in coids:
                eventually(lambda v=venue, o=coid: venue_order(sut, v, o) is not None, 10.0)
                assert c.get_order(coid).status is OrderStatus.PENDING_SUBMIT
        since = sut.mark()
        pid = sut.pid_of("venuesim.simA")
        os.kill(pid, signal.SIGKILL)
        sut.wait_event("actor_ready", since=since, child="venuesim.simA", timeout_s=20.0)
        for venue in SHARED:
            cmp = settle(c, sut, [f"{venue}-warm", *held[venue]], venue=venue, timeout_s=60.0)
            assert cmp.oms[f"{venue}-mkt"].status is OrderStatus.FILLED
            assert cmp.oms[f"{venue}-lmt"].status is OrderStatus.ACCEPTED
            assert len(cmp.venue["orders"]) == 3
            check_journal_fills(sut, cmp.oms)
    assert not sut.events("order_resubmitted", since=since)
