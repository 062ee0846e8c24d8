"""The `run --demo` flow's closing hint (actors/supervisor/demo.py)."""

from __future__ import annotations

from decimal import Decimal

from actors.supervisor.demo import done_hint, order_line, position_line
from protocol.messages import OrderView, PositionView


def test_the_closing_hint_names_the_config_and_dirs_the_system_was_started_with() -> None:
    """`make run CONFIG=/etc/tp/uat.toml` (or `run --demo --state-dir ...`): the commands
    the hint suggests carry that config and those dirs, not deploy/config/demo.toml, which
    would address another system or none."""
    hint = done_hint("/etc/tp/uat desk.toml", "/srv/tp state", None)
    assert "--config '/etc/tp/uat desk.toml' --state-dir '/srv/tp state')" in hint, hint
    assert "deploy/config/demo.toml" not in hint and "--runtime-dir" not in hint
    plain = done_hint("/repo/deploy/config/demo.toml", None, "/tmp/rt")
    assert "(each with --config /repo/deploy/config/demo.toml --runtime-dir /tmp/rt)" in plain


def test_the_demo_prints_prices_at_the_tables_decimals() -> None:
    """`make run`'s first screen: a position's average price is a Decimal division (28
    digits); it is printed as `tradepulse positions` prints it, and no price is shown for an
    order with nothing filled or a position of unknown cost (a cold start's)."""
    pos = PositionView(venue="simA", symbol="AAPL", qty=100, avg_px=Decimal("571.76") / 3)
    assert position_line(pos) == "position simA AAPL: qty=100 avg_px=190.586667"
    unknown = pos.model_copy(update={"cost_known": False, "avg_px": Decimal(0)})
    assert position_line(unknown).endswith("avg_px=-")
    order = OrderView(
        client_order_id="demo-1", venue="simA", symbol="AAPL", side="BUY", qty=10,
        order_type="LIMIT", price=Decimal("180.5"), status="ACCEPTED",
    )  # fmt: skip
    assert order_line(order) == "ACCEPTED cum=0 avg_px=-"
    filled = order.model_copy(update={"cum_qty": Decimal(10), "avg_px": Decimal(190) / 7})
    assert order_line(filled) == "ACCEPTED cum=10 avg_px=27.142857"
