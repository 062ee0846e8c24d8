"""UnsentGuard (actors/oms/unsent_guard.py): a never-sent order that lives only in the book
(an OMS restart emptied the queue) is held when its venue is stopped, its session or the
trading window closes, or the kill-switch engages, so that reconciliation's Resubmit of it
is rejected instead of sent, even after the stop lifts; and a resubmission of an order
approved before the trading windows last closed is rejected."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from types import SimpleNamespace
from typing import Any, cast

import structlog

from actors.oms.order_book import OrderBook
from actors.oms.orders import (
    DROPPED_OUT_OF_SESSION,
    DROPPED_OUTSIDE_TRADING_WINDOW,
    DROPPED_STOPPED,
    DROPPED_UNSENT,
)
from actors.oms.trading_calendar import TradingCalendar
from actors.oms.unsent_guard import GuardHost, UnsentGuard, closed_since
from actors.runtime.operator_stops import OperatorStop
from protocol.messages import OrderStatus, OrdType, RiskVerdict, Side, SubmitOrder
from protocol.windows import TradingCfg

V = "simA"
TUE_OPEN = dt.datetime(2025, 6, 3, 9, 0, tzinfo=dt.UTC)  # a Tuesday
WINDOWS = {"windows": [{"days": ["tue", "wed"], "start": "09:00", "end": "16:00"}]}


def _ns(t: dt.datetime) -> int:
    return int(t.timestamp() * 1e9)


class _Gate:
    """The intake gate as the guard reads it: the stopped venues, as polled and as now."""

    def __init__(self) -> None:
        self.stopped_venues = frozenset[str]()

    def stopped(self) -> dict[str, OperatorStop]:
        return {v: OperatorStop(f"connector.{v}", "m", 0.0, v) for v in self.stopped_venues}


class _Host:
    def __init__(self, trading: dict[str, Any] | None = None) -> None:
        self.book = OrderBook()
        self.cfg = SimpleNamespace(trading=TradingCfg.model_validate(trading or {}))
        self.log = structlog.get_logger()
        self.kill_switch_engaged = False
        self.gate = _Gate()
        self.trading = SimpleNamespace(closed=False)
        self.venues = {V: object(), "simB": object()}

    def approved(self, coid: str, at: dt.datetime, venue: str = V) -> None:
        msg = SubmitOrder(
            client_order_id=coid, venue=venue, symbol="AAPL", side=Side.BUY, qty=Decimal(1),
            order_type=OrdType.LIMIT, price=Decimal("95"),
        )  # fmt: skip
        self.book.submit(msg, _ns(at))
        self.book.risk_verdict(RiskVerdict(client_order_id=coid, approved=True), _ns(at))

    def guard(self) -> UnsentGuard:
        return UnsentGuard(cast(GuardHost, self))

    def order(self, coid: str) -> Any:
        order = self.book.get(coid)
        assert order is not None
        return order


def test_a_stop_holds_the_books_never_sent_orders_of_that_venue_after_it_lifts() -> None:
    """Held at the stop: the venue's PENDING_SUBMIT order keeps DROPPED_STOPPED once the
    stop lifted (the Resubmit after `start` is rejected); an acknowledged order and another
    venue's order are not held."""
    host = _Host()
    host.approved("a", TUE_OPEN)
    host.approved("acked", TUE_OPEN)
    host.book.apply_venue_status("acked", OrderStatus.ACCEPTED, 5, venue_order_id="v1")
    host.approved("b", TUE_OPEN, venue="simB")
    guard = host.guard()
    assert guard.reason(host.order("a")) is None  # nothing closed at start: nothing held
    host.gate.stopped_venues = frozenset({V})
    guard.hold(V)
    host.gate.stopped_venues = frozenset()  # `start connector.simA`
    assert guard.reason(host.order("a")) == DROPPED_STOPPED
    assert guard.reason(host.order("acked")) is None
    assert guard.reason(host.order("b")) is None


def test_a_session_close_or_an_engaged_switch_holds_with_its_own_reason() -> None:
    """The reason held is the one that closed: the session (out_of_session), or the
    kill-switch (held at start already when it is engaged then)."""
    host = _Host()
    host.approved("a", TUE_OPEN)
    guard = host.guard()
    guard.hold(V, out_of_session=True)
    assert guard.reason(host.order("a")) == DROPPED_OUT_OF_SESSION
    engaged = _Host()
    engaged.approved("k", TUE_OPEN)
    engaged.kill_switch_engaged = True
    guard = engaged.guard()  # the OMS starts with the switch engaged
    engaged.kill_switch_engaged = False  # reset later
    assert guard.reason(engaged.order("k")) == DROPPED_UNSENT


def test_nothing_closed_holds_nothing() -> None:
    """A queue drop with nothing closing the venue (every reason None) holds no order."""
    host = _Host()
    host.approved("a", TUE_OPEN)
    guard = host.guard()
    guard.hold(V)
    assert guard.reason(host.order("a")) is None


def test_a_resubmission_of_an_order_approved_before_the_window_last_closed_is_refused() -> None:
    """Approved Tuesday 15:00, the window closed at 16:00 and reopened Wednesday 09:00 while
    the OMS restarted: its Resubmit on Wednesday is rejected (DROPPED_OUTSIDE_TRADING_WINDOW).
    One approved Wednesday and resubmitted the same morning, and one never resubmitted
    (sent from this process's queue, which the close emptied itself), are not."""
    host = _Host(WINDOWS)
    wed = TUE_OPEN + dt.timedelta(days=1)
    host.approved("old", TUE_OPEN + dt.timedelta(hours=6))
    host.approved("new", wed + dt.timedelta(minutes=30))
    host.approved("fresh", TUE_OPEN + dt.timedelta(hours=6))
    for coid in ("old", "new"):
        host.book.mark_resubmitted(coid, _ns(wed + dt.timedelta(hours=1)))
    guard = host.guard()
    assert host.order("old").status is OrderStatus.PENDING_SUBMIT
    assert guard.reason(host.order("old")) == DROPPED_OUTSIDE_TRADING_WINDOW
    assert guard.reason(host.order("new")) is None
    assert guard.reason(host.order("fresh")) is None


def test_closed_since_sees_a_close_between_the_two_instants_only() -> None:
    cal = TradingCalendar(TradingCfg.model_validate(WINDOWS))
    tue_noon = (TUE_OPEN + dt.timedelta(hours=3)).timestamp()
    assert not closed_since(cal, tue_noon, tue_noon + 3600)  # still open at 13:00
    assert closed_since(cal, tue_noon, tue_noon + 5 * 3600)  # 17:00: closed at 16:00
    assert closed_since(cal, tue_noon - 4 * 3600, tue_noon)  # 08:00: closed then
    always = TradingCalendar(TradingCfg.model_validate({}))
    assert not closed_since(always, tue_noon, tue_noon + 86400 * 30)
