"""An adoption and the fills of its ClOrdID recorded unmatched before it (`actors.oms.adoption`):
the adopted venue state holds those its cum_qty covers; a later one is placed on top of the
order (its own ``fill`` record and exec id) or, if it cannot be placed safely, stays
unmatched and is escalated. Replay gives the live result; the fills metric counts each exec
id once; the exec cut's ring notes a placed fill at its own execution number, so a cold
start's opening position (venue at its cut plus what the book applied after it) holds it
once whichever side of the cut it fell."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import structlog
from prometheus_client import REGISTRY

from actors.oms.exec_cut import ExecLog
from actors.oms.order_book import OrderBook
from actors.oms.plan import Adopt, Plan
from actors.oms.plan_apply import PlanApplier
from actors.oms.reconcile import plan_reconciliation
from actors.runtime.tally import TURN
from protocol.config import OmsCfg
from protocol.messages import ExecReport, OrderStatus, Positions, PositionView, Side, VenueOrder
from protocol.venue_messages import ExecCut
from tests.oms.test_sends_first import V, _Oms

EXT = f"ext:{V}:EXT1"


def _answered(cum: str = "50", qty: str = "100", avg: str = "100") -> VenueOrder:
    """The venue's open-orders answer: EXT1, BUY `qty` ABC (someone else's), `cum` filled."""
    return VenueOrder(cl_ord_id="EXT1", venue_order_id="V1", symbol="ABC", side=Side.BUY,
                      order_qty=D(qty), price=D(100), status=OrderStatus.PARTIALLY_FILLED,
                      cum_qty=D(cum), avg_px=D(avg), leaves_qty=D(qty) - D(cum))  # fmt: skip


def _fill(exec_id: str, qty: str, px: str, cum: str, **kw: Any) -> ExecReport:
    """A fill of EXT1 (unmatched while EXT1 is not ours), of its venue order V1 unless
    `venue_order_id` says otherwise; `cum` "0": the venue gave none."""
    fields: dict[str, Any] = {"symbol": "ABC", "side": Side.BUY, "venue_order_id": "V1", **kw}
    return ExecReport(venue=V, exec_id=exec_id, kind="fill", cl_ord_id="EXT1",
                      last_qty=D(qty), last_px=D(px), cum_qty=D(cum), **fields)  # fmt: skip


def _state(book: OrderBook) -> Any:
    d = book.to_dict()
    return d["orders"], d["positions"], d["unmatched"]


def test_fills_before_the_state_are_held_and_later_ones_placed_on_top_once() -> None:
    """Adopted at cum 50: G1 (cum 30) is in that state (its exec id recorded, nothing
    applied again); G3 (cum 70) and G2 (cum 60), after it, are placed in venue cum order:
    order and position 70, nothing unmatched, the outcome's fill all 70 at the order's
    average. The venue's resends of all three are duplicates; a replay of the journal
    (from the start, or from a snapshot taken before the adoption) is the live book."""
    book = OrderBook()
    records: list[dict[str, Any]] = []
    for report in (_fill("G1", "30", "99", "30"), _fill("G3", "10", "102", "70"),
                   _fill("G2", "10", "101", "60")):  # fmt: skip
        records += book.apply_exec(report, 1).records
    snapshot = book.to_dict()
    out = book.adopt(V, _answered(), 2)
    assert out.applied and [r["kind"] for r in out.records] == ["new", "fill", "fill"]
    assert [r["exec_id"] for r in out.records[1:]] == ["G2", "G3"]
    order = book.get(EXT)
    assert order is not None and order.cum_qty == 70
    assert order.status is OrderStatus.PARTIALLY_FILLED
    assert {"G1", "G2", "G3"} <= set(order.exec_ids)
    pos = book.position(V, "ABC")
    assert pos.qty == 70 and abs(pos.avg_px - D(50 * 100 + 1010 + 1020) / 70) < D("1e-20")
    assert book.unmatched_fills() == []
    assert (out.fill_qty, out.fill_px) == (70, order.avg_px) and out.escalations == ()
    for resend in ("G1", "G2", "G3"):
        again = book.apply_exec(_fill(resend, "10", "100", "60"), 3)
        assert again.kind == "duplicate", resend
    for start in (OrderBook(), OrderBook.from_dict(snapshot)):
        for rec in (records if not start.unmatched_fills() else []) + list(out.records):
            start.apply_record(rec)
        assert _state(start) == _state(book)


def test_a_fill_after_the_adoption_counts_once_and_one_before_its_state_not_again() -> None:
    """After the adoption (cum 50), the venue's fill at cum 60 is applied (60); a fill
    within the adopted state it never reported before (cum 40) is a duplicate."""
    book = OrderBook()
    assert book.adopt(V, _answered(), 1).applied
    assert book.apply_exec(_fill("G2", "10", "100", "60"), 2).applied
    assert book.apply_exec(_fill("G0", "10", "100", "40"), 3).kind == "duplicate"
    assert book.position(V, "ABC").qty == 60


@pytest.mark.parametrize(
    ("report", "why"),
    [
        (_fill("G2", "10", "100", "105"), "overfill"),  # BUY 100, adopted at 95
        (_fill("G2", "10", "100", "105", side=Side.SELL), "side"),
        (_fill("G2", "10", "100", "105", symbol="XYZ"), "symbol"),
    ],
)
def test_a_later_fill_that_cannot_be_placed_stays_unmatched_and_is_escalated(
    report: ExecReport, why: str
) -> None:
    """Adopted at cum 95 of 100: an overfill (cum 105), another side or symbol is not
    placed: the position is the adopted 95, the fill stays unmatched, the adoption
    escalates it (`unplaced_fill`) and every later pass escalates it again (its order is
    ours now)."""
    book = OrderBook()
    assert book.apply_exec(report, 1).applied
    out = book.adopt(V, _answered(cum="95"), 2)
    assert out.applied and [r["kind"] for r in out.records] == ["new"]
    assert book.position(V, "ABC").qty == 95 and book.get(EXT).cum_qty == 95  # type: ignore[union-attr]
    assert [u.exec_id for u in book.unmatched_fills(V)] == ["G2"]
    kinds = [e.kind for e in out.escalations]
    assert kinds[-1] == "unplaced_fill" and why in out.escalations[-1].detail + kinds[0]
    later = plan_reconciliation(V, book.orders(V), [_answered(cum="95")], {}, set(),
                                unmatched_fills=book.unmatched_fills(V))  # fmt: skip
    assert [(a.name, getattr(a, "reason", "")) for a in later.actions] == [
        ("escalate", "unmatched_fill")
    ]


def test_a_fill_without_cum_is_held_while_the_adopted_cum_has_room_for_it() -> None:
    """No venue cum_qty on G1 and G2 (10 each), adopted at cum 15: G1 (first) fits in it;
    G2 does not (20 > 15): it stays unmatched, escalated. (One that fits is taken as held
    by the state even if it came after it: without a cum_qty nothing tells.)"""
    book = OrderBook()
    for exec_id in ("G1", "G2"):
        assert book.apply_exec(_fill(exec_id, "10", "100", "0"), 1).applied
    out = book.adopt(V, _answered(cum="15"), 2)
    assert [u.exec_id for u in book.unmatched_fills(V)] == ["G2"]
    assert [e.kind for e in out.escalations] == ["unplaced_fill"]
    assert book.position(V, "ABC").qty == 15


def _fills_metric() -> float:
    TURN.flush()
    return REGISTRY.get_sample_value("tradepulse_fills_total", {"venue": V}) or 0.0


def test_the_oms_counts_the_adoption_and_each_placed_fill_once_and_publishes_all() -> None:
    """Through `OmsActor.record`: the adoption (cum 50, inferred fill `recon:EXT1:50`) that
    placed G2 (10 @ 106) counts two fills; the order's event carries 60 at the average."""
    oms = _Oms()
    assert oms.book.apply_exec(_fill("G2", "10", "106", "60"), 1).applied
    before = _fills_metric()
    oms.record(oms.book.adopt(V, _answered(), 2))
    assert _fills_metric() == before + 2
    oms.after_iteration()
    event = next(e for e in oms.pub.events if e.order.client_order_id == EXT)
    assert (event.fill_qty, event.fill_px) == (60, 101) and event.order.cum_qty == 60


class _PlanOms(_Oms):
    """The stub OMS with what `PlanApplier.apply_steps` and an unmatched fill also reach."""

    def durable_crash_point(self, name: str) -> None:
        pass

    def _escalate(self, *args: Any) -> None:
        pass


def cold_adoption(
    tmp_path: Path,
    before: ExecReport,
    cum: str = "50",
    *,
    answered_at: int | None = None,
    oms: _PlanOms | None = None,
) -> tuple[_PlanOms, ExecLog, PlanApplier, SimpleNamespace]:
    """A cold pass (adopt mode) of one venue: the fill `before` comes in first (EXT1 is
    not ours yet: unmatched, noted in the exec log), then EXT1's open-orders answer at
    `cum` is adopted (the answer's cut at exec_seq `answered_at`; None: no cut). The OMS
    (`oms`, else a new stub), its exec log, the applier and the venue's link, for the
    positions answer (`applier.finish`)."""
    oms, log = oms or _PlanOms(), ExecLog()
    log.note_outcome(before, 1, oms.record(oms.book.apply_exec(before, 1)))
    marker = tmp_path / "cold"
    marker.touch()
    applier = PlanApplier(oms, {}, OmsCfg(cold_start_open_orders="adopt"),  # type: ignore[arg-type]
                          structlog.get_logger(), marker)  # fmt: skip
    link = SimpleNamespace(venue=V, ever_reconciled=False, exec_log=log, oms_epoch=1)
    cut = None if answered_at is None else ExecCut(connector_epoch=1, exec_seq=answered_at)
    adopt = Adopt(V, _answered(cum=cum), cut)
    applier.apply_steps(link, Plan(V, (adopt,)), [(0, adopt)])  # type: ignore[arg-type]
    return oms, log, applier, link


@pytest.mark.parametrize(
    ("cut_seq", "venue_qty"),
    [
        (7, 60),  # the positions answer is after G2 (exec_seq 6): it holds it
        (5, 50),  # before G2: the book's G2, applied after that cut, stays on top
    ],
)
def test_a_cold_start_holds_a_placed_fill_once_whichever_side_of_the_cut(
    tmp_path: Path, cut_seq: int, venue_qty: int
) -> None:
    """A cold pass: EXT1's open-orders answer says cum 50; G2 (exec_seq 6, cum 60) comes
    before the adoption is applied (unmatched), which places it (the book 60). The
    positions answer's cut is after G2 (60) or before it (50): the opening position is 60
    either way, and EXT1's cancel at cum 60 adds nothing. Without the ring noting G2 at
    its number, a cut before it makes the opening position 50."""
    g2 = _fill("G2", "10", "100", "60", exec_seq=6)
    oms, _, applier, link = cold_adoption(tmp_path, g2)
    assert oms.book.position(V, "ABC").qty == 60
    cut = ExecCut(connector_epoch=1, exec_seq=cut_seq, oms_epoch=1)
    held = [PositionView(venue=V, symbol="ABC", qty=D(venue_qty), avg_px=D(100))]
    applier.finish(link, Positions(source="venue", venue=V, positions=held, cut=cut))  # type: ignore[arg-type]
    assert oms.book.position(V, "ABC").qty == 60
    cancelled = ExecReport(venue=V, exec_id="C1", kind="cancelled", cl_ord_id="EXT1",
                           symbol="ABC", side=Side.BUY, cum_qty=D(60), avg_px=D(100))  # fmt: skip
    assert oms.book.apply_exec(cancelled, 4).applied
    assert oms.book.position(V, "ABC").qty == 60


def test_an_unmatched_fill_whose_number_is_forgotten_refuses_a_cut_before_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The exec log keeps the numbers of the last `UNMATCHED` unmatched fills; one pushed
    out counts as left the ring: positions as of a cut before it are not answered (a cold
    start then takes the answer as it is, as without a cut) rather than answered without
    it; a cut after it still is."""
    monkeypatch.setattr("actors.oms.exec_cut.UNMATCHED", 1)
    log, book = ExecLog(), OrderBook()
    for seq, exec_id in ((6, "G2"), (8, "G3")):
        report = _fill(exec_id, "10", "100", "60", exec_seq=seq)
        log.note_outcome(report, 1, book.apply_exec(report, 1))
    now = {"ABC": D(0)}
    assert log.positions_as_of(V, ExecCut(connector_epoch=1, exec_seq=5), now) is None
    assert log.positions_as_of(V, ExecCut(connector_epoch=1, exec_seq=6), now) == now
