"""A replace's check is a new question every time (`actors.risk.support.VerdictCache`).
The OMS never re-sends one (no verdict in time: the client's replace is refused), so
a check of an order live in risk's view is never answered from the cache. Before, the
cache served any check identical to one it answered, and a replace's entry stayed while
the order lived: a replace the venue refused, asked again after the exposure grew, got its
old approval (and was not even counted until its PENDING_REPLACE event), and a replace
refused before stayed refused after room was made (reproduced on the real system:
tests/integration/test_risk_replace.py)."""

from __future__ import annotations

from decimal import Decimal

from actors.risk.actor import RiskActor
from protocol.messages import OrderEvent, OrderStatus, Side
from tests.actor_stubs import Client, Harness
from tests.risk.test_actor import LIMITS, applied, check, order, start, verdict

D = Decimal
S = OrderStatus


def _publish(h: Harness, coid: str, status: OrderStatus, qty: str, cum: str = "0",
             pending: str | None = None) -> None:  # fmt: skip
    view = order(coid, status, qty, cum)
    if pending is not None:
        view = view.model_copy(update={"pending_qty": D(pending)})
    h.oms.publish(OrderEvent(event_seq=0, order=view))


def _resting(h: Harness) -> tuple[RiskActor, Client]:
    """Order `a`, a buy of 10, resting (max_position 100)."""
    actor = start(h)
    _publish(h, "a", S.ACCEPTED, "10")
    h.pump(lambda: actor.gate.exposure.own_open("a") is not None, what="a open")
    return actor, Client(h, "risk")


def test_a_replace_approved_then_refused_by_the_venue_is_checked_again(h: Harness) -> None:
    """`a` replaced to 50: approved (worst case 50). The venue refuses the replace (`a`
    back at 10), then a fill of 90 comes: the same replace asked again would make the worst
    case 140: refused `max_position`, not the cached approval."""
    actor, client = _resting(h)
    assert verdict(client, check("a", "50")).approved
    _publish(h, "a", S.PENDING_REPLACE, "10", pending="50")
    _publish(h, "a", S.ACCEPTED, "10")  # the venue refused the replace
    _publish(h, "x", S.FILLED, "90", "90")
    applied(h, actor, "90")
    again = verdict(client, check("a", "50"))
    assert not again.approved and again.reason_code == "max_position"


def test_a_replace_refused_before_is_approved_once_there_is_room(h: Harness) -> None:
    """`b` (a buy of 90) resting: `a` to 50 makes the worst case 140, refused. `b` is
    cancelled: the same replace (worst case 50) is approved, and counted open."""
    actor, client = _resting(h)
    _publish(h, "b", S.ACCEPTED, "90")
    h.pump(lambda: actor.gate.exposure.own_open("b") is not None, what="b open")
    assert verdict(client, check("a", "50")).reason_code == "max_position"
    _publish(h, "b", S.CANCELLED, "90")
    h.pump(lambda: actor.gate.exposure.own_open("b") is None, what="b cancelled")
    assert verdict(client, check("a", "50")).approved
    assert actor.gate.exposure.own_open("a") == ("simA", check("a").side, D(50))


def test_a_refused_replace_asked_again_is_one_breach_not_one_each_time() -> None:
    """Breaches engage the kill-switch at `breaches_to_engage` (3 here) within the window.
    `a` to 50 is refused `max_position` (`b`, 90, rests); the client asks the same replace
    three times: checked again each time (never the cached verdict), but a breach once, as
    when the cache answered the repeats: the switch stays off, and an order within the
    limits is approved. Found by review: each repeat counted, and one client retrying one
    refused replace engaged the kill-switch for every venue."""
    h = Harness(overrides={"risk": {**LIMITS, "breaches_to_engage": 3}})
    try:
        actor, client = _resting(h)
        _publish(h, "b", S.ACCEPTED, "90")
        h.pump(lambda: actor.gate.exposure.own_open("b") is not None, what="b open")
        for _ in range(3):
            assert verdict(client, check("a", "50")).reason_code == "max_position"
        assert verdict(client, check("c", "1", side=Side.SELL)).approved
        assert not actor.engaged
    finally:
        h.close()
