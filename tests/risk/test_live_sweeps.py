"""While the kill switch is engaged, an order the OMS shows live at its venue gets that
venue swept again (review rev16, F1: a create landing after the engagement's mass cancel
and its sweep rested at the exchange): the risk actor against stub OMS and connectors,
and the debouncing (`LiveOrderSweeps`) against a fake clock and timers."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from actors.risk import actor as risk_mod
from actors.risk import live_sweeps as sweeps_mod
from actors.risk.actor import killswitch
from actors.risk.live_sweeps import LiveOrderSweeps
from actors.risk.support import CancelAction, CancelOutcome, CancelTracker
from protocol.messages import ListOrders, OrderEvent, OrderStatus
from tests.actor_stubs import Harness
from tests.log_stub import RecordingLog
from tests.risk.test_actor import FAST_VENUES, LIMITS, control, order, sample, start

MIN_S = 1.0


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


def test_an_order_live_at_a_venue_while_engaged_sweeps_that_venue_again(h: Harness) -> None:
    """Engaged, its round and sweep done at both venues: an ACCEPTED order at simA (a
    create that landed late) sends simA, and only simA, one more MassCancel, counted."""
    actor = start(h)
    control(actor, "engage", "desk halt")
    h.pump(lambda: _cancels(h) == {"simA": 2, "simB": 2} and actor.cancels.complete,
           what="the engagement's round and sweep")  # fmt: skip
    before = sample("tradepulse_kill_switch_live_sweeps_total", venue="simA")
    h.oms.publish(OrderEvent(event_seq=0, order=order("late", OrderStatus.ACCEPTED, "1")))
    h.pump(lambda: _cancels(h)["simA"] == 3 and actor.cancels.complete, what="simA swept")
    assert _cancels(h)["simB"] == 2
    assert sample("tradepulse_kill_switch_live_sweeps_total", venue="simA") == before + 1
    assert h.connectors["simA"].mass_cancels[-1].reason == "desk halt"


def test_an_order_live_while_not_engaged_sweeps_nothing(h: Harness) -> None:
    """Not engaged: an ACCEPTED order is trading as usual, no MassCancel."""
    actor = start(h)
    applied = actor.sync.events_applied
    h.oms.publish(OrderEvent(event_seq=0, order=order("o1", OrderStatus.ACCEPTED, "1")))
    h.pump(lambda: actor.sync.events_applied > applied, what="the event read")
    assert actor.live_sweeps.waiting == {}
    assert _cancels(h) == {"simA": 0, "simB": 0}


# --------------------------------------------------------------------------- debouncing


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now


class _Rig:
    """`LiveOrderSweeps` over venues simA, simB with timers the test fires."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.clock = _Clock()
        monkeypatch.setattr(sweeps_mod, "time", self.clock)
        self.engaged = True
        self.timers: list[tuple[float, Callable[[], None]]] = []  # (due, fn)
        self.sent: list[str] = []
        self.cancels = CancelTracker(["simA", "simB"])
        self.sweeps = LiveOrderSweeps(
            self.cancels, engaged=lambda: self.engaged, call_later=self._later,
            send_cancel=self._send, log=RecordingLog(), min_interval_s=MIN_S,
        )  # fmt: skip

    def _later(self, delay_s: float, fn: Callable[[], None]) -> None:
        self.timers.append((self.clock.now + delay_s, fn))

    def _send(self, venue: str) -> None:
        self.cancels.sent(venue)
        self.sent.append(venue)

    def live(self, coid: str, venue: str = "simA", n: int = 1) -> None:
        view = order(coid, OrderStatus.ACCEPTED, "1").model_copy(update={"venue": venue})
        for _ in range(n):
            self.sweeps.on_order(view)

    def run_due(self, now: float) -> None:
        self.clock.now = now
        due = [fn for at, fn in self.timers if at <= now]
        self.timers = [(at, fn) for at, fn in self.timers if at > now]
        for fn in due:
            fn()


def test_a_flood_of_live_orders_is_one_sweep_per_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    """A round at 100.0; 500 live events at 100.2 wait as one sweep, sent at 101.0 (not
    sooner, not dropped); 500 more right after it: one more, at 102.0."""
    rig = _Rig(monkeypatch)
    rig.sweeps.round_started(rig.clock.now)
    rig.clock.now = 100.2
    rig.live("late", n=500)
    assert [at for at, _ in rig.timers] == [pytest.approx(101.0)]
    rig.run_due(100.9)
    assert rig.sent == []
    rig.run_due(101.0)
    assert rig.sent == ["simA"]
    rig.cancels.on_outcome("simA", CancelOutcome.DONE, 101.1)
    rig.live("late", n=500)
    assert [at for at, _ in rig.timers] == [pytest.approx(102.0)]
    rig.run_due(102.0)
    assert rig.sent == ["simA", "simA"]


def test_a_sweep_asked_while_the_venue_s_cancel_is_in_flight_follows_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """simA's MassCancel is still out when the sweep is due: none sent beside it; once it
    answers, the sweep's own goes (the order may have landed after the first was read)."""
    rig = _Rig(monkeypatch)
    rig.sweeps.round_started(rig.clock.now)
    rig._send("simA")  # the round's, unanswered
    rig.live("late")
    rig.run_due(101.0)
    assert rig.sent == ["simA"]
    assert rig.cancels.on_outcome("simA", CancelOutcome.DONE, 101.5) is CancelAction.RESEND


def test_a_round_after_the_event_covers_it_and_a_reset_cancels_the_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A round (the engagement's sweep) after the event: the waiting sweep is dropped.
    A waiting sweep due after a reset sends nothing."""
    rig = _Rig(monkeypatch)
    rig.sweeps.round_started(rig.clock.now)
    rig.live("late")
    rig.sweeps.round_started(100.5)
    rig.run_due(101.0)
    assert rig.sent == []
    rig.live("other", venue="simB")
    rig.engaged = False
    rig.run_due(102.0)
    assert rig.sent == [] and rig.sweeps.waiting == {}


def test_only_orders_live_at_a_venue_sweep(monkeypatch: pytest.MonkeyPatch) -> None:
    """PENDING_SUBMIT (not seen at the venue yet), terminal orders and unknown venues ask
    for nothing; PARTIALLY_FILLED, PENDING_CANCEL, PENDING_REPLACE do."""
    rig = _Rig(monkeypatch)
    quiet = [OrderStatus.PENDING_RISK, OrderStatus.PENDING_SUBMIT, OrderStatus.CANCELLED,
             OrderStatus.FILLED, OrderStatus.REJECTED, OrderStatus.EXPIRED]  # fmt: skip
    for status in quiet:
        rig.sweeps.on_order(order("q", status, "1"))
    rig.sweeps.on_order(order("x", OrderStatus.ACCEPTED, "1").model_copy(update={"venue": "zz"}))
    assert rig.timers == []
    for status in (OrderStatus.PARTIALLY_FILLED, OrderStatus.PENDING_CANCEL,
                   OrderStatus.PENDING_REPLACE):  # fmt: skip
        rig.sweeps.waiting.clear()
        rig.timers.clear()
        rig.sweeps.on_order(order("y", status, "1", "0.5"))
        assert len(rig.timers) == 1, status


# a live order risk sees only in a rebuild's listing (review rev18): an event lost in a
# gap of the stream, or published before risk's SUB joined after a restart


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


# a round drops a waiting sweep and its timer with it (review rev18)


def test_a_stale_timer_never_sends_a_later_wait_s_sweep_early(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rig = _Rig(monkeypatch)
    rig.sweeps.round_started(100.0)
    rig.clock.now = 100.2
    rig.live("a")  # waits, due 101.0
    rig.sweeps.round_started(100.5)  # the engagement's sweep round: covers "a"
    rig.clock.now = 100.6
    rig.live("late")  # shown live after that round: due 101.5
    rig.run_due(101.0)  # only the stale timer of "a" is due
    assert rig.sent == [], "swept 0.5 s after the round (min 1.0 s)"
    rig.run_due(101.5)
    assert rig.sent == ["simA"]
