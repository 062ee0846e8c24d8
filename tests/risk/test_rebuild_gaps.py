"""A gap in the OMS's event stream while risk's exposure rebuild is on its way: the rebuild's
answers reflect every event up to the first page's `event_seq`, so a gap at or below it is
covered and asks nothing more; only a gap past it needs another rebuild.

Before, every gap restarted the rebuild at once, dropping the answers on their way: under
a flood that overflows risk's SUB (a gap every few messages), risk asked the OMS for its
open orders again and again (each an O(open orders) listing) and its rebuild could not
finish while the flood lasted (load amplification on the busiest actor)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from actors.risk.actor import RiskActor
from protocol.messages import ListOrders, OrderEvent, OrderStatus, Side
from tests.actor_stubs import Client, Harness
from tests.risk.test_actor import LIMITS, check, order, start, verdict


@pytest.fixture
def h() -> Iterator[Harness]:
    harness = Harness(overrides={"risk": LIMITS})
    yield harness
    harness.close()


def _lists(h: Harness) -> int:
    return len(h.oms.stub.bodies(ListOrders))


def _event(coid: str, qty: str = "1") -> OrderEvent:
    return OrderEvent(event_seq=0, order=order(coid, OrderStatus.ACCEPTED, qty))


def _following(h: Harness, actor: RiskActor) -> int:
    """Risk follows the sequence; the event_seq it is at."""
    h.oms.publish(_event("first"))
    h.pump(lambda: actor.sync._stream == (h.oms.epoch, h.oms.event_seq), what="sequenced")
    return h.oms.event_seq


def test_gaps_the_rebuild_covers_ask_for_one_listing(h: Harness) -> None:
    """Three gaps read in one turn, all before the OMS answers: one rebuild, one listing
    (its answer reflects them all), and the exposure is the OMS's."""
    actor = start(h)
    seq = _following(h, actor)
    lists, rebuilds = _lists(h), actor.sync.rebuilds
    h.oms.orders = [order("big", OrderStatus.ACCEPTED, "90")]  # what the lost events made
    for n in (2, 4, 6):  # seq+1, +3, +5 never reach risk
        h.oms.publish(_event(f"g{n}"), seq=seq + n)
    h.pump(lambda: actor.sync.rebuilds > rebuilds, what="the rebuild")
    h.pump(lambda: not actor.sync._syncing, what="no rebuild on its way")
    assert _lists(h) == lists + 1, "a covered gap asked the OMS again"
    assert actor.sync.rebuilds == rebuilds + 1
    v = verdict(Client(h, "risk"), check("c1", "20", side=Side.BUY))
    assert not v.approved and v.reason_code == "max_position"  # the listing's 90 + 20


def test_a_gap_past_what_the_answer_reflects_rebuilds_again(h: Harness) -> None:
    """A gap whose lost events are newer than what the listing reflects (the OMS answered
    as of seq+2; seq+3 is lost): that rebuild is not the OMS's view, so risk asks again."""
    actor = start(h)
    seq = _following(h, actor)
    lists, rebuilds = _lists(h), actor.sync.rebuilds
    h.oms.orders_seq = h.oms.positions_seq = seq + 2  # the answers reflect up to seq+2
    h.oms.publish(_event("a"), seq=seq + 2)  # seq+1 lost: covered
    h.oms.publish(_event("b"), seq=seq + 4)  # seq+3 lost: not covered
    h.pump(lambda: _lists(h) >= lists + 2, what="a second listing")
    h.oms.orders_seq = h.oms.positions_seq = None  # answers reflect what was published
    h.pump(lambda: actor.sync.rebuilds > rebuilds and not actor.sync._syncing, what="rebuilt")
    assert actor.sync.ready
