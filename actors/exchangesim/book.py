"""The simulated exchange's account: orders, trades, balances; matching through the venue
simulator's price-time planner (`actors.venuesim.matching`) against its synthetic market
maker (`actors.venuesim.liquidity`). No sockets, no HTTP: the REST and WebSocket layers
call these methods and format the results (`actors.exchangesim.wire`).

Binance's rules, as the real exchange applies them:
- Order ids and trade ids are numbered per symbol (ccxt issue #26092: two symbols' orders
  with one id), so an order is (symbol, id) and a query or cancel names both.
- A client order id is unique among OPEN orders only: reusing the id of an open order is
  -2010 "Duplicate order sent."; reusing one whose order is filled or cancelled creates a
  new order. A query by client id answers the newest order that carried it.
- Filters (PRICE_FILTER, LOT_SIZE, NOTIONAL) -> -1013; not enough free balance -> -2010.
- Self-trade prevention EXPIRE_MAKER: an incoming order that would trade with one of our
  own resting orders expires that resting order (EXPIRED_IN_MATCH) and goes on matching.
- IOC/FOK/MARKET remainders end EXPIRED; a FOK that cannot fill completely trades nothing.
- A buy locks qty * limit price of the quote asset, a sell qty of the base asset; fills
  move the totals. Commission is charged in the asset received (a buy's base asset, a
  sell's quote asset: an account that pays no fees in BNB), rounded to Binance's 8
  places, at `[venues.sim] commission_rate` (default Binance's 0.1%; 0: none): a buy of
  1 BTC credits 0.999 BTC, and the trade's commission / commissionAsset (n / N) say so.

State changes only through `_apply(record)`, which the store persists (one frame per
operation, before the answer goes out) and replays on start: the same code rebuilds the
same orders, book priority, quotes, balances and id counters after a `kill -9`.

Records (`t` is the kind; decimals are strings; `ts` epoch ms):
  fund  bal{asset: total}                           initial balances (first start only)
  acc   oid cl sym side typ tif qty px prio ts      order accepted
  fill  sym oid q px lvl mk tid fee ts              a trade (lvl: market-maker level)
  end   sym oid st ccl ts                           CANCELED / EXPIRED / EXPIRED_IN_MATCH
  (a log of the build that numbered orders across symbols has fill / end without sym)
  tick  n ref{market_id: px} ts                     liquidity step
  rej   cl sym side q code msg ts prior            a new order refused (`refusals`)
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Protocol

from actors.exchangesim import errors
from actors.exchangesim.market import EIGHT, Market, markets_from
from actors.exchangesim.orders import Trade, XOrder
from actors.exchangesim.refusals import REFUSALS_KEPT, Refusals
from actors.exchangesim.wire import Json, account_position, execution_report
from actors.venuesim.liquidity import Ladder, LadderSpec, next_reference, on_grid
from actors.venuesim.matching import plan_match, plan_sweep
from actors.venuesim.model import OrdStatus
from actors.venuesim.orders import Record, SideBook, dec_str, opposite
from protocol.config import SimCfg
from protocol.domain import OrdType, Side, TimeInForce

ZERO = Decimal(0)
BINANCE_COMMISSION = Decimal("0.001")  # Binance's default spot rate (maker and taker), 0.1%
DEFAULT_QUOTE_BALANCE = Decimal("1000000")
DEFAULT_BASE_BALANCE = Decimal("1000")
_END_STATUS = {
    "CANCELED": (OrdStatus.CANCELED, "CANCELED"),
    "EXPIRED": (OrdStatus.EXPIRED, "EXPIRED"),
    "EXPIRED_IN_MATCH": (OrdStatus.EXPIRED, "TRADE_PREVENTION"),
}


class Store(Protocol):
    """What the exchange needs of its log (`actors.venuesim.store.SimStore`)."""

    def replay(self) -> list[list[Record]]: ...
    def append(self, txn: list[Record]) -> None: ...
    def note_tick(self, rec: Record) -> None: ...
    def sync(self) -> None: ...


class _Op:
    __slots__ = ("ts", "txn", "events", "assets", "fills")

    def __init__(self, now_ms: int) -> None:
        self.ts = now_ms
        self.txn: list[Record] = []
        self.events: list[Json] = []
        self.assets: set[str] = set()
        self.fills: list[Trade] = []


class Exchange:
    """One account at one simulated spot exchange."""

    def __init__(
        self,
        sim: SimCfg,
        store: Store,
        seed: int,
        *,
        balances: dict[str, Decimal] | None = None,
        commission_rate: Decimal | None = None,
        keep_refusals: int | None = REFUSALS_KEPT,
    ) -> None:
        self.markets: dict[str, Market] = markets_from(sim)
        if commission_rate is None:
            commission_rate = sim.commission_rate
        self.commission_rate = BINANCE_COMMISSION if commission_rate is None else commission_rate
        self._sim = sim
        self._store = store
        self._seed = seed
        spec = LadderSpec.from_cfg(sim)
        self.references = {
            mid: on_grid(sim.reference_prices[m.symbol], sim.tick_size)
            for mid, m in self.markets.items()
        }
        self._ladders = {
            (mid, side): Ladder(side, spec, ref)
            for mid, ref in self.references.items()
            for side in Side
        }
        self._books = {(mid, side): SideBook(side) for mid in self.markets for side in Side}
        self.orders: dict[tuple[str, int], XOrder] = {}  # by (market id, order id)
        self.open: dict[tuple[str, int], XOrder] = {}
        self._unscoped: dict[int, XOrder] = {}  # by order id: an older log's fill / end
        self._open_cl: dict[str, XOrder] = {}  # open orders by client id (unique)
        self._last_cl: dict[str, XOrder] = {}  # the newest order of each client id
        self.trades: list[Trade] = []
        self.totals: dict[str, Decimal] = {}
        self.locked: dict[str, Decimal] = {}
        self.refusals = Refusals(keep_refusals)
        self.funded = False
        self.last_oid: dict[str, int] = {}  # per market id, as Binance numbers them
        self.last_tid: dict[str, int] = {}
        self.last_prio = self.step = 0
        for txn in store.replay():
            for rec in txn:
                self._apply(rec)
        if not self.funded:
            self._fund(balances)

    def _fund(self, balances: dict[str, Decimal] | None) -> None:
        if balances is None:  # `[venues.sim] balances`, the defaults for the rest
            balances = dict(self._sim.balances)
            for m in self.markets.values():
                balances.setdefault(m.base, DEFAULT_BASE_BALANCE)
                balances.setdefault(m.quote, DEFAULT_QUOTE_BALANCE)
        rec = {"t": "fund", "bal": {a: str(v) for a, v in sorted(balances.items())}}
        self._apply(rec)
        self._store.append([rec])
        self._store.sync()

    # ------------------------------------------------------------------ orders

    def market(self, market_id: str) -> Market:
        m = self.markets.get(market_id)
        if m is None:
            raise errors.error(errors.INVALID_SYMBOL)
        return m

    def new_order(
        self,
        market_id: str,
        side: Side,
        ord_type: OrdType,
        tif: TimeInForce,
        qty: Decimal,
        price: Decimal | None,
        client_id: str,
        now_ms: int,
    ) -> tuple[XOrder, list[Trade], list[Json]]:
        """Place an order: (the order after matching, its fills, the user-data events).
        Raises `ApiError` (filters, duplicate open client id, balance)."""
        m = self.market(market_id)
        try:
            self._admit(m, side, ord_type, qty, price, client_id)
        except errors.ApiError as exc:  # logged before the answer: the inspection shows it
            prior = self._last_cl.get(client_id)
            rej = Refusals.record(
                client_id, market_id, side, qty, exc, now_ms, prior.oid if prior else None
            )
            self._apply(rej)
            self._store.append([rej])
            self._store.sync()
            raise
        op = _Op(now_ms)
        rec: Record = {
            "t": "acc", "oid": self.last_oid.get(market_id, 0) + 1, "cl": client_id,
            "sym": market_id, "side": side.value, "typ": ord_type.value, "tif": tif.value,
            "qty": str(qty), "px": dec_str(price), "prio": self.last_prio + 1,
        }  # fmt: skip
        o = self._emit(op, rec, "NEW")
        self._execute(op, o)
        return o, op.fills, self._commit(op)

    def cancel(self, market_id: str, order: XOrder, cancel_cl: str, now_ms: int) -> list[Json]:
        """Cancel an open order (found by `find_open`)."""
        op = _Op(now_ms)
        self._end(op, order, "CANCELED", cancel_cl)
        return self._commit(op)

    def find_open(self, market_id: str, order_id: int | None, client_id: str | None) -> XOrder:
        """The open order a cancel names; -2011 "Unknown order sent." if none."""
        self.market(market_id)
        o = self.orders.get((market_id, order_id)) if order_id is not None else None
        if order_id is None and client_id is not None:
            o = self._open_cl.get(client_id)
        if o is None or not o.status.is_open or o.symbol != market_id:
            raise errors.error(errors.UNKNOWN_ORDER)
        if client_id is not None and o.cl_ord_id != client_id:
            raise errors.error(errors.UNKNOWN_ORDER)
        return o

    def find(self, market_id: str, order_id: int | None, client_id: str | None) -> XOrder:
        """The order a query names (by client id: the newest that carried it); -2013."""
        self.market(market_id)
        o = self.orders.get((market_id, order_id)) if order_id is not None else None
        if order_id is None and client_id is not None:
            o = self._last_cl.get(client_id)
        if o is None or o.symbol != market_id:
            raise errors.error(errors.NO_SUCH_ORDER)
        if client_id is not None and o.cl_ord_id != client_id:
            raise errors.error(errors.NO_SUCH_ORDER)
        return o

    def open_orders(self, market_id: str | None) -> list[XOrder]:
        return [o for o in self.open.values() if market_id is None or o.symbol == market_id]

    def balances(self) -> dict[str, tuple[Decimal, Decimal]]:
        """asset -> (free, locked)."""
        return {a: self._balance(a) for a in sorted(self.totals)}

    # ------------------------------------------------------------------ market maker

    def liquidity_step(self, now_ms: int) -> list[Json]:
        """Move every reference price one step, re-quote, and fill the resting orders the
        new quotes cross (maker fills at the order's price). Returns the events."""
        step = self.step + 1
        refs = {
            mid: str(
                next_reference(
                    self.references[mid], seed=self._seed, symbol=mid, step=step, cfg=self._sim
                )
            )
            for mid in sorted(self.markets)
        }
        op = _Op(now_ms)
        tick: Record = {"t": "tick", "n": step, "ref": refs}
        self._apply(tick)
        op.txn.append({**tick, "ts": now_ms})
        for mid in sorted(self.markets):
            for quote_side in Side:
                ladder = self._ladders[(mid, quote_side)]
                for t in plan_sweep(ladder, self._books[(mid, opposite(quote_side))]):
                    assert isinstance(t.resting, XOrder)
                    self._fill(op, t.resting, t.qty, t.px, t.level, maker=True)
        if len(op.txn) == 1:
            self._store.note_tick(op.txn[0])
            return []
        return self._commit(op)

    # ------------------------------------------------------------------ internals

    def _admit(
        self, m: Market, side: Side, typ: OrdType, qty: Decimal, px: Decimal | None, cl: str
    ) -> None:
        """Filters, a duplicate open client id, the free balance: `ApiError` if refused."""
        if px is not None:
            m.check_price(px)
        m.check_qty(qty, market_order=typ is OrdType.MARKET)
        m.check_notional(qty * (self.references[m.market_id] if px is None else px))
        if cl in self._open_cl:
            raise errors.error(errors.DUPLICATE_ORDER)
        if side is Side.SELL:
            need, asset = qty, m.base
        elif px is not None:
            need, asset = qty * px, m.quote
        else:  # a market buy: what the liquidity it would take costs now
            book = SideBook(Side.SELL)  # our own resting sells expire (STP), never trade
            plan = plan_match(side, None, qty, book, self._ladders[(m.market_id, Side.SELL)])
            need, asset = sum((t.qty * t.px for t in plan), ZERO), m.quote
        if self._balance(asset)[0] < need:
            raise errors.error(errors.INSUFFICIENT_BALANCE)

    def _balance(self, asset: str) -> tuple[Decimal, Decimal]:
        locked = self.locked.get(asset, ZERO)
        return self.totals.get(asset, ZERO) - locked, locked

    def _execute(self, op: _Op, o: XOrder) -> None:
        assert o.side is not None
        other = opposite(o.side)
        limit = o.price if o.ord_type is OrdType.LIMIT else None
        book, ladder = self._books[(o.symbol, other)], self._ladders[(o.symbol, other)]
        while True:
            trades = plan_match(o.side, limit, o.leaves_qty, book, ladder)
            own = next((t.resting for t in trades if t.resting is not None), None)
            if own is None:
                break
            assert isinstance(own, XOrder)
            self._end(op, own, "EXPIRED_IN_MATCH")
        if o.tif is TimeInForce.FOK and sum((t.qty for t in trades), ZERO) < o.leaves_qty:
            self._end(op, o, "EXPIRED")
            return
        for t in trades:
            self._fill(op, o, t.qty, t.px, t.level, maker=False)
        if o.status.is_open and (o.ord_type is OrdType.MARKET or o.tif is not TimeInForce.GTC):
            self._end(op, o, "EXPIRED")

    def _fill(
        self, op: _Op, o: XOrder, qty: Decimal, px: Decimal, lvl: Decimal | None, *, maker: bool
    ) -> None:
        received = qty if o.side is Side.BUY else qty * px
        rec: Record = {
            "t": "fill", "sym": o.symbol, "oid": o.oid, "q": str(qty), "px": str(px),
            "lvl": dec_str(lvl), "mk": maker, "tid": self.last_tid.get(o.symbol, 0) + 1,
            "fee": str((received * self.commission_rate).quantize(EIGHT)),
        }  # fmt: skip
        self._emit(op, rec, "TRADE")

    def _end(self, op: _Op, o: XOrder, status: str, cancel_cl: str = "") -> None:
        rec: Record = {"t": "end", "sym": o.symbol, "oid": o.oid, "st": status, "ccl": cancel_cl}
        self._emit(op, rec, _END_STATUS[status][1], cancel_cl)

    def _emit(self, op: _Op, rec: Record, exec_type: str, cancel_cl: str = "") -> XOrder:
        rec["ts"] = op.ts
        op.txn.append(rec)
        o = self._apply(rec)
        assert o is not None
        trade = self.trades[-1] if rec["t"] == "fill" else None
        if trade is not None:
            op.fills.append(trade)
        op.events.append(execution_report(o, exec_type, op.ts, trade=trade, cancel_cl=cancel_cl))
        m = self.markets[o.symbol]
        op.assets.update((m.base, m.quote))
        return o

    def _commit(self, op: _Op) -> list[Json]:
        """Persist the operation's records (one frame, fsync'd) and hand out its events,
        the account position of the assets it touched last."""
        if op.txn:
            self._store.append(op.txn)
            self._store.sync()
        if op.assets:
            changed = {a: self._balance(a) for a in op.assets}
            op.events.append(account_position(changed, op.ts))
        return op.events

    # ------------------------------------------------------------------ apply

    def _apply(self, rec: Record) -> XOrder | None:
        kind = rec["t"]
        if kind == "hdr":
            return None
        if kind == "fund":
            self.funded = True
            for asset, total in rec["bal"].items():
                self.totals[asset] = Decimal(total)
            return None
        if kind == "tick":
            self._tick(rec)
            return None
        if kind == "rej":
            self.refusals.apply(rec)
            return None
        if kind == "acc":
            if rec["sym"] not in self.markets:
                raise ValueError(
                    f"the exchange's log has orders of {rec['sym']}, which [venues.sim] "
                    "reference_prices no longer lists"
                )
            o = XOrder(rec)
            self.last_oid[o.symbol] = max(self.last_oid.get(o.symbol, 0), o.oid)
            self.last_prio = max(self.last_prio, o.prio)
            self.orders[(o.symbol, o.oid)] = o
            self._unscoped[o.oid] = o
            self._last_cl[o.cl_ord_id] = o
            self._sync(o, None)
            return o
        o = self.orders[(rec["sym"], rec["oid"])] if "sym" in rec else self._unscoped[rec["oid"]]
        before = self._lock_of(o)
        if kind == "fill":
            self._apply_fill(o, rec)
        elif kind == "end":
            status, _ = _END_STATUS[rec["st"]]
            o.status = status
            o.binance_status = rec["st"]
        else:
            raise ValueError(f"unknown record kind {kind!r}")
        o.update_ms = rec["ts"]
        self._sync(o, before)
        return o

    def _apply_fill(self, o: XOrder, rec: Record) -> None:
        assert o.side is not None
        qty, px, fee = Decimal(rec["q"]), Decimal(rec["px"]), Decimal(rec["fee"])
        m = self.markets[o.symbol]
        o.cum_qty += qty
        o.notional += qty * px
        o.quote_cum += qty * px
        filled = o.cum_qty >= o.order_qty
        o.status = OrdStatus.FILLED if filled else OrdStatus.PARTIALLY_FILLED
        o.binance_status = o.status.name
        if rec["lvl"] is not None:
            self._ladders[(o.symbol, opposite(o.side))].consume(Decimal(rec["lvl"]), qty)
        got, gave = (m.base, m.quote) if o.side is Side.BUY else (m.quote, m.base)
        got_qty, gave_qty = (qty, qty * px) if o.side is Side.BUY else (qty * px, qty)
        self.totals[got] = self.totals.get(got, ZERO) + got_qty - fee
        self.totals[gave] = self.totals.get(gave, ZERO) - gave_qty
        self.last_tid[o.symbol] = max(self.last_tid.get(o.symbol, 0), rec["tid"])
        o.fills.append((rec["tid"], qty, px, rec["ts"]))
        self.trades.append(
            Trade(rec["tid"], o.oid, o.symbol, o.side, qty, px, fee, got, rec["mk"], rec["ts"])
        )

    def _lock_of(self, o: XOrder) -> tuple[str, Decimal] | None:
        if not o.status.is_open or o.ord_type is not OrdType.LIMIT or o.price is None:
            return None
        m = self.markets[o.symbol]
        if o.side is Side.BUY:
            return m.quote, o.leaves_qty * o.price
        return m.base, o.leaves_qty

    def _sync(self, o: XOrder, before: tuple[str, Decimal] | None) -> None:
        """Keep locks, the open indexes and the book in step with the order's status."""
        for lock, sign in ((before, -1), (self._lock_of(o), 1)):
            if lock is not None:
                self.locked[lock[0]] = self.locked.get(lock[0], ZERO) + sign * lock[1]
        assert o.side is not None
        book = self._books[(o.symbol, o.side)]
        if o.status.is_open:
            self.open[(o.symbol, o.oid)] = o
            self._open_cl[o.cl_ord_id] = o
            if o.book_px is None and o.ord_type is OrdType.LIMIT and o.price is not None:
                book.add(o, o.price)
            return
        self.open.pop((o.symbol, o.oid), None)
        if self._open_cl.get(o.cl_ord_id) is o:
            del self._open_cl[o.cl_ord_id]
        if o.book_px is not None:
            book.remove(o)

    def _tick(self, rec: Record) -> None:
        self.step = max(self.step, rec["n"])
        for mid, ref in rec["ref"].items():
            if mid in self.references:
                price = self.references[mid] = Decimal(ref)
                for side in Side:
                    self._ladders[(mid, side)].refresh(price)

    def snapshot(self) -> dict[str, Any]:
        """Counters for status lines."""
        return {
            "open_orders": len(self.open),
            "orders": len(self.orders),
            "trades": len(self.trades),
            "step": self.step,
        }
