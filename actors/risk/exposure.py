"""What the risk checks read: positions, open orders and realized PnL (pure, no sockets).

The risk actor feeds an `ExposureView` from the OMS's `OrderEvent`s and rebuilds it from the
OMS's full order and position lists after a restart. Aggregates (open qty per symbol and side,
open orders per venue) are kept incrementally, so a check costs O(1) whatever the book size.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

import msgspec

from protocol.fees import NO_FEE, FeeParts, book_fee, book_fill, unbook_fill
from protocol.messages import (
    TERMINAL_STATUSES,
    OrderEvent,
    OrderStatus,
    OrderView,
    PositionView,
    RiskCheck,
    Side,
)

_ZERO = Decimal(0)
# Orders not yet approved by risk carry no exposure (the order being checked is one of them).
_NOT_EXPOSED = TERMINAL_STATUSES | {OrderStatus.PENDING_RISK}
# Cum-qty memory of finished orders, so a replayed event is not applied twice (a replay
# comes with a rebuild of the view, seconds after the event: 10,000 orders is ample).
FINISHED_MEMORY = 10_000


@dataclass
class _Position:
    """`realized_pnl` is what risk's daily loss counts. A cold start's opening position the
    venue gave no price for (the OMS's `actors.oms.cost_basis`) has `unknown_qty` (signed,
    as `qty`) of no cost; what we add at our fills' prices has one. A close takes from both
    parts in proportion (average cost): the unknown part's share realizes nothing (counted
    against a cost of 0, closing a short at px was a false loss of qty * px, max_daily_loss
    refusing every order, and closing a long a false gain that hid real losses), ours
    realizes against its own cost, so a loss on what we added always counts. Flat or
    flipped through zero, the unknown part is gone."""

    qty: Decimal = _ZERO
    avg_px: Decimal = _ZERO  # of the whole qty, the unknown part at 0 (as the OMS's book)
    realized_pnl: Decimal = _ZERO
    unknown_qty: Decimal = _ZERO

    @property
    def cost_known(self) -> bool:
        return self.unknown_qty == 0

    def take_fill(self, signed_qty: Decimal, px: Decimal) -> None:
        """Average-cost accounting: closing trades realize PnL against the average price
        (`protocol.fees.Fillable`: `book_fill` nets a fill's fee through it, as the OMS)."""
        if self.qty == 0 or (self.qty > 0) == (signed_qty > 0):
            total = abs(self.qty) + abs(signed_qty)
            self.avg_px = (abs(self.qty) * self.avg_px + abs(signed_qty) * px) / total
            self.qty += signed_qty
            return
        closed = min(abs(self.qty), abs(signed_qty))
        direction = Decimal(1) if self.qty > 0 else Decimal(-1)
        # our part's share of the close at its own cost: avg_px * qty is all of its cost
        # >= 0: the unknown part's share (none, and no division, for a position of known cost)
        unknown = closed * self.unknown_qty / self.qty if self.unknown_qty else _ZERO
        if self.unknown_qty != self.qty:  # all of it of no cost (an older OMS's): none counts
            self.realized_pnl += ((closed - unknown) * px - closed * self.avg_px) * direction
        self.unknown_qty -= unknown * direction
        self.qty += signed_qty
        if self.qty == 0:
            self.avg_px, self.unknown_qty = _ZERO, _ZERO
        elif (self.qty > 0) != (direction > 0):  # flipped: the remainder opened at px
            self.avg_px, self.unknown_qty = px, _ZERO

    @classmethod
    def of(cls, p: PositionView) -> _Position:
        """The OMS's position after a rebuild: its realised P&L less the part booked
        against no cost, and the part of its qty of no cost (not said: all of it; avg_px 0
        with a qty is the wire's "cost unknown" as well)."""
        known = p.cost_known and not (p.qty != 0 and p.avg_px == 0)
        unknown = _ZERO if known else p.qty if p.unknown_qty is None else p.unknown_qty
        return cls(p.qty, p.avg_px, p.realized_pnl - p.unknown_cost_pnl, unknown)


@dataclass(frozen=True)
class _DayMark:
    """A position's realised P&L (risk's figure, `_Position.of`) as the OMS answered it at a
    rebuild, and at the start of the trading day of its last fill (`PositionView`)."""

    last_fill_ns: int
    day_start_ns: int
    day_start_pnl: Decimal
    rebuilt_pnl: Decimal
    cost_known: bool

    @classmethod
    def of(cls, p: PositionView, rebuilt_pnl: Decimal) -> _DayMark:
        pnl = p.day_start_pnl - p.unknown_cost_pnl
        known = p.unknown_cost_pnl == 0
        return cls(p.last_fill_ns, p.day_start_ns, pnl, rebuilt_pnl, known)

    def at(self, start_ns: int) -> Decimal | None:
        """Its realised P&L at `start_ns` (None: not known)."""
        if self.last_fill_ns < start_ns:
            return self.rebuilt_pnl  # no fill since
        if self.day_start_ns == start_ns and self.cost_known:
            return self.day_start_pnl  # its fills since began that very day
        return None  # the OMS marks other days (a reload it did not see), or an unknown cost


class _OpenOrder(msgspec.Struct, frozen=True, gc=False):
    """Untracked by the cyclic collector (text, an enum, a Decimal): one per open order, and
    a full collection traversed every one of them."""

    venue: str
    symbol: str
    side: Side
    leaves: Decimal


def _unknown_cum(order: OrderView, fill_qty: Decimal | None) -> tuple[Decimal, Decimal]:
    """(cum_qty, avg_px) the positions already hold of an order the view does not know.

    A finished one ended before a rebuild (not listed) or fell out of `FINISHED_MEMORY`: its
    fills before this event are in the positions, only the event's own fill (`fill_qty`, a
    late fill) is new; its earlier cum is taken at the order's average price (the fill's
    price is `fill_px`). A live one is new to the positions (its earlier events carried no
    fill: PENDING_RISK, or an order the OMS adopted from a venue, whose fills so far come
    with its first event), and so is an event without a fill or whose fill is its whole
    cum_qty (an adopted order's first, finished in its adoption's turn): all of it counts.
    A bust's event (a negative `fill_qty`, `actors.oms.trade_busts`), whatever the status
    the venue gave the order: the positions hold the busted fill, so its cum before it."""
    if fill_qty is not None and fill_qty < 0:
        return order.cum_qty - fill_qty, order.avg_px
    if order.status in TERMINAL_STATUSES and fill_qty is not None and 0 < fill_qty < order.cum_qty:
        return order.cum_qty - fill_qty, order.avg_px
    return _ZERO, _ZERO


@dataclass(frozen=True)
class ExposureSummary:
    """Everything the checks read; two views with equal summaries decide identically."""

    positions: dict[tuple[str, str], Decimal]
    open_buy: dict[str, Decimal]
    open_sell: dict[str, Decimal]
    open_orders: dict[str, int]
    realized_pnl: Decimal


class ExposureView:
    """Positions per (venue, symbol), open orders by client order id, realized PnL.

    Fed by `apply_order_event` (every OMS `OrderEvent`), `apply_unmatched_fill`, and
    `add_provisional` (an order risk just approved, before the OMS's event arrives). Position
    moves by the increase of an order's `cum_qty`, so a replayed event changes nothing; an
    event for an order already finished cannot reopen it. Of a finished order the view does
    not know (`_unknown_cum`), only the event's own fill is new."""

    def __init__(self) -> None:
        self._positions: dict[tuple[str, str], _Position] = {}
        self._open: dict[str, _OpenOrder] = {}
        self._open_qty: dict[tuple[str, Side], Decimal] = {}  # (symbol, side) -> leaves
        self._open_count: dict[str, int] = {}  # venue -> open orders
        self._cum: dict[str, tuple[Decimal, Decimal]] = {}  # live orders: (cum_qty, avg_px)
        self._finished: OrderedDict[str, tuple[Decimal, Decimal]] = OrderedDict()
        self.last_px: dict[str, Decimal] = {}  # symbol -> last fill price
        # approved, no event of the order past PENDING_RISK yet (a rebuild carries them)
        self._provisional: dict[str, RiskCheck] = {}
        self._day_marks: dict[tuple[str, str], _DayMark] = {}  # of the rebuild's positions
        # live orders whose replace risk approved (its check: the qty), until an event shows
        # it asked (`pending_qty`), taken (`qty`) or the order ended (`_set_open`)
        self._raised: dict[str, RiskCheck] = {}
        self._carried_raises: set[str] = set()  # of them, carried by a rebuild (`carry_raised`)

    @classmethod
    def rebuild(
        cls, orders: Iterable[OrderView], positions: Iterable[PositionView]
    ) -> ExposureView:
        """The view after a restart, from the OMS's full order list and positions. The last
        fill price of a symbol is the OMS's last execution price of its position filled
        last (`last_px`), as a view that read every event holds it; from an OMS that does
        not say it, the average price of its latest filled open order (a stale price, or
        none). However old it is, a market order is priced at no less than the configured
        reference (`actors.risk.checks.RiskGate.market_price`)."""
        view = cls()
        latest_fill_ts: dict[str, int] = {}
        for p in positions:
            pos = view._positions[(p.venue, p.symbol)] = _Position.of(p)
            view._day_marks[(p.venue, p.symbol)] = _DayMark.of(p, pos.realized_pnl)
            if p.last_px and p.last_fill_ns >= latest_fill_ts.get(p.symbol, -1):
                latest_fill_ts[p.symbol] = p.last_fill_ns
                view.last_px[p.symbol] = p.last_px
        told = set(view.last_px)
        for o in orders:
            if o.status is OrderStatus.PENDING_RISK:
                continue  # as `apply_order`: no exposure yet (its approval may add one)
            view._remember_cum(o)
            view._set_open(o)
            if o.symbol in told or not o.cum_qty:
                continue
            if o.ts_ns >= latest_fill_ts.get(o.symbol, -1):
                latest_fill_ts[o.symbol] = o.ts_ns
                view.last_px[o.symbol] = o.avg_px
        return view

    # ------------------------------------------------------------------ updates

    def apply_order_event(self, event: OrderEvent, *, count_fill: bool = True) -> None:
        fee = (event.fill_fee_base or _ZERO, event.fill_fee_quote or _ZERO)
        self.apply_order(
            event.order, fill_qty=event.fill_qty, fill_px=event.fill_px, fill_fee=fee,
            count_fill=count_fill,
        )  # fmt: skip

    def apply_order(
        self,
        order: OrderView,
        *,
        fill_qty: Decimal | None = None,
        fill_px: Decimal | None = None,
        fill_fee: FeeParts = NO_FEE,
        count_fill: bool = True,
    ) -> None:
        """An order opened, changed or closed; any increase of its cum_qty is a fill, which
        moves the position net of `fill_fee` (the event's fills' fees, as the OMS booked
        them) unless `count_fill` is False (the positions already hold it, and its fee: a
        rebuild's OMS positions are net of every fee they hold)."""
        oid = order.client_order_id
        if order.status is OrderStatus.PENDING_RISK:
            return  # not approved yet (and must not drop the provisional entry of a racing event)
        if self._provisional:
            self._provisional.pop(oid, None)
        finished = self._finished.get(oid)
        # a bust (`actors.oms.trade_busts`): its fill taken back, a negative fill that is all
        # the cum's drop; it may reopen a finished order (the venue's word)
        bust = fill_qty is not None and fill_qty < 0
        if finished is not None and order.status not in TERMINAL_STATUSES and not bust:
            return  # a stale event replayed after the order finished
        old_cum, old_avg = finished or self._cum.get(oid) or _unknown_cum(order, fill_qty)
        delta = order.cum_qty - old_cum
        if delta < 0:
            if not (bust and fill_qty == delta):
                return  # older than what was already applied
            if count_fill and fill_px is not None:  # the OMS's way: `protocol.fees.unbook_fill`
                pos = self._positions.setdefault((order.venue, order.symbol), _Position())
                unbook_fill(pos, -delta if order.side is Side.BUY else delta, fill_px, fill_fee)
            if order.status not in TERMINAL_STATUSES:
                self._finished.pop(oid, None)  # reopened
            delta = _ZERO
            fill_fee = NO_FEE  # (its fees went back with it)
        if delta > 0 and count_fill:
            if fill_px is not None and fill_qty == delta:
                px = fill_px
            else:  # several fills folded into one event: their average price
                px = (order.cum_qty * order.avg_px - old_cum * old_avg) / delta
            self._fill(order.venue, order.symbol, order.side, delta, px, fill_fee)
        elif count_fill and fill_fee != NO_FEE:  # a fee alone: its fill was counted before
            book_fee(self._positions.setdefault((order.venue, order.symbol), _Position()), fill_fee)
        self._remember_cum(order)
        self._set_open(order)

    def apply_unmatched_fill(
        self, venue: str, symbol: str, side: Side, qty: Decimal, px: Decimal
    ) -> None:
        """A fill that matched no order: it still moves the position."""
        self._fill(venue, symbol, side, qty, px)

    def add_provisional(self, req: RiskCheck) -> None:
        """Count an approved order at once, so a burst cannot outrun the OMS's events. Of a
        live order (a replace's new terms), a larger qty counts from now: the venue may
        take the replace at any moment, and until it answers the old terms stand too."""
        oid = req.client_order_id
        if oid in self._finished:
            return
        cum = self._cum.get(oid)
        if cum is None:
            self._put_open(oid, _OpenOrder(req.venue, req.symbol, req.side, req.qty))
            self._provisional[oid] = req
            return
        old = self._open.get(oid)
        if old is not None and req.qty - cum[0] > old.leaves:
            self._raised[oid] = req
            self._put_open(oid, _OpenOrder(old.venue, old.symbol, old.side, req.qty - cum[0]))

    def provisional(self) -> list[RiskCheck]:
        """The approved orders no event of which past PENDING_RISK has come yet."""
        return list(self._provisional.values())

    def raised(self) -> list[RiskCheck]:
        """The approved replaces that raise a live order's qty no event has shown yet."""
        return list(self._raised.values())

    def carry_raised(self, checks: Iterable[RiskCheck]) -> None:
        """A rebuild's view takes the raises the view before it counted (`raised`): the
        verdict and the rebuild's ListOrders reach the OMS on different sockets, so its
        listing can show such an order at its old size with no `pending_qty`, and the venue
        may take the new one (found by review: a worst case over max_position approved
        until the PENDING_REPLACE event came). Only of orders listed open (one not listed
        ended); the order's next event says it from then on, as the listing could not
        tell a replace not asked yet from one already refused."""
        for check in checks:
            oid = check.client_order_id
            if oid in self._cum:
                self.add_provisional(check)
                if oid in self._raised:
                    self._carried_raises.add(oid)

    # ------------------------------------------------------------------ reads

    def position(self, symbol: str) -> Decimal:
        """Net position of a symbol over all venues."""
        return sum((p.qty for (_, s), p in self._positions.items() if s == symbol), _ZERO)

    def open_qty(self, symbol: str, side: Side) -> Decimal:
        return self._open_qty.get((symbol, side), _ZERO)

    def open_orders(self, venue: str) -> int:
        return self._open_count.get(venue, 0)

    def own_open(self, client_order_id: str) -> tuple[str, Side, Decimal] | None:
        """(venue, side, leaves) of an order already counted as open, e.g. approved before."""
        o = self._open.get(client_order_id)
        return None if o is None else (o.venue, o.side, o.leaves)

    def is_live(self, client_order_id: str) -> bool:
        """An order an event (or a rebuild) showed past PENDING_RISK and not finished."""
        return client_order_id in self._cum

    def filled(self, client_order_id: str) -> Decimal:
        """The cum qty of a live order (0: none, or not live): already in the positions."""
        cum = self._cum.get(client_order_id)
        return _ZERO if cum is None else cum[0]

    def realized_pnl(self) -> Decimal:
        return sum((p.realized_pnl for p in self._positions.values()), _ZERO)

    def realized_pnl_at(self, start_ns: int) -> tuple[Decimal, list[str]]:
        """The realised P&L at `start_ns` (a trading day's start, in the past) of the
        positions the OMS answered at the rebuild, and the `venue:symbol` of those for
        which it is not known: their figure at the rebuild counts (their fills since
        `start_ns` count to the day before, as all did before the OMS marked its days).
        A fill applied since the rebuild came after it: none is in the figure."""
        total, unknown = _ZERO, []
        for (venue, symbol), mark in self._day_marks.items():
            pnl = mark.at(start_ns)
            if pnl is None:
                unknown.append(f"{venue}:{symbol}")
                pnl = mark.rebuilt_pnl
            total += pnl
        return total, unknown

    def position_view(self, venue: str, symbol: str) -> PositionView:
        p = self._positions.get((venue, symbol), _Position())
        return PositionView(
            venue=venue, symbol=symbol, qty=p.qty, avg_px=p.avg_px, realized_pnl=p.realized_pnl,
            cost_known=p.cost_known, unknown_qty=p.unknown_qty if p.unknown_qty else None,
        )  # fmt: skip

    def position_views(self, venue: str | None = None) -> list[PositionView]:
        """Every position this view holds (flat ones included), optionally of one venue."""
        return [
            self.position_view(v, sym)
            for v, sym in sorted(self._positions)
            if venue is None or v == venue
        ]

    def summary(self) -> ExposureSummary:
        def side(s: Side) -> dict[str, Decimal]:
            return {sym: q for (sym, sd), q in self._open_qty.items() if sd is s and q != 0}

        return ExposureSummary(
            positions={k: p.qty for k, p in self._positions.items() if p.qty != 0},
            open_buy=side(Side.BUY),
            open_sell=side(Side.SELL),
            open_orders={v: n for v, n in self._open_count.items() if n},
            realized_pnl=self.realized_pnl(),
        )

    # ------------------------------------------------------------------ internals

    def _fill(
        self, venue: str, symbol: str, side: Side, qty: Decimal, px: Decimal, fee: FeeParts = NO_FEE
    ) -> None:
        signed = qty if side is Side.BUY else -qty
        book_fill(self._positions.setdefault((venue, symbol), _Position()), signed, px, fee)
        self.last_px[symbol] = px

    def _remember_cum(self, order: OrderView) -> None:
        oid = order.client_order_id
        cum = (order.cum_qty, order.avg_px)
        if order.status in TERMINAL_STATUSES:
            self._cum.pop(oid, None)
            self._finished[oid] = cum
            self._finished.move_to_end(oid)
            while len(self._finished) > FINISHED_MEMORY:
                self._finished.popitem(last=False)
        else:
            self._cum[oid] = cum

    def _set_open(self, order: OrderView) -> None:
        """Its leaves, of the larger of its qty and a replace's asked (PENDING_REPLACE: the
        venue may take either) or approved and not yet asked (`add_provisional`)."""
        oid = order.client_order_id
        if order.status in _NOT_EXPOSED:  # finished: nothing of it is computed
            if self._raised:
                self._raised.pop(oid, None)
                self._carried_raises.discard(oid)
            self._drop_open(oid)
            return
        qty, pending = order.qty, order.pending_qty
        if pending is not None and pending > qty:
            qty = pending
        raised = self._raised.get(oid) if self._raised else None
        if raised is not None:
            # asked or taken: the order's own figures say it now (a carried one: any event)
            if qty >= raised.qty or oid in self._carried_raises:
                del self._raised[oid]
                self._carried_raises.discard(oid)
            else:
                qty = raised.qty
        leaves = qty - order.cum_qty
        if leaves <= 0:
            self._drop_open(order.client_order_id)
        else:
            self._put_open(
                order.client_order_id, _OpenOrder(order.venue, order.symbol, order.side, leaves)
            )

    def _put_open(self, oid: str, entry: _OpenOrder) -> None:
        self._drop_open(oid)
        self._open[oid] = entry
        key = (entry.symbol, entry.side)
        self._open_qty[key] = self._open_qty.get(key, _ZERO) + entry.leaves
        self._open_count[entry.venue] = self._open_count.get(entry.venue, 0) + 1

    def _drop_open(self, oid: str) -> None:
        old = self._open.pop(oid, None)
        if old is not None:
            key = (old.symbol, old.side)
            self._open_qty[key] -= old.leaves
            self._open_count[old.venue] -= 1
