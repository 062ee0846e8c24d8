"""Approvals and late fills across an exposure rebuild (a fresh-eyes review of 204c84a found
all three, older than it): risk must not end a rebuild with less exposure than the OMS's
orders carry.

1. An order approved while a rebuild is on its way whose verdict the OMS had not applied
   when it answered: the listing shows it PENDING_RISK. The rebuilt view remembered the
   listed PENDING_RISK order, so its provisional exposure was never added back (the
   approval was counted nowhere until the order's next event).
2. An order approved just BEFORE a rebuild starts (its provisional exposure lived in the old
   view only): the verdict and risk's ListOrders reach the OMS on different sockets, so the
   page can list it PENDING_RISK; the new view dropped it. The view now keeps its
   provisional orders and a rebuild carries them, added back when listed PENDING_RISK.
3. A late fill on an order that ended before the rebuild (not listed: the rebuilt view does
   not know its cum_qty): its event's cum_qty was taken as all new, counting the fills
   the positions already hold again. The event's own fill (`fill_qty`: the OMS's every fill
   of the order since its previous event) is what is new.
   (The same review's test; its direction: a buy fill counted 40 too many moved a short
   position toward flat, so a sell past max_position was approved.)"""

from __future__ import annotations

from decimal import Decimal as D

from protocol.messages import OrderEvent, OrderStatus, PositionView, Side, StreamEvent
from tests.actor_stubs import Client, Harness
from tests.risk.test_actor import check, order, start, verdict


def test_an_approval_just_before_a_rebuild_stays_counted(h: Harness) -> None:
    """`p1` (45) approved while risk is in step; a gap starts a rebuild before the OMS
    applied p1's verdict: the page lists p1 PENDING_RISK. p1's 45 must stay counted until
    its event comes: 45 + 45 + 20 > max_position 100, so `p3` is refused."""
    actor = start(h)
    h.oms.publish(OrderEvent(event_seq=0, order=order("first", OrderStatus.CANCELLED, "1")))
    h.pump(lambda: actor.sync._stream == (h.oms.epoch, h.oms.event_seq), what="sequenced")
    h.oms.orders = []
    seq, rebuilds = h.oms.event_seq, actor.sync.rebuilds
    client = Client(h, "risk")
    assert verdict(client, check("p1", "45")).approved
    assert actor.gate.exposure.open_qty("AAPL", Side.BUY) == 45
    h.oms.orders = [order("p1", OrderStatus.PENDING_RISK, "45")]  # verdict not applied yet
    h.oms.publish(StreamEvent(event_seq=0, event="probe"), seq=seq + 2)  # seq+1 lost
    h.pump(lambda: actor.sync.rebuilds > rebuilds and not actor.sync._syncing, what="rebuilt")
    summary = actor.gate.exposure.summary()
    assert verdict(client, check("p2", "45")).approved
    v = verdict(client, check("p3", "20"))
    assert not v.approved and v.reason_code == "max_position", (v, summary)


def test_an_approval_during_a_rebuild_listed_pending_risk_stays_counted(h: Harness) -> None:
    """The case `ExposureSync._approved` is for ("their order may be PENDING_RISK in the
    answers"): `p1` (45) approved while a rebuild is on its way, the page lists it
    PENDING_RISK. `ExposureView.rebuild` remembers p1's cum (0) and `add_provisional`
    skips an order it knows: p1 is counted nowhere. 45 + 45 + 20 > 100: p3 refused."""
    actor = start(h)
    h.oms.publish(OrderEvent(event_seq=0, order=order("first", OrderStatus.CANCELLED, "1")))
    h.pump(lambda: actor.sync._stream == (h.oms.epoch, h.oms.event_seq), what="sequenced")
    seq, rebuilds = h.oms.event_seq, actor.sync.rebuilds
    h.oms.answering, actor.sync.timeout_s = False, 0.3  # the rebuild's answer is late
    h.oms.publish(StreamEvent(event_seq=0, event="probe"), seq=seq + 2)  # seq+1 lost
    h.pump(lambda: bool(actor.sync._syncing), what="a rebuild on its way")
    client = Client(h, "risk")
    assert verdict(client, check("p1", "45")).approved
    h.oms.orders = [order("p1", OrderStatus.PENDING_RISK, "45")]  # verdict not applied yet
    h.oms.answering = True
    h.pump(lambda: actor.sync.rebuilds > rebuilds and not actor.sync._syncing, what="rebuilt")
    summary = actor.gate.exposure.summary()
    assert verdict(client, check("p2", "45")).approved
    v = verdict(client, check("p3", "20"))
    assert not v.approved and v.reason_code == "max_position", (v, summary)


def test_a_late_fill_on_an_order_ended_before_the_rebuild_counts_its_fill_once(
    h: Harness,
) -> None:
    """Position -70 (it holds `x`: BUY 60, 40 filled, cancelled, not listed). A late fill of
    10 on x (CANCELLED, cum 50): the position is -60, not -20 (x's whole 50 counted). A sell
    of 50 would make it -110: refused (max_position 100)."""
    h.oms.positions = [PositionView(venue="simA", symbol="AAPL", qty=D(-70), avg_px=D(100))]
    actor = start(h)
    late = order("x", OrderStatus.CANCELLED, "60", cum="50")
    h.oms.publish(OrderEvent(event_seq=0, order=late, fill_qty=D(10), fill_px=D(100)))
    h.pump(lambda: actor.sync._stream == (h.oms.epoch, h.oms.event_seq), what="applied")
    assert actor.gate.exposure.position("AAPL") == -60, actor.gate.exposure.summary()
    v = verdict(Client(h, "risk"), check("s1", "50", side=Side.SELL))
    assert not v.approved and v.reason_code == "max_position", v


def test_a_replace_approved_just_before_a_rebuild_stays_counted_at_its_new_size(
    h: Harness,
) -> None:
    """`x` (buy 10) and `y` (buy 45) rest; risk approves x's replace to 50 (counted 50 open
    from the approval: `ExposureView._raised`); a gap starts a rebuild before the OMS
    applied the verdict (the verdict and ListOrders reach it on different sockets): the
    page lists x ACCEPTED 10, no `pending_qty`. The venue may still take 50: 50 + 45 + 10 >
    max_position 100, so `p2` is refused. Before, the rebuilt view counted x at 10 until
    its PENDING_REPLACE event came (the approval lived in the old view only): p2 approved,
    a worst case of 105."""
    h.oms.orders = [order("x", OrderStatus.ACCEPTED, "10"), order("y", OrderStatus.ACCEPTED, "45")]
    actor = start(h)
    h.oms.publish(OrderEvent(event_seq=0, order=order("first", OrderStatus.CANCELLED, "1")))
    h.pump(lambda: actor.sync._stream == (h.oms.epoch, h.oms.event_seq), what="sequenced")
    seq, rebuilds = h.oms.event_seq, actor.sync.rebuilds
    client = Client(h, "risk")
    assert verdict(client, check("x", "50")).approved  # the replace's check
    assert actor.gate.exposure.open_qty("AAPL", Side.BUY) == 95
    h.oms.publish(StreamEvent(event_seq=0, event="probe"), seq=seq + 2)  # seq+1 lost
    h.pump(lambda: actor.sync.rebuilds > rebuilds and not actor.sync._syncing, what="rebuilt")
    summary = actor.gate.exposure.summary()
    v = verdict(client, check("p2", "10"))
    assert not v.approved and v.reason_code == "max_position", (v, summary)
