"""One load client process: submits, cancels and replaces orders at a paced rate over the
venues, recording every attempt and its outcome in its history file.

    python -m tests.chaos.load --spec '{"client": 0, "seed": 7, ...}'   (see `LoadSpec`)

Retries follow the client contract: after `Timeout` the same request is sent again (same
client order id: the OMS must not create a second order), after `NotReady` again after a
short backoff. Every attempt is its own history entry. SIGTERM (or the deadline) stops the
client after the operation in progress; it exits 0.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path

from protocol.client import ExecutionClient, NotReady, Timeout
from protocol.config import load_config
from protocol.exceptions import TradePulseError
from protocol.messages import TERMINAL_STATUSES, OrderView
from tests.chaos.history import Entry, HistoryWriter, client_order_id

TICK = Decimal("0.01")
LOT_COUNTS = (1, 5, 10, 25, 50, 100, 200)  # a submit's quantity, in lots of its symbol
FUNDING_MARGIN = 2  # the prices' walk in a run stays well within a factor 2


def exchange_funding(prices: dict[str, str], lots: dict[str, str], ops: float) -> dict[str, str]:
    """Starting balances that a load of `ops` operations cannot run dry: as if every one
    were a submit of the largest quantity, filled, every buy or every sell (x2 for the
    prices' walk): each base asset that many largest lots, the quote that many of each
    symbol's largest notional at its reference price. Never below the exchange sim's
    defaults (1,000 of a base asset, 1,000,000 of the quote)."""
    n = FUNDING_MARGIN * max(int(ops), 1) * max(LOT_COUNTS)
    out: dict[str, Decimal] = {}
    for symbol, px in sorted(prices.items()):
        base, quote = symbol.split("/")
        lot = Decimal(lots.get(symbol, "1"))
        out[base] = max(Decimal(1000), n * lot)
        out[quote] = out.get(quote, Decimal(0)) + n * lot * Decimal(px)
    for symbol in prices:
        quote = symbol.split("/")[1]
        out[quote] = max(out[quote], Decimal(1_000_000))
    return {asset: format(v.normalize(), "f") for asset, v in sorted(out.items())}


@dataclass(frozen=True)
class LoadSpec:
    client: int
    seed: int
    config_path: str
    state_dir: str
    runtime_dir: str
    out_path: str
    venues: list[str]
    reference_prices: dict[str, str]  # symbol -> price
    # ccxt venues (crypto exchanges): their symbols' prices, and the lot each quantity is a
    # multiple of (on the exchange's LOT_SIZE step, above its minimum notional)
    exchanges: list[str] = field(default_factory=list)
    exchange_prices: dict[str, str] = field(default_factory=dict)
    exchange_lots: dict[str, str] = field(default_factory=dict)
    rate_per_s: float = 20.0  # operations per second (submits + cancels + replaces)
    duration_s: float = 30.0
    cancel_share: float = 0.25
    replace_share: float = 0.10
    cross_share: float = 0.35  # submits priced through the market (fill at once)
    max_live: int = 40  # above this many live orders the client cancels its oldest
    request_timeout_s: float = 5.0
    max_attempts: int = 30
    not_ready_backoff_s: float = 0.2


@dataclass
class _Live:
    view: OrderView
    coid: str


@dataclass
class LoadClient:
    spec: LoadSpec
    client: ExecutionClient
    writer: HistoryWriter
    rng: random.Random = field(init=False)
    live: list[_Live] = field(default_factory=list)
    n_orders: int = 0
    seq: int = 0
    stopping: bool = False

    def __post_init__(self) -> None:
        self.rng = random.Random(f"{self.spec.seed}:{self.spec.client}")

    # ------------------------------------------------------------------ the loop

    def run(self) -> None:
        period_s = 1.0 / self.spec.rate_per_s
        deadline = time.monotonic() + self.spec.duration_s
        next_at = time.monotonic()
        while not self.stopping and time.monotonic() < deadline:
            now = time.monotonic()
            if now < next_at:
                time.sleep(min(next_at - now, 0.05))
                continue
            next_at = max(next_at + period_s, now - 1.0)  # catch up at most 1 s of backlog
            self.step()

    def step(self) -> None:
        roll = self.rng.random()
        if len(self.live) > self.spec.max_live:
            self.cancel(self.live[0])
        elif self.live and roll < self.spec.cancel_share:
            self.cancel(self.rng.choice(self.live))
        elif self.live and roll < self.spec.cancel_share + self.spec.replace_share:
            self.replace(self.rng.choice(self.live))
        else:
            self.submit()

    # ------------------------------------------------------------------ operations

    def submit(self) -> None:
        rng = self.rng
        self.n_orders += 1
        coid = client_order_id(self.spec.seed, self.spec.client, self.n_orders)
        venue = rng.choice([*self.spec.venues, *self.spec.exchanges])
        prices = (
            self.spec.exchange_prices
            if venue in self.spec.exchanges
            else self.spec.reference_prices
        )
        symbol = rng.choice(sorted(prices))
        ref = Decimal(prices[symbol])
        side = rng.choice(("BUY", "SELL"))
        qty = Decimal(rng.choice(LOT_COUNTS)) * self._lot(symbol)
        kind = rng.random()
        order_type, tif = "LIMIT", "DAY"
        price: Decimal | None = self._price(ref, side)
        if kind < 0.05:
            order_type, tif, price = "MARKET", "IOC", None
        elif kind < 0.15:
            tif = "IOC"
        fields: dict[str, str | None] = dict(
            venue=venue,
            symbol=symbol,
            side=side,
            qty=str(qty),
            price=None if price is None else str(price),
            order_type=order_type,
            tif=tif,
        )

        def call(timeout_s: float) -> OrderView:
            return self.client.submit(
                venue,
                symbol,
                side,
                qty,
                order_type,
                price=price,
                tif=tif,
                client_order_id=coid,
                timeout_s=timeout_s,
            )

        view = self._attempts("submit", coid, fields, call)
        if view is not None and view.status not in TERMINAL_STATUSES:
            self.live.append(_Live(view, coid))

    def cancel(self, target: _Live) -> None:
        v = target.view
        fields = self._fields(v, str(v.qty), None if v.price is None else str(v.price))

        def call(timeout_s: float) -> OrderView:
            return self.client.cancel(target.coid, timeout_s=timeout_s)

        self._attempts("cancel", target.coid, fields, call)
        self._forget(target)  # done: cancelled, or already final, or unknowable

    def replace(self, target: _Live) -> None:
        v = target.view
        if v.price is None:
            self.cancel(target)
            return
        new_price = max(TICK, v.price + TICK * self.rng.choice((-2, -1, 1, 2)))
        lot = self._lot(v.symbol)
        new_qty = max(lot, v.qty + lot * self.rng.choice((-5, 0, 0, 5, 10)))
        fields = self._fields(v, str(new_qty), str(new_price))

        def call(timeout_s: float) -> OrderView:
            return self.client.replace(
                target.coid, qty=new_qty, price=new_price, timeout_s=timeout_s
            )

        view = self._attempts("replace", target.coid, fields, call)
        if view is None or view.status in TERMINAL_STATUSES:
            self._forget(target)
        else:
            target.view = view.model_copy(update={"qty": new_qty, "price": new_price})

    # ------------------------------------------------------------------ helpers

    def _price(self, ref: Decimal, side: str) -> Decimal:
        sign = 1 if side == "BUY" else -1
        if self.rng.random() < self.spec.cross_share:
            offset = Decimal(self.rng.randint(20, 60)) / 10000  # 0.2-0.6 % through
        else:
            offset = -Decimal(self.rng.randint(1, 150)) / 10000  # 0.01-1.5 % away
        return (ref * (1 + sign * offset)).quantize(TICK)

    def _lot(self, symbol: str) -> Decimal:
        return Decimal(self.spec.exchange_lots.get(symbol, "1"))

    @staticmethod
    def _fields(v: OrderView, qty: str, price: str | None) -> dict[str, str | None]:
        return dict(
            venue=v.venue,
            symbol=v.symbol,
            side=v.side.value,
            qty=qty,
            price=price,
            order_type=v.order_type.value,
            tif=v.tif.value,
        )

    def _forget(self, target: _Live) -> None:
        self.live = [x for x in self.live if x is not target]

    def _attempts(
        self, op: str, coid: str, fields: dict[str, str | None], call: Callable[[float], OrderView]
    ) -> OrderView | None:
        """Call until an answer that is not Timeout / NotReady; one history entry per attempt."""
        self.seq += 1
        for attempt in range(1, self.spec.max_attempts + 1):
            start = time.time_ns()
            try:
                view = call(self.spec.request_timeout_s)
            except Timeout as exc:
                self._record(op, attempt, coid, fields, start, "timeout", exc)
            except NotReady as exc:
                self._record(op, attempt, coid, fields, start, "error", exc)
                if not self.stopping:
                    time.sleep(self.spec.not_ready_backoff_s)
            except TradePulseError as exc:
                self._record(op, attempt, coid, fields, start, "error", exc)
                return None
            else:
                self._record(op, attempt, coid, fields, start, "ok", None, view)
                return view
            if self.stopping:
                return None
        return None

    def _record(
        self,
        op: str,
        attempt: int,
        coid: str,
        fields: dict[str, str | None],
        start_ns: int,
        outcome: str,
        exc: BaseException | None,
        view: OrderView | None = None,
    ) -> None:
        self.writer.record(
            Entry(
                client=self.spec.client,
                seq=self.seq,
                op=op,  # type: ignore[arg-type]
                attempt=attempt,
                client_order_id=coid,
                start_ns=start_ns,
                end_ns=time.time_ns(),
                outcome=outcome,  # type: ignore[arg-type]
                error="" if exc is None else type(exc).__name__,
                detail="" if exc is None else str(exc)[:200],
                status="" if view is None else view.status.value,
                **fields,  # type: ignore[arg-type]
            )
        )


def run_client(spec: LoadSpec) -> int:
    cfg = load_config(spec.config_path, state_dir=spec.state_dir, runtime_dir=spec.runtime_dir)
    client = ExecutionClient(
        cfg, name=f"chaos{spec.client}", retry_interval_s=0.5, timeout_s=spec.request_timeout_s
    )
    writer = HistoryWriter(Path(spec.out_path))
    load = LoadClient(spec, client, writer)

    def stop(*_: object) -> None:
        load.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        load.run()
    finally:
        writer.close()
        client.close()
    return 0


def spec_json(spec: LoadSpec) -> str:
    return json.dumps(asdict(spec))


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.chaos.load", description=__doc__)
    p.add_argument("--spec", required=True, help="LoadSpec as a JSON object")
    ns = p.parse_args(argv)
    return run_client(LoadSpec(**json.loads(ns.spec)))


if __name__ == "__main__":
    sys.exit(main())
