"""An order replaced at the venue by someone else (not a replace request of ours): an
adopted (external) order, or one of ours modified at the venue's GUI. The venue's Replaced
report (FIX ExecType=5, ClOrdID the new id, OrigClOrdID the live one) is what happened: the
order lives on under the new ClOrdID with the reported terms, its cum carried (the position
moves only by fills), journalled so that replay equals live, escalated. Its fills under the
new id then match it, and a reconciliation pass that lists the new id open does not adopt it
as a second order. The book is the real `OrderBook`; the OMS side is the stub OMS of
`tests.oms.test_sends_first` around `OmsActor.record` / `after_iteration`."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY

from actors.oms.actor import OmsActor
from actors.oms.exec_cut import ExecLog
from actors.oms.order_book import OrderBook
from actors.oms.orders import Order, Outcome
from actors.oms.reconcile import apply_plan, plan_reconciliation
from actors.risk.exposure import ExposureView
from actors.runtime.tally import TURN
from protocol.messages import (
    ExecCut,
    ExecReport,
    GetPositions,
    OpenOrders,
    OpenOrdersRequest,
    OrderStatus,
    OrderStatusAnswer,
    OrderStatusQuery,
    OrdType,
    ReplaceOrder,
    RiskVerdict,
    Side,
    SubmitOrder,
    VenueOrder,
)
from tests.log_stub import RecordingLog
from tests.oms.test_reconcile_cut import _answer
from tests.oms.test_reconcile_slices import _cut, _ledger, _rig
from tests.oms.test_sends_first import V, _Oms

S = OrderStatus
EXT = f"ext:{V}:EXT1"


def _vo(cl: str, qty: str, cum: str, avg: str = "100", price: str = "100") -> VenueOrder:
    status = S.PARTIALLY_FILLED if D(cum) else S.ACCEPTED
    return VenueOrder(cl_ord_id=cl, venue_order_id="V-1", symbol="ABC", side=Side.BUY,
                      order_qty=D(qty), price=D(price), status=status, cum_qty=D(cum),
                      avg_px=D(avg), leaves_qty=D(qty) - D(cum))  # fmt: skip


def _report(kind: str, cl: str, exec_id: str, **kw: Any) -> ExecReport:
    return ExecReport(venue=V, exec_id=exec_id, kind=kind, cl_ord_id=cl, symbol="ABC",  # type: ignore[arg-type]
                      side=Side.BUY, venue_order_id="V-1", **kw)  # fmt: skip


def _replaced(
    new: str, orig: str, qty: str, price: str, cum: str, exec_id: str = "R1"
) -> ExecReport:
    return _report("replaced", new, exec_id, orig_cl_ord_id=orig, order_qty=D(qty),
                   price=D(price), cum_qty=D(cum), avg_px=D(100),
                   ord_status=S.PARTIALLY_FILLED)  # fmt: skip


def _fill(cl: str, exec_id: str, qty: str, cum: str, order_qty: str) -> ExecReport:
    return _report("fill", cl, exec_id, last_qty=D(qty), last_px=D(100), cum_qty=D(cum),
                   avg_px=D(100), order_qty=D(order_qty))  # fmt: skip


def _adopted(book: OrderBook, records: list[dict[str, Any]]) -> Order:
    """EXT1, BUY 60 @ 100 placed by someone else, 50 filled @ 100: adopted."""
    out = book.adopt(V, _vo("EXT1", "60", "50"), 1)
    assert out.applied and out.order is not None
    records += out.records
    return out.order


def _replayed(records: list[dict[str, Any]]) -> OrderBook:
    book = OrderBook()
    for rec in records:
        book.apply_record(rec)
    return book


def test_an_adopted_order_replaced_at_the_venue_lives_on_under_the_new_id() -> None:
    """Adopted EXT1 (BUY 60, 50 filled) is replaced at the venue to EXT2 (qty 100 @ 101);
    10 more fill under EXT2 (venue cum 60). The replace applies to the adopted order (new
    ClOrdID, qty, price; cum 50 carried), the fill matches it (cum 60, no unmatched fill),
    and a reconciliation that lists EXT2 open (100, cum 60) adopts nothing: the position is
    the venue's 60 (the defect: the replace was refused, the fill unmatched, EXT2 adopted
    as a second order, position 50 + 60 = 110). Replay of the records equals live, and a
    snapshot finds the order by the new id."""
    book, records = OrderBook(), []
    order = _adopted(book, records)
    out = book.apply_exec(_replaced("EXT2", "EXT1", "100", "101", "50"), 2)
    assert out.applied, out.reason
    records += out.records
    assert (order.cl_ord_id, order.qty, order.price, order.cum_qty) == ("EXT2", 100, 101, 50)
    assert order.status is S.PARTIALLY_FILLED and book.position(V, "ABC").qty == 50
    fill = book.apply_exec(_fill("EXT2", "F1", "10", "60", "100"), 3)
    assert fill.applied and fill.order is order, fill.reason
    records += fill.records
    assert order.cum_qty == 60 and book.unmatched_fills() == []
    venue_open = [_vo("EXT2", "100", "60", price="101")]
    plan = plan_reconciliation(
        V, book.orders(V), venue_open, {}, set(),
        local_positions={"ABC": book.position(V, "ABC").qty}, venue_positions={"ABC": D(60)},
    )  # fmt: skip
    assert plan.actions == (), plan.actions
    for _action, done in apply_plan(book, plan, 4):
        records += done.records if done is not None else ()
    assert [o.client_order_id for o in book.orders(V)] == [EXT]
    assert book.position(V, "ABC").qty == 60
    replayed = _replayed(records)
    assert replayed.to_dict() == book.to_dict()
    snapshot = OrderBook.from_dict(book.to_dict())  # found by the new id after a snapshot too
    assert snapshot.find(V, "EXT2") is snapshot.get(EXT) is not None


def test_a_replace_report_showing_fills_we_missed_counts_them_once() -> None:
    """The Replaced report of EXT1 -> EXT2 says cum 55 (5 filled before the replace, their
    report lost): those 5 are one inferred fill, the position 55; the fill report of those
    5, should it still come under EXT1, is not counted again."""
    book, records = OrderBook(), []
    order = _adopted(book, records)
    out = book.apply_exec(_replaced("EXT2", "EXT1", "100", "100", "55"), 2)
    assert out.applied and out.fill_qty == 5, out.reason
    assert order.cum_qty == 55 and book.position(V, "ABC").qty == 55
    late = book.apply_exec(_fill("EXT1", "F0", "5", "55", "60"), 3)
    assert late.kind == "duplicate" and book.position(V, "ABC").qty == 55


def test_risk_sees_the_open_exposure_of_the_replaced_terms() -> None:
    """Risk counts open exposure from the order's events: after the external replace of
    BUY 60 (50 filled) to 100, the order's view leaves 50 open, not 10."""
    book = OrderBook()
    view = ExposureView()
    order = _adopted(book, [])
    view.apply_order(order.view(), fill_qty=D(50), fill_px=D(100))
    assert view.open_qty("ABC", Side.BUY) == 10
    assert book.apply_exec(_replaced("EXT2", "EXT1", "100", "100", "50"), 2).applied
    view.apply_order(order.view())
    assert view.open_qty("ABC", Side.BUY) == 50 and view.position("ABC") == 50


def test_an_external_cancel_of_an_adopted_order_ends_it() -> None:
    """Cancelled at the venue by its owner (ExecType=4, ClOrdID the cancel's, OrigClOrdID
    EXT1): the adopted order is CANCELLED, the position untouched."""
    book = OrderBook()
    order = _adopted(book, [])
    out = book.apply_exec(
        _report("cancelled", "EXT1-C", "C1", orig_cl_ord_id="EXT1", cum_qty=D(50)), 2
    )
    assert out.applied and order.status is S.CANCELLED, out.reason
    assert book.position(V, "ABC").qty == 50


def _ours_outcomes(book: OrderBook) -> tuple[Outcome, ...]:
    """Our o1 (BUY 10 ABC @ 100) submitted, approved and accepted (venue order id A1)."""
    msg = SubmitOrder(client_order_id="o1", venue=V, symbol="ABC", side=Side.BUY,
                      qty=D(10), order_type=OrdType.LIMIT, price=D(100))  # fmt: skip
    return (
        book.submit(msg, 1),
        book.risk_verdict(RiskVerdict(client_order_id="o1", approved=True), 2),
        book.apply_exec(_report("accepted", "o1", "A1"), 3),
    )


def _ours(book: OrderBook) -> Order:
    assert all(out.applied for out in _ours_outcomes(book))
    order = book.get("o1")
    assert order is not None
    return order


def test_an_order_of_ours_replaced_at_the_venue_follows_the_venue_and_is_escalated() -> None:
    """Our o1 (BUY 10 @ 100) is modified at the venue's GUI to GUI-7 (20 @ 99): the order
    follows the venue (its fills under GUI-7 must match it), and the outcome is escalated
    as `order_replaced_externally`."""
    book = OrderBook()
    order = _ours(book)
    out = book.apply_exec(_replaced("GUI-7", "o1", "20", "99", "0"), 4)
    assert out.applied, out.reason
    assert (order.cl_ord_id, order.qty, order.price) == ("GUI-7", 20, 99)
    assert [e.kind for e in out.escalations] == ["order_replaced_externally"]
    assert book.apply_exec(_fill("GUI-7", "F1", "15", "15", "20"), 5).applied
    assert order.cum_qty == 15 and book.position(V, "ABC").qty == 15


def test_an_outside_replace_during_our_pending_replace_keeps_our_request_pending() -> None:
    """Our replace o1.r1 (to 12) is pending when someone replaces o1 to GUI-7 (20): the
    order takes GUI-7's terms and stays PENDING_REPLACE; our replace's own confirmation
    (o1.r1, OrigClOrdID GUI-7) then still applies."""
    book = OrderBook()
    order = _ours(book)
    assert book.request_replace(ReplaceOrder(client_order_id="o1", qty=D(12)), 4).applied
    out = book.apply_exec(_replaced("GUI-7", "o1", "20", "100", "0"), 5)
    assert out.applied and order.status is S.PENDING_REPLACE, out.reason
    assert (order.cl_ord_id, order.qty) == ("GUI-7", 20)
    ours = book.apply_exec(_replaced("o1.r1", "GUI-7", "12", "100", "0", exec_id="R2"), 6)
    assert ours.applied and order.status is S.ACCEPTED, ours.reason
    assert (order.cl_ord_id, order.qty) == ("o1.r1", 12)


def test_the_oms_logs_counts_and_publishes_an_outside_replace() -> None:
    """Through `OmsActor.record`: the escalation is logged (error) and counted in
    `tradepulse_oms_orders_replaced_externally_total{venue}`, and the order's next event
    carries the new terms (risk's exposure follows it)."""

    def count() -> float:
        TURN.flush()
        sample = "tradepulse_oms_orders_replaced_externally_total"
        return REGISTRY.get_sample_value(sample, {"venue": V}) or 0.0

    oms = _LoudOms(RecordingLog())
    before = count()
    oms.record(oms.book.adopt(V, _vo("EXT1", "60", "50"), 1))
    out: Outcome = oms.record(oms.book.apply_exec(_replaced("EXT2", "EXT1", "100", "101", "50"), 2))
    assert out.applied, out.reason
    assert count() == before + 1
    assert oms.log.names() == ["order_replaced_externally"]
    oms.after_iteration()
    last = [e for e in oms.pub.events if e.order.client_order_id == EXT][-1]
    assert (last.order.cl_ord_id, last.order.qty, last.order.price) == ("EXT2", 100, 101)


class _LoudOms(_Oms):
    """The stub OMS with the actor's escalation (log, stream event, counters)."""

    _escalate = OmsActor._escalate

    def __init__(self, log: RecordingLog) -> None:
        super().__init__()
        self.log = log


def test_a_reconciliation_takes_an_outside_replace_whose_report_never_came() -> None:
    """No Replaced report came (a venue that does not send another session's reports): the
    venue lists EXT2 open (qty 100 @ 101, cum 60) under EXT1's venue order id, and EXT1 no
    longer. The plan replaces the adopted order (escalated) and applies the 10 missed: one
    order, position the venue's 60, not a second adoption (110). Planned again: no change."""
    book, records = OrderBook(), []
    _adopted(book, records)
    venue_open = [_vo("EXT2", "100", "60", price="101")]

    def plan() -> Any:
        return plan_reconciliation(
            V, book.orders(V), venue_open, {}, set(),
            local_positions={"ABC": book.position(V, "ABC").qty}, venue_positions={"ABC": D(60)},
        )  # fmt: skip

    first = plan()
    assert [a.name for a in first.actions] == ["update", "apply_missed_fill"], first.actions
    escalations = []
    for _action, done in apply_plan(book, first, 2):
        assert done is not None and done.applied, done
        records += done.records
        escalations += [e.kind for e in done.escalations]
    assert escalations == ["order_replaced_externally"]
    order = book.get(EXT)
    assert order is not None
    assert (order.cl_ord_id, order.qty, order.price, order.cum_qty) == ("EXT2", 100, 101, 60)
    assert [o.client_order_id for o in book.orders(V)] == [EXT]
    assert book.position(V, "ABC").qty == 60
    assert plan().actions == ()
    assert _replayed(records).to_dict() == book.to_dict()


def test_a_reconciliation_pass_does_not_adopt_an_outside_replace_a_second_time(
    tmp_path: Path,
) -> None:
    """The same through a real pass (`actors.oms.reconcile_pass`, the rig of
    `tests.oms.test_reconcile_slices`): adopted EXT1 (AAPL BUY 60, 50 filled), the venue
    lists EXT2 (100 @ 101, cum 60, EXT1's venue order id) and answers "unknown" for EXT1.
    The pass replaces the adopted order and applies the 10 missed; nothing is adopted."""
    link, oms, peer, _ = _rig(tmp_path)
    adopted = VenueOrder(cl_ord_id="EXT1", venue_order_id="V-1", symbol="AAPL", side=Side.BUY,
                         order_qty=D(60), price=D(100), status=S.PARTIALLY_FILLED,
                         cum_qty=D(50), avg_px=D(100), leaves_qty=D(10))  # fmt: skip
    assert oms.book.adopt(V, adopted, 1).applied
    replaced = adopted.model_copy(
        update={
            "cl_ord_id": "EXT2",
            "order_qty": D(100),
            "price": D(101),
            "cum_qty": D(60),
            "leaves_qty": D(40),
        }  # fmt: skip
    )
    link.start_reconcile()
    _answer(peer, OpenOrdersRequest, OpenOrders(venue=V, orders=[replaced], cut=_cut()))
    oms.run()
    unknown = OrderStatusAnswer(venue=V, orders=[], unknown=["EXT1"], cut=_cut())
    assert _answer(peer, OrderStatusQuery, unknown).cl_ord_ids == ["EXT1"]  # type: ignore[attr-defined]
    _answer(peer, GetPositions, _ledger())
    oms.run()
    (plan,) = oms.plans[1:]
    assert plan.summary()["adopt"] == 0 and plan.summary()["update"] == 1
    assert [o.client_order_id for o in oms.book.orders(V)] == [EXT]
    order = oms.book.get(EXT)
    assert order is not None and (order.cl_ord_id, order.qty, order.cum_qty) == ("EXT2", 100, 60)
    assert oms.book.position(V, "AAPL").qty == 60


def test_an_outside_replace_down_to_the_filled_qty_ends_the_order_filled() -> None:
    """EXT1 (60, 50 filled) replaced at the venue to 50: nothing is left, the order is
    FILLED (its status follows the new qty, not the old), the position stays 50."""
    book, records = OrderBook(), []
    order = _adopted(book, records)
    out = book.apply_exec(_replaced("EXT2", "EXT1", "50", "100", "50"), 2)
    assert out.applied, out.reason
    assert (order.qty, order.status, order.leaves_qty) == (50, S.FILLED, 0)
    assert book.position(V, "ABC").qty == 50
    assert _replayed(records + list(out.records)).to_dict() == book.to_dict()


def test_a_venue_order_id_links_no_order_listed_under_its_own_id_or_filled_beyond() -> None:
    """The venue lists our live o1 (BUY 10, venue order id V-1) under its own ClOrdID and
    FOREIGN-9 (BUY 20 ABC, same venue order id: recycled) too: o1 is not replaced, FOREIGN-9
    is adopted. Nor is o1 (2 filled) replaced by a listing under V-1 whose cum (1) is below
    ours: a venue's cum never goes down."""
    book = OrderBook()
    order = _ours(book)
    vo1 = _vo("o1", "10", "0")
    foreign = _vo("FOREIGN-9", "20", "0")
    plan = plan_reconciliation(V, book.orders(V), [foreign, vo1], {}, set())
    assert [a.name for a in plan.actions] == ["adopt"], plan.actions
    assert book.apply_exec(_fill("o1", "F1", "2", "2", "10"), 4).applied
    plan = plan_reconciliation(V, book.orders(V), [_vo("FOREIGN-9", "20", "1")], {}, set())
    assert [a.name for a in plan.actions] == ["adopt", "escalate"], plan.actions
    assert order.cl_ord_id == "o1"


def test_an_outside_replace_of_our_lost_replace_replays_as_it_went_live() -> None:
    """Our replace o1.r1 (to 12) took effect unseen, then GUI-7 (20) replaced it: both
    replaces are records (ours first, then the outside one, escalated), replayed alike."""
    book = OrderBook()
    records: list[dict[str, Any]] = []
    for out in (
        *_ours_outcomes(book),
        book.request_replace(ReplaceOrder(client_order_id="o1", qty=D(12)), 4),
    ):  # fmt: skip
        records += out.records
    out = book.apply_exec(_replaced("GUI-7", "o1.r1", "20", "100", "0"), 5)
    assert [r.get("event") for r in out.records] == ["replaced", "replaced_externally"]
    assert [e.kind for e in out.escalations] == ["order_replaced_externally"]
    assert _replayed(records + list(out.records)).to_dict() == book.to_dict()


def test_a_fill_placed_by_an_outside_replace_moves_the_cut_at_its_own_number() -> None:
    """F1 (5 under GUI-7, exec_seq 6) came unmatched before the Replaced report o1 ->
    GUI-7 (exec_seq 7) that places it on o1. Positions as of a cut at 6 (the venue's
    answer holds F1) are the book's now: F1 is noted at 6, not 7 (else a cold start would
    count it again); the report's outcome carries the fill for risk's event."""
    book, log = OrderBook(), ExecLog()
    _ours(book)
    early = _fill("GUI-7", "F1", "5", "5", "20").model_copy(update={"exec_seq": 6})
    log.note_outcome(early, 1, book.apply_exec(early, 4))
    report = _replaced("GUI-7", "o1", "20", "100", "0").model_copy(update={"exec_seq": 7})
    out = book.apply_exec(report, 5)
    assert out.fill_qty == 5 and out.fill_px == 100, out
    log.note_outcome(report, 1, out)
    now = {"ABC": book.position(V, "ABC").qty}
    assert now == {"ABC": 5}
    assert log.positions_as_of(V, ExecCut(connector_epoch=1, exec_seq=6), now) == now
    assert log.positions_as_of(V, ExecCut(connector_epoch=1, exec_seq=5), now) == {"ABC": 0}


def test_an_outside_replace_places_early_fills_around_its_catch_up() -> None:
    """o1 (BUY 10) replaced to GUI-7 (20) at venue cum 3 (3 filled under o1, their
    reports lost); before the report came, F1 (2, venue cum 5) and F2 (4, cum 9)
    under GUI-7 were unmatched. The order takes the 3 missed (one inferred fill), then F1
    and F2: cum 9, position 9, nothing unmatched, replay equal."""
    book = OrderBook()
    order = _ours(book)
    assert book.apply_exec(_fill("GUI-7", "F1", "2", "5", "20"), 4).order is None
    assert book.apply_exec(_fill("GUI-7", "F2", "4", "9", "20"), 4).order is None
    out = book.apply_exec(_replaced("GUI-7", "o1", "20", "100", "3"), 5)
    assert out.applied and out.fill_qty == 9, out
    assert [r["exec_id"] for r in out.records if r["kind"] == "fill"] == [
        "recon:GUI-7:3", "F1", "F2"
    ]  # fmt: skip
    assert order.cum_qty == 9 and book.position(V, "ABC").qty == 9
    assert book.unmatched_fills() == []
    assert book.apply_exec(_fill("GUI-7", "F2", "4", "9", "20"), 6).kind == "duplicate"


def test_the_fills_an_outside_replace_places_are_counted_each() -> None:
    """Through `OmsActor.record`: the report of o1 -> GUI-7 at venue cum 3 that also places
    the early F1 counts two fills (`tradepulse_fills_total`: the inferred 3 and F1)."""

    def fills() -> float:
        TURN.flush()
        return REGISTRY.get_sample_value("tradepulse_fills_total", {"venue": V}) or 0.0

    oms = _LoudOms(RecordingLog())
    _ours(oms.book)
    assert oms.book.apply_exec(_fill("GUI-7", "F1", "2", "5", "20"), 4).order is None
    before = fills()
    oms.record(oms.book.apply_exec(_replaced("GUI-7", "o1", "20", "100", "3"), 5))
    assert fills() == before + 2


def test_a_status_report_of_our_replace_counts_its_fills_on_the_new_qty() -> None:
    """The same for a replace of ours: o1 (BUY 10) with o1.r1 (to 20) pending; a status
    report names o1.r1 (20, 15 filled): the replace takes effect first, then the 15 missed
    count on qty 20 (not refused as an overfill of 10)."""
    book = OrderBook()
    order = _ours(book)
    assert book.request_replace(ReplaceOrder(client_order_id="o1", qty=D(20)), 4).applied
    report = _report("status", "o1.r1", "ST1", order_qty=D(20), price=D(100),
                     cum_qty=D(15), avg_px=D(100), ord_status=S.PARTIALLY_FILLED)  # fmt: skip
    out = book.apply_exec(report, 5)
    assert out.applied and out.escalations == (), out
    assert (order.cl_ord_id, order.qty, order.cum_qty) == ("o1.r1", 20, 15)
    assert order.status is S.PARTIALLY_FILLED and book.position(V, "ABC").qty == 15


def test_a_status_report_of_an_outside_replace_places_early_fills() -> None:
    """A status report of o1 replaced to GUI-7 (20, venue cum 9) after F1 (4 under GUI-7,
    cum 9) came unmatched: F1 is placed (the venue's cum 9 ahead of our 4 then: said,
    informational), the 5 missed are inferred: cum 9, nothing unmatched, escalated."""
    book = OrderBook()
    order = _ours(book)
    assert book.apply_exec(_fill("GUI-7", "F1", "4", "9", "20"), 4).order is None
    report = _report("status", "GUI-7", "ST1", orig_cl_ord_id="o1", order_qty=D(20),
                     price=D(100), cum_qty=D(9), avg_px=D(100),
                     ord_status=S.PARTIALLY_FILLED)  # fmt: skip
    out = book.apply_exec(report, 5)
    kinds = [e.kind for e in out.escalations]
    assert kinds == ["order_replaced_externally", "venue_cum_ahead"], kinds
    assert out.fill_qty == 9 and order.cum_qty == 9 and book.position(V, "ABC").qty == 9
    assert book.unmatched_fills() == []


def test_fills_placed_by_an_outside_replace_replay_as_they_went_live() -> None:
    """The records of the unmatched F1, F2 and of the report that places them replay to
    the live book: no unmatched fill left, position 9, counted once."""
    book = OrderBook()
    records: list[dict[str, Any]] = []
    for out in (
        *_ours_outcomes(book),
        book.apply_exec(_fill("GUI-7", "F1", "2", "5", "20"), 4),
        book.apply_exec(_fill("GUI-7", "F2", "4", "9", "20"), 4),
        book.apply_exec(_replaced("GUI-7", "o1", "20", "100", "3"), 5),
    ):  # fmt: skip
        records += out.records
    replayed = _replayed(records)
    assert replayed.to_dict() == book.to_dict()
    assert replayed.unmatched_fills() == [] and replayed.position(V, "ABC").qty == 9


def test_a_status_report_of_an_outside_replace_of_our_lost_replace_is_followed() -> None:
    """A status report: o1's pending replace o1.r1 (to 12) took effect unseen, then GUI-7
    (20, 15 filled) replaced it: both replaces recorded, the 15 counted on 20, escalated."""
    book = OrderBook()
    order = _ours(book)
    assert book.request_replace(ReplaceOrder(client_order_id="o1", qty=D(12)), 4).applied
    report = _report("status", "GUI-7", "ST1", orig_cl_ord_id="o1.r1", order_qty=D(20),
                     price=D(100), cum_qty=D(15), avg_px=D(100),
                     ord_status=S.PARTIALLY_FILLED)  # fmt: skip
    out = book.apply_exec(report, 5)
    assert [e.kind for e in out.escalations] == ["order_replaced_externally"], out
    assert (order.cl_ord_id, order.qty, order.cum_qty, order.status) == (
        "GUI-7", 20, 15, S.PARTIALLY_FILLED
    )  # fmt: skip
    assert book.position(V, "ABC").qty == 15


def test_a_status_report_naming_an_older_id_of_ours_counts_its_fills_on_the_new_qty() -> None:
    """Our replace o1 -> o1.r1 (12) confirmed; a status report names GUI-7 (20, 15 filled)
    with OrigClOrdID o1 (an older id of ours, not the live o1.r1): still an outside replace
    of the order, followed first, the 15 counted on 20 (not an overfill of 12)."""
    book = OrderBook()
    order = _ours(book)
    assert book.request_replace(ReplaceOrder(client_order_id="o1", qty=D(12)), 4).applied
    assert book.apply_exec(_replaced("o1.r1", "o1", "12", "100", "0"), 5).applied
    report = _report("status", "GUI-7", "ST1", orig_cl_ord_id="o1", order_qty=D(20),
                     price=D(100), cum_qty=D(15), avg_px=D(100),
                     ord_status=S.PARTIALLY_FILLED)  # fmt: skip
    out = book.apply_exec(report, 6)
    assert [e.kind for e in out.escalations] == ["order_replaced_externally"], out
    assert (order.cl_ord_id, order.qty, order.cum_qty) == ("GUI-7", 20, 15)
