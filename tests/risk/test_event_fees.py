"""A fill's fee reaches risk with the fill (`OrderEvent.fill_fee_base` / `fill_fee_quote`)
and risk nets it as the OMS's book does (`protocol.fees.book_fill`, one function for
both). The OMS side is the real book, `OmsActor.record` and `after_iteration` on the stub
OMS of `tests.oms.test_sends_first`; the risk side an `ExposureView` fed its events."""

from __future__ import annotations

from decimal import Decimal as D
from itertools import count
from typing import Any

from actors.risk.exposure import ExposureView
from protocol.messages import ExecReport, OrderEvent, PositionView, Side
from tests.oms.test_sends_first import V, _Oms

SYM = "BTC/USDT"
_ids = count(1)


class _Host(_Oms):
    def _escalate(self, *_args: object) -> None:
        """Escalations: not what these tests look at."""


def _order(oms: _Host, coid: str, side: Side, qty: str) -> str:
    oms.approve(coid, qty=D(qty), symbol=SYM, side=side)
    oms.after_iteration()
    order = oms.book.get(coid)
    assert order is not None
    _exec(oms, "accepted", order.cl_ord_id, venue_order_id=f"V-{coid}")
    oms.after_iteration()
    return order.cl_ord_id


def _exec(oms: _Host, kind: str, cl: str, **kw: Any) -> None:
    eid = f"E{next(_ids)}"
    report = ExecReport(venue=V, exec_id=eid, kind=kind, cl_ord_id=cl, symbol=SYM, **kw)
    oms.record(oms.book.apply_exec(report, next(_ids)))


def _fill(oms: _Host, cl: str, qty: str, px: str, cum: str, fee: str, asset: str) -> None:
    _exec(oms, "fill", cl, last_qty=D(qty), last_px=D(px), cum_qty=D(cum), fee=D(fee),
          fee_asset=asset)  # fmt: skip


def _fills(oms: _Host, published: int) -> list[OrderEvent]:
    return [e for e in oms.pub.events[published:] if e.fill_qty]


def _oms_pos(oms: _Host) -> tuple[D, D, D]:
    p = oms.book.position(V, SYM)
    return p.qty, p.avg_px, p.realized_pnl


def _risk_pos(view: ExposureView) -> tuple[D, D, D]:
    p = view.position_view(V, SYM)
    return p.qty, p.avg_px, p.realized_pnl


def test_risk_nets_each_fee_as_the_oms_book_does() -> None:
    """A buy of 1 BTC paying 0.001 BTC, a sell of 0.4 paying 0.044 USDT, a sell of 0.1
    paying BNB: risk's position, average price and realised P&L (max_position,
    max_daily_loss) are the OMS book's after each, fed only the order events."""
    oms, view = _Host(), ExposureView()
    buy = _order(oms, "b", Side.BUY, "1")
    sell = _order(oms, "s", Side.SELL, "0.4")
    bnb = _order(oms, "n", Side.SELL, "0.1")
    for cl, qty, px, fee, asset in (
        (buy, "1", "100", "0.001", "BTC"),
        (sell, "0.4", "110", "0.044", "USDT"),
        (bnb, "0.1", "90", "0.01", "BNB"),
    ):
        published = len(oms.pub.events)
        _fill(oms, cl, qty, px, qty, fee, asset)
        oms.after_iteration()
        [event] = _fills(oms, published)
        base, quote = {"BTC": (D(fee), None), "USDT": (None, D(fee))}.get(asset, (None, None))
        assert (event.fill_fee_base, event.fill_fee_quote) == (base, quote)
        for e in oms.pub.events[published:]:
            view.apply_order_event(e)
        assert _risk_pos(view) == _oms_pos(oms)
    assert _oms_pos(oms)[0] == D("0.499")
    assert _oms_pos(oms)[2] == -D("0.001") * 100 + D("0.4") * 10 - D("0.044") - D("0.1") * 10


def test_the_fees_of_fills_folded_into_one_event_are_summed() -> None:
    """Two fills of one order in one turn (a connector's batch) make one event: it carries
    both fees, and risk's position is the book's, net of both."""
    oms, view = _Host(), ExposureView()
    cl = _order(oms, "b", Side.BUY, "1")
    published = len(oms.pub.events)
    _fill(oms, cl, "0.4", "100", "0.4", "0.0004", "BTC")
    _fill(oms, cl, "0.6", "100", "1", "0.0006", "BTC")
    oms.after_iteration()
    [event] = _fills(oms, published)
    assert (event.fill_qty, event.fill_fee_base, event.fill_fee_quote) == (1, D("0.001"), None)
    for e in oms.pub.events:
        view.apply_order_event(e)
    assert _risk_pos(view) == _oms_pos(oms) == (D("0.999"), 100, -D("0.1"))


def test_a_rebuild_from_the_oms_positions_counts_no_fee_twice() -> None:
    """Risk's rebuild takes the OMS's positions, already net of every fee they hold; an
    event those positions reflect (replayed with `count_fill=False`) adds neither its fill
    nor its fee, and a fill after the rebuild is netted once."""
    oms = _Host()
    cl = _order(oms, "b", Side.BUY, "1")
    published = len(oms.pub.events)
    _fill(oms, cl, "0.5", "100", "0.5", "0.0005", "BTC")
    oms.after_iteration()
    qty, avg_px, pnl = _oms_pos(oms)
    rebuilt = PositionView(venue=V, symbol=SYM, qty=qty, avg_px=avg_px, realized_pnl=pnl)
    view = ExposureView.rebuild([], [rebuilt])
    for e in oms.pub.events[published:]:
        view.apply_order_event(e, count_fill=False)
    assert _risk_pos(view) == _oms_pos(oms) == (D("0.4995"), 100, -D("0.05"))
    order = oms.book.get("b")
    assert order is not None
    view.apply_order(order.view())  # the order as a rebuild lists it: live, 0.5 filled
    published = len(oms.pub.events)
    _fill(oms, cl, "0.5", "100", "1", "0.0005", "BTC")
    oms.after_iteration()
    for e in oms.pub.events[published:]:
        view.apply_order_event(e)
    assert _risk_pos(view) == _oms_pos(oms) == (D("0.999"), 100, -D("0.1"))


def test_risk_books_the_fee_of_a_fill_reconciliation_caught_up_first() -> None:
    """The OMS catches a fill up from the venue's cum (no fee known), then the trade's own
    report brings its fee alone (`actors.oms.late_fee`): its event carries the fee without
    a fill and risk books it, so risk's position and P&L stay the OMS's (0.999 BTC)."""
    oms, view = _Host(), ExposureView()
    cl = _order(oms, "r1", Side.BUY, "1")
    _exec(oms, "status", cl, ord_status="FILLED", cum_qty=D(1), avg_px=D(100), leaves_qty=D(0))
    oms.after_iteration()
    _fill(oms, cl, "1", "100", "1", "0.001", "BTC")
    oms.after_iteration()
    for event in oms.pub.events:
        view.apply_order_event(event)
    assert _oms_pos(oms) == _risk_pos(view) and _oms_pos(oms)[0] == D("0.999")
