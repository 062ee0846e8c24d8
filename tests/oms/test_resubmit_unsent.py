"""A resubmission the connector did not send is taken back
(actors/oms/resubmit_unsent.py): not counted toward `max_resubmits`, consistently with the
journal (replayed after a kill -9 as it was counted live), its grace kept (rev3 D1: at
most one resend per grace); escalation still follows `max_resubmits` resends that did go
out. Found by the 10-minute chaos soak under load: five acknowledged orders ended
PENDING_SUBMIT and escalated `resubmit_unconfirmed`, never sent, because the exchange's
lookups failed for minutes and every unsent resend still counted."""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import structlog
from prometheus_client import REGISTRY

from actors.oms.exec_cut import ExecLog
from actors.oms.exec_intake import ExecIntake
from actors.oms.order_book import OrderBook
from actors.oms.orders import DROPPED_OUT_OF_SESSION, Order, Outcome
from actors.oms.reconcile import plan_reconciliation
from actors.oms.reconcile_rules import ReconcilePolicy
from protocol.messages import (
    ErrorCode,
    ExecReport,
    OrderStatus,
    OrdType,
    PlaceOrder,
    RequestRejected,
    RiskVerdict,
    Side,
    SubmitOrder,
)
from tests.oms.test_venue_link import CONNECTED, _complete_pass, _link

V = "simA"
POLICY = ReconcilePolicy(resubmit_grace_s=30.0, max_resubmits=3)


class _Journal:
    """The records a book's commands produced, in order (what the journal holds)."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def __call__(self, outcome: Outcome) -> Outcome:
        self.records.extend(outcome.records)
        return outcome


def _approved(book: OrderBook, coid: str = "u1", record: _Journal | None = None) -> Order:
    record = record or _Journal()
    msg = SubmitOrder(
        client_order_id=coid, venue=V, symbol="AAPL", side=Side.BUY, qty=Decimal(1),
        order_type=OrdType.LIMIT, price=Decimal("95"),
    )  # fmt: skip
    record(book.submit(msg, 1))
    record(book.risk_verdict(RiskVerdict(client_order_id=coid, approved=True), 2))
    order = book.get(coid)
    assert order is not None and order.status is OrderStatus.PENDING_SUBMIT
    return order


def _unsent(coid: str = "u1", n: int = 1) -> ExecReport:
    return ExecReport(
        venue=V, exec_id=f"{coid}:unsent:{n}", kind="unsent", cl_ord_id=coid,
        text="not sent: its lookup by client id before a resend was inconclusive",
    )  # fmt: skip


def _plan(book: OrderBook, coid: str = "u1") -> list[tuple[str, str]]:
    plan = plan_reconciliation(V, book.orders(V), [], {}, {coid}, now_s=100.0, policy=POLICY)
    return [(a.name, getattr(a, "reason", "")) for a in plan.actions]


def test_unsent_resubmissions_are_not_counted_and_replay_the_same() -> None:
    """Three resubmissions the connector reported unsent leave the count at zero: the next
    pass resubmits (not `resubmit_unconfirmed`). A report delivered again (same exec id)
    changes nothing; a book replayed from the journal has the same count and exec ids."""
    book, journal = OrderBook(), _Journal()
    _approved(book, record=journal)
    for n in (1, 2, 3):
        journal(book.mark_resubmitted("u1", 10 + n))
        out = journal(book.apply_exec(_unsent(n=n), 20 + n))
        assert out.applied and out.records[0]["event"] == "resubmit_unsent", out
    order = book.get("u1")
    assert order is not None and order.resubmits == 0
    assert order.status is OrderStatus.PENDING_SUBMIT
    assert _plan(book) == [("resubmit", "")]
    again = book.apply_exec(_unsent(n=3), 30)
    assert again.kind == "duplicate" and not again.records

    replayed = OrderBook()
    for rec in journal.records:
        replayed.apply_record(rec)
    assert replayed.to_dict() == book.to_dict()
    assert replayed.apply_exec(_unsent(n=2), 31).kind == "duplicate"


def test_resends_that_went_out_still_escalate_after_max_resubmits() -> None:
    """Only the unsent one is taken back: four resubmissions of which one was not sent
    count three, and the venue still not knowing the order escalates it."""
    book = OrderBook()
    _approved(book)
    for n in range(4):
        book.mark_resubmitted("u1", 10 + n)
    book.apply_exec(_unsent(), 20)
    order = book.get("u1")
    assert order is not None and order.resubmits == 3
    assert _plan(book) == [("escalate", "resubmit_unconfirmed")]


def test_an_unsent_report_with_nothing_to_take_back_changes_nothing() -> None:
    """An order never resubmitted (its first send not sent: reconciliation resubmits it as
    usual), or one the venue acknowledged since: acked, nothing recorded, not refused."""
    book = OrderBook()
    _approved(book, "first")
    out = book.apply_exec(_unsent("first"), 5)
    assert out.kind == "duplicate" and not out.records
    _approved(book, "acked")
    book.mark_resubmitted("acked", 6)
    accepted = ExecReport(venue=V, exec_id="A1", kind="accepted", cl_ord_id="acked",
                          venue_order_id="V1")  # fmt: skip
    assert book.apply_exec(accepted, 7).applied
    out = book.apply_exec(_unsent("acked"), 8)
    order = book.get("acked")
    assert out.kind == "duplicate" and order is not None and order.resubmits == 1


class _IntakeHost:
    """What `ExecIntake` needs of the OMS, around a real book and a real `VenueLink`."""

    def __init__(self) -> None:
        self.link, self.oms, _peer = _link()
        self.book = self.link.host.book
        self.exec_log = ExecLog()
        self.exec_applier = self
        self.venues = {V: self.link}
        self.after: list[Callable[[], None]] = []

    def apply(self, report: ExecReport, ts_ns: int, epoch: int = 0) -> Outcome | None:
        return self.record(self.book.apply_exec(report, ts_ns))

    def record(self, outcome: Outcome, venue: str = "") -> Outcome:
        return outcome

    def after_commit(self, fn: Callable[[], None], *, first: bool = False) -> None:
        self.after.append(fn)

    def durable_crash_point(self, name: str) -> None:
        pass


def test_the_oms_keeps_the_grace_of_a_resubmission_reported_unsent() -> None:
    """Taken back from the count only: the next resend still waits out `resubmit_grace_s`
    (one of it may be in flight - "a submit of this client id is running" - and a resend
    that keeps going unsent comes once a grace, not once a pass); logged
    `order_resubmit_unsent` and counted (`tradepulse_oms_resubmits_unsent_total{venue}`)."""
    host = _IntakeHost()
    _approved(host.book)
    host.book.mark_resubmitted("u1", 10)
    host.link.resubmitted_at_s["u1"] = time.monotonic()
    before = REGISTRY.get_sample_value("tradepulse_oms_resubmits_unsent_total", {"venue": V})
    with structlog.testing.capture_logs() as logs:
        ExecIntake(host, structlog.get_logger()).on_report(_unsent(), lambda _m: None, 7)  # type: ignore[arg-type]
    assert "u1" in host.link.resubmitted_at_s
    assert [e["event"] for e in logs if e["event"] == "order_resubmit_unsent"] != []
    order = host.book.get("u1")
    assert order is not None and order.resubmits == 0
    after = REGISTRY.get_sample_value("tradepulse_oms_resubmits_unsent_total", {"venue": V})
    assert (after or 0.0) - (before or 0.0) == 1.0


def test_a_resubmission_the_connector_refuses_unsent_is_taken_back_not_queued() -> None:
    """A resubmitted order's PlaceOrder refused VENUE_DOWN (not logged on: nothing went out,
    the FIX path's way of saying it): the resubmission is taken back (its grace kept),
    and it is not queued blind - the first pass after its grace asks the venue and
    resubmits it (counted then). A first send refused so is queued again as before."""
    link, oms, peer = _link()
    link.on_state(CONNECTED, 7, "logged on")
    _complete_pass(peer)
    _approved(oms.book, "r1")
    oms.book.mark_resubmitted("r1", 3)
    link.resubmitted_at_s["r1"] = time.monotonic()
    _approved(oms.book, "n1")
    link.push("r1")
    link.push("n1")
    assert [type(m) for m, _ in peer.sent] == [PlaceOrder, PlaceOrder]
    peer.answer(RequestRejected(code=ErrorCode.VENUE_DOWN, reason="not logged on"))
    peer.answer(RequestRejected(code=ErrorCode.VENUE_DOWN, reason="not logged on"))
    r1 = oms.book.get("r1")
    assert r1 is not None and r1.resubmits == 0 and "r1" in link.resubmitted_at_s
    assert not link.is_waiting("r1") and link.is_waiting("n1")
    link.resubmitted_at_s["r1"] -= POLICY.resubmit_grace_s  # its grace is over
    link.on_state(CONNECTED, 8, "logged on again")
    _complete_pass(peer, never_seen=("r1", "n1"))
    (plan,) = oms.plans[-1:]
    assert sorted(a.client_order_id for a in plan.actions if a.name == "resubmit") == [
        "n1",
        "r1",
    ]
    oms.commit()  # the queue goes out; r1 only as the plan's resubmit (not applied here)
    assert [m.cl_ord_id for m, _ in peer.sent if isinstance(m, PlaceOrder)] == ["n1"]


def test_a_resubmission_refused_out_of_session_is_rejected_as_any_unsent_order() -> None:
    """The session closed before the resend went out (OUT_OF_SESSION): the order is
    rejected, as a never-sent order is then (never sent into a later session), not taken
    back for the next session's pass."""
    link, oms, peer = _link()
    link.on_state(CONNECTED, 7, "logged on")
    _complete_pass(peer)
    _approved(oms.book, "s1")
    oms.book.mark_resubmitted("s1", 3)
    link.push("s1")
    peer.answer(RequestRejected(code=ErrorCode.OUT_OF_SESSION, reason="outside the session"))
    order = oms.book.get("s1")
    assert order is not None and order.status is OrderStatus.REJECTED
    assert order.reason == DROPPED_OUT_OF_SESSION and not link.is_waiting("s1")
