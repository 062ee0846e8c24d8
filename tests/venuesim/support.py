"""A small harness around the simulated venue: a clock, short order helpers, restarts."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

from actors.venuesim import CancelReject, Event, ExecEvent, SimStore, Venue, inspect
from actors.venuesim.store import LOG_NAME
from protocol.config import SimCfg
from protocol.messages import Side

D = Decimal
BOOK_ID = "bk"


def sim_cfg(**overrides: Any) -> SimCfg:
    """Reference 100, tick 0.01: the market maker bids 99.99/99.98/99.97 and offers
    100.01/100.02/100.03, 100 each."""
    values: dict[str, Any] = {
        "reference_prices": {"AAPL": D("100"), "MSFT": D("300")},
        "tick_size": D("0.01"),
        "quote_qty": D("100"),
        "quote_levels": 3,
        "volatility_bps": 5.0,
    }
    values.update(overrides)
    return SimCfg(**values)


NO_MM = {"quote_qty": D("0")}  # a venue where only the client's own orders trade


class Sim:
    """One venue on a state dir, with a fake clock that advances 1 us per call."""

    def __init__(self, state_dir: Path, cfg: SimCfg | None = None, seed: int = 7) -> None:
        self.state_dir = state_dir
        self.cfg = cfg or sim_cfg()
        self.seed = seed
        self.now_ns = 0
        self.store = SimStore.open(state_dir, book_id=BOOK_ID)
        self.venue = Venue("sim", self.cfg, self.store, seed)

    def clock(self) -> int:
        self.now_ns += 1000
        return self.now_ns

    def order(
        self,
        cl: str,
        side: str,
        qty: str | int,
        price: str | None = None,
        *,
        tif: str = "DAY",
        symbol: str = "AAPL",
        ord_type: str | None = None,
    ) -> list[Event]:
        ord_type = ord_type or ("MARKET" if price is None else "LIMIT")
        px = None if price is None else D(price)
        return self.venue.new_order(cl, symbol, side, D(qty), ord_type, px, tif, self.clock())

    def cancel(self, cl: str, orig: str) -> list[Event]:
        return self.venue.cancel(cl, orig, self.clock())

    def replace(
        self, cl: str, orig: str, qty: str | int, price: str | None = None, **kw: Any
    ) -> list[Event]:
        px = None if price is None else D(price)
        return self.venue.replace(
            cl, orig, D(qty), px, kw.get("ord_type"), kw.get("tif"), self.clock()
        )

    def steps(self, n: int) -> list[Event]:
        return [e for _ in range(n) for e in self.venue.liquidity_step(self.clock())]

    def restart(self) -> None:
        """A clean stop and start on the same state dir."""
        self.store.close()
        self.store = SimStore.open(self.state_dir)
        self.venue = Venue("sim", self.cfg, self.store, self.seed)

    def crash_copy(self, state_dir: Path) -> None:
        """Copy the state this venue would leave behind if it were `kill -9`ed right now
        (the log as the page cache has it, nothing flushed) into `state_dir`."""
        state_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.state_dir / LOG_NAME, state_dir / LOG_NAME)

    def close(self) -> None:
        self.store.close()


def state(sim: Sim) -> dict[str, Any]:
    """Everything observable about a venue, including what its log says (`inspect`)."""
    venue = sim.venue
    view = inspect(sim.state_dir)
    del view["log"]
    return {
        "open": venue.open_orders(),
        "positions": venue.positions(),
        "quotes": {(s, side): venue.quotes(s, side) for s in venue.symbols for side in Side},
        "references": {s: venue.reference_price(s) for s in venue.symbols},
        "step": venue.step,
        "inspect": view,
    }


def execs(events: list[Event]) -> list[ExecEvent]:
    out = [e for e in events if isinstance(e, ExecEvent)]
    assert len(out) == len(events), f"unexpected cancel rejects in {events}"
    return out


def only_cancel_reject(events: list[Event]) -> CancelReject:
    assert len(events) == 1 and isinstance(events[0], CancelReject), events
    return events[0]


def types(events: list[Event]) -> list[str]:
    """ExecType (or "9" for a cancel reject) of each event, in order."""
    return [e.exec_type.value if isinstance(e, ExecEvent) else "9" for e in events]


def fills(events: list[Event], cl: str | None = None) -> list[tuple[str, Decimal, Decimal]]:
    """(ClOrdID, LastQty, LastPx) of each trade, in order."""
    return [
        (e.cl_ord_id, e.last_qty, e.last_px)
        for e in execs(events)
        if e.exec_type.value == "F" and (cl is None or e.cl_ord_id == cl)
    ]
