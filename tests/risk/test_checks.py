"""Pre-trade risk checks: each limit at, just under and just over; exposure; escalation."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.risk.checks import (
    BreachTracker,
    ExposureView,
    ReasonCode,
    RiskGate,
    SlidingWindowRate,
    Verdict,
    check_daily_loss,
    check_notional,
    check_open_orders,
    check_order_qty,
    check_position,
    check_price_band,
)
from protocol import wire_out
from protocol.config import RiskLimitsCfg
from protocol.messages import (
    OrderEvent,
    OrderStatus,
    OrderView,
    OrdType,
    PositionView,
    RiskCheck,
    RiskVerdict,
    Side,
)

D = Decimal
S = 1_000_000_000
LIMITS = RiskLimitsCfg(
    max_order_qty=D(100),
    max_order_notional=D(10000),
    max_position=D(500),
    max_open_orders_per_venue=3,
    max_orders_per_s_per_venue=5,
    max_orders_per_s=8,
    price_band_pct=10.0,
    max_daily_loss=D(1000),
    breach_multiplier=5.0,
    breaches_to_engage=4,
    breach_window_s=10.0,
)
_ids = itertools.count()


def req(
    qty: str | int = 10,
    price: str | int | None = 100,
    *,
    side: Side = Side.BUY,
    symbol: str = "AAPL",
    venue: str = "sim",
    order_type: OrdType = OrdType.LIMIT,
    coid: str | None = None,
) -> RiskCheck:
    return RiskCheck(
        client_order_id=coid or f"c{next(_ids)}",
        venue=venue,
        symbol=symbol,
        side=side,
        qty=D(qty),
        order_type=order_type,
        price=None if price is None else D(price),
    )


def order(
    coid: str,
    status: OrderStatus,
    *,
    qty: str | int = 10,
    cum: str | int = 0,
    avg: str | int = 0,
    side: Side = Side.BUY,
    symbol: str = "AAPL",
    venue: str = "sim",
    ts_ns: int = 0,
) -> OrderView:
    return OrderView(
        client_order_id=coid,
        venue=venue,
        symbol=symbol,
        side=side,
        qty=D(qty),
        order_type=OrdType.LIMIT,
        price=D(100),
        status=status,
        cum_qty=D(cum),
        avg_px=D(avg),
        ts_ns=ts_ns,
    )


def event(
    o: OrderView, fill_qty: str | int | None = None, fill_px: str | int | None = None
) -> OrderEvent:
    return OrderEvent(
        event_seq=next(_ids),
        order=o,
        fill_qty=None if fill_qty is None else D(fill_qty),
        fill_px=None if fill_px is None else D(fill_px),
    )


def gate(limits: RiskLimitsCfg = LIMITS, **refs: int) -> RiskGate:
    return RiskGate(limits, reference_prices={k: D(v) for k, v in (refs or {"AAPL": 100}).items()})


# Open orders not limiting, for the tests of the other limits.
MANY_OPEN = LIMITS.model_copy(update={"max_open_orders_per_venue": 1000})


def filled(
    view: ExposureView, coid: str, side: Side, qty: int, px: str | int, **kw: object
) -> None:
    """Apply an order that opened and filled completely in one execution."""
    view.apply_order_event(event(order(coid, OrderStatus.ACCEPTED, qty=qty, side=side, **kw)))  # type: ignore[arg-type]
    view.apply_order_event(
        event(order(coid, OrderStatus.FILLED, qty=qty, cum=qty, avg=px, side=side, **kw), qty, px)  # type: ignore[arg-type]
    )


# --------------------------------------------------------------------------- single checks


@pytest.mark.parametrize(("qty", "approved"), [("99", True), ("100", True), ("100.0001", False)])
def test_order_qty_limit_is_inclusive(qty: str, approved: bool) -> None:
    """An order of exactly max_order_qty passes; anything above is rejected as max_order_qty."""
    v = check_order_qty(D(qty), LIMITS)
    assert v.approved is approved
    assert v.code is (ReasonCode.OK if approved else ReasonCode.MAX_ORDER_QTY)
    if not approved:
        assert "max_order_qty" in v.reason


@pytest.mark.parametrize(
    ("qty", "price", "approved"),
    [("99", "100", True), ("100", "100", True), ("100", "100.01", False)],
)
def test_notional_limit_is_inclusive(qty: str, price: str, approved: bool) -> None:
    """qty x price at max_order_notional passes; one cent over is rejected as max_notional."""
    v = check_notional(D(qty), D(price), LIMITS)
    assert v.approved is approved
    assert v.code is (ReasonCode.OK if approved else ReasonCode.MAX_NOTIONAL)


@pytest.mark.parametrize(
    ("side", "qty", "approved"),
    [
        (Side.BUY, "49", True),
        (Side.BUY, "50", True),
        (Side.BUY, "51", False),
        (Side.SELL, "900", True),
        (Side.SELL, "901", False),
    ],
)
def test_position_limit_counts_open_orders_on_the_orders_side(
    side: Side, qty: str, approved: bool
) -> None:
    """Long 400 with 50 open to buy: a buy may add 50 more (worst case 500), not 51. A sell is
    checked on the short side without credit for the open buys (they may be cancelled):
    400 - 900 = -500 passes, 400 - 901 does not."""
    v = check_position(side, D(qty), D(400), D(50), D(0), LIMITS)
    assert v.approved is approved, v.reason
    if not approved:
        assert v.code is ReasonCode.MAX_POSITION


@pytest.mark.parametrize(("qty", "approved"), [("49", True), ("50", True), ("50.5", False)])
def test_position_limit_short_side(qty: str, approved: bool) -> None:
    """Short 400 with 50 open to sell: a sell of 50 reaches -500 and passes, more is rejected."""
    v = check_position(Side.SELL, D(qty), D(-400), D(0), D(50), LIMITS)
    assert v.approved is approved


def test_position_reducing_order_passes_even_when_over_the_limit() -> None:
    """Short 700 (already over the limit, e.g. after an unmatched fill): buying back is allowed."""
    assert check_position(Side.BUY, D(100), D(-700), D(0), D(0), LIMITS).approved


@pytest.mark.parametrize(("open_orders", "approved"), [(1, True), (2, True), (3, False)])
def test_open_orders_limit(open_orders: int, approved: bool) -> None:
    """With max 3 per venue: 2 open orders plus this one is 3 (passes); 3 open plus one is not."""
    v = check_open_orders(open_orders, LIMITS)
    assert v.approved is approved
    assert v.code is (ReasonCode.OK if approved else ReasonCode.MAX_OPEN_ORDERS)


@pytest.mark.parametrize(
    ("price", "approved"),
    [("110", True), ("109.99", True), ("90", True), ("110.01", False), ("89.99", False)],
)
def test_price_band_is_symmetric_and_inclusive(price: str, approved: bool) -> None:
    """Reference 100, band 10%: 90..110 inclusive pass, a cent outside is price_band."""
    v = check_price_band(D(price), D(100), LIMITS)
    assert v.approved is approved
    assert v.code is (ReasonCode.OK if approved else ReasonCode.PRICE_BAND)


@pytest.mark.parametrize(("loss", "approved"), [("999", True), ("1000", True), ("1000.01", False)])
def test_daily_loss_limit(loss: str, approved: bool) -> None:
    v = check_daily_loss(D(loss), LIMITS)
    assert v.approved is approved
    assert v.code is (ReasonCode.OK if approved else ReasonCode.DAILY_LOSS)


def test_verdict_maps_to_the_wire_message() -> None:
    msg = check_order_qty(D(101), LIMITS).to_message("c-1")
    assert (msg.client_order_id, msg.approved, msg.reason_code) == ("c-1", False, "max_order_qty")
    assert msg.reason


@pytest.mark.parametrize("code", list(ReasonCode))
@pytest.mark.parametrize("coid", ["c-1", "lat-00001", "x" * 64, "sp ace"])
def test_the_wire_message_is_the_one_pydantic_validates(code: ReasonCode, coid: str) -> None:
    """`to_message` (built without validation) equals `RiskVerdict(...)` validated: the
    same values of the same types, the same fields set, the same bytes on the wire."""
    for verdict in (Verdict(code is ReasonCode.OK, code, "" if code is ReasonCode.OK else "why"),
                    Verdict(False, code, f"{code} breach", 2.5, "engage")):  # fmt: skip
        new = verdict.to_message(coid)
        old = RiskVerdict(client_order_id=coid, approved=verdict.approved,
                          reason_code=str(verdict.code), reason=verdict.reason)  # fmt: skip
        assert type(new) is RiskVerdict and new == old and repr(new) == repr(old)
        assert new.model_fields_set == old.model_fields_set
        assert [type(v) for v in new.__dict__.values()] == [type(v) for v in old.__dict__.values()]
        assert wire_out.dump(new) == old.model_dump(mode="json", exclude={"type"})


# --------------------------------------------------------------------------- sliding window


def test_sliding_window_allows_the_limit_per_window_and_frees_slots_as_they_age() -> None:
    """5/s: five orders in the first millisecond pass, the sixth does not until the first is a
    full second old (window is (now - 1s, now])."""
    rate = SlidingWindowRate(5)
    for i in range(5):
        assert rate.allows(i)
        rate.record(i)
    assert not rate.allows(10)
    assert not rate.allows(S - 1)
    assert rate.allows(S)  # the stamp at 0 has left the window
    assert rate.count(S + 4) == 0


def test_gate_rate_limit_per_venue_then_total() -> None:
    """Venue limit 5/s and total 8/s: the 6th order on one venue in a second is
    rate_limit_venue; 5 + 3 on two venues fill the total and the 9th is rate_limit_total.
    A rejected order takes no slot."""
    g = gate(MANY_OPEN)
    for i in range(5):
        assert g.check(req(1, venue="a"), now_ns=i).approved
    v = g.check(req(1, venue="a"), now_ns=5)
    assert v.code is ReasonCode.RATE_LIMIT_VENUE
    for i in range(3):
        assert g.check(req(1, venue="b"), now_ns=10 + i).approved
    assert g.check(req(1, venue="b"), now_ns=20).code is ReasonCode.RATE_LIMIT_TOTAL
    assert g.check(req(1, venue="c"), now_ns=S - 1).code is ReasonCode.RATE_LIMIT_TOTAL
    assert g.check(req(1, venue="a"), now_ns=S).approved


# --------------------------------------------------------------------------- gate


def test_gate_approves_a_plain_order_and_counts_it_at_once() -> None:
    """Before the OMS's event arrives, an approved order already counts as open."""
    g = gate()
    r = req(10, 100)
    assert g.check(r, now_ns=0) == Verdict(True, ReasonCode.OK, "")
    assert g.exposure.open_orders("sim") == 1
    assert g.exposure.open_qty("AAPL", Side.BUY) == D(10)


def test_kill_switch_rejects_everything_first() -> None:
    v = gate().check(req(1, 100), now_ns=0, kill_switch_engaged=True)
    assert (v.approved, v.code) == (False, ReasonCode.KILL_SWITCH)


def test_invalid_orders_are_rejected() -> None:
    g = gate()
    assert g.check(req(0, 100), now_ns=0).code is ReasonCode.INVALID_ORDER
    assert g.check(req(1, None), now_ns=0).code is ReasonCode.INVALID_ORDER


def test_open_orders_count_towards_position_not_only_fills() -> None:
    """No fills yet, 450 open to buy (five approved orders): a buy of 51 would reach 501."""
    g = gate(
        MANY_OPEN.model_copy(
            update={"max_orders_per_s_per_venue": 100.0, "max_orders_per_s": 100.0}
        ),
        AAPL=10,
    )
    for _ in range(4):
        assert g.check(req(100, 10), now_ns=0).approved
    assert g.check(req(50, 10), now_ns=0).approved
    v = g.check(req(51, 10), now_ns=0)
    assert v.code is ReasonCode.MAX_POSITION
    assert g.check(req(50, 10), now_ns=0).approved  # exactly 500


def test_open_orders_per_venue_limit_through_the_gate() -> None:
    g = gate()
    for _ in range(3):
        assert g.check(req(1, 100), now_ns=0).approved
    assert g.check(req(1, 100), now_ns=0).code is ReasonCode.MAX_OPEN_ORDERS
    assert g.check(req(1, 100, venue="other"), now_ns=0).approved


def test_market_order_uses_reference_price_for_band_and_notional() -> None:
    """A market order is valued at the reference: 100 @ 100 = 10000 passes, 100 @ 100.01 not."""
    assert gate().check(req(100, None, order_type=OrdType.MARKET), now_ns=0).approved
    g = RiskGate(LIMITS, reference_prices={"AAPL": D("100.01")})
    v = g.check(req(100, None, order_type=OrdType.MARKET), now_ns=0)
    assert v.code is ReasonCode.MAX_NOTIONAL


def test_market_order_without_reference_is_refused() -> None:
    v = gate(MSFT=100).check(req(1, None, order_type=OrdType.MARKET), now_ns=0)
    assert v.code is ReasonCode.PRICE_BAND
    assert "no reference price" in v.reason


def test_last_fill_price_replaces_the_configured_reference() -> None:
    """After a fill at 60, the band is 54..66 whatever the configured reference says."""
    g = gate()
    filled(g.exposure, "f1", Side.BUY, 1, 60)
    assert g.reference_price("AAPL") == D(60)
    assert g.check(req(1, 66), now_ns=0).approved
    assert g.check(req(1, "66.01"), now_ns=0).code is ReasonCode.PRICE_BAND
    assert g.check(req(1, 100), now_ns=0).code is ReasonCode.PRICE_BAND


def test_limit_order_without_any_reference_skips_the_band() -> None:
    assert gate(MSFT=1).check(req(1, 5), now_ns=0).approved


def test_daily_loss_from_realized_pnl_and_day_roll() -> None:
    """Buy 10 @ 100, sell 10 @ 0: a realized loss of 1000 is at the limit and still trades;
    a further loss of 0.01 stops new orders; a new trading day starts from zero."""
    g = RiskGate(
        LIMITS.model_copy(update={"price_band_pct": 1000.0}), reference_prices={"AAPL": D(1)}
    )
    filled(g.exposure, "b1", Side.BUY, 10, 100)
    filled(g.exposure, "s1", Side.SELL, 10, 0)
    assert g.daily_loss() == D(1000)
    assert g.check(req(1, 1), now_ns=0).approved
    filled(g.exposure, "b2", Side.BUY, 1, "0.01")
    filled(g.exposure, "s2", Side.SELL, 1, 0)
    v = g.check(req(1, 1), now_ns=0)
    assert v.code is ReasonCode.DAILY_LOSS
    g.start_trading_day()
    assert g.daily_loss() == 0
    assert g.check(req(1, 1), now_ns=1).approved


# --------------------------------------------------------------------------- escalation


def test_breach_beyond_multiplier_engages_at_once() -> None:
    """qty 501 is 5.01x max_order_qty (multiplier 5): engage; 500 is exactly 5x: only reject."""
    g = gate()
    v = g.check(req(500, 1), now_ns=0)
    assert (v.approved, v.engage) == (False, False)
    v = g.check(req(501, 1), now_ns=1)
    assert v.engage
    assert "max_order_qty" in v.engage_reason and "5.01x" in v.engage_reason


def test_repeated_breaches_within_the_window_engage() -> None:
    """4 breaches within 10 s engage on the 4th; the same breaches spread over more than the
    window do not; kill-switch rejections are not breaches."""
    t = BreachTracker(LIMITS)
    breach = check_order_qty(D(101), LIMITS)
    assert [t.record(breach, i * S) != "" for i in range(4)] == [False, False, False, True]
    t.reset()
    assert all(t.record(breach, i * 4 * S) == "" for i in range(10))  # 3 per 10 s at most
    ks = Verdict(False, ReasonCode.KILL_SWITCH, "halted")
    t.reset()
    assert all(t.record(ks, i) == "" for i in range(100))
    assert t.record(Verdict(True, ReasonCode.OK, ""), 0) == ""


def test_gate_escalates_a_runaway_over_the_rate_limit() -> None:
    """A strategy that keeps firing past its rate limit ends up engaging the kill-switch."""
    g = gate(MANY_OPEN)
    verdicts = [g.check(req(1, 100, venue=f"v{i % 2}"), now_ns=i) for i in range(12)]
    assert [v.approved for v in verdicts] == [True] * 8 + [False] * 4
    assert [v.engage for v in verdicts[8:]] == [False, False, False, True]
    assert "4 risk breaches" in verdicts[-1].engage_reason


# --------------------------------------------------------------------------- exposure view


def _scenario() -> list[OrderEvent]:
    """Two venues, partial fills, a flip from long to short, a cancel, an open remainder."""
    return [
        event(order("a", OrderStatus.ACCEPTED, qty=10)),
        event(order("a", OrderStatus.PARTIALLY_FILLED, qty=10, cum=4, avg=100), 4, 100),
        event(
            order("a", OrderStatus.FILLED, qty=10, cum=10, avg=101),
            6,
            "101.6666666666666666666666667",
        ),
        event(order("b", OrderStatus.ACCEPTED, qty=15, side=Side.SELL)),
        event(order("b", OrderStatus.FILLED, qty=15, cum=15, avg=110, side=Side.SELL), 15, 110),
        event(order("c", OrderStatus.ACCEPTED, qty=7, venue="x", symbol="MSFT")),
        event(
            order(
                "c", OrderStatus.PARTIALLY_FILLED, qty=7, cum=2, avg=50, venue="x", symbol="MSFT"
            ),
            2,
            50,
        ),
        event(order("d", OrderStatus.PENDING_SUBMIT, qty=3, side=Side.SELL)),
        event(order("e", OrderStatus.ACCEPTED, qty=5)),
        event(order("e", OrderStatus.CANCELLED, qty=5)),
    ]


def _final_orders() -> list[OrderView]:
    last: dict[str, OrderView] = {}
    for e in _scenario():
        last[e.order.client_order_id] = e.order
    return list(last.values())


def test_incremental_view_tracks_positions_open_orders_and_pnl() -> None:
    view = ExposureView()
    for e in _scenario():
        view.apply_order_event(e)
    s = view.summary()
    # long 10 @ avg 101, sell 15 @ 110: realize 10 x 9 = 90, short 5 @ 110
    assert s.positions == {("sim", "AAPL"): D(-5), ("x", "MSFT"): D(2)}
    assert s.realized_pnl == D(90)
    assert s.open_buy == {"MSFT": D(5)}
    assert s.open_sell == {"AAPL": D(3)}
    assert s.open_orders == {"x": 1, "sim": 1}


def test_rebuild_from_lists_equals_incremental_updates() -> None:
    """After a restart, the view rebuilt from the OMS's orders and positions decides exactly
    like the view fed event by event."""
    incremental = ExposureView()
    for e in _scenario():
        incremental.apply_order_event(e)
    positions = [
        PositionView(venue="sim", symbol="AAPL", qty=D(-5), avg_px=D(110), realized_pnl=D(90)),
        PositionView(venue="x", symbol="MSFT", qty=D(2), avg_px=D(50)),
    ]
    rebuilt = ExposureView.rebuild(_final_orders(), positions)
    assert rebuilt.summary() == incremental.summary()
    g1 = RiskGate(LIMITS, exposure=incremental)
    g2 = RiskGate(LIMITS, exposure=rebuilt)
    for r in (req(90, 100), req(100, 100, side=Side.SELL), req(5, 50, symbol="MSFT", venue="x")):
        assert g1.check(r, now_ns=0) == g2.check(r, now_ns=0)
    # and keeps applying events the same way: a replay of the whole stream changes nothing
    for e in _scenario():
        rebuilt.apply_order_event(e)
    assert rebuilt.summary().positions == incremental.summary().positions


def test_replayed_and_stale_events_change_nothing() -> None:
    """Position moves by cum_qty increases only: a duplicate fill event is not counted twice,
    and an ACCEPTED replayed after FILLED does not reopen the order."""
    view = ExposureView()
    for e in _scenario():
        view.apply_order_event(e)
        view.apply_order_event(e)
    once = ExposureView()
    for e in _scenario():
        once.apply_order_event(e)
    assert view.summary() == once.summary()
    view.apply_order_event(event(order("a", OrderStatus.ACCEPTED, qty=10)))
    assert view.summary() == once.summary()


def test_folded_fills_use_the_average_price() -> None:
    """One event carrying two fills (cum 0 -> 10 at avg 105) moves the position by 10 @ 105,
    whatever its own fill says (4 @ 100, the last one's, as the OMS once published)."""
    view = ExposureView()
    view.apply_order(order("a", OrderStatus.ACCEPTED, qty=10))
    view.apply_order(
        order("a", OrderStatus.FILLED, qty=10, cum=10, avg=105), fill_qty=D(4), fill_px=D(100)
    )
    view.apply_order(order("s", OrderStatus.FILLED, qty=10, cum=10, avg=105, side=Side.SELL))
    assert view.position("AAPL") == 0
    assert view.realized_pnl() == 0


def test_provisional_order_survives_a_late_pending_risk_event_and_goes_on_reject() -> None:
    """The OMS's PENDING_RISK event may arrive after risk approved the order: the order stays
    counted; the OMS's REJECTED event for it removes it."""
    g = gate()
    r = req(10, 100, coid="p1")
    assert g.check(r, now_ns=0).approved
    g.exposure.apply_order_event(event(order("p1", OrderStatus.PENDING_RISK)))
    assert g.exposure.open_orders("sim") == 1
    g.exposure.apply_order_event(event(order("p1", OrderStatus.REJECTED)))
    assert g.exposure.open_orders("sim") == 0


def test_an_order_the_view_does_not_know_counts_what_its_event_brings_as_new() -> None:
    """A finished order unknown to the view (ended before a rebuild, or forgotten): only its
    event's fill is new (cum 50, fill 10 @ 99: +10 @ 99). A live one (adopted by the OMS from
    a venue) and an event without a fill: its whole cum_qty is new."""
    view = ExposureView()
    late = order("x", OrderStatus.CANCELLED, qty=60, cum=50, avg=100)
    view.apply_order(late, fill_qty=D(10), fill_px=D(99))
    assert view.position("AAPL") == 10 and view.last_px["AAPL"] == 99
    view.apply_order(late, fill_qty=D(10), fill_px=D(99))  # replayed: known now
    view.apply_order(
        order("ext", OrderStatus.PARTIALLY_FILLED, qty=60, cum=30, avg=100), fill_qty=D(5)
    )
    view.apply_order(order("y", OrderStatus.FILLED, qty=20, cum=20, avg=100))
    assert view.position("AAPL") == 60 and view.open_qty("AAPL", Side.BUY) == 30


def test_unmatched_fill_moves_the_position() -> None:
    view = ExposureView()
    view.apply_unmatched_fill("sim", "AAPL", Side.SELL, D(3), D(99))
    assert view.position("AAPL") == D(-3)
    assert view.last_px["AAPL"] == D(99)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from([Side.BUY, Side.SELL]), st.integers(1, 20), st.integers(90, 110)),
        max_size=25,
    )
)
def test_position_is_the_signed_sum_of_fills_and_pnl_closes_out(
    fills: list[tuple[Side, int, int]],
) -> None:
    """Whatever the fills, the position is their signed sum, and closing it out at the average
    price realizes nothing more."""
    view = ExposureView()
    for side, qty, px in fills:
        view.apply_unmatched_fill("sim", "AAPL", side, D(qty), D(px))
    expected = sum((D(q) if s is Side.BUY else -D(q) for s, q, _ in fills), D(0))
    assert view.position("AAPL") == expected
    pos = view.position_view("sim", "AAPL")
    if pos.qty != 0:
        before = view.realized_pnl()
        close_side = Side.SELL if pos.qty > 0 else Side.BUY
        view.apply_unmatched_fill("sim", "AAPL", close_side, abs(pos.qty), pos.avg_px)
        assert view.position("AAPL") == 0
        assert view.realized_pnl() == before


def test_a_resent_check_does_not_count_its_own_earlier_approval() -> None:
    """The OMS re-sends a RiskCheck whose verdict it lost: the order's own provisional
    exposure is not counted twice, so the same order is approved again at the limit."""
    r = req(100, 1, coid="again")
    g = gate(MANY_OPEN, AAPL=1)
    for _ in range(4):
        assert g.check(req(100, 1), now_ns=0).approved
    assert g.check(r, now_ns=1).approved  # worst case exactly 500
    assert g.check(r, now_ns=2).approved  # the same order again: still 500, not 600
    assert g.exposure.open_qty("AAPL", Side.BUY) == D(500)
    assert g.check(req(1, 1), now_ns=3).code is ReasonCode.MAX_POSITION


def test_new_limits_apply_from_the_next_check_and_keep_the_counts() -> None:
    """`set_limits` (a config reload): an order within the old limit is refused under the
    lower one; the rate window keeps the orders already counted against the new rate."""
    g = gate(MANY_OPEN)
    assert g.check(req(10), now_ns=1).approved
    g.set_limits(MANY_OPEN.model_copy(update={"max_order_qty": D(5), "max_orders_per_s": 2.0}))
    assert g.check(req(10), now_ns=2).code is ReasonCode.MAX_ORDER_QTY
    assert g.check(req(5), now_ns=3).approved
    assert g.check(req(5), now_ns=4).code is ReasonCode.RATE_LIMIT_TOTAL  # 2 in the window
