"""Risk's realised P&L (what `max_daily_loss` reads) on a cold start's opening position of
unknown cost (a venue that gave no average price: avg_px 0, `actors.oms.cost_basis`).
Closing it realises nothing until the position is flat or flips, as the OMS's `positions`
view; from then on the cost is our own fills'. The OMS side is a real book and its views
(`tests.oms.test_oms_views._Desk`); risk learns the position from the OMS's `GetPositions`
answer (`OmsViews.wire_positions`), as its rebuild does, and is fed the same fills."""

from __future__ import annotations

from decimal import Decimal

from actors.risk.checks import ExposureView, RiskGate
from protocol.messages import PositionView, Side
from tests.oms.test_oms_views import V, _Desk, _open
from tests.risk.test_checks import LIMITS, req

D = Decimal


def _rebuilt(desk: _Desk) -> ExposureView:
    """Risk's view after a rebuild from the OMS's positions (its start, a cold start's
    `opening_positions`, an OMS restart)."""
    return ExposureView.rebuild([], desk.views.wire_positions())


def _trade(desk: _Desk, risk: ExposureView, side: Side, qty: str, px: str) -> None:
    """A fill the OMS books and risk counts from its event."""
    desk.trade(side, qty, px)
    risk.apply_unmatched_fill(V, "ABC", side, D(qty), D(px))


def _same_at_every_step(desk: _Desk, risk: ExposureView) -> Decimal:
    """Risk's realised P&L, equal to a rebuild's at that moment and to the OMS view's (when
    the cost is known there); returned."""
    again = _rebuilt(desk)
    assert again.position_views() == risk.position_views()
    row = desk.row()
    if row["cost_known"]:
        assert D(row["realized_pnl"]) == risk.realized_pnl()
    return risk.realized_pnl()


def test_closing_an_unknown_cost_long_realises_no_gain() -> None:
    """Long 100 of unknown cost; buy 10 @ 50, sell 60 @ 55 and 50 @ 56 (flat), then a round
    trip of our own (buy 10 @ 60, sell @ 61). Risk counts 0 until flat, then 10: before
    the fix it counted the closes against a cost of 0 (a gain of 5,600 that hid real
    losses of that size from max_daily_loss), also after a rebuild (the OMS answered the
    book's realised P&L, booked against 0)."""
    desk = _Desk()
    _open(desk, "100", "0")
    risk = _rebuilt(desk)
    assert risk.position_views()[0].cost_known is False
    steps = [(Side.BUY, "10", "50"), (Side.SELL, "60", "55"), (Side.SELL, "50", "56")]
    for side, qty, px in steps:
        _trade(desk, risk, side, qty, px)
        assert _same_at_every_step(desk, risk) == 0
    assert risk.position_views()[0].cost_known is True
    _trade(desk, risk, Side.BUY, "10", "60")
    _trade(desk, risk, Side.SELL, "10", "61")
    assert _same_at_every_step(desk, risk) == D(10)


def test_closing_an_unknown_cost_short_is_no_loss_and_trading_goes_on() -> None:
    """Short 20 of unknown cost, bought back 20 @ 100: no loss (before: 2,000, over the
    limit of 1,000, and every order refused `daily_loss`, trading halted for nothing)."""
    desk = _Desk()
    _open(desk, "-20", "0")
    gate = RiskGate(LIMITS.model_copy(update={"price_band_pct": 1000.0}))
    gate.exposure = _rebuilt(desk)  # as `ExposureSync._finish`: the day's origin is kept
    _trade(desk, gate.exposure, Side.BUY, "20", "100")
    assert _same_at_every_step(desk, gate.exposure) == 0
    assert gate.daily_loss() == 0
    verdict = gate.check(req(1, 100, symbol="ABC", venue=V), now_ns=0)
    assert verdict.approved, verdict


def test_a_flip_through_zero_opens_the_rest_at_the_fill_price() -> None:
    """Short 5 of unknown cost; buy 8 @ 20 flips to long 3 at 20 (the close of the short
    not counted); selling those 3 @ 25 realises 15."""
    desk = _Desk()
    _open(desk, "-5", "0")
    risk = _rebuilt(desk)
    _trade(desk, risk, Side.BUY, "8", "20")
    assert _same_at_every_step(desk, risk) == 0
    [pos] = risk.position_views()
    assert (pos.qty, pos.avg_px, pos.cost_known) == (D(3), D(20), True)
    _trade(desk, risk, Side.SELL, "3", "25")
    assert _same_at_every_step(desk, risk) == D(15)


def test_a_rebuild_takes_the_oms_cost_state_not_only_its_avg_px() -> None:
    """After adds at known prices the OMS's book has an average price above 0 and still
    an unknown cost; its answer says so (`cost_known` false) and how much of its realised
    P&L was booked against no cost (`unknown_cost_pnl`), which risk does not count. An
    older answer's avg_px 0 with a qty is unknown cost too."""
    desk = _Desk()
    _open(desk, "100", "0")
    desk.trade(Side.BUY, "10", "50")
    desk.trade(Side.SELL, "60", "55")
    [wire] = desk.views.wire_positions()
    assert wire.avg_px > 0 and wire.cost_known is False
    assert wire.unknown_cost_pnl == wire.realized_pnl != 0
    assert _rebuilt(desk).realized_pnl() == 0
    legacy = PositionView(venue=V, symbol="ABC", qty=D(5), avg_px=D(0))
    risk = ExposureView.rebuild([], [legacy])
    risk.apply_unmatched_fill(V, "ABC", Side.SELL, D(5), D(100))
    assert risk.realized_pnl() == 0
