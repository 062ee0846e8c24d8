"""An operator's bust or correction of a simulated venue's trade: taken off (or corrected
on) its order and position, persisted like every change (a restart and `inspect` show
it), its report a FIX 4.4 ExecutionReport 150=H / G with ExecRefID; what the venue cannot
do is refused with a reason."""

from __future__ import annotations

import pytest

from actors.venuesim import ExecType, OrdStatus, busts, fixmap
from actors.venuesim.model import ExecEvent
from tests.venuesim import conformance
from tests.venuesim.support import NO_MM, D, Sim, execs, state
from tests.venuesim.test_engine import MakeSim


def _filled(make_sim: MakeSim) -> tuple[Sim, str]:
    """A buy of 10 filled against a resting sell at 100.5: (sim, the buy's trade ExecID)."""
    sim = make_sim(**NO_MM)
    sim.order("s1", "SELL", 10, "100.5")
    trade = [e for e in execs(sim.order("b1", "BUY", 10, "101")) if e.cl_ord_id == "b1"][-1]
    assert trade.exec_type is ExecType.TRADE
    return sim, trade.exec_id


def _take_back(sim: Sim, kind: str, value: str) -> ExecEvent:
    (ev,) = execs(sim.venue.operator_record(busts.builder(kind, value), sim.clock()))
    return ev


def _fields(ev: ExecEvent) -> dict[int, object]:
    return {t: v for t, v in fixmap.event_out(ev, {}).pairs()}


def test_a_bust_of_a_filled_orders_trade_leaves_it_done_and_flat(make_sim: MakeSim) -> None:
    """150=H, 19=the trade's ExecID, LastQty/LastPx the busted trade's; the order is done
    (OrdStatus 4, cum 0, leaves 0), the position flat, and so after a restart."""
    sim, trade = _filled(make_sim)
    ev = _take_back(sim, "bust_trade", trade)
    assert (ev.exec_type, ev.exec_ref_id, ev.last_qty, ev.last_px) == (
        ExecType.TRADE_CANCEL, trade, D(10), D("100.5")
    )  # fmt: skip
    assert (ev.ord_status, ev.cum_qty, ev.leaves_qty) == (OrdStatus.CANCELED, 0, 0)
    fields = _fields(ev)
    assert (fields[150], fields[19], fields[32], fields[14]) == ("H", trade, D(10), D(0))
    assert conformance.problems("8", fields) == []
    assert sim.venue.positions()["AAPL"].net_qty == -10  # the resting seller's trade stays
    before = state(sim)
    sim.restart()
    assert state(sim) == before
    b1 = sim.venue.status("b1")
    assert b1 is not None and (b1.ord_status, b1.cum_qty) == (OrdStatus.CANCELED, 0)


def test_a_bust_of_a_live_orders_trade_keeps_it_live_with_more_leaves(make_sim: MakeSim) -> None:
    sim = make_sim(**NO_MM)
    sim.order("s1", "SELL", 4, "100")
    trade = execs(sim.order("b1", "BUY", 10, "100"))[-1]
    assert trade.exec_type is ExecType.TRADE and trade.ord_status is OrdStatus.PARTIALLY_FILLED
    ev = _take_back(sim, "bust_trade", trade.exec_id)
    assert (ev.ord_status, ev.cum_qty, ev.leaves_qty) == (OrdStatus.NEW, 0, 10)
    assert [o.cl_ord_id for o in sim.venue.open_orders()] == ["b1"]


def test_a_correction_reprices_the_trade(make_sim: MakeSim) -> None:
    sim, trade = _filled(make_sim)
    ev = _take_back(sim, "correct_trade", f"{trade} 10 100.25")
    assert (ev.exec_type, ev.exec_ref_id, ev.last_qty, ev.last_px) == (
        ExecType.TRADE_CORRECT, trade, D(10), D("100.25")
    )  # fmt: skip
    assert (ev.ord_status, ev.cum_qty, ev.avg_px) == (OrdStatus.FILLED, D(10), D("100.25"))
    assert conformance.problems("8", _fields(ev)) == []


@pytest.mark.parametrize(
    ("kind", "value", "says"),
    [
        ("bust_trade", "", "bust_trade takes '<ExecID>'"),
        ("bust_trade", "bk-E999999999999", "not found"),
        ("bust_trade", "XYZ", "is no ExecID of this venue"),
        ("correct_trade", "{trade} 0 100", "must be positive"),
        ("correct_trade", "{trade} 11 100", "overfills"),
    ],
)
def test_what_the_venue_cannot_do_is_refused(
    make_sim: MakeSim, kind: str, value: str, says: str
) -> None:
    sim, trade = _filled(make_sim)
    with pytest.raises(busts.BustError, match=says):
        _take_back(sim, kind, value.format(trade=trade))


def test_a_busted_trade_cannot_be_busted_again(make_sim: MakeSim) -> None:
    sim, trade = _filled(make_sim)
    _take_back(sim, "bust_trade", trade)
    with pytest.raises(busts.BustError, match="not found"):
        _take_back(sim, "bust_trade", trade)


def test_conformance_wants_exec_ref_id_on_a_bust() -> None:
    fields = {37: "O", 17: "E2", 150: "H", 39: "4", 54: "1", 151: "0", 14: "0", 6: "0", 55: "X"}
    assert conformance.problems("8", fields) == [
        "ExecRefID(19) missing from a trade bust or correction (150=H/G)"
    ]
