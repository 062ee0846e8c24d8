"""rev18 (review of 82d47f0, F1): a venue whose MassCancel keeps failing (connector not
logged on, out of session: REFUSED -> retried every `_CANCEL_RETRY_S` while engaged).
A live sweep (`LiveOrderSweeps._sweep` -> `CancelTracker.start_venue`) sends at once
when nothing is in flight - also between two retries - and its refusal schedules a retry
of its own: the retry chain already running goes on too. Every sweep adds one more
perpetual retry chain, so with live events at that venue (>= one sweep a second) the
MassCancels sent to its connector grow without bound for as long as it fails. Expected:
at most one retry waiting per venue (the engagement's round and its sweep may make two)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from actors.risk import actor as risk_mod
from protocol.messages import OrderEvent, OrderStatus
from tests.actor_stubs import Harness
from tests.risk.test_actor import FAST_VENUES, LIMITS, control, order, sample, start

RETRY_S = 0.5


@pytest.fixture
def h(monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    monkeypatch.setattr(risk_mod, "_CANCEL_RETRY_S", RETRY_S)
    monkeypatch.setattr(risk_mod, "_CANCEL_SWEEP_S", 0.1)
    monkeypatch.setattr(risk_mod, "_LIVE_SWEEP_MIN_S", 0.1)
    monkeypatch.setattr(risk_mod, "_CANCEL_TIMEOUT_MARGIN_S", 0.1)
    harness = Harness(overrides={"risk": LIMITS, "venues": FAST_VENUES})
    yield harness
    harness.close()


def test_live_sweeps_at_a_refusing_venue_do_not_multiply_its_retries(h: Harness) -> None:
    actor = start(h)
    waiting = {"n": 0}  # mass-cancel retries scheduled and not yet run
    plain = actor.call_later

    def counting(delay_s: float, fn: Callable[[], None]) -> None:
        if delay_s != RETRY_S:
            plain(delay_s, fn)
            return
        waiting["n"] += 1

        def run() -> None:
            waiting["n"] -= 1
            fn()

        plain(delay_s, run)

    actor.call_later = counting  # type: ignore[method-assign]
    h.connectors["simA"].mode = "down"  # every MassCancel answered VENUE_DOWN (REFUSED)
    control(actor, "engage", "desk halt")
    h.pump(lambda: len(h.connectors["simA"].mass_cancels) >= 2, what="round and sweep")
    for i in range(6):
        before = sample("tradepulse_kill_switch_live_sweeps_total", venue="simA")
        h.oms.publish(OrderEvent(event_seq=0, order=order(f"o{i}", OrderStatus.ACCEPTED, "1")))
        h.pump(lambda b=before: sample("tradepulse_kill_switch_live_sweeps_total",
                                       venue="simA") > b,
               what=f"live sweep {i}")  # fmt: skip
        h.pump(lambda: not actor.cancels.venues["simA"].in_flight, what="its answer")
    assert waiting["n"] <= 2, f"{waiting['n']} retry chains at simA"
