"""A cold start's opening positions taken from a positions answer without a consistent cut
(the connector's wait for the OMS's acks ran out: `oms_epoch=None`). The real `VenueLink`
pass and `PlanApplier` on the stub OMS of `tests.oms.test_venue_link`."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal as D
from pathlib import Path

import structlog

from actors.oms.exec_cut import ExecLog
from actors.oms.plan import Action, Plan
from actors.oms.plan_apply import PlanApplier
from actors.oms.venue_link import VenueLink
from protocol.config import OmsCfg
from protocol.messages import (
    GetPositions,
    OpenOrders,
    OrderStatus,
    Positions,
    PositionView,
    Side,
    VenueConnState,
    VenueOrder,
)
from protocol.venue_messages import ExecCut, ExecReport
from tests.oms.test_venue_link import StubOms, StubPeer, V

CONNECTOR_EPOCH, OMS_EPOCH = 7, 1


class _ColdOms(StubOms):
    """The stub OMS with the real plan applier of a cold start (its marker present)."""

    def __init__(self, marker: Path) -> None:
        super().__init__()
        marker.touch()
        cfg = OmsCfg(cold_start_open_orders="adopt")
        self.applier = PlanApplier(self, {}, cfg, structlog.get_logger(), marker)  # type: ignore[arg-type]

    def durable_crash_point(self, name: str) -> None:
        pass

    def apply_reconcile_steps(
        self, link: VenueLink, plan: Plan, steps: Sequence[tuple[int, Action]]
    ) -> None:
        self.applier.apply_steps(link, plan, steps)

    def reconcile_plan_applied(
        self, link: VenueLink, plan: Plan, positions: Positions | None
    ) -> None:
        self.applier.finish(link, positions)


def test_an_answer_without_a_consistent_cut_is_not_taken_with_a_fill_it_already_holds(
    tmp_path: Path,
) -> None:
    """The OMS restarted during a cold start: its journal holds the adopted EXT2 (BUY 60,
    nothing filled), the marker is still there, so the new pass is a cold one again. The
    venue holds 30 ABC from before; then EXT2 fills 10 (exec_seq 6): 40. The positions
    answer reflects that fill, but the OMS had not acked it within the connector's wait
    (`WAIT_S`; an OMS busy with its cold start), so its cut names no OMS epoch. The pass
    itself compares no positions on such a cut (`local_positions`: "no consistent cut"),
    yet the cold start takes the answer as is (b8bcc78: "as before") as the opening
    position, 40, and then the fill it already holds is applied on top: the OMS holds 50
    where the venue holds 40 (the heartbeat diverges every beat; the kill-switch at
    tolerance 0; risk's limits read 10 too many). It must not take positions from such an
    answer (fail the cold pass: retried, as an open-order answer without a consistent cut
    is), or take them as of a cut it can account for."""
    oms = _ColdOms(tmp_path / "cold")
    ext2 = VenueOrder(cl_ord_id="EXT2", venue_order_id="V2", symbol="ABC", side=Side.BUY,
                      order_qty=D(60), price=D(100), status=OrderStatus.ACCEPTED,
                      cum_qty=D(0), avg_px=D(0), leaves_qty=D(60))  # fmt: skip
    oms.book.adopt(V, ext2, 1)  # replayed from the journal of the incarnation before
    exec_log, peer = ExecLog(), StubPeer()
    link = VenueLink(V, oms, peer, request_timeout_s=5.0, log=structlog.get_logger(),
                     exec_log=exec_log, oms_epoch=OMS_EPOCH)  # fmt: skip
    link.on_state(VenueConnState.CONNECTED, CONNECTOR_EPOCH, "logged on")
    open_cut = ExecCut(connector_epoch=CONNECTOR_EPOCH, exec_seq=5, oms_epoch=OMS_EPOCH)
    peer.answer(OpenOrders(venue=V, orders=[ext2], cut=open_cut))
    assert isinstance(peer.sent[0][0], GetPositions), peer.sent
    no_cut = ExecCut(connector_epoch=CONNECTOR_EPOCH, exec_seq=6, oms_epoch=None)
    peer.answer(Positions(source="venue", venue=V, cut=no_cut,
                          positions=[PositionView(venue=V, symbol="ABC", qty=D(40),
                                                  avg_px=D(100))]))  # fmt: skip
    # the fill the answer reflects reaches the OMS now (its ack was late, not lost)
    fill = ExecReport(venue=V, exec_id="E6", kind="fill", cl_ord_id="EXT2", exec_seq=6,
                      last_qty=D(10), last_px=D(100), cum_qty=D(10))  # fmt: skip
    exec_log.note_outcome(fill, CONNECTOR_EPOCH, oms.book.apply_exec(fill, 2))
    held = oms.book.position(V, "ABC").qty
    taken = link.ever_reconciled  # the cold pass done: no other opening position follows
    assert not taken or held == 40, f"OMS {held} ABC where the venue holds 40"
