"""Risk's realised P&L (what `max_daily_loss` reads) on a cold start's opening position of
unknown cost (a venue that gave no average price: avg_px 0, `actors.oms.cost_basis`).
Closing it realises nothing until the position is flat or flips, as the OMS's `positions`
view; from then on the cost is our own fills'. The OMS side is a real book and its views
(`tests.oms.test_oms_views._Desk`); risk learns the position from the OMS's `GetPositions`
answer (`OmsViews.wire_positions`), as its rebuild does, and is fed the same fills."""

from __future__ import annotations

from decimal import Decimal

from actors.oms.cost_basis import CostBasis
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
    """Long 100 of unknown cost; buy 100 @ 50, sell 100 @ 55 and 100 @ 56 (flat), then a
    round trip of our own (buy 10 @ 60, sell @ 61). Risk counts only our 100's result (each
    close takes half of it: 250, then 300) and then 10: before the riskpnl fix it counted
    the unknown half's closes against a cost of 0 too (a false gain of 5,550 that hid real
    losses of that size from max_daily_loss), also after a rebuild (the OMS answered the
    book's realised P&L, booked against 0)."""
    desk = _Desk()
    _open(desk, "100", "0")
    risk = _rebuilt(desk)
    assert risk.position_views()[0].cost_known is False
    steps = [(Side.BUY, "100", "50", 0), (Side.SELL, "100", "55", 250)]
    steps += [(Side.SELL, "100", "56", 550)]
    for side, qty, px, counted in steps:
        _trade(desk, risk, side, qty, px)
        assert _same_at_every_step(desk, risk) == counted
    assert risk.position_views()[0].cost_known is True
    _trade(desk, risk, Side.BUY, "10", "60")
    _trade(desk, risk, Side.SELL, "10", "61")
    assert _same_at_every_step(desk, risk) == D(560)


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
    an unknown cost; its answer says so (`cost_known` false), how much of its realised P&L
    was booked against no cost (`unknown_cost_pnl`), which risk does not count, and how
    much of its qty has no cost (`unknown_qty`). An older answer's avg_px 0 with a qty is
    unknown cost too, all of it."""
    desk = _Desk()
    _open(desk, "100", "0")
    desk.trade(Side.BUY, "100", "50")
    desk.trade(Side.SELL, "100", "55")  # half of each part: ours 50 @ 50 -> 55
    [wire] = desk.views.wire_positions()
    assert wire.avg_px > 0 and wire.cost_known is False and wire.unknown_qty == 50
    assert (wire.realized_pnl, wire.unknown_cost_pnl) == (3000, 2750)
    assert _rebuilt(desk).realized_pnl() == 250
    legacy = PositionView(venue=V, symbol="ABC", qty=D(5), avg_px=D(0))
    risk = ExposureView.rebuild([], [legacy])
    risk.apply_unmatched_fill(V, "ABC", Side.SELL, D(5), D(100))
    assert risk.realized_pnl() == 0


def test_a_loss_on_what_we_added_at_known_prices_counts() -> None:
    """Long 10 of unknown cost; we buy 10 @ 100 (a known cost) and sell all 20 @ 40. Of the
    close, the unknown half counts nothing; our own 10 lost 600, and the daily loss counts
    it, live and after a rebuild at any step (the OMS's answer says which part of the qty
    has no cost). Before: the whole position counted nothing until flat, and the close to
    flat nothing either, so a loss of any size on a position added to one of unknown cost
    never reached max_daily_loss (before the riskpnl merge: 200, against a blended cost)."""
    desk = _Desk()
    _open(desk, "10", "0")
    risk = _rebuilt(desk)
    _trade(desk, risk, Side.BUY, "10", "100")
    assert _same_at_every_step(desk, risk) == 0
    _trade(desk, risk, Side.SELL, "10", "40")  # half the unknown part, half ours
    assert _same_at_every_step(desk, risk) == D(-300)
    _trade(desk, risk, Side.SELL, "10", "40")
    assert _same_at_every_step(desk, risk) == D(-600)
    assert desk.row()["cost_known"] is True and D(desk.row()["realized_pnl"]) == D(-600)


def test_a_short_of_unknown_cost_added_to_counts_the_loss_on_our_part() -> None:
    """Short 10 of unknown cost; we sell 30 more @ 20 and buy 40 back @ 30: our 30 lost 300
    (the unknown part's close is no loss), live and after a rebuild at any step."""
    desk = _Desk()
    _open(desk, "-10", "0")
    risk = _rebuilt(desk)
    _trade(desk, risk, Side.SELL, "30", "20")
    _trade(desk, risk, Side.BUY, "20", "30")
    assert _same_at_every_step(desk, risk) == D(-150)
    _trade(desk, risk, Side.BUY, "20", "30")
    assert _same_at_every_step(desk, risk) == D(-300)


def test_a_snapshot_saved_before_the_split_counts_as_it_did() -> None:
    """An OMS snapshot of an older build keeps no `unknown_qty`: all of the position is of
    no cost, and the P&L it booked meanwhile stays out (as that build counted it)."""
    desk = _Desk()
    _open(desk, "100", "0")
    desk.trade(Side.BUY, "100", "50")
    desk.trade(Side.SELL, "100", "55")
    state = desk.views.state()["views"]["cost_basis"]
    older = CostBasis({"unknown": [{**state["unknown"][0], "realized_pnl": "3000"}]})
    assert not older.known((V, "ABC")) and older.realized((V, "ABC"), D(3000)) == 0
    older.fill((V, "ABC"), Side.SELL, D(100), D(56))  # all of it of no cost: flat, known
    assert older.known((V, "ABC")) and older.realized((V, "ABC"), D(6100)) == 0
    legacy = PositionView(venue=V, symbol="ABC", qty=D(100), avg_px=D(25), cost_known=False)
    risk = ExposureView.rebuild([], [legacy])  # an older OMS's answer: no unknown_qty
    risk.apply_unmatched_fill(V, "ABC", Side.SELL, D(100), D(56))
    assert risk.realized_pnl() == 0
