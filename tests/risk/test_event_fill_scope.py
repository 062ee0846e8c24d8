"""An order event's `fill_qty` as risk reads it of an order its exposure view does not know
(`actors.risk.exposure._unknown_cum`: of a finished one, only the event's fill is new). The
OMS side is the real book, `OmsActor.record` and `after_iteration` on the stub OMS of
`tests.oms.test_sends_first`; the risk side a fresh `ExposureView`, as risk holds it when it
never saw the order (it ended before a rebuild, or its first event is this one)."""

from __future__ import annotations

from decimal import Decimal as D
from itertools import count
from typing import Any

import pytest

from actors.risk.exposure import ExposureView
from protocol.messages import ExecReport, OrderStatus, PositionView, Side, VenueOrder
from tests.oms.test_sends_first import V, _Oms

_ids = count(1)


class _Host(_Oms):
    def _escalate(self, *_args: object) -> None:
        """A late fill's `late_fill` escalation: not what these tests look at."""


def _exec(oms: _Host, kind: str, cl: str, **kw: Any) -> None:
    report = ExecReport(venue=V, exec_id=f"E{next(_ids)}", kind=kind, cl_ord_id=cl, **kw)  # type: ignore[arg-type]
    oms.record(oms.book.apply_exec(report, next(_ids)))


def _ended_before_the_rebuild() -> tuple[_Host, str]:
    """`x`: BUY 100, 40 filled @ 100, cancelled; its events published. Risk then rebuilt (x
    not listed: it had ended), its positions holding those 40."""
    oms = _Host()
    oms.approve("x", qty=D(100))
    oms.after_iteration()
    order = oms.book.get("x")
    assert order is not None
    cl = order.cl_ord_id
    _exec(oms, "accepted", cl, venue_order_id="V1")
    _exec(oms, "fill", cl, last_qty=D(40), last_px=D(100), cum_qty=D(40))
    oms.record(oms.book.request_cancel("x", next(_ids)))
    _exec(oms, "cancelled", cl, cum_qty=D(40), avg_px=D(100))
    oms.after_iteration()
    assert order.status is OrderStatus.CANCELLED and order.cum_qty == 40
    return oms, cl


def _rebuilt() -> ExposureView:
    return ExposureView.rebuild([], [PositionView(venue=V, symbol="ABC", qty=D(40), avg_px=D(100))])


def _applied(view: ExposureView, oms: _Host, published: int) -> None:
    for event in oms.pub.events[published:]:
        view.apply_order_event(event)


@pytest.mark.parametrize("late_fill", [False, True], ids=["restatement", "late_fill_too"])
def test_a_restatement_of_an_order_ended_before_the_rebuild_counts_its_new_fills_only(
    late_fill: bool,
) -> None:
    """A FIX restatement (ExecType D, kind "status") of x after the rebuild shows cum 70,
    alone (a late 30 the OMS applies as a catch-up fill) or in the same OMS turn as a late
    fill of 10 (cum 50, then a late 20 caught up). Risk's position must be 70: the status
    outcome carries its catch-up fill, so the event's fill_qty is every new fill (30).
    Without it: 110 alone (x's 40 counted again, the event without fill_qty), 50 with the
    late fill (its 10 counted, the 20 not)."""
    oms, cl = _ended_before_the_rebuild()
    published = len(oms.pub.events)
    view = _rebuilt()
    if late_fill:
        _exec(oms, "fill", cl, last_qty=D(10), last_px=D(100), cum_qty=D(50))
    _exec(oms, "status", cl, cum_qty=D(70), avg_px=D(100), ord_status=OrderStatus.CANCELLED)
    oms.after_iteration()
    event = oms.pub.events[-1]
    assert event.order.cum_qty == 70, event
    _applied(view, oms, published)
    assert view.position("ABC") == 70, (event.fill_qty, view.summary())


def test_an_order_adopted_and_filled_in_one_turn_counts_its_whole_cum() -> None:
    """Reconciliation adopts an external venue order (BUY 60, 50 filled) and, in the same
    OMS turn, its last fill of 10 arrives: one event, FILLED, cum 60. Risk never saw the
    order: all 60 are new to its positions. The event's fill_qty is 60 (the adoption's
    inferred 50 and the 10, `actors.oms.adoption`); with 10 alone `_unknown_cum` took a
    finished order's cum less its event's fill as already held (position 10, 50 too low)."""
    oms = _Host()
    vo = VenueOrder(cl_ord_id="EXT1", venue_order_id="V9", symbol="ABC", side=Side.BUY,
                    order_qty=D(60), price=D(100), status=OrderStatus.PARTIALLY_FILLED,
                    cum_qty=D(50), avg_px=D(100), leaves_qty=D(10))  # fmt: skip
    assert oms.record(oms.book.adopt(V, vo, next(_ids))).applied
    _exec(oms, "fill", "EXT1", last_qty=D(10), last_px=D(100), cum_qty=D(60))
    oms.after_iteration()
    (event,) = oms.pub.events
    assert event.order.status is OrderStatus.FILLED and event.order.cum_qty == 60, event
    view = ExposureView()
    view.apply_order_event(event)
    assert view.position("ABC") == 60, (event.fill_qty, view.summary())
