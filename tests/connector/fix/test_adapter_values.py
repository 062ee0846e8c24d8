"""A value FIX cannot carry fails that one request, never the connector (issue 15: an SOH
in a symbol raised outside any handler and crashed the connector on every resubmit)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from actors.connector.adapter import RequestFailed
from protocol.messages import ErrorCode, OrdType, PlaceOrder, Side
from tests.connector.fix.test_adapter import Done, Harness, order


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(tmp_path)
    yield harness
    harness.close()


def test_an_order_with_an_soh_in_its_symbol_fails_alone_and_the_next_goes_out(
    h: Harness,
) -> None:
    """place() of a symbol with an SOH (built in memory: intake refuses it) answers
    INVALID_ORDER at once and sends nothing; the loop keeps turning and the next order
    goes out as usual."""
    a = h.connected()
    bad = PlaceOrder.model_construct(
        cl_ord_id="c1", symbol="AAPL\x0155=MSFT", side=Side.BUY, qty=Decimal(1),
        order_type=OrdType.LIMIT, price=Decimal(100), tif=order("x").tif,
    )  # fmt: skip
    failed = Done()
    a.place(bad, failed)
    h.loop.run_until(lambda: failed.calls)
    (err,) = failed.calls
    assert isinstance(err, RequestFailed) and err.code is ErrorCode.INVALID_ORDER
    assert "SOH" in str(err)
    ok = Done()
    a.place(order("c2"), ok)
    h.loop.run_until(lambda: ok.calls)
    assert ok.calls == [None] and a.is_active
    h.loop.run_until(lambda: [m for m in h.venue.received if m.msg_type == "D"])
    assert [m.msg.get(11) for m in h.venue.received if m.msg_type == "D"] == [b"c2"]
