"""The simulated venue's matching engine: price-time priority against the client's own
resting orders and a synthetic market maker, one client account, no sockets, no FIX.

Every public operation validates its input (bad input is answered, never raised), decides
what happens, applies each decision as a record to the `Ledger`, writes all the records of
the operation to the store as one frame and only then returns the events, in the order the
FIX shell must send them.

Matching rules:
- An incoming order (or a replaced one that became marketable) trades with the best price
  on the other side: the client's resting orders and the market maker's quotes; at equal
  prices resting client orders go first (the market maker re-quotes every step). The
  trade price is the resting side's price.
- A limit order's remainder rests (DAY, GTC); an IOC's or a market order's remainder is
  cancelled; a FOK that cannot fill completely at once is cancelled without trading.
- Each `liquidity_step` moves the reference price and re-quotes the market maker, whose
  new quotes trade with resting client orders they cross (at the client's price), so
  resting limits fill over time as the price walks through them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal

from actors.venuesim.ledger import KEEP_TERMINAL, Ledger
from actors.venuesim.liquidity import LadderSpec, next_reference, on_grid
from actors.venuesim.matching import plan_match, plan_sweep
from actors.venuesim.model import (
    NO_ORDER_ID,
    STATUS_EXEC_ID,
    CancelReject,
    CxlRejReason,
    CxlRejResponseTo,
    Event,
    ExecEvent,
    ExecType,
    Order,
    OrdRejReason,
    OrdStatus,
    Position,
    order_problem,
    orderless_event,
)
from actors.venuesim.orders import (
    Record,
    Resting,
    SimOrder,
    dec_str,
    exec_event,
    opposite,
    parse_decimal,
    parse_enum,
)
from actors.venuesim.snapshot import StatusSnapshot
from actors.venuesim.store import SimStore
from protocol.config import SimCfg
from protocol.fix_config import DialectCfg
from protocol.messages import OrdType, Side, TimeInForce

_IMMEDIATE = (TimeInForce.IOC, TimeInForce.FOK)


class _Op:
    """The records and events of one operation."""

    __slots__ = ("ts", "txn", "events")

    def __init__(self, now_ns: int) -> None:
        self.ts = now_ns
        self.txn: list[Record] = []
        self.events: list[Event] = []


class Venue:
    """One simulated venue: books per symbol, the market maker, the client's orders."""

    def __init__(self, name: str, cfg: SimCfg, store: SimStore, seed: int) -> None:
        self.name = name
        self._cfg = cfg
        self._store = store
        self._seed = seed
        spec = LadderSpec.from_cfg(cfg)
        refs = {s: on_grid(p, cfg.tick_size) for s, p in cfg.reference_prices.items()}
        self.symbols = frozenset(refs)
        self._ledger = Ledger(refs, spec, KEEP_TERMINAL)
        self._ledger.apply_all(store.replay())
        self.dialect = cfg.dialect or DialectCfg()  # what it serves and how it answers
        self._snapshots: set[StatusSnapshot] = set()  # mass-status answers being read

    # ------------------------------------------------------------------ order entry

    def new_order(
        self,
        cl_ord_id: str,
        symbol: str,
        side: Side | str,
        qty: Decimal | str | None,
        ord_type: OrdType | str,
        price: Decimal | str | None,
        tif: TimeInForce | str,
        now_ns: int,
        *,
        force_reject: str = "",
        poss_dup: bool = False,
    ) -> list[Event]:
        """A NewOrderSingle. Answers NEW then any trades then, for IOC/FOK/market, the
        cancel of the remainder; or one REJECTED. `force_reject` (fault injection) rejects
        an otherwise valid order with that text."""
        op = _Op(now_ns)
        cl = cl_ord_id if isinstance(cl_ord_id, str) else ""
        sym = symbol if isinstance(symbol, str) else ""
        s, t, tf = (
            parse_enum(Side, side),
            parse_enum(OrdType, ord_type),
            parse_enum(TimeInForce, tif),
        )
        q, px = parse_decimal(qty), parse_decimal(price)
        if t is OrdType.MARKET:
            px = None
        if not cl or self._ledger.known_cl(cl):
            why = OrdRejReason.DUPLICATE_ORDER if cl else OrdRejReason.OTHER
            text = "duplicate ClOrdID" if cl else "missing ClOrdID"
            drej = {"t": "drej", "cl": cl, "why": int(why), "text": text}
            self._emit(op, drej | {"pd": 1} if poss_dup else drej)  # a PossDup copy: marked
            return self._commit(op)
        rec: Record = {
            "oid": self._ledger.last_oid + 1, "cl": cl, "sym": sym,
            "side": s and s._value_, "typ": t and t._value_, "tif": tf and tf._value_,
            "qty": dec_str(q), "px": dec_str(px),
        }  # fmt: skip
        invalid = order_problem(s, t, tf, q, px)
        if sym not in self.symbols:
            invalid = OrdRejReason.UNKNOWN_SYMBOL, f"unknown symbol {sym!r}"
        if invalid is None and force_reject:
            invalid = OrdRejReason.OTHER, force_reject
        if invalid is not None:
            rec.update(t="rej", why=int(invalid[0]), text=invalid[1])
            self._emit(op, rec)
        else:
            rec.update(t="acc", prio=self._ledger.last_prio + 1)
            o = self._emit(op, rec)
            assert o is not None
            self._execute(op, o)
        return self._commit(op)

    def cancel(
        self,
        cl_ord_id: str,
        orig_cl_ord_id: str,
        now_ns: int,
        *,
        symbol: str | None = None,
        side: Side | str | None = None,
    ) -> list[Event]:
        """An OrderCancelRequest: CANCELED, or a CancelReject (unknown order, too late,
        duplicate ClOrdID, symbol/side not those of the order)."""
        op = _Op(now_ns)
        target = self._amend_target(
            op, cl_ord_id, orig_cl_ord_id, symbol, side, CxlRejResponseTo.ORDER_CANCEL_REQUEST
        )
        if target is not None:
            self._end(
                op, target, OrdStatus.CANCELED, "cancelled on request", cl_ord_id, orig_cl_ord_id
            )
        return self._commit(op)

    def replace(
        self,
        cl_ord_id: str,
        orig_cl_ord_id: str,
        qty: Decimal | str | None,
        price: Decimal | str | None,
        ord_type: OrdType | str | None,
        tif: TimeInForce | str | None,
        now_ns: int,
        *,
        symbol: str | None = None,
        side: Side | str | None = None,
    ) -> list[Event]:
        """An OrderCancelReplaceRequest. `price`, `ord_type`, `tif` None keep the order's.
        A new price, a larger qty or a new order type lose time priority; a qty at or
        below the cum qty leaves the order done (FILLED at its cum qty). Answers REPLACED
        (then trades if it became marketable) or a CancelReject."""
        op = _Op(now_ns)
        response_to = CxlRejResponseTo.ORDER_CANCEL_REPLACE_REQUEST
        o = self._amend_target(op, cl_ord_id, orig_cl_ord_id, symbol, side, response_to)
        if o is None:
            return self._commit(op)
        t = o.ord_type if ord_type is None else parse_enum(OrdType, ord_type)
        tf = o.tif if tif is None else parse_enum(TimeInForce, tif)
        q = parse_decimal(qty)
        px = o.price if price is None else parse_decimal(price)
        if t is OrdType.MARKET:
            px = None
        problem = order_problem(o.side, t, tf, q, px)
        if problem is not None or t is None or tf is None or q is None:
            text = problem[1] if problem else ""
            self._cancel_reject(
                op, o, cl_ord_id, orig_cl_ord_id, CxlRejReason.OTHER, response_to, text
            )
            return self._commit(op)
        qty_eff = max(q, o.cum_qty)
        loses_priority = t is not o.ord_type or px != o.price or qty_eff > o.order_qty
        rec: Record = {
            "t": "rep", "oid": o.oid, "cl": cl_ord_id, "orig": orig_cl_ord_id,
            "qty": str(qty_eff), "px": dec_str(px),
            "typ": t.value, "tif": tf.value,
            "prio": self._ledger.last_prio + 1 if loses_priority else o.prio,
        }  # fmt: skip
        rec["text"] = "" if q > o.cum_qty else "replaced qty at or below cum qty: order done"
        self._emit(op, rec)
        if o.status.is_open:
            self._execute(op, o)
        return self._commit(op)

    def mass_cancel(self, now_ns: int, symbol: str | None = None) -> list[Event]:
        """Cancel every open order (of `symbol`, if given): one CANCELED each."""
        op = _Op(now_ns)
        for o in list(self._ledger.open.values()):
            if symbol is None or o.symbol == symbol:
                self._end(op, o, OrdStatus.CANCELED, "mass cancel")
        return self._commit(op)

    def mass_cancel_stream(
        self, now_ns: int, symbol: str | None = None
    ) -> tuple[int, Iterator[Event]]:
        """`mass_cancel` spread out: how many orders are open now (of `symbol`), and their
        CANCELED events, each order cancelled (its own transaction) as the iterator is
        read; one that finished meanwhile is skipped (20,000 in one transaction: 0.75 s)."""
        targets = [o for o in self._ledger.open.values() if symbol is None or o.symbol == symbol]

        def cancels() -> Iterator[Event]:
            for o in targets:
                if o.status.is_open:
                    op = _Op(now_ns)
                    self._end(op, o, OrdStatus.CANCELED, "mass cancel")
                    yield from self._commit(op)

        return len(targets), cancels()

    def end_of_day(self, now_ns: int) -> list[Event]:
        """Expire every open DAY order: one EXPIRED each."""
        op = _Op(now_ns)
        for o in list(self._ledger.open.values()):
            if o.tif is TimeInForce.DAY:
                self._end(op, o, OrdStatus.EXPIRED, "end of day")
        return self._commit(op)

    def liquidity_step(self, now_ns: int) -> list[Event]:
        """Move every reference price one step, re-quote the market maker, and trade its new
        quotes against the resting client orders they cross. Returns those trades."""
        led = self._ledger
        step = led.step + 1
        refs = {
            s: str(
                next_reference(
                    led.references[s], seed=self._seed, symbol=s, step=step, cfg=self._cfg
                )
            )
            for s in sorted(self.symbols)
        }
        tick: Record = {"t": "tick", "n": step, "ref": refs}
        op = _Op(now_ns)
        self._apply(op, tick)
        for symbol in sorted(self.symbols):
            for quote_side in Side:
                ladder = led.ladder(symbol, quote_side)
                for t in plan_sweep(ladder, led.book(symbol, opposite(quote_side))):
                    assert t.resting is not None
                    self._fill(op, t.resting, t.qty, t.px, t.level)
        if len(op.txn) == 1:
            self._store.note_tick(tick)
            return []
        return self._commit(op)

    # ------------------------------------------------------------------ queries

    def status(self, cl_ord_id: str) -> Order | None:
        """The order any ClOrdID of its chain names, or None if the venue never saw it."""
        o = self._ledger.by_cl.get(cl_ord_id)
        return None if o is None else self._ledger.view(o)

    def status_report(self, cl_ord_id: str, now_ns: int) -> ExecEvent:
        """The answer to an OrderStatusRequest: ExecType=I with the order's state, or, for a
        ClOrdID the venue never saw, OrdStatus=REJECTED with OrdRejReason=UNKNOWN_ORDER."""
        o = self._ledger.by_cl.get(cl_ord_id)
        if o is not None:
            return exec_event(o, ExecType.ORDER_STATUS, STATUS_EXEC_ID, now_ns, text=o.text)
        return orderless_event(
            STATUS_EXEC_ID,
            ExecType.ORDER_STATUS,
            cl_ord_id,
            "unknown order",
            OrdRejReason.UNKNOWN_ORDER,
            now_ns,
        )

    @property
    def open_count(self) -> int:
        """How many orders are open (O(1): `status` asks it every call)."""
        return len(self._ledger.open)

    def open_orders(self) -> list[Order]:
        """Every open order, oldest first."""
        return [self._ledger.view(o) for o in self._ledger.open.values()]

    def mass_status(self, now_ns: int) -> list[ExecEvent]:
        """The answer to an OrderMassStatusRequest: one ExecType=I per open order."""
        return list(self.status_snapshot(now_ns))

    def status_snapshot(self, now_ns: int, symbol: str | None = None) -> StatusSnapshot:
        """The same answer read lazily (`actors.venuesim.snapshot`): every order open now
        (of `symbol`, if given), each as it is now even when read after it changed."""
        orders = {
            oid: o for oid, o in self._ledger.open.items() if symbol is None or o.symbol == symbol
        }
        snap = StatusSnapshot(orders, now_ns, self._snapshots.discard)
        if orders:
            self._snapshots.add(snap)
        return snap

    def positions(self) -> dict[str, Position]:
        """Net position per symbol the client ever traded."""
        return self._ledger.positions()

    @property
    def step(self) -> int:
        """Liquidity steps taken (persisted lazily: see `SimStore.note_tick`)."""
        return self._ledger.step

    def reference_price(self, symbol: str) -> Decimal:
        return self._ledger.references[symbol]

    def quotes(self, symbol: str, side: Side) -> list[tuple[Decimal, Decimal]]:
        """The market maker's (price, remaining qty) on one side, best first."""
        ladder = self._ledger.ladder(symbol, side)
        return [] if ladder is None else [(q.price, q.remaining) for q in ladder.quotes]

    # ------------------------------------------------------------------ internals

    def _amend_target(
        self,
        op: _Op,
        cl_ord_id: str,
        orig_cl_ord_id: str,
        symbol: str | None,
        side: Side | str | None,
        response_to: CxlRejResponseTo,
    ) -> SimOrder | None:
        """The open order a cancel or replace applies to, or None after a CancelReject."""
        o = self._ledger.by_cl.get(orig_cl_ord_id) if isinstance(orig_cl_ord_id, str) else None
        reason, text = CxlRejReason.OTHER, ""
        if o is None:
            reason, text = CxlRejReason.UNKNOWN_ORDER, "unknown order"
        elif not o.status.is_open:
            reason, text = CxlRejReason.TOO_LATE_TO_CANCEL, f"order is {o.status.name}"
        elif not isinstance(cl_ord_id, str) or not cl_ord_id:
            text = "missing ClOrdID"
        elif self._ledger.known_cl(cl_ord_id):
            reason, text = CxlRejReason.DUPLICATE_CL_ORD_ID, "duplicate ClOrdID"
        elif (symbol is not None and symbol != o.symbol) or (
            side is not None and parse_enum(Side, side) is not o.side
        ):
            text = "symbol or side differs from the order's"
        else:
            return o
        self._cancel_reject(op, o, cl_ord_id, orig_cl_ord_id, reason, response_to, text)
        return None

    def _cancel_reject(
        self,
        op: _Op,
        o: SimOrder | None,
        cl_ord_id: str,
        orig_cl_ord_id: str,
        reason: CxlRejReason,
        response_to: CxlRejResponseTo,
        text: str,
    ) -> None:
        op.events.append(
            CancelReject(
                order_id=NO_ORDER_ID if o is None else o.order_id,
                cl_ord_id=cl_ord_id if isinstance(cl_ord_id, str) else "",
                orig_cl_ord_id=orig_cl_ord_id if isinstance(orig_cl_ord_id, str) else "",
                ord_status=OrdStatus.REJECTED if o is None else o.status,
                cxl_rej_reason=reason,
                cxl_rej_response_to=response_to,
                text=text,
                transact_ns=op.ts,
            )
        )

    def _execute(self, op: _Op, o: SimOrder) -> None:
        """Trade a just accepted or replaced order; cancel what must not rest."""
        assert o.side is not None
        other = opposite(o.side)
        limit = o.price if o.ord_type is OrdType.LIMIT else None
        book, ladder = self._ledger.book(o.symbol, other), self._ledger.ladder(o.symbol, other)
        trades = plan_match(o.side, limit, o.leaves_qty, book, ladder)
        if o.tif is TimeInForce.FOK and sum(t.qty for t in trades) < o.leaves_qty:
            self._end(op, o, OrdStatus.CANCELED, "FOK order not fully fillable")
            return
        for t in trades:
            if t.resting is not None:
                self._fill(op, t.resting, t.qty, t.px, None)
            self._fill(op, o, t.qty, t.px, t.level)
        if o.status.is_open and (o.ord_type is OrdType.MARKET or o.tif in _IMMEDIATE):
            why = "market order" if o.ord_type is OrdType.MARKET else "IOC"
            self._end(op, o, OrdStatus.CANCELED, f"{why} remainder cancelled: no liquidity")

    def _fill(self, op: _Op, o: Resting, qty: Decimal, px: Decimal, level: Decimal | None) -> None:
        rec = {"t": "fill", "oid": o.oid, "q": str(qty), "px": str(px), "lvl": dec_str(level)}
        self._emit(op, rec)

    def _end(
        self, op: _Op, o: SimOrder, st: OrdStatus, text: str, cl: str = "", orig: str = ""
    ) -> None:
        rec = {"t": "end", "oid": o.oid, "st": st.value, "cl": cl, "orig": orig, "text": text}
        self._emit(op, rec)

    def operator_record(self, build: Callable[[Ledger], Record], now_ns: int) -> list[Event]:
        """One record an operator's command builds from the venue's state (a trade's bust
        or correction, `actors.venuesim.busts`), applied and persisted as an operation."""
        op = _Op(now_ns)
        self._emit(op, build(self._ledger))
        return self._commit(op)

    def _apply(self, op: _Op, rec: Record) -> SimOrder | None:
        if self._snapshots and "oid" in rec:  # a status answer still being read keeps the
            for snap in list(self._snapshots):  # order as it was when it was asked
                snap.before_change(rec["oid"])
        rec["ts"] = op.ts
        op.txn.append(rec)
        return self._ledger.apply(rec)

    def _emit(self, op: _Op, rec: Record) -> SimOrder | None:
        """Apply a record that produces one execution report, and queue that report."""
        rec["x"] = self._ledger.last_exec + 1
        o = self._apply(op, rec)
        event = self._ledger.event(rec, o)
        assert event is not None
        op.events.append(event)
        return o

    def _commit(self, op: _Op) -> list[Event]:
        if op.txn:
            self._store.append(op.txn)
        return op.events
