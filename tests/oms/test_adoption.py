"""An adoption (`actors.oms.adoption`): its fills so far are the outcome's one inferred fill,
which the order's event and the fills metric carry; the book's positions take it once, from
the ``new`` record, and the exec cut's ring (execution reports only) never sees it. The
OMS side is the real book and `OmsActor.record` / `after_iteration` on the stub OMS of
`tests.oms.test_sends_first`."""

from __future__ import annotations

from decimal import Decimal as D

from prometheus_client import REGISTRY

from actors.oms.exec_cut import ExecLog
from actors.oms.order_book import OrderBook
from actors.runtime.tally import TURN
from protocol.messages import ExecCut, ExecReport, OrderStatus, Side, VenueOrder
from tests.oms.test_sends_first import V, _Oms


def _venue_order(cl: str, cum: str, avg: str = "0") -> VenueOrder:
    """The venue's view of a BUY 60 @ 100 placed by someone else, `cum` filled at `avg`."""
    status = OrderStatus.PARTIALLY_FILLED if D(cum) else OrderStatus.ACCEPTED
    return VenueOrder(cl_ord_id=cl, venue_order_id=f"V-{cl}", symbol="ABC", side=Side.BUY,
                      order_qty=D(60), price=D(100), status=status, cum_qty=D(cum),
                      avg_px=D(avg), leaves_qty=D(60) - D(cum))  # fmt: skip


def _fills_metric() -> float:
    TURN.flush()
    return REGISTRY.get_sample_value("tradepulse_fills_total", {"venue": V}) or 0.0


def test_an_adoption_carries_its_fills_so_far_and_the_position_takes_them_once() -> None:
    """BUY 60, 50 filled @ 100.2 at the venue: the outcome's fill is 50 @ 100.2 and the
    position 50 (the ``new`` record applies it; nothing applies the outcome's fill again),
    on the live book and on replay. A second adoption of it is a duplicate with no fill; an
    adoption of an order nothing filled yet has none either."""
    book = OrderBook()
    out = book.adopt(V, _venue_order("EXT1", "50", "100.2"), 1)
    assert out.applied and (out.fill_qty, out.fill_px) == (50, D("100.2"))
    assert book.position(V, "ABC").qty == 50 and book.position(V, "ABC").avg_px == D("100.2")
    again = book.adopt(V, _venue_order("EXT1", "50", "100.2"), 2)
    assert (again.kind, again.records, again.fill_qty) == ("duplicate", (), None)
    fresh = book.adopt(V, _venue_order("EXT2", "0"), 3)
    assert fresh.applied and (fresh.fill_qty, fresh.fill_px) == (None, None)
    replayed = OrderBook()
    for rec in out.records + fresh.records:
        replayed.apply_record(rec)
    assert replayed.position(V, "ABC").qty == 50
    assert book.position(V, "ABC").qty == 50


def test_the_oms_counts_an_adoption_as_one_fill_and_its_ring_only_the_later_execution() -> None:
    """Through `OmsActor.record`: adopting BUY 60 with 50 filled counts one fill (its exec id
    `recon:EXT1:50`, as a reconciliation's missed fill: deliberately, the fills metric counts
    every fill the OMS applies, reported or inferred); a repeat adoption and an adoption
    with nothing filled count none. The turn's last fill of 10 (an execution report) counts
    one more and is the only entry in the exec cut's ring, so the position as of a cut
    before it is the adopted 50: the OMS's position is 60, never 110."""
    oms = _Oms()
    before = _fills_metric()
    oms.record(oms.book.adopt(V, _venue_order("EXT1", "50", "100"), 1))
    assert _fills_metric() == before + 1
    oms.record(oms.book.adopt(V, _venue_order("EXT1", "50", "100"), 2))
    oms.record(oms.book.adopt(V, _venue_order("EXT2", "0"), 3))
    assert _fills_metric() == before + 1
    log = ExecLog()
    report = ExecReport(venue=V, exec_id="E1", kind="fill", cl_ord_id="EXT1", exec_seq=1,
                        last_qty=D(10), last_px=D(100), cum_qty=D(60))  # fmt: skip
    fill = oms.record(oms.book.apply_exec(report, 4))
    log.note_outcome(report, 1, fill)
    assert _fills_metric() == before + 2
    oms.after_iteration()
    assert oms.book.position(V, "ABC").qty == 60
    cut = ExecCut(connector_epoch=1, exec_seq=0)
    assert log.positions_as_of(V, cut, {"ABC": D(60)}) == {"ABC": 50}
    event = next(e for e in oms.pub.events if e.order.client_order_id == f"ext:{V}:EXT1")
    assert event.order.status is OrderStatus.FILLED
    assert (event.fill_qty, event.fill_px) == (60, 100)  # the adoption's 50 and the 10
