"""Never-sent orders that live only in the book: the ones an OMS restart took out of the
venue queue, so that the queue drop (`VenueLink.drop_unsent`) cannot find them.

An order approved by risk but not yet sent is rejected instead of sent when the
kill-switch engages, its venue's session closes, the `[trading]` windows close, or an
operator stops its connector (`actors.oms.intake_state.unsent_reason`). In one process the
order waits in its link's queue and is dropped from there. After a kill -9 of the OMS the
queue is empty: the order is PENDING_SUBMIT (or UNKNOWN) in the journal only, and comes
back to a queue only when reconciliation finds the venue does not know it (a Resubmit).

It cannot simply be rejected when the stop (or close) is seen: the previous process may
have sent it before it died, and then the venue has it. So the decision stays with
reconciliation, and this guard only changes what a Resubmit means:

- `hold(venue)`, run with every queue drop (the stop seen, the session or the window
  closed, the kill-switch engaged) and once at start (kill-switch engaged or window closed
  then), notes the venue's open never-acknowledged PENDING_SUBMIT/UNKNOWN orders with the
  reason. A held order the venue turns out to have is reconciled as usual (the hold never
  matters); one the venue does not know is resubmitted, and its dispatch asks
  `OmsActor.drop_unsent`, which asks `reason`: it is REJECTED with the held reason
  instead of sent (`order_dropped_unsent`).
- `reason` also rejects a resubmitted order approved before the `[trading]` windows last
  closed (it closed and reopened while the OMS restarted): DROPPED_OUTSIDE_TRADING_WINDOW.
  The calendar decides, so this holds across any number of restarts.

Holds live in memory (not journalled): a stop and start (or a kill-switch engage and
reset) both made while the OMS was down leave no trace for it to find, and an OMS restart
after the stop or halt was lifted but before the venue reconciled loses the holds made
before it (such an order is then resubmitted if the venue does not know it).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Protocol

from actors.oms.intake_state import IntakeGate, unsent_reason
from actors.oms.order_book import OrderBook
from actors.oms.orders import DROPPED_OUTSIDE_TRADING_WINDOW, Order
from actors.oms.trading_calendar import TradingCalendar
from protocol.config import SystemConfig
from protocol.messages import OrderStatus
from protocol.windows import TradingCfg

_NEVER_SENT_MAYBE = (OrderStatus.PENDING_SUBMIT, OrderStatus.UNKNOWN)


class _Trading(Protocol):
    @property
    def closed(self) -> bool: ...


class GuardHost(Protocol):
    """What the guard needs of the OMS (`actors.oms.actor.OmsActor`)."""

    @property
    def book(self) -> OrderBook: ...

    @property
    def cfg(self) -> SystemConfig: ...

    @property
    def log(self) -> Any: ...

    @property
    def kill_switch_engaged(self) -> bool: ...

    @property
    def gate(self) -> IntakeGate: ...

    @property
    def trading(self) -> _Trading: ...

    @property
    def venues(self) -> Mapping[str, object]: ...


def closed_since(calendar: TradingCalendar, since_s: float, now_s: float) -> bool:
    """Whether the windows closed trading at any instant in [since_s, now_s]."""
    t = dt.datetime.fromtimestamp(since_s, dt.UTC)
    if not calendar.state_at(t).open:
        return True
    change = calendar.next_change(t)  # open at `t`: its first change is a close
    return change is not None and change.at.timestamp() <= now_s


def _maybe_unsent(order: Order | None) -> bool:
    """Open, and no venue ever acknowledged it: it may never have been sent."""
    return order is not None and order.status in _NEVER_SENT_MAYBE and not order.ever_acknowledged


class UnsentGuard:
    def __init__(self, host: GuardHost) -> None:
        self.host = host
        self._held: dict[str, str] = {}  # client_order_id -> the reason it is not sent
        self._calendar: tuple[TradingCfg, TradingCalendar] | None = None
        for venue in host.venues:  # the kill-switch engaged or the window closed at start
            self.hold(venue)

    def hold(self, venue: str, *, out_of_session: bool = False) -> None:
        """Note the venue's maybe-never-sent orders with the reason none is sent now (if
        any): a Resubmit of one is rejected instead (`reason`)."""
        h = self.host
        self._held = {c: r for c, r in self._held.items() if _maybe_unsent(h.book.get(c))}
        why = unsent_reason(h.kill_switch_engaged, out_of_session, h.gate, venue, h.trading.closed)
        if why is None:
            return
        held = [
            o.client_order_id
            for o in h.book.orders(venue, open_only=True)
            if _maybe_unsent(o) and o.client_order_id not in self._held
        ]
        for coid in held:
            self._held[coid] = why
        if held:
            h.log.info("unsent_orders_held", venue=venue, reason=why, orders=len(held))

    def reason(self, order: Order) -> str | None:
        """Why the (PENDING_SUBMIT, not in flight) order is not sent now although nothing
        closes its venue now, or None: it was held, or it is a resubmission of an order
        approved before the trading windows last closed."""
        held = self._held.get(order.client_order_id)
        if held is not None or not order.resubmits:
            return held
        approved_ns = order.ts_submit_ns or order.ts_created_ns
        if closed_since(self._trading_calendar(), approved_ns / 1e9, order.ts_resubmit_ns / 1e9):
            return DROPPED_OUTSIDE_TRADING_WINDOW
        return None

    def _trading_calendar(self) -> TradingCalendar:
        cfg = self.host.cfg.trading  # a live reload swaps the config object
        if self._calendar is None or self._calendar[0] is not cfg:
            self._calendar = (cfg, TradingCalendar(cfg))
        return self._calendar[1]
