"""A replace of a partly filled order (`actors.risk.checks.RiskGate`): the OMS asks about
the order's new total qty (`RiskCheck.qty`, filled part included), but its filled part is
already in the position. What could still execute is the new qty less the filled part, and
that is what max_position and max_order_notional count. Before, the check counted the
new total on top of the position: an order of 100 with 60 filled, replaced to 120, was
measured 60 + 120 = 180 (max_position 120: refused, though at most 120 can ever be held)."""

from __future__ import annotations

from decimal import Decimal

from actors.risk.checks import ReasonCode, RiskGate
from protocol.config import RiskLimitsCfg
from protocol.messages import OrderEvent, OrderStatus, OrderView, OrdType, RiskCheck, Side

D = Decimal
S = OrderStatus
PX = D(100)


def _order(status: OrderStatus, qty: str, cum: str, side: Side = Side.BUY) -> OrderView:
    return OrderView(client_order_id="a", venue="sim", symbol="AAPL", side=side, qty=D(qty),
                     order_type=OrdType.LIMIT, price=PX, status=status, cum_qty=D(cum),
                     avg_px=PX if D(cum) else D(0))  # fmt: skip


def _check(qty: str, coid: str = "a", side: Side = Side.BUY) -> RiskCheck:
    return RiskCheck(client_order_id=coid, venue="sim", symbol="AAPL", side=side, qty=D(qty),
                     order_type=OrdType.LIMIT, price=PX)  # fmt: skip


def _gate(side: Side = Side.BUY, **limits: str) -> RiskGate:
    """Order `a` of 100 at 100, 60 of it filled (position 60 long, or short for a sell)."""
    lim = RiskLimitsCfg(price_band_pct=1000.0, **{k: D(v) for k, v in limits.items()})
    g = RiskGate(lim, reference_prices={"AAPL": PX})
    g.exposure.apply_order_event(
        OrderEvent(event_seq=1, order=_order(S.ACCEPTED, "100", "0", side))
    )
    g.exposure.apply_order_event(
        OrderEvent(event_seq=2, order=_order(S.PARTIALLY_FILLED, "100", "60", side),
                   fill_qty=D(60), fill_px=PX)
    )  # fmt: skip
    return g


def test_a_replace_counts_its_open_remainder_against_max_position() -> None:
    """Position 60 + the new open remainder 60 = 120, at max_position 120: approved (and
    a buy of 1 more is then refused: the remainder counts open). 121 is refused."""
    g = _gate(max_position="120")
    assert g.check(_check("121"), now_ns=1).code is ReasonCode.MAX_POSITION
    assert g.check(_check("120"), now_ns=2).approved
    assert g.exposure.open_qty("AAPL", Side.BUY) == 60
    assert g.check(_check("1", coid="b"), now_ns=3).code is ReasonCode.MAX_POSITION


def test_a_replace_of_a_sell_counts_its_open_remainder_too() -> None:
    g = _gate(Side.SELL, max_position="120")
    assert g.check(_check("120", side=Side.SELL), now_ns=1).approved
    assert g.check(_check("121", side=Side.SELL), now_ns=2).code is ReasonCode.MAX_POSITION


def test_a_replace_counts_its_open_remainder_against_max_order_notional() -> None:
    """The filled 60 is in the position: 60 more at 100 (6,000) is what could execute,
    at max_order_notional 6,000: approved; 61 more (6,100): refused."""
    g = _gate(max_order_notional="6000")
    assert g.check(_check("120"), now_ns=1).approved
    assert g.check(_check("121"), now_ns=2).code is ReasonCode.MAX_NOTIONAL


def test_max_order_qty_still_reads_the_orders_size() -> None:
    """The order at its venue is 120: max_order_qty (a fat-finger bound on the order's
    size) reads that, not the remainder."""
    g = _gate(max_order_qty="100")
    assert g.check(_check("120"), now_ns=1).code is ReasonCode.MAX_ORDER_QTY
