"""The synthetic market maker: a seeded reference walk on the tick grid, a quote ladder
around it, refreshed every step, trading with resting client orders it crosses."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from actors.venuesim import ExecEvent, OrdStatus
from actors.venuesim.liquidity import Ladder, LadderSpec, next_reference, on_grid
from protocol.messages import Side
from tests.venuesim.support import D, Sim, execs, fills, sim_cfg

MakeSim = Callable[..., Sim]


def _walk(seed: int, steps: int, volatility_bps: float = 5.0) -> list[Decimal]:
    cfg = sim_cfg(volatility_bps=volatility_bps)
    path, px = [], D("100")
    for step in range(1, steps + 1):
        px = next_reference(px, seed=seed, symbol="AAPL", step=step, cfg=cfg)
        path.append(px)
    return path


def test_walk_is_a_function_of_seed_symbol_and_step() -> None:
    assert _walk(1, 50) == _walk(1, 50)
    assert _walk(1, 50) != _walk(2, 50)
    cfg = sim_cfg()

    def moves(symbol: str) -> list[Decimal]:
        return [
            next_reference(D("100"), seed=1, symbol=symbol, step=s, cfg=cfg) for s in range(1, 21)
        ]

    assert moves("AAPL") == moves("AAPL") != moves("MSFT")


def test_walk_stays_on_the_tick_grid_and_above_zero() -> None:
    path = _walk(3, 300, volatility_bps=2000.0)  # wild: hits the floor
    assert all(px % D("0.01") == 0 and px >= D("0.01") for px in path)
    assert min(path) == D("0.01")


def test_zero_volatility_never_moves_and_small_volatility_still_moves() -> None:
    assert set(_walk(4, 100, volatility_bps=0.0)) == {D("100")}
    assert len(set(_walk(4, 100, volatility_bps=0.2))) > 1  # 0.2 bp = 0.02 tick per step


def test_reference_is_put_on_the_grid() -> None:
    assert on_grid(D("100.004"), D("0.01")) == D("100.00")
    assert on_grid(D("0.001"), D("0.01")) == D("0.01")


def test_ladder_quotes_levels_away_from_the_reference() -> None:
    spec = LadderSpec(tick_size=D("0.5"), levels=3, quote_qty=D(10))
    bids, asks = Ladder(Side.BUY, spec, D("1")), Ladder(Side.SELL, spec, D("1"))
    assert bids.quotes == [(D("0.5"), D(10))]  # no quote at or below zero
    assert asks.quotes == [(D("1.5"), D(10)), (D("2.0"), D(10)), (D("2.5"), D(10))]
    asks.consume(D("2.0"), D(4))
    assert asks.quotes[1] == (D("2.0"), D(6))
    asks.refresh(D("2"))
    assert asks.quotes == [(D("2.5"), D(10)), (D("3.0"), D(10)), (D("3.5"), D(10))]


def test_step_moves_the_reference_and_refills_the_quotes(sim: Sim) -> None:
    sim.order("m1", "BUY", 150)
    assert sim.venue.quotes("AAPL", Side.SELL)[0] == (D("100.01"), D(0))
    sim.steps(1)
    ref = sim.venue.reference_price("AAPL")
    assert ref == _walk(sim.seed, 1)[0]
    tick = D("0.01")
    assert sim.venue.quotes("AAPL", Side.SELL) == [(ref + i * tick, D(100)) for i in (1, 2, 3)]
    assert sim.venue.quotes("AAPL", Side.BUY) == [(ref - i * tick, D(100)) for i in (1, 2, 3)]


def test_resting_limit_fills_over_time_as_the_price_walks_through_it(make_sim: MakeSim) -> None:
    """A buy below the market rests; once the reference falls so that the fresh asks cross
    it, it trades at its own price, a few quote levels per step, until filled."""
    sim = make_sim(volatility_bps=20.0)
    sim.order("b1", "BUY", 500, "99.90", tif="GTC")
    fill_steps: list[tuple[Decimal, list[ExecEvent]]] = []
    for _ in range(200):
        events = [e for e in execs(sim.steps(1)) if e.cl_ord_id == "b1"]
        if events:
            fill_steps.append((sim.venue.reference_price("AAPL"), events))
        if not sim.venue.open_orders():
            break
    assert len(fill_steps) >= 2, "filled over more than one step"
    for ref, events in fill_steps:
        assert ref + D("0.01") <= D("99.90"), "only asks at or below the bid trade"
        assert all(e.last_px == D("99.90") for e in events)
    first = fill_steps[0][1][0]
    assert first.ord_status is OrdStatus.PARTIALLY_FILLED
    assert fill_steps[-1][1][-1].ord_status is OrdStatus.FILLED
    assert sum(e.last_qty for _, events in fill_steps for e in events) == D(500)


def test_same_seed_same_market_different_seed_different_market(make_sim: MakeSim) -> None:
    def run(sim: Sim) -> tuple[list[Decimal], list[tuple[str, Decimal, Decimal]]]:
        sim.order("b1", "BUY", 300, "99.95", tif="GTC")
        sim.order("s1", "SELL", 300, "100.05", tif="GTC")
        refs, trades = [], []
        for _ in range(60):
            trades += fills(sim.steps(1))
            refs.append(sim.venue.reference_price("AAPL"))
        return refs, trades

    a, b, c = run(make_sim("a", seed=11)), run(make_sim("b", seed=11)), run(make_sim("c", seed=12))
    assert a == b and a[1], "the seeded run trades"
    assert a[0] != c[0]
