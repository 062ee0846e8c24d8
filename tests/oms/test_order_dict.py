"""`Order.to_dict` / `from_dict` (the journal's `new` record and an archived order): the
record as it was written before the decimal fields were converted in one comprehension,
and back to an equal order."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from actors.oms.orders import _DECIMAL_FIELDS, Order
from protocol.messages import OrderStatus, OrdType, Side, TimeInForce

_decimals = st.none() | st.decimals(allow_nan=False, allow_infinity=False, places=4)


@given(
    st.fixed_dictionaries({f: _decimals for f in _DECIMAL_FIELDS}),
    st.lists(st.text(min_size=1, max_size=5), max_size=3),
)
def test_a_record_round_trips_with_the_former_field_texts(
    decimals: dict[str, Any], exec_ids: list[str]
) -> None:
    values = {f: v if v is not None or f in ("price", "pending_qty", "pending_price")
              else Decimal(0) for f, v in decimals.items()}  # fmt: skip
    order = Order(
        client_order_id="c-1", venue="simA", symbol="AAPL", side=Side.BUY,
        order_type=OrdType.LIMIT, tif=TimeInForce.DAY, status=OrderStatus.ACCEPTED,
        cl_ord_id="c-1", cl_ord_ids=("c-1",), exec_ids=dict.fromkeys(exec_ids), **values,
    )  # fmt: skip
    record = order.to_dict()
    for f in _DECIMAL_FIELDS:  # as `optional_str` wrote each
        assert record[f] == (None if values[f] is None else str(values[f]))
    assert list(record) == list(Order.__struct_fields__)
    assert Order.from_dict(record) == Order.from_dict(dict(record)) == order.__copy__()
    partial = {k: v for k, v in record.items() if k not in ("pending_qty", "pending_price")}
    assert Order.from_dict(partial).pending_qty is None
