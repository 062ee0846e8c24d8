"""A gap in the OMS's event stream while risk's exposure rebuild is on its way: the rebuild's
answers reflect every event up to the first page's `event_seq`, so a gap at or below it is
covered and asks nothing more; only a gap past it needs another rebuild.

Before, every gap restarted the rebuild at once, dropping the answers on their way: under
a flood that overflows risk's SUB (a gap every few messages), risk asked the OMS for its
open orders again and again (each an O(open orders) listing) and its rebuild could not
finish while the flood lasted (load amplification on the busiest actor).

A covered gap leaves a hole in what risk buffered: an order's events before the hole are
buffered, the one in the hole that ended it is lost. An unlisted order's event up to the
first page is not applied on top of the answers (it would bring the ended order back as
open), and an approval whose order's events came is not added back as provisional (its
order may have ended: a retry empties the buffer, its answers do not list it). The two
tests of these holes are a fresh-eyes review's (the second fails before these changes too)."""

from __future__ import annotations

from collections.abc import Callable

from actors.risk.actor import RiskActor
from protocol.messages import OrderEvent, OrderStatus, Side, StreamEvent
from tests.actor_stubs import Client, Harness
from tests.risk.test_actor import check, order, start, verdict


def _event(coid: str, qty: str = "1") -> OrderEvent:
    return OrderEvent(event_seq=0, order=order(coid, OrderStatus.ACCEPTED, qty))


def _actor_turns(h: Harness, until: Callable[[], bool], what: str) -> None:
    """Turn risk's loop only (the OMS stub does not answer meanwhile) until `until()`."""
    assert h.actor is not None
    for _ in range(2500):  # ~5 s of 2 ms turns
        h.actor._iterate(max_wait_s=0.002)
        if until():
            return
    raise AssertionError(f"not within 2500 turns: {what}")


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
    lists, rebuilds = h.oms.listings(), actor.sync.rebuilds
    h.oms.orders = [order("big", OrderStatus.ACCEPTED, "90")]  # what the lost events made
    for n in (2, 4, 6):  # seq+1, +3, +5 never reach risk
        h.oms.publish(_event(f"g{n}"), seq=seq + n)
    _actor_turns(h, lambda: actor.sync._stream == (h.oms.epoch, seq + 6), "all three read")
    h.pump(lambda: actor.sync.rebuilds > rebuilds, what="the rebuild")
    h.pump(lambda: not actor.sync._syncing, what="no rebuild on its way")
    assert h.oms.listings() == lists + 1, "a covered gap asked the OMS again"
    assert actor.sync.rebuilds == rebuilds + 1
    v = verdict(Client(h, "risk"), check("c1", "20", side=Side.BUY))
    assert not v.approved and v.reason_code == "max_position"  # the listing's 90 + 20


def test_a_gap_past_what_the_answer_reflects_rebuilds_again(h: Harness) -> None:
    """A gap whose lost events are newer than what the listing reflects (the OMS answered
    as of seq+2; seq+3 is lost): that rebuild is not the OMS's view, so risk asks again."""
    actor = start(h)
    seq = _following(h, actor)
    lists, rebuilds = h.oms.listings(), actor.sync.rebuilds
    h.oms.orders_seq = h.oms.positions_seq = seq + 2  # the answers reflect up to seq+2
    h.oms.publish(_event("a"), seq=seq + 2)  # seq+1 lost: covered
    h.oms.publish(_event("b"), seq=seq + 4)  # seq+3 lost: not covered
    _actor_turns(h, lambda: actor.sync._stream == (h.oms.epoch, seq + 4), "both read")
    h.pump(lambda: h.oms.listings() >= lists + 2, what="a second listing")
    h.oms.orders_seq = h.oms.positions_seq = None  # answers reflect what was published
    h.pump(lambda: actor.sync.rebuilds > rebuilds and not actor.sync._syncing, what="rebuilt")
    assert actor.sync.ready


def test_an_order_ended_in_a_covered_gap_does_not_come_back_as_open_exposure(
    h: Harness,
) -> None:
    """seq+1 lost: a rebuild starts; `big` ACCEPTED (90) at seq+2 is buffered; `big`
    CANCELED at seq+3 is lost (a gap while the rebuild is on its way); the OMS answers as of
    seq+4, without `big` (it has ended): the gap is covered, no second listing. The
    exposure must be the OMS's (nothing open): a buy of 20 is within max_position 100."""
    actor = start(h)
    h.oms.publish(OrderEvent(event_seq=0, order=order("first", OrderStatus.ACCEPTED, "1")))
    h.pump(lambda: actor.sync._stream == (h.oms.epoch, h.oms.event_seq), what="sequenced")
    seq, rebuilds = h.oms.event_seq, actor.sync.rebuilds
    h.oms.orders = []  # what the OMS holds open when it answers: `big` has ended
    h.oms.publish(
        OrderEvent(event_seq=0, order=order("big", OrderStatus.ACCEPTED, "90")), seq=seq + 2
    )
    h.oms.publish(StreamEvent(event_seq=0, event="probe"), seq=seq + 4)  # seq+3 lost
    _actor_turns(h, lambda: actor.sync._stream == (h.oms.epoch, seq + 4), "both read")
    assert actor.sync._syncing, "the rebuild is on its way when the second gap is read"
    h.pump(lambda: actor.sync.rebuilds > rebuilds and not actor.sync._syncing, what="rebuilt")
    assert actor.gate.exposure.open_qty("AAPL", Side.BUY) == 0, actor.gate.exposure.summary()
    v = verdict(Client(h, "risk"), check("c1", "20", side=Side.BUY))
    assert v.approved, v.reason


def test_an_order_approved_during_a_retried_rebuild_and_ended_is_not_left_open(
    h: Harness,
) -> None:
    """(Before 5ae6489 too.) A rebuild is on its way; risk approves `p1` and `p2` (45
    each); the OMS accepts and cancels them (their events read, buffered); the rebuild is
    retried (its answer was late: the buffer is emptied, the approvals kept); the retry's
    answer lists neither (they have ended): they must not come back as provisional open
    exposure (90 open: a buy of 20 refused, max_position 100)."""
    actor = start(h)
    h.oms.publish(OrderEvent(event_seq=0, order=order("first", OrderStatus.ACCEPTED, "1")))
    h.pump(lambda: actor.sync._stream == (h.oms.epoch, h.oms.event_seq), what="sequenced")
    seq, rebuilds = h.oms.event_seq, actor.sync.rebuilds
    h.oms.answering, actor.sync.timeout_s = False, 0.3  # the first rebuild's answer is late
    h.oms.publish(StreamEvent(event_seq=0, event="probe"), seq=seq + 2)  # seq+1 lost
    h.pump(lambda: bool(actor.sync._syncing), what="a rebuild on its way")
    client = Client(h, "risk")
    for coid in ("p1", "p2"):  # 45 each: 90 approved
        assert verdict(client, check(coid, "45", side=Side.BUY)).approved
        p = order(coid, OrderStatus.ACCEPTED, "45")
        h.oms.publish(OrderEvent(event_seq=0, order=p))
        ended = p.model_copy(update={"status": OrderStatus.CANCELLED})
        h.oms.publish(OrderEvent(event_seq=0, order=ended))
    h.pump(lambda: actor.sync._stream == (h.oms.epoch, seq + 6), what="their events read")
    h.oms.orders, h.oms.answering = [], True  # nothing open: p1 and p2 have ended
    h.pump(lambda: actor.sync.rebuilds > rebuilds and not actor.sync._syncing, what="rebuilt")
    assert actor.gate.exposure.open_qty("AAPL", Side.BUY) == 0, actor.gate.exposure.summary()
    assert verdict(client, check("c1", "20", side=Side.BUY)).approved
