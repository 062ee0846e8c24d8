"""Any sequence of orders, cancels, replaces, steps and mass cancels: nothing raises, the
reports add up, the client book never stays crossed, and a restart changes nothing."""

from __future__ import annotations

import tempfile
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from actors.venuesim import ExecEvent, ExecType, OrdStatus
from protocol.messages import Side
from tests.venuesim.support import D, Sim, sim_cfg, state

_cl = st.integers(0, 12).map(lambda i: f"c{i}")
_qty = st.integers(1, 250)
_offset = st.integers(-6, 6)  # ticks from the reference

_ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("new"), _cl, st.sampled_from(["BUY", "SELL"]), _qty,
            st.sampled_from(["LIMIT", "LIMIT", "MARKET"]), _offset,
            st.sampled_from(["DAY", "GTC", "IOC", "FOK"]), st.sampled_from(["AAPL", "MSFT"]),
        ),
        st.tuples(st.just("cancel"), _cl, _cl),
        st.tuples(st.just("replace"), _cl, _cl, _qty, _offset),
        st.tuples(st.just("step")),
        st.tuples(st.just("mass_cancel")),
    ),
    max_size=40,
)  # fmt: skip


def _run(sim: Sim, op: tuple[Any, ...]) -> list[Any]:
    kind = op[0]
    if kind == "new":
        _, cl, side, qty, typ, off, tif, symbol = op
        px = sim.venue.reference_price(symbol) + off * D("0.01")
        return sim.venue.new_order(cl, symbol, side, D(qty), typ, px, tif, sim.clock())
    if kind == "cancel":
        return sim.cancel(op[1], op[2])
    if kind == "replace":
        order = sim.venue.status(op[2])
        ref = sim.venue.reference_price(order.symbol if order else "AAPL")
        return sim.replace(op[1], op[2], op[3], str(ref + op[4] * D("0.01")))
    if kind == "step":
        return sim.steps(1)
    return sim.venue.mass_cancel(sim.clock())


@settings(max_examples=30, deadline=None)
@given(_ops)
def test_reports_add_up_and_restart_changes_nothing(ops: list[tuple[Any, ...]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        sim = Sim(Path(tmp) / "v", sim_cfg(volatility_bps=10.0))
        try:
            events = [e for op in ops for e in _run(sim, op)]
            reports = [e for e in events if isinstance(e, ExecEvent)]
            ids = [e.exec_id for e in reports]
            assert ids == sorted(set(ids)), "exec ids unique and increasing"
            net: dict[str, Decimal] = defaultdict(Decimal)
            for e in reports:
                assert e.cum_qty <= e.order_qty or e.ord_status is OrdStatus.REJECTED
                if e.ord_status.is_open:
                    assert e.cum_qty + e.leaves_qty == e.order_qty
                else:
                    assert e.leaves_qty == 0
                assert (e.last_qty > 0) == (e.exec_type is ExecType.TRADE)
                if e.exec_type is ExecType.TRADE:
                    net[e.symbol] += e.last_qty if e.side is Side.BUY else -e.last_qty
            positions = sim.venue.positions()
            assert {s: p.net_qty for s, p in positions.items()} == net
            for symbol in sim.venue.symbols:
                open_ = [o for o in sim.venue.open_orders() if o.symbol == symbol]
                bids = [o.price for o in open_ if o.side is Side.BUY and o.price is not None]
                asks = [o.price for o in open_ if o.side is Side.SELL and o.price is not None]
                assert not bids or not asks or max(bids) < min(asks), "client book crossed"
            sim.store.sync()
            before = state(sim)
            trades = {e.exec_id for e in reports if e.exec_type is ExecType.TRADE}
            on_record = {f["exec_id"] for o in before["inspect"]["orders"] for f in o["fills"]}
            assert on_record == trades
            sim.restart()
            assert state(sim) == before
        finally:
            sim.close()
