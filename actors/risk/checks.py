"""Pre-trade risk checks: pure logic, no sockets, no wall clock (the caller passes `now_ns`).

- `check_*` functions: one limit each, each returns a `Verdict`.
- `SlidingWindowRate`: orders per second over a sliding one-second window.
- `BreachTracker`: escalation of breaches to "engage the kill-switch".
- `RiskGate`: all of the above in the order the risk actor runs them, reading an
  `ExposureView` (`actors.risk.exposure`, re-exported here).

Limits are inclusive: a value exactly at its limit passes, anything beyond it is rejected.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum

from actors.risk.exposure import ExposureSummary, ExposureView
from protocol.config import RiskLimitsCfg
from protocol.messages import OrdType, RiskCheck, RiskVerdict, Side
from protocol.wire_out import construct

__all__ = [
    "OK",
    "BreachTracker",
    "ExposureSummary",
    "ExposureView",
    "ReasonCode",
    "RiskGate",
    "SlidingWindowRate",
    "Verdict",
    "check_daily_loss",
    "check_notional",
    "check_open_orders",
    "check_order_qty",
    "check_position",
    "check_price_band",
    "check_shape",
]

_NS_PER_S = 1_000_000_000
_ZERO = Decimal(0)
_REFUSALS_KEPT = 1024  # orders whose last refusal a repeat is told from (`BreachTracker`)
_MARKET_PX = "the larger of the last fill price and the configured reference_prices"


class ReasonCode(StrEnum):
    """Stable reason codes of a verdict (they appear in `RiskVerdict.reason_code` and metrics)."""

    OK = "ok"
    INVALID_ORDER = "invalid_order"
    MAX_ORDER_QTY = "max_order_qty"
    MAX_NOTIONAL = "max_notional"
    MAX_POSITION = "max_position"
    MAX_OPEN_ORDERS = "max_open_orders"
    RATE_LIMIT_VENUE = "rate_limit_venue"
    RATE_LIMIT_TOTAL = "rate_limit_total"
    PRICE_BAND = "price_band"
    DAILY_LOSS = "daily_loss"
    KILL_SWITCH = "kill_switch"


@dataclass(frozen=True)
class Verdict:
    """`ratio` is value / limit for a breach of a numeric limit (drives escalation);
    `engage_reason` is non-empty when this verdict says "engage the kill-switch"."""

    approved: bool
    code: ReasonCode
    reason: str
    ratio: float | None = None
    engage_reason: str = ""

    @property
    def engage(self) -> bool:
        return bool(self.engage_reason)

    def to_message(self, client_order_id: str) -> RiskVerdict:
        """`RiskVerdict(...)` of this verdict, built without pydantic's validation when
        the values are what it would store (`wire_out.construct`; ~8 us less per check)."""
        return construct(
            RiskVerdict,
            client_order_id=client_order_id,
            approved=self.approved,
            reason_code=str(self.code),
            reason=self.reason,
        )


OK = Verdict(True, ReasonCode.OK, "")


def _reject(code: ReasonCode, reason: str, ratio: float | None = None) -> Verdict:
    return Verdict(False, code, reason, ratio)


def _ratio(value: Decimal, limit: Decimal) -> float:
    if limit <= 0:
        return float("inf")
    return float(value / limit)


# --------------------------------------------------------------------------- single checks


def check_order_qty(qty: Decimal, limits: RiskLimitsCfg) -> Verdict:
    if qty > limits.max_order_qty:
        return _reject(
            ReasonCode.MAX_ORDER_QTY,
            f"order qty {qty} exceeds max_order_qty {limits.max_order_qty}",
            _ratio(qty, limits.max_order_qty),
        )
    return OK


def check_notional(qty: Decimal, price: Decimal, limits: RiskLimitsCfg) -> Verdict:
    notional = qty * price
    if notional > limits.max_order_notional:
        return _reject(
            ReasonCode.MAX_NOTIONAL,
            f"order notional {notional} exceeds max_order_notional {limits.max_order_notional}",
            _ratio(notional, limits.max_order_notional),
        )
    return OK


def check_position(
    side: Side,
    qty: Decimal,
    position: Decimal,
    open_buy: Decimal,
    open_sell: Decimal,
    limits: RiskLimitsCfg,
) -> Verdict:
    """Worst case if every open order on the order's side fills: a buy is checked against
    position + open buys + qty, a sell against position - open sells - qty. An order that moves
    the worst case towards zero is never rejected by this check."""
    if side is Side.BUY:
        worst = position + open_buy + qty
        breached = worst > limits.max_position
    else:
        worst = position - open_sell - qty
        breached = worst < -limits.max_position
    if breached:
        return _reject(
            ReasonCode.MAX_POSITION,
            f"worst-case position {worst} (position {position}, open buy {open_buy}, "
            f"open sell {open_sell}, order {side} {qty}) exceeds max_position "
            f"{limits.max_position}",
            _ratio(abs(worst), limits.max_position),
        )
    return OK


def check_open_orders(open_orders: int, limits: RiskLimitsCfg) -> Verdict:
    """`open_orders` is the count before this order; the order would make it one more."""
    if open_orders + 1 > limits.max_open_orders_per_venue:
        return _reject(
            ReasonCode.MAX_OPEN_ORDERS,
            f"{open_orders} open orders on the venue, max_open_orders_per_venue is "
            f"{limits.max_open_orders_per_venue}",
        )
    return OK


def check_price_band(price: Decimal, reference: Decimal, limits: RiskLimitsCfg) -> Verdict:
    band = Decimal(str(limits.price_band_pct))
    if reference <= 0:
        return _reject(ReasonCode.PRICE_BAND, f"reference price {reference} is not positive")
    deviation_pct = abs(price - reference) / reference * 100
    if deviation_pct > band:
        return _reject(
            ReasonCode.PRICE_BAND,
            f"price {price} is {deviation_pct:.4f}% from reference {reference}, "
            f"price_band_pct is {band}",
            float(deviation_pct / band),
        )
    return OK


def check_daily_loss(daily_loss: Decimal, limits: RiskLimitsCfg) -> Verdict:
    """`daily_loss` is positive when losing (minus today's realized PnL)."""
    if daily_loss > limits.max_daily_loss:
        return _reject(
            ReasonCode.DAILY_LOSS,
            f"daily realized loss {daily_loss} exceeds max_daily_loss {limits.max_daily_loss}",
            _ratio(daily_loss, limits.max_daily_loss),
        )
    return OK


def check_shape(req: RiskCheck) -> Verdict:
    """Catch what would make the other checks meaningless (the OMS validates first)."""
    if req.qty <= 0:
        return _reject(ReasonCode.INVALID_ORDER, f"qty {req.qty} is not positive")
    if req.order_type is OrdType.LIMIT and (req.price is None or req.price <= 0):
        return _reject(ReasonCode.INVALID_ORDER, f"limit order with price {req.price}")
    return OK


class SlidingWindowRate:
    """Counts events in the window (now - window_s, now]; allows at most `limit_per_s *
    window_s` of them. `now_ns` must come from a monotonic clock."""

    def __init__(self, limit_per_s: float, window_s: float = 1.0) -> None:
        self._max_events = limit_per_s * window_s
        self._window_ns = int(window_s * _NS_PER_S)
        self._stamps: deque[int] = deque()

    def count(self, now_ns: int) -> int:
        horizon = now_ns - self._window_ns
        while self._stamps and self._stamps[0] <= horizon:
            self._stamps.popleft()
        return len(self._stamps)

    def allows(self, now_ns: int) -> bool:
        return self.count(now_ns) + 1 <= self._max_events

    def set_limit(self, limit_per_s: float) -> None:
        self._max_events = limit_per_s * self._window_ns / _NS_PER_S

    def record(self, now_ns: int) -> None:
        self._stamps.append(now_ns)


# --------------------------------------------------------------------------- escalation


class BreachTracker:
    """A breach beyond `breach_multiplier` x its limit, or `breaches_to_engage` breaches
    within `breach_window_s`, says "engage the kill-switch". Kill-switch rejections are not
    breaches (trading is already halted). A check refused as the same order's last one was
    (`check`: a client asking a refused replace again, which the verdict cache no longer
    answers) counts once (found by review: each retry counted, and one client retrying one
    refused replace engaged the switch for every venue)."""

    def __init__(self, limits: RiskLimitsCfg) -> None:
        self._limits = limits
        self._window_ns = int(limits.breach_window_s * _NS_PER_S)
        self._stamps: deque[int] = deque()
        self._refused: OrderedDict[str, tuple[RiskCheck, ReasonCode]] = OrderedDict()

    def approved(self, client_order_id: str) -> None:
        if self._refused:  # its next refusal is a new breach
            self._refused.pop(client_order_id, None)

    def record(self, verdict: Verdict, now_ns: int, check: RiskCheck | None = None) -> str:
        """Returns the reason to engage the kill-switch, or "" to carry on."""
        if verdict.approved or verdict.code is ReasonCode.KILL_SWITCH:
            return ""
        lim = self._limits
        if verdict.ratio is not None and verdict.ratio > lim.breach_multiplier:
            return (
                f"{verdict.code} breach at {verdict.ratio:.2f}x its limit "
                f"(breach_multiplier {lim.breach_multiplier:g}): {verdict.reason}"
            )
        if check is not None:
            last = self._refused.pop(check.client_order_id, None)
            self._refused[check.client_order_id] = (check, verdict.code)
            if len(self._refused) > _REFUSALS_KEPT:
                self._refused.popitem(last=False)
            if last == (check, verdict.code):
                return ""
        horizon = now_ns - self._window_ns
        while self._stamps and self._stamps[0] <= horizon:
            self._stamps.popleft()
        self._stamps.append(now_ns)
        if len(self._stamps) >= lim.breaches_to_engage:
            count = len(self._stamps)
            self._stamps.clear()
            return (
                f"{count} risk breaches within {lim.breach_window_s:g}s "
                f"(breaches_to_engage {lim.breaches_to_engage}), last: {verdict.code}"
            )
        return ""

    def reset(self) -> None:
        self._stamps.clear()
        self._refused.clear()

    def set_limits(self, limits: RiskLimitsCfg) -> None:
        self._limits = limits
        self._window_ns = int(limits.breach_window_s * _NS_PER_S)


# --------------------------------------------------------------------------- the gate


class RiskGate:
    """Runs every check on a `RiskCheck`; an approved order is counted at once (rates and
    provisional exposure). `reference_prices` are used for a symbol until it has a fill.

    A check for an order already counted as open (a re-sent check whose verdict was lost, or
    a replace checked under the same client order id) is measured without its own earlier
    exposure, so it is not counted twice, and takes no new rate slot. Of a live order, what
    max_position and max_order_notional count is its new qty less its filled part (in the
    position already): what could still execute."""

    def __init__(
        self,
        limits: RiskLimitsCfg,
        *,
        reference_prices: Mapping[str, Decimal] | None = None,
        exposure: ExposureView | None = None,
    ) -> None:
        self.limits = limits
        self.exposure = exposure if exposure is not None else ExposureView()
        self.breaches = BreachTracker(limits)
        self._reference_prices = dict(reference_prices or {})
        self._rate_total = SlidingWindowRate(limits.max_orders_per_s)
        self._rate_venue: dict[str, SlidingWindowRate] = {}
        self._day_start_pnl = self.exposure.realized_pnl()

    def set_limits(self, limits: RiskLimitsCfg) -> None:
        """New limits (a config reload), in force from the next check; the orders counted
        in the rate windows and the breaches so far are kept."""
        self.limits = limits
        self.breaches.set_limits(limits)
        self._rate_total.set_limit(limits.max_orders_per_s)
        for rate in self._rate_venue.values():
            rate.set_limit(limits.max_orders_per_s_per_venue)

    def reference_price(self, symbol: str) -> Decimal | None:
        """The last fill price of the symbol, else its configured reference (the band)."""
        return self.exposure.last_px.get(symbol) or self._reference_prices.get(symbol)

    def market_price(self, symbol: str) -> Decimal | None:
        """A market order's price for its notional: the larger of the symbol's last fill
        price and its configured reference. Neither is the price it will execute at, and
        risk cannot tell which is newer: the last fill may be days old (the OMS keeps it
        across restarts, and a rebuild takes it), the configured one is read at every start
        and has no time. The larger never counts less than either (a notional limit bounds
        the worst); it refuses more only when the market has fallen below the configured
        reference, which an operator lowers (or a limit order avoids). Before, the last
        fill alone: risk restarted over a book filled at 100 with a reference since set to
        150 priced at 100 an order that executed near 150, over max_order_notional."""
        last, configured = self.exposure.last_px.get(symbol), self._reference_prices.get(symbol)
        if last is None or configured is None:
            return last or configured
        return max(last, configured)

    def live(self, client_order_id: str) -> bool:
        """Is the order live in the view (past PENDING_RISK, not finished): a check of it
        is a replace's."""
        return self.exposure.is_live(client_order_id)

    def start_trading_day(self, baseline: Decimal | None = None) -> None:
        """Today's loss is measured from `baseline`, the realized PnL when the trading day
        started (None: now). Its owner is `actors.risk.trading_day`, which persists it."""
        self._day_start_pnl = self.exposure.realized_pnl() if baseline is None else baseline

    @property
    def day_start_pnl(self) -> Decimal:
        return self._day_start_pnl

    def realized_pnl(self) -> Decimal:
        return self.exposure.realized_pnl()

    def realized_pnl_at(self, start_ns: int) -> tuple[Decimal, list[str]]:
        return self.exposure.realized_pnl_at(start_ns)

    def daily_loss(self) -> Decimal:
        """Minus today's realized PnL: positive when losing."""
        return self._day_start_pnl - self.exposure.realized_pnl()

    def check(self, req: RiskCheck, *, now_ns: int, kill_switch_engaged: bool = False) -> Verdict:
        resent = self.exposure.own_open(req.client_order_id) is not None
        verdict = self._evaluate(req, now_ns, kill_switch_engaged, resent)
        if verdict.approved:
            if not resent:  # the same order goes to the venue once: one rate slot
                self._rate_total.record(now_ns)
                self._venue_rate(req.venue).record(now_ns)
            self.exposure.add_provisional(req)
            self.breaches.approved(req.client_order_id)
            return verdict
        engage_reason = self.breaches.record(verdict, now_ns, req)
        return replace(verdict, engage_reason=engage_reason) if engage_reason else verdict

    def _venue_rate(self, venue: str) -> SlidingWindowRate:
        rate = self._rate_venue.get(venue)
        if rate is None:
            rate = self._rate_venue[venue] = SlidingWindowRate(
                self.limits.max_orders_per_s_per_venue
            )
        return rate

    def _evaluate(
        self, req: RiskCheck, now_ns: int, kill_switch_engaged: bool, resent: bool
    ) -> Verdict:
        lim = self.limits
        if kill_switch_engaged:
            return _reject(ReasonCode.KILL_SWITCH, "kill-switch engaged: trading is halted")
        for verdict in (check_shape(req), check_daily_loss(self.daily_loss(), lim)):
            if not verdict.approved:
                return verdict
        if req.order_type is OrdType.MARKET:
            reference = None  # (no band: it is priced at the reference)
            price = self.market_price(req.symbol)
            if price is None:
                return _reject(
                    ReasonCode.PRICE_BAND,
                    f"no reference price for {req.symbol}: a market order cannot be bounded",
                )
        else:
            assert req.price is not None  # check_shape
            price, reference = req.price, self.reference_price(req.symbol)
        exp = self.exposure
        open_buy = exp.open_qty(req.symbol, Side.BUY)
        open_sell = exp.open_qty(req.symbol, Side.SELL)
        open_orders = exp.open_orders(req.venue)
        own = exp.own_open(req.client_order_id)
        if own is not None:  # a re-sent check (its verdict was lost): do not count it twice
            own_venue, own_side, own_leaves = own
            open_buy -= own_leaves if own_side is Side.BUY else 0
            open_sell -= own_leaves if own_side is Side.SELL else 0
            open_orders -= 1 if own_venue == req.venue else 0
        # what could still execute: of a live order (a replace: `qty` is its new total), its
        # filled part is in the position already (counted twice, a replace of 100 with 60
        # filled to 120 was measured 180); the order's size is still `qty` (max_order_qty)
        qty = max(req.qty - exp.filled(req.client_order_id), _ZERO)
        for verdict in (
            check_order_qty(req.qty, lim),
            check_price_band(price, reference, lim) if reference is not None else OK,
            check_notional(qty, price, lim),
            check_position(req.side, qty, exp.position(req.symbol), open_buy, open_sell, lim),
            check_open_orders(open_orders, lim),
        ):
            if not verdict.approved:
                if verdict.code is ReasonCode.MAX_NOTIONAL and req.order_type is OrdType.MARKET:
                    # say the price: a configured reference above the market refuses them all
                    why = f"{verdict.reason} (a market order priced at {price}: {_MARKET_PX})"
                    return replace(verdict, reason=why)
                return verdict
        if resent:
            return OK
        if not self._venue_rate(req.venue).allows(now_ns):
            return _reject(
                ReasonCode.RATE_LIMIT_VENUE,
                f"over max_orders_per_s_per_venue {lim.max_orders_per_s_per_venue:g} "
                f"on {req.venue}",
            )
        if not self._rate_total.allows(now_ns):
            return _reject(
                ReasonCode.RATE_LIMIT_TOTAL, f"over max_orders_per_s {lim.max_orders_per_s:g}"
            )
        return OK
