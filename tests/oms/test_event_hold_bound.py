"""EventHold's bound (review of the hot-path work): the wake after the first is armed for
the earliest held event's due time, so in an otherwise idle loop an order held after the
first is published within `max_hold_s` (it waited up to ~2 x); an entry no turn asks
about again is dropped rather than waking the loop for ever."""

from __future__ import annotations

from actors.oms.commit_policy import EventHold
from protocol.messages import OrderStatus


def test_an_order_held_after_the_first_is_published_within_max_hold() -> None:
    now = [0.0]
    wakes: list[tuple[float, object]] = []
    hold = EventHold(lambda d, fn: wakes.append((now[0] + d, fn)), 0.05, clock=lambda: now[0])
    assert hold.hold("a", OrderStatus.PENDING_RISK)  # wake armed for t=0.05
    now[0] = 0.01
    assert hold.hold("b", OrderStatus.PENDING_RISK)  # due at t=0.06: no wake for that
    # idle loop: the next turn is the wake at 0.05
    when, fn = wakes.pop(0)
    now[0] = when
    fn()  # run_due, then after_iteration asks again for both
    assert not hold.hold("a", OrderStatus.PENDING_RISK)  # published
    assert hold.hold("b", OrderStatus.PENDING_RISK)  # 40 ms: still held
    when, fn = wakes.pop(0)
    assert when - 0.01 <= 0.05 + 1e-9, f"b's event waits until t={when}: {when - 0.01:.2f} s held"


def test_an_entry_never_asked_about_again_stops_the_wakes() -> None:
    now = [0.0]
    wakes: list[tuple[float, object]] = []
    hold = EventHold(lambda d, fn: wakes.append((now[0] + d, fn)), 0.05, clock=lambda: now[0])
    assert hold.hold("gone", OrderStatus.PENDING_RISK)
    for _ in range(5):  # no turn asks about "gone" again
        if not wakes:
            break
        when, fn = wakes.pop(0)
        now[0] = when
        fn()  # type: ignore[operator]
    assert not wakes and hold.held == 0
