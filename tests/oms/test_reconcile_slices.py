"""A reconciliation pass spread over loop turns (actors/oms/reconcile_pass.py, issue 16 "work
that blocks"): no turn walks every open order, the OMS serves requests between slices, and
what changes between slices is never undone: an order judged in one slice that moved on
before its actions are applied is left to the next pass, and a pass superseded by a newer
one (a connector restart) or cut off by a disconnect stops where it is.

The rig is the OMS's loop as a pass sees it: `next_turn` waits for `Loop.turn()`, the
records of a turn are committed at its end (the group commit) and plans are carried out by
the real `PlanApplier` on the real `OrderBook`; the last test shows the real loop's timers
behind `OmsActor.next_turn` run one slice per turn."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from actors.oms import reconcile_pass
from actors.oms.actor import OmsActor
from actors.oms.exec_cut import ExecLog
from actors.oms.orders import Outcome
from actors.oms.plan import Action, Plan
from actors.oms.plan_apply import PlanApplier
from actors.oms.venue_link import VenueLink
from actors.runtime.timers import Timers
from protocol.config import OmsCfg
from protocol.messages import (
    CancelOnVenue,
    ExecCut,
    ExecReport,
    GetPositions,
    OpenOrders,
    OpenOrdersRequest,
    OrderStatus,
    OrderStatusAnswer,
    OrderStatusQuery,
    OrdType,
    PlaceOrder,
    Positions,
    RiskVerdict,
    Side,
    SubmitOrder,
    VenueConnState,
    VenueOrder,
)
from tests.oms.test_reconcile_cut import _answer
from tests.oms.test_venue_link import CONNECTED, StubOms, StubPeer, V, _complete_pass

D = Decimal
S = OrderStatus
OMS_EPOCH = 3


class Loop(StubOms):
    """The OMS's loop as a reconciliation pass sees it (see the module docstring)."""

    def __init__(self, tmp_path: Path) -> None:
        super().__init__()
        self.due: list[Callable[[], None]] = []
        self.turns = 0
        self.committed: list[list[Mapping[str, Any]]] = []  # records, per turn
        self._pending: list[Mapping[str, Any]] = []
        self.steps: list[int] = []  # actions carried out per call
        self.links: dict[str, VenueLink] = {}
        self.applier = PlanApplier(
            self, self.links, OmsCfg(), structlog.get_logger(), tmp_path / "cold"
        )

    # the loop
    def next_turn(self, fn: Callable[[], None]) -> None:
        self.due.append(fn)

    def turn(self) -> None:
        """One loop turn: what is due, then the group commit."""
        due, self.due = self.due, []
        for fn in due:
            fn()
        self.turns += 1
        self.committed.append(self._pending)
        self._pending = []

    def run(self, between: Callable[[], None] = lambda: None, *, max_turns: int = 10_000) -> int:
        """Turns until nothing is due, `between` before each; how many."""
        n = 0
        while self.due:
            assert n < max_turns, "the pass never ends"
            between()
            self.turn()
            n += 1
        return n

    # what the link and the applier use of the OMS
    def record(self, outcome: Outcome) -> Outcome:
        self._pending.extend(outcome.records)
        return outcome

    def durable_crash_point(self, name: str) -> None:
        pass

    def reconcile_plan_ready(self, link: VenueLink, plan: Plan) -> None:
        super().reconcile_plan_ready(link, plan)
        self.applier.begin(link, plan)

    def apply_reconcile_steps(
        self, link: VenueLink, plan: Plan, steps: Sequence[tuple[int, Action]]
    ) -> None:
        self.steps.append(len(steps))
        self.applier.apply_steps(link, plan, steps)

    def reconcile_plan_applied(
        self, link: VenueLink, plan: Plan, positions: Positions | None
    ) -> None:
        self.applier.finish(link, positions)


def _rig(tmp_path: Path) -> tuple[VenueLink, Loop, StubPeer, ExecLog]:
    """A link CONNECTED and reconciled (ready), its book empty."""
    oms, peer, log = Loop(tmp_path), StubPeer(), ExecLog()
    link = VenueLink(
        V, oms, peer, request_timeout_s=5.0, log=structlog.get_logger(), rand=lambda: 0.5,
        exec_log=log, oms_epoch=OMS_EPOCH,
    )  # fmt: skip
    oms.links[V] = link
    link.on_state(CONNECTED, 7, "logged on")
    _complete_pass(peer)  # nothing to walk: done at once
    assert link.ready and not oms.due
    return link, oms, peer, log


def _cut(seq: int = 0) -> ExecCut:
    return ExecCut(connector_epoch=7, exec_seq=seq, since=0, oms_epoch=OMS_EPOCH)


def _approved(oms: Loop, coid: str, qty: int = 2) -> None:
    """An order approved by risk, not yet acknowledged by the venue (PENDING_SUBMIT)."""
    msg = SubmitOrder(
        client_order_id=coid, venue=V, symbol="AAPL", side=Side.BUY, qty=D(qty),
        order_type=OrdType.LIMIT, price=D("95"),
    )  # fmt: skip
    oms.book.submit(msg, 1)
    oms.book.risk_verdict(RiskVerdict(client_order_id=coid, approved=True), 2)


def _accepted(oms: Loop, log: ExecLog, coid: str) -> None:
    """An order the venue acknowledged (ACCEPTED), before any pass of the test."""
    _approved(oms, coid)
    _exec(oms, log, 0, coid, "accepted")


def _exec(oms: Loop, log: ExecLog, seq: int, coid: str, kind: str, last_qty: int = 0) -> None:
    """The OMS applies an execution (as OmsActor._on_exec does)."""
    report = ExecReport(
        venue=V, exec_id=f"e{seq}-{coid}", kind=kind, cl_ord_id=coid, symbol="AAPL",
        side=Side.BUY, last_qty=D(last_qty), last_px=D(95), cum_qty=D(last_qty),
        avg_px=D(95), leaves_qty=D(2 - last_qty), exec_seq=seq,
    )  # fmt: skip
    out = oms.book.apply_exec(report, 3)
    assert out.applied, out
    log.note_outcome(report, 7, out)


def _listed(coid: str, status: OrderStatus = S.ACCEPTED, cum: int = 0) -> VenueOrder:
    return VenueOrder(
        cl_ord_id=coid, symbol="AAPL", side=Side.BUY, order_qty=D(2), price=D(95),
        status=status, cum_qty=D(cum), avg_px=D(95) if cum else D(0), leaves_qty=D(2 - cum),
    )  # fmt: skip


def _ledger() -> Positions:
    """Positions from the connector's ledger: not compared by a pass (not the venue's)."""
    return Positions(source="ledger", venue=V, positions=[])


def _gathered(link: VenueLink, peer: StubPeer, listed: list[VenueOrder], oms: Loop) -> None:
    """An operator's pass whose venue lists `listed` open; its walk for status queries
    (nothing to ask) runs over turns, then the positions answer starts the plan."""
    link.start_reconcile()
    _answer(peer, OpenOrdersRequest, OpenOrders(venue=V, orders=listed, cut=_cut()))
    oms.run()  # the walk for status queries: every order listed, nothing asked
    _answer(peer, GetPositions, _ledger())


N = 20_000


def test_a_pass_over_20000_open_orders_yields_between_bounded_slices(tmp_path: Path) -> None:
    """20,000 orders the venue lists ACCEPTED that the OMS still has PENDING_SUBMIT: the pass
    never does the whole walk in one turn. Its status-query walk, its plan and its apply
    each take several turns of at most SLICE orders / APPLY_SLICE actions; between two
    turns the OMS serves a client's new order (its PlaceOrder goes out while the pass is
    still running, and the pass leaves it alone); each turn's records are committed by
    that turn. In the end every order is ACCEPTED, each journalled once."""
    link, oms, peer, _ = _rig(tmp_path)
    coids = [f"o{i}" for i in range(N)]
    for coid in coids:
        _approved(oms, coid)
    listed = [_listed(c) for c in coids]

    link.start_reconcile()
    _answer(peer, OpenOrdersRequest, OpenOrders(venue=V, orders=listed, cut=_cut()))
    assert peer.sent == [] and oms.due  # the walk for status queries did not finish in a turn
    walk = oms.run()
    assert walk >= N // reconcile_pass.SLICE - 1
    _answer(peer, GetPositions, _ledger())
    assert oms.reconciled == [True] and oms.due  # planning goes on in later turns

    sent_mid_pass: list[bool] = []

    def client_order() -> None:  # a client's order, served between two slices
        if len(sent_mid_pass) < 3:
            coid = f"late-{len(sent_mid_pass)}"
            _approved(oms, coid)
            link.push(coid)
            sent_mid_pass.append(isinstance(peer.sent[-1][0], PlaceOrder))

    turns = oms.run(client_order)
    plan_turns = math.ceil(N / reconcile_pass.SLICE)
    apply_turns = math.ceil(N / reconcile_pass.APPLY_SLICE)
    assert turns >= plan_turns + apply_turns - 1
    assert sent_mid_pass == [True, True, True]
    assert oms.reconciled == [True, False]  # the pass completed (not the first)
    (plan,) = oms.plans[1:]
    assert plan.summary()["update"] == N
    assert max(oms.steps) <= reconcile_pass.APPLY_SLICE
    assert max(len(turn) for turn in oms.committed) <= reconcile_pass.APPLY_SLICE
    journalled = [r["id"] for turn in oms.committed for r in turn]
    assert sorted(journalled) == sorted(coids)  # each applied once, committed by its turn
    assert {oms.book.get(c).status for c in coids} == {S.ACCEPTED}  # type: ignore[union-attr]
    assert {oms.book.get(f"late-{i}").status for i in range(3)} == {S.PENDING_SUBMIT}  # type: ignore[union-attr]


@pytest.fixture
def small_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    """One order planned and one action applied per turn."""
    monkeypatch.setattr(reconcile_pass, "SLICE", 1)
    monkeypatch.setattr(reconcile_pass, "APPLY_SLICE", 1)


@pytest.mark.usefixtures("small_slices")
def test_a_fill_applied_between_plan_and_apply_is_not_counted_twice(tmp_path: Path) -> None:
    """The venue shows x filled 1 of 2 that the OMS never got: the plan infers the missed
    fill. The real execution arrives after x was judged, before its slice is applied: x
    moved on, so the inferred fill is not applied on top (x stays 1 of 2, position 1, not
    FILLED at 2); `reconcile_skipped_moved` counts it and the other orders are applied."""
    link, oms, peer, log = _rig(tmp_path)
    for coid in ("a", "b"):
        _approved(oms, coid)
    _accepted(oms, log, "x")
    with capture_logs() as logs:
        _gathered(
            link, peer, [_listed("a"), _listed("b"), _listed("x", S.PARTIALLY_FILLED, 1)], oms
        )
        while not oms.plans[1:]:
            oms.turn()  # planned; the turn that finished the plan applied a's update
        _exec(oms, log, 1, "x", "fill", last_qty=1)  # the fill itself, late
        oms.run()
    (plan,) = oms.plans[1:]
    assert plan.summary()["apply_missed_fill"] == 1  # what the venue's view showed
    x = oms.book.get("x")
    assert x is not None and (x.status, x.cum_qty) == (S.PARTIALLY_FILLED, D(1))
    assert oms.book.position(V, "AAPL").qty == D(1)
    assert {oms.book.get(c).status for c in ("a", "b")} == {S.ACCEPTED}  # type: ignore[union-attr]
    assert [e["orders"] for e in logs if e["event"] == "reconcile_skipped_moved"] == [1]
    assert oms.reconciled == [True, False]


@pytest.mark.usefixtures("small_slices")
def test_a_fill_applied_before_its_order_is_judged_makes_it_skipped(tmp_path: Path) -> None:
    """An execution reaches the OMS after the pass began but before x's slice is planned:
    x is in flight for this pass (not judged, counted as skipped), the others are judged."""
    link, oms, peer, log = _rig(tmp_path)
    _approved(oms, "a")
    _accepted(oms, log, "x")
    _gathered(link, peer, [_listed("a"), _listed("x", S.PARTIALLY_FILLED, 1)], oms)
    _exec(oms, log, 1, "x", "fill", last_qty=1)  # a was planned in the answer's turn
    oms.run()
    (plan,) = oms.plans[1:]
    assert plan.skipped == 1 and plan.summary()["apply_missed_fill"] == 0
    assert oms.book.get("x").cum_qty == D(1)  # type: ignore[union-attr]


@pytest.mark.usefixtures("small_slices")
def test_a_cancel_requested_mid_pass_is_not_undone(tmp_path: Path) -> None:
    """x is judged (the venue shows 1 of 2 filled that the OMS never got: a missed fill
    planned) and then a client cancels it before that slice is applied. x moved on
    (PENDING_CANCEL, its cancel handed to the connector): nothing of the plan is applied to
    it, the cancel stays pending and is sent once; the fill is left to the next pass."""
    link, oms, peer, log = _rig(tmp_path)
    _approved(oms, "a")
    _accepted(oms, log, "x")
    _gathered(link, peer, [_listed("a"), _listed("x", S.PARTIALLY_FILLED, 1)], oms)
    while not oms.plans[1:]:
        oms.turn()
    out = oms.book.request_cancel("x", 4)  # the client's CancelOrder, served between slices
    assert out.applied
    link.push("x")
    oms.run()
    x = oms.book.get("x")
    assert x is not None and x.status is S.PENDING_CANCEL and x.cum_qty == 0
    assert [type(m) for m, _ in peer.sent] == [CancelOnVenue]
    assert oms.book.get("a").status is S.ACCEPTED  # type: ignore[union-attr]


@pytest.mark.usefixtures("small_slices")
def test_a_connector_restart_mid_pass_abandons_it_for_the_new_pass(tmp_path: Path) -> None:
    """Mid-apply the connector restarts (a new epoch): the old pass's remaining actions
    (b CANCELLED, from the old incarnation's view) are never applied; the new pass plans
    from the new answer (b live) and is the one that completes."""
    link, oms, peer, _ = _rig(tmp_path)
    for coid in ("a", "b"):
        _approved(oms, coid)
    with capture_logs() as logs:
        _gathered(link, peer, [_listed("a"), _listed("b", S.CANCELLED)], oms)
        while not oms.plans[1:]:
            oms.turn()  # a's update applied with the plan's last slice
        link.on_state(CONNECTED, 8, "connector restarted")  # a new pass asks at once
        oms.run()  # the old pass's next slice: abandoned
        assert oms.book.get("b").status is S.PENDING_SUBMIT  # type: ignore[union-attr]
        _answer(
            peer,
            OpenOrdersRequest,
            OpenOrders(venue=V, orders=[_listed("a"), _listed("b")], cut=_cut()),
        )
        oms.run()
        _answer(peer, GetPositions, _ledger())
        oms.run()
    assert oms.book.get("a").status is S.ACCEPTED  # type: ignore[union-attr]
    assert oms.book.get("b").status is S.ACCEPTED  # type: ignore[union-attr]
    superseded = [e for e in logs if e["event"] == "reconcile_failed" and e.get("superseded")]
    assert len(superseded) == 1
    assert oms.reconciled == [True, False]  # one more pass completed: the new one
    assert link.ready


@pytest.mark.usefixtures("small_slices")
def test_a_disconnect_mid_pass_stops_it_until_the_next_connected(tmp_path: Path) -> None:
    """The venue disconnects while a plan is being applied: the rest is not applied, the
    pass fails (`reconcile_failed`, a retry after the backoff, connected or not) and the
    next CONNECTED starts a pass at once that finishes the job."""
    link, oms, peer, _ = _rig(tmp_path)
    for coid in ("a", "b"):
        _approved(oms, coid)
    with capture_logs() as logs:
        _gathered(link, peer, [_listed("a"), _listed("b")], oms)
        while not oms.plans[1:]:
            oms.turn()
        link.on_state(VenueConnState.DISCONNECTED, 7, "session lost")
        oms.run()
    assert oms.book.get("b").status is S.PENDING_SUBMIT  # type: ignore[union-attr]
    assert [e["reason"] for e in logs if e["event"] == "reconcile_failed"] == [
        "venue DISCONNECTED during the pass"
    ]
    assert not link.reconciling and [delay for delay, _ in oms.timers] == [1.0]
    link.on_state(CONNECTED, 7, "logged on again")
    _answer(
        peer,
        OpenOrdersRequest,
        OpenOrders(venue=V, orders=[_listed("a"), _listed("b")], cut=_cut()),
    )
    oms.run()
    _answer(peer, GetPositions, _ledger())
    oms.run()
    assert oms.book.get("b").status is S.ACCEPTED  # type: ignore[union-attr]
    assert link.ready


@pytest.mark.usefixtures("small_slices")
def test_a_dry_run_in_slices_plans_everything_and_applies_nothing(tmp_path: Path) -> None:
    """`reconcile --dry-run` over several turns: the operator gets the whole plan, the book
    is unchanged and nothing is journalled."""
    link, oms, peer, _ = _rig(tmp_path)
    for coid in ("a", "b", "c"):
        _approved(oms, coid)
    answers: list[Plan] = []
    link.start_reconcile(answers.append, dry_run=True)
    _answer(peer, OpenOrdersRequest, OpenOrders(venue=V, orders=[_listed(c) for c in "abc"]))
    oms.run()
    _answer(peer, GetPositions, _ledger())
    oms.run()
    (plan,) = answers
    assert plan.summary()["update"] == 3 and oms.plans[1:] == []
    assert {oms.book.get(c).status for c in "abc"} == {S.PENDING_SUBMIT}  # type: ignore[union-attr]
    assert not any(oms.committed)


@pytest.mark.usefixtures("small_slices")
def test_a_resubmit_planned_for_an_order_sent_mid_pass_is_not_applied(tmp_path: Path) -> None:
    """x waits in the queue, never sent; the venue does not know it: the plan resubmits it.
    Before that slice is applied a client's order makes the link dispatch, and x's D goes
    out: x is in flight now, so the Resubmit is not applied (no resubmission counted or
    logged, one D for x)."""
    link, oms, peer, _ = _rig(tmp_path)
    _approved(oms, "a")
    _approved(oms, "x")
    link.enqueue("x")
    with capture_logs() as logs:
        link.start_reconcile()
        _answer(peer, OpenOrdersRequest, OpenOrders(venue=V, orders=[_listed("a")], cut=_cut()))
        oms.run()
        unknown = OrderStatusAnswer(venue=V, orders=[], unknown=["x"], cut=_cut())
        assert _answer(peer, OrderStatusQuery, unknown).cl_ord_ids == ["x"]  # type: ignore[attr-defined]
        _answer(peer, GetPositions, _ledger())
        while not oms.plans[1:]:
            oms.turn()
        _approved(oms, "y")
        link.push("y")  # served between slices: sends the queue, x first
        oms.run()
    (plan,) = oms.plans[1:]
    assert plan.summary()["resubmit"] == 1
    assert oms.book.get("x").resubmits == 0  # type: ignore[union-attr]
    sent = [m.cl_ord_id for m, _ in peer.sent if isinstance(m, PlaceOrder)]
    assert sent == ["x", "y"]
    assert not [e for e in logs if e["event"] == "order_resubmitted"]
    assert [e["orders"] for e in logs if e["event"] == "reconcile_skipped_moved"] == [1]


@pytest.mark.usefixtures("small_slices")
def test_an_operator_pass_asked_mid_slices_follows_and_answers(tmp_path: Path) -> None:
    """`tradepulse reconcile` while a pass is in its slices: no second pass interleaves;
    the one asked for runs once the first has applied its plan, and its plan answers."""
    link, oms, peer, _ = _rig(tmp_path)
    for coid in ("a", "b"):
        _approved(oms, coid)
    _gathered(link, peer, [_listed("a"), _listed("b")], oms)
    answers: list[Plan] = []
    link.start_reconcile(answers.append)
    assert not [m for m, _ in peer.sent if isinstance(m, OpenOrdersRequest)]
    oms.run()
    assert {oms.book.get(c).status for c in "ab"} == {S.ACCEPTED}  # type: ignore[union-attr]
    _answer(peer, OpenOrdersRequest, OpenOrders(venue=V, orders=[_listed("a"), _listed("b")]))
    oms.run()
    _answer(peer, GetPositions, _ledger())
    oms.run()
    (plan,) = answers
    assert plan.actions == () and len(oms.plans) == 3


def test_the_oms_loop_runs_one_slice_of_a_pass_per_turn() -> None:
    """`OmsActor.next_turn` is a zero-delay loop timer: a slice that schedules the next one
    leaves it to the next turn's timers, which run after that turn's beat, poll, requests
    and executions; a chain of slices never runs within one turn."""
    timers = Timers()
    oms = SimpleNamespace(call_later=timers.call_later)  # what next_turn uses of the actor
    ran: list[int] = []

    def slice_(n: int) -> None:
        ran.append(n)
        if n < 3:
            OmsActor.next_turn(oms, partial(slice_, n + 1))  # type: ignore[arg-type]

    OmsActor.next_turn(oms, partial(slice_, 0))  # type: ignore[arg-type]
    for turn in range(4):
        timers.run_due()  # the timers of one loop turn
        assert ran == list(range(turn + 1))
