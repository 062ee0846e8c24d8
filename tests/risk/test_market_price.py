"""What a market order's notional is priced at (`RiskGate.market_price`): the larger of
the symbol's last fill price and its configured reference. Before, the last fill price
alone, once there was one: after a restart over the OMS's book (its `last_px`, however old)
a newer configured reference, above it, was never read, and a market order that would
execute near the reference passed max_order_notional (reproduced on the real system:
tests/integration/test_risk_reference_rebuild.py)."""

from __future__ import annotations

from decimal import Decimal

from actors.risk.checks import ExposureView, ReasonCode, RiskGate
from protocol.config import RiskLimitsCfg
from protocol.messages import OrdType, PositionView, RiskCheck, Side

D = Decimal
LIMITS = RiskLimitsCfg(max_order_notional=D(12_000), price_band_pct=5.0)


def _market(qty: str = "100") -> RiskCheck:
    return RiskCheck(client_order_id="m", venue="sim", symbol="AAPL", side=Side.BUY,
                     qty=D(qty), order_type=OrdType.MARKET)  # fmt: skip


def _rebuilt(last_px: str, configured: str | None) -> RiskGate:
    """Risk started over the OMS's book, whose last AAPL execution was at `last_px`."""
    g = RiskGate(LIMITS, reference_prices={} if configured is None else {"AAPL": D(configured)})
    row = PositionView(venue="sim", symbol="AAPL", qty=D(1), avg_px=D(last_px),
                       last_fill_ns=1, last_px=D(last_px))  # fmt: skip
    g.exposure = ExposureView.rebuild([], [row])
    return g


def test_a_configured_reference_above_the_last_fill_prices_a_market_order() -> None:
    """Last fill 100.01, configured 150: 100 at 150 is 15,000 > 12,000, refused (at
    100.01 it was 10,001, approved). 80 at 150 (12,000) passes, and the band (5 %) does
    not refuse a market order for the gap between the two prices."""
    g = _rebuilt("100.01", "150")
    assert g.check(_market("100"), now_ns=1).code is ReasonCode.MAX_NOTIONAL
    assert g.check(_market("80"), now_ns=2).approved
    assert g.market_price("AAPL") == D(150)


def test_a_last_fill_above_the_configured_reference_prices_it() -> None:
    """Last fill 150.01, configured 100: as before, the fill's price (15,001: refused)."""
    g = _rebuilt("150.01", "100")
    assert g.check(_market("100"), now_ns=1).code is ReasonCode.MAX_NOTIONAL
    assert g.market_price("AAPL") == D("150.01")


def test_either_price_alone_prices_it() -> None:
    """No fill yet: the configured reference; no configured one: the last fill."""
    assert RiskGate(LIMITS, reference_prices={"AAPL": D(7)}).market_price("AAPL") == D(7)
    assert _rebuilt("9", None).market_price("AAPL") == D(9)
    assert RiskGate(LIMITS).market_price("AAPL") is None
    assert RiskGate(LIMITS).check(_market(), now_ns=1).code is ReasonCode.PRICE_BAND


def test_a_limit_orders_band_still_reads_the_last_fill() -> None:
    """Limit orders are banded around the last fill, else the configured reference, as
    before: 100 is within 5 % of the last fill 100.01 though 33 % from the configured 150."""
    g = _rebuilt("100.01", "150")
    limit = _market("1").model_copy(update={"order_type": OrdType.LIMIT, "price": D(100)})
    assert g.check(limit, now_ns=1).approved


def test_a_market_orders_notional_refusal_names_the_price_it_was_priced_at() -> None:
    """The refusal says the price and where it came from: an operator whose market orders
    are all refused (a configured reference far above the market) sees why, not only a
    notional no order of theirs seemed to make. Found by review: the reason named the
    notional alone."""
    verdict = _rebuilt("100.01", "150").check(_market("100"), now_ns=1)
    assert verdict.code is ReasonCode.MAX_NOTIONAL
    assert "priced at 150" in verdict.reason and "configured reference" in verdict.reason
