"""Reconciliation and the position heartbeat while orders flow, with real processes (issue
16): several clients send market orders back to back while operator reconciliation passes
run and the heartbeat compares positions every beat at `position_tolerance = 0`. Nothing in
flight is judged: no `reconcile_escalation`, no `order_resubmitted`, no inferred missed
fill, no kill-switch; a fill the venue makes but never reports still engages it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from protocol.client import ExecutionClient, TradePulseError
from tests.helpers import SystemUnderTest, eventually
from tests.system_ops import SYMBOL, client, kill_switch, sim_fault, submit_when_open

pytestmark = pytest.mark.integration

VENUE = "simA"
CLIENTS = 4
LOAD_S = 6.0
INTERVAL_S = 0.2
BEATS = 3
# a pass whose open-orders or status answer came without a consistent cut: it fails, judging
# nothing (actors/oms/reconcile_pass.py); the second failed a loaded make test (its 1st pass)
UNCUT = ("open orders without a consistent execution cut", "status answer without a consistent cut")


def _overrides() -> dict[str, Any]:
    return {
        "heartbeat": {
            "interval_s": INTERVAL_S,
            "venue_positions_interval_s": INTERVAL_S,  # every beat: the hardest case
            "divergence_beats": BEATS,
            "position_tolerance": "0",
        },
        "risk": {
            "max_orders_per_s": 1e6,
            "max_orders_per_s_per_venue": 1e6,
            "max_position": "1000000000",
            "max_order_notional": "1000000000",
            "max_daily_loss": "1000000000",
        },
        "venues": [
            {"name": v, "target_comp_id": v.upper(), "sim": {"reference_prices": {SYMBOL: "100"}}}
            for v in ("simA", "simB")
        ],
    }


def _market_orders(sut: SystemUnderTest, stop: threading.Event, sent: list[int], i: int) -> None:
    """Back to back: each submit returns once the order is durable and approved."""
    with client(sut) as c:
        assert isinstance(c, ExecutionClient)
        n = 0
        while not stop.is_set():  # all buys: the position moves every beat
            try:
                c.submit(VENUE, SYMBOL, "BUY", "1", "MARKET", timeout_s=10.0)
                n += 1
            except TradePulseError:
                time.sleep(0.01)  # not synchronisation: backing off a refused submit
        sent[i] = n


def test_passes_and_beats_under_load_judge_nothing_in_flight(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """4 clients send market buys back to back (~200/s here) for 6 s while operator
    passes run one after another and the heartbeat compares every 0.2 s at tolerance 0:
    orders in flight are skipped by the passes (counted), never escalated, resubmitted or
    read as missed fills, and no beat diverges. Then the venue swallows one fill report
    while orders keep flowing: the heartbeat engages the kill-switch."""
    sut = start_system(overrides=_overrides())
    with client(sut) as c:
        submit_when_open(c, VENUE, price=None, qty="1")  # intake open
    since = sut.mark()
    stop, sent = threading.Event(), [0] * CLIENTS
    threads = [
        threading.Thread(target=_market_orders, args=(sut, stop, sent, i), daemon=True)
        for i in range(CLIENTS)
    ]
    for t in threads:
        t.start()
    passes, uncut = 0, 0
    end = time.monotonic() + LOAD_S
    try:
        while time.monotonic() < end:
            reply = sut.control("reconcile", timeout_s=10.0, venue=VENUE, dry_run=False)
            if reply.status == "error" and any(why in reply.reason for why in UNCUT):
                uncut += 1  # failed, judging nothing: the operator is told (a loaded machine)
                continue
            assert reply.status == "ok", reply
            passes += 1
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30.0)
    beats = sut.events("heartbeat", since=since, venue=VENUE)
    skipped = sum(
        e.get("orders", 0) for e in sut.events("reconcile_skipped_in_flight", since=since)
    )
    print(f"orders {sum(sent)}, passes {passes} (failed uncut {uncut}), skipped in flight "
          f"{skipped}, beats {len(beats)}")  # fmt: skip
    assert sum(sent) >= 200 and passes >= 5
    escalations = sut.events("reconcile_escalation", since=since)
    assert escalations == [], [e.get("detail") for e in escalations][:6]
    assert sut.events("order_resubmitted", since=since) == []
    assert sut.events("position_divergence", since=since) == []
    assert [
        e for e in sut.events("reconcile_plan", since=since) if e.get("apply_missed_fill")
    ] == []
    assert not kill_switch(sut)["engaged"]

    # a real divergence is still caught at tolerance 0, while orders keep flowing
    sim_fault(sut, VENUE, "swallow_fills", "1")
    stop.clear()
    threads = [
        threading.Thread(target=_market_orders, args=(sut, stop, sent, i), daemon=True)
        for i in range(2)
    ]
    for t in threads:
        t.start()
    try:
        ks = eventually(lambda: kill_switch(sut) if kill_switch(sut)["engaged"] else None, 15.0)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30.0)
    assert ks["source"] == "heartbeat" and ks["reason"].startswith(f"position_divergence: {VENUE}")
