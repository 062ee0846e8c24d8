"""The risk actor's trading day (`actors.risk.trading_day`) in the test process against a
stub OMS: the day begins at the first rebuild, `exposure` shows the day's realised P&L, a
restart of risk the same day keeps the baseline (read back from its state dir), and the
boundary timer starts a new day on the actor's own loop."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from actors.risk import trading_day
from actors.risk.actor import RiskActor
from protocol.commands import Exposure
from protocol.messages import (
    ControlReply,
    OrderEvent,
    OrderStatus,
    OrderView,
    OrdType,
    PositionView,
    RiskCheck,
    RiskVerdict,
    Side,
)
from tests.actor_stubs import Client, Harness

D = Decimal
DAY1 = dt.datetime(2026, 12, 7, 15, tzinfo=dt.UTC).timestamp()
VENUES = [{"name": "simA", "target_comp_id": "SIMA",
           "sim": {"reference_prices": {"AAPL": "100.00"}}}]  # fmt: skip


@pytest.fixture
def h() -> Iterator[Harness]:
    harness = Harness(venues=("simA",), overrides={
        "risk": {"max_daily_loss": "1000"}, "venues": VENUES})  # fmt: skip
    yield harness
    harness.close()


def book(h: Harness, realized: str) -> None:
    """The OMS's book: flat AAPL with this realised P&L (what risk's rebuild reads)."""
    h.oms.positions = [
        PositionView(venue="simA", symbol="AAPL", qty=D(0), realized_pnl=D(realized))
    ]


def start(h: Harness, now: list[float]) -> RiskActor:
    actor = h.start(RiskActor, "risk")
    assert isinstance(actor, RiskActor)
    actor.day.wall = lambda: now[0]
    h.pump(lambda: actor.ready and actor.day.day is not None, what="rebuilt, day begun")
    return actor


def daily(actor: RiskActor) -> dict[str, Any]:
    replies: list[ControlReply] = []
    actor.on_control(Exposure(), replies.append)
    [reply] = replies
    assert reply.status == "ok" and reply.data is not None, reply
    result: dict[str, Any] = reply.data["daily"]
    return result


def verdict(h: Harness, coid: str) -> RiskVerdict:
    check = RiskCheck(client_order_id=coid, venue="simA", symbol="AAPL", side=Side.BUY,
                      qty=D(1), order_type=OrdType.LIMIT, price=D(100))  # fmt: skip
    body = Client(h, "risk").request(check)
    assert isinstance(body, RiskVerdict), body
    return body


def test_a_restart_of_risk_the_same_day_keeps_the_days_baseline(h: Harness) -> None:
    """The day began at +500; risk is restarted (a kill -9: a new incarnation over the
    same state dir) while the book went to -900: the stored baseline stands, the day's
    loss is 1,400 over the limit of 1,000 and an order is refused `daily_loss`. Before,
    the loss counted from the cold start: 900, approved."""
    now = [DAY1]
    book(h, "500")
    actor = start(h, now)
    assert daily(actor) | {"started_at": None} == {
        "day": "2026-12-07", "started_at": None, "baseline": "500", "realized_pnl": "500",
        "daily_realized_pnl": "0", "max_daily_loss": "1000",
    }  # fmt: skip
    book(h, "-900")
    now[0] += 3600
    actor = start(h, now)
    assert daily(actor)["daily_realized_pnl"] == "-1400"
    refused = verdict(h, "after-restart")
    assert (refused.approved, refused.reason_code) == (False, "daily_loss"), refused


def test_the_boundary_timer_starts_a_new_day_on_the_actors_loop(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Yesterday's loss of 1,200 refuses orders; the wall clock passes midnight UTC and the
    timer (set for the boundary) starts a new day at -1,200: the next order is approved."""
    monkeypatch.setattr(trading_day, "_MAX_WAIT_S", 0.01)
    now = [DAY1]
    book(h, "0")
    actor = start(h, now)
    book(h, "-1200")
    actor.sync.start("test")  # the OMS's fills, as a rebuild brings them
    h.pump(lambda: actor.gate.realized_pnl() == D(-1200), what="rebuilt at -1200")
    assert verdict(h, "day1").reason_code == "daily_loss"
    now[0] = dt.datetime(2026, 12, 8, 0, 0, 1, tzinfo=dt.UTC).timestamp()
    h.pump(lambda: actor.day.day == dt.date(2026, 12, 8), what="a new day")
    assert daily(actor)["baseline"] == "-1200"
    assert verdict(h, "day2").approved


def test_a_loss_booked_before_todays_start_does_not_halt_today(h: Harness) -> None:
    """The book lost 1,200 on an earlier day (risk's state dir has no day of today: a warm
    start the next morning). Risk starts a new day at -1,200 and approves an order. Before,
    the daily loss ran from the last cold start: 1,200 over the limit refused every order,
    day after day, until a cold start."""
    book(h, "-1200")
    actor = h.start(RiskActor, "risk")
    h.pump(lambda: isinstance(actor, RiskActor) and actor.ready, what="rebuilt")
    approved = verdict(h, "next-morning")
    assert approved.approved, approved


def test_an_unreadable_day_file_engages_the_kill_switch(h: Harness) -> None:
    """The day's loss so far cannot be known (the file is replaced whole, so not a torn
    write: a broken disk or a hand edit): risk engages the kill-switch `state_unreadable`,
    as for its own unreadable switch file, and an operator decides. Before, a new day began
    silently and the day's earlier loss stopped counting."""
    path = trading_day.trading_day_path(h.cfg.state_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"{not json")
    book(h, "-900")
    actor = h.start(RiskActor, "risk")
    assert isinstance(actor, RiskActor)
    h.pump(lambda: actor.ready and actor.engaged, what="engaged")
    assert actor.ks.reason.startswith("state_unreadable: ") and str(path) in actor.ks.reason
    assert verdict(h, "after").reason_code == "kill_switch"


def _filled(coid: str, side: Side, px: str, ts_s: float) -> OrderEvent:
    """The OMS's event of an order of 100 filled whole at `px`, journaled at `ts_s`."""
    order = OrderView(client_order_id=coid, venue="simA", symbol="AAPL", side=side,
                      qty=D(100), order_type=OrdType.MARKET, status=OrderStatus.FILLED,
                      cum_qty=D(100), avg_px=D(px), ts_ns=int(ts_s) * 1_000_000_000)  # fmt: skip
    return OrderEvent(event_seq=0, order=order, fill_qty=D(100), fill_px=D(px))


def test_a_fill_after_the_boundary_read_before_the_due_timer_counts_to_the_new_day(
    h: Harness,
) -> None:
    """A loop turn runs its socket handlers before its due timers: after a stall over
    midnight (a long turn, a starved or stopped process) risk reads the OMS's event of a
    sell filled after the boundary (100 bought at 100 the day before, sold at 88: -1,200)
    before the boundary timer runs. The day starts at that event, before its fill: the
    day's loss is 1,200 over the limit of 1,000, refused. Before, the timer ran after the
    fill: the new day began at -1,200, today's loss was 0 and the order was approved."""
    now = [DAY1]
    book(h, "0")
    actor = start(h, now)
    h.oms.publish(_filled("b1", Side.BUY, "100", DAY1))
    h.pump(lambda: actor.gate.exposure.position("AAPL") == 100, what="bought")
    midnight = dt.datetime(2026, 12, 8, tzinfo=dt.UTC).timestamp()
    now[0] = midnight + 5  # stalled: the boundary timer is due and has not run
    h.oms.publish(_filled("s1", Side.SELL, "88", midnight + 2))
    h.pump(lambda: actor.gate.realized_pnl() == D(-1200), what="sold at a loss")
    actor.day._wake(actor.day._timer)  # the due timer, after the turn's handlers
    assert (actor.day.day, daily(actor)["daily_realized_pnl"]) == (dt.date(2026, 12, 8), "-1200")
    refused = verdict(h, "after-the-stall")
    assert (refused.approved, refused.reason_code) == (False, "daily_loss"), refused


def test_a_rebuild_read_after_the_boundary_before_the_due_timer_splits_the_day_there(
    h: Harness,
) -> None:
    """As above, with an exposure rebuild instead of an event: its answers are read before
    the due boundary timer, and the OMS's book then holds a loss of 1,200 made after the
    boundary (its mark at the boundary: 0). The new day starts at the rebuild, at the P&L
    at the boundary (`realized_pnl_at`, the day's start at risk's start): the day's loss
    is 1,200, refused. Before, the timer took the rebuilt P&L (-1,200) as the baseline."""
    now = [DAY1]
    book(h, "0")
    actor = start(h, now)
    midnight = dt.datetime(2026, 12, 8, tzinfo=dt.UTC).timestamp()
    h.oms.positions = [PositionView(
        venue="simA", symbol="AAPL", qty=D(0), realized_pnl=D(-1200),
        last_fill_ns=int(midnight + 2) * 1_000_000_000,
        day_start_ns=int(midnight) * 1_000_000_000, day_start_pnl=D(0))]  # fmt: skip
    now[0] = midnight + 5  # stalled: the boundary timer is due and has not run
    actor.sync.start("test")
    h.pump(lambda: actor.gate.realized_pnl() == D(-1200), what="rebuilt at -1200")
    actor.day._wake(actor.day._timer)  # the due timer, after the turn's handlers
    assert (actor.day.day, daily(actor)["daily_realized_pnl"]) == (dt.date(2026, 12, 8), "-1200")
    refused = verdict(h, "after-the-rebuild")
    assert (refused.approved, refused.reason_code) == (False, "daily_loss"), refused
