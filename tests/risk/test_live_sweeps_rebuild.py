"""rev18 (review of 82d47f0, F1): an order live at its venue while the kill switch is
engaged is swept only if risk reads its own OrderEvent. An order whose ACCEPTED event
risk never read - lost in a gap of the event stream (a SUB overflow in the flood of an
engagement's cancels), or published before risk's SUB connected after a restart (slow
joiner) - reaches risk only through the rebuild's `ListOrders`, which never asks
`LiveOrderSweeps` anything: it rests at the exchange with the switch engaged, as before
F1's fix. These tests expect the listing's live order to sweep its venue too."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from actors.risk import actor as risk_mod
from actors.risk.actor import killswitch
from protocol.messages import ListOrders, OrderEvent, OrderStatus
from tests.actor_stubs import Harness
from tests.risk.test_actor import FAST_VENUES, LIMITS, control, order, start


@pytest.fixture
def h(monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    monkeypatch.setattr(risk_mod, "_CANCEL_RETRY_S", 0.05)
    monkeypatch.setattr(risk_mod, "_CANCEL_SWEEP_S", 0.1)
    monkeypatch.setattr(risk_mod, "_LIVE_SWEEP_MIN_S", 0.1)
    monkeypatch.setattr(risk_mod, "_CANCEL_TIMEOUT_MARGIN_S", 0.1)
    harness = Harness(overrides={"risk": LIMITS, "venues": FAST_VENUES})
    yield harness
    harness.close()


def _cancels(h: Harness) -> dict[str, int]:
    return {v: len(c.mass_cancels) for v, c in h.connectors.items()}


def test_a_live_order_whose_event_was_lost_in_a_gap_sweeps_its_venue(h: Harness) -> None:
    """Engaged, round and sweep done at both venues. A late create lands at simA; its
    ACCEPTED event is lost (the stream jumps from seq 1 to 3); risk rebuilds and the
    OMS lists it ACCEPTED at simA. Expected: simA swept again (3rd MassCancel)."""
    actor = start(h)
    control(actor, "engage", "desk halt")
    h.pump(lambda: _cancels(h) == {"simA": 2, "simB": 2} and actor.cancels.complete,
           what="the engagement's round and sweep")  # fmt: skip
    listings = len(h.oms.stub.bodies(ListOrders))
    h.oms.publish(OrderEvent(event_seq=0, order=order("x", OrderStatus.CANCELLED, "1")))
    h.oms.orders = [order("late", OrderStatus.ACCEPTED, "1")]  # its event (seq 2) lost
    h.oms.publish(OrderEvent(event_seq=0, order=order("y", OrderStatus.CANCELLED, "1")), seq=3)
    h.pump(lambda: len(h.oms.stub.bodies(ListOrders)) > listings and actor.ready,
           what="the rebuild after the gap")  # fmt: skip
    h.pump(lambda: _cancels(h)["simA"] >= 3, timeout_s=3.0,
           what="simA swept for the live order the rebuild lists")  # fmt: skip


def test_a_live_order_listed_at_risk_s_restart_while_engaged_sweeps_its_venue(
    h: Harness,
) -> None:
    """Risk starts with the switch engaged (its 'loaded' round: one MassCancel each, and
    no second round). A create landed after that round, its ACCEPTED event published
    before risk's SUB joined: only the rebuild's listing shows it. Expected: its venue
    swept again once the debounce allows."""
    killswitch.engage(killswitch.kill_switch_path(h.cfg.state_path), "earlier", "operator")
    h.oms.orders = [order("late", OrderStatus.ACCEPTED, "1")]
    actor = start(h)
    assert actor.engaged
    h.pump(lambda: actor.cancels.complete and _cancels(h) == {"simA": 1, "simB": 1},
           what="the loaded round")  # fmt: skip
    h.pump(lambda: _cancels(h)["simA"] >= 2, timeout_s=3.0,
           what="simA swept for the live order the rebuild lists")  # fmt: skip
