"""Review of fix11 (rev15): a fill of a venue order from before a cold start, reaching the
OMS between the venue's open-orders listing and the pass's adoption of that order. Not
introduced by fix11 (adoption is unchanged there), found while checking how the opening
position accounts for fills. The real `VenueLink` pass, `PlanApplier` and `OrderBook` on
the stub OMS of `tests.oms.test_venue_link`."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import structlog

from actors.oms.exec_cut import ExecLog
from actors.oms.venue_link import VenueLink
from protocol.messages import (
    GetPositions,
    OpenOrders,
    OpenOrdersRequest,
    OrderStatus,
    Positions,
    PositionView,
    Side,
    VenueConnState,
    VenueOrder,
)
from protocol.venue_messages import ExecCut, ExecReport
from tests.oms.test_cold_opening_cut import CONNECTOR_EPOCH, OMS_EPOCH, _ColdOms
from tests.oms.test_venue_link import StubPeer, V

EXT3 = VenueOrder(cl_ord_id="EXT3", venue_order_id="V3", symbol="ABC", side=Side.BUY,
                  order_qty=D(60), price=D(100), status=OrderStatus.ACCEPTED, cum_qty=D(0),
                  avg_px=D(0), leaves_qty=D(60))  # fmt: skip


def _cut(seq: int) -> ExecCut:
    return ExecCut(connector_epoch=CONNECTOR_EPOCH, exec_seq=seq, oms_epoch=OMS_EPOCH)


def _venue_holds(qty: int, seq: int) -> Positions:
    held = PositionView(venue=V, symbol="ABC", qty=D(qty), avg_px=D(100))
    return Positions(source="venue", venue=V, cut=_cut(seq), positions=[held])


def test_a_fill_between_the_listing_and_the_adoption_is_counted_once(tmp_path: Path) -> None:
    """Cold start, empty book; the venue still has EXT3 (BUY 60, nothing filled) from
    before. The pass's open-orders answer lists it at cut 5 (consistent). EXT3 then fills
    10 (exec_seq 6) and the fill reaches the OMS before the pass applies its plan: no order
    matches it yet, so it is recorded as unmatched. The positions answer (cut 6,
    consistent) says 10, the plan adopts EXT3 at the listing's cum 0, and the adoption
    drops the unmatched fill as "explained by the adopted venue cum_qty" although that cum
    was read before the fill. The opening position is the venue's 10 (right), but EXT3
    stays at cum 0 in the book. The next (warm) pass sees the venue's cum 10 > 0 and
    applies a missed fill of 10: the OMS holds 20 ABC where the venue holds 10 (the
    heartbeat diverges every beat; the kill-switch at tolerance 0; risk reads 10 too many).
    Expected: after both passes the OMS holds the venue's 10."""
    oms = _ColdOms(tmp_path / "cold")
    exec_log, peer = ExecLog(), StubPeer()
    link = VenueLink(V, oms, peer, request_timeout_s=5.0, log=structlog.get_logger(),
                     exec_log=exec_log, oms_epoch=OMS_EPOCH, rand=lambda: 0.5)  # fmt: skip
    link.on_state(VenueConnState.CONNECTED, CONNECTOR_EPOCH, "logged on")
    assert isinstance(peer.answer(OpenOrders(venue=V, orders=[EXT3], cut=_cut(5))),
                      OpenOrdersRequest)  # fmt: skip
    fill = ExecReport(venue=V, exec_id="E6", kind="fill", cl_ord_id="EXT3", exec_seq=6,
                      venue_order_id="V3",
                      last_qty=D(10), last_px=D(100), cum_qty=D(10))  # fmt: skip
    exec_log.note_outcome(fill, CONNECTOR_EPOCH, oms.book.apply_exec(fill, 2))
    assert isinstance(peer.answer(_venue_holds(10, 6)), GetPositions)
    assert link.ever_reconciled and oms.book.position(V, "ABC").qty == 10  # the opening
    # the next pass: the venue lists EXT3 with the fill it had
    link.start_reconcile()
    filled = EXT3.model_copy(update={"cum_qty": D(10), "avg_px": D(100), "leaves_qty": D(50),
                                     "status": OrderStatus.PARTIALLY_FILLED})  # fmt: skip
    assert isinstance(peer.answer(OpenOrders(venue=V, orders=[filled], cut=_cut(6))),
                      OpenOrdersRequest)  # fmt: skip
    assert isinstance(peer.answer(_venue_holds(10, 6)), GetPositions)
    held = oms.book.position(V, "ABC").qty
    assert held == 10, f"OMS {held} ABC where the venue holds 10"
