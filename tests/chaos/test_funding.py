"""The exchange's funding for a chaos run: `load.exchange_funding` (enough for the load),
`--exchange-balances` (parsed and validated as `[venues.sim] balances`), and
`ChaosOptions.exchange_start_balances` / the venue's config (balances and baselines
agree). Pure: no processes."""

from __future__ import annotations

import argparse

import pytest

from protocol.config import VenueCfg
from tests.chaos.__main__ import _balances, build_parser, options_from_args
from tests.chaos.harness import (
    EXCHANGE_DEFAULT_BALANCES,
    EXCHANGE_LOTS,
    EXCHANGE_SYMBOLS,
    ChaosOptions,
)
from tests.chaos.load import exchange_funding


def test_funding_for_a_long_load_is_the_largest_submit_every_time_twice() -> None:
    """10 minutes at 200 ops/s: 120,000 submits of 200 lots, x2 for the prices' walk (the
    numbers docs/chaos.md gives), no trailing zeros."""
    funding = exchange_funding(EXCHANGE_SYMBOLS, EXCHANGE_LOTS, 120_000)
    assert funding == {"BTC": "9600", "ETH": "192000", "USDT": "1152000000"}


@pytest.mark.parametrize("ops", [0, 1, 100.7])
def test_funding_is_never_below_the_sims_defaults(ops: float) -> None:
    assert exchange_funding(EXCHANGE_SYMBOLS, EXCHANGE_LOTS, ops) == EXCHANGE_DEFAULT_BALANCES


def test_a_quote_shared_by_symbols_is_funded_for_all_of_them() -> None:
    """n = 2 x 10,000 x 200 = 4,000,000 lots: BTC 4,000,000 x 0.5 x 10 + ETH x 1 x 2."""
    funding = exchange_funding({"BTC/USDT": "10", "ETH/USDT": "2"}, {"BTC/USDT": "0.5"}, 10_000)
    assert funding == {"BTC": "2000000", "ETH": "4000000", "USDT": "28000000"}


def test_exchange_balances_are_parsed_as_the_sims_config() -> None:
    assert _balances("USDT=10000, BTC=0.2 ,ETH=4") == {"USDT": "10000", "BTC": "0.2", "ETH": "4"}
    assert _balances("BTC=0") == {"BTC": "0"}


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "expected ASSET=QTY"),
        ("USDT", "expected ASSET=QTY"),
        ("USDT=1,BTC", "expected ASSET=QTY"),
        ("usdt=1", "pattern"),
        ("USDT=-1", "greater than or equal to 0"),
        ("USDT=lots", "decimal"),
    ],
)
def test_bad_exchange_balances_are_refused_naming_the_problem(text: str, words: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as info:
        _balances(text)
    assert words in str(info.value)


def test_the_command_line_sets_the_exchange_balances() -> None:
    ns = build_parser().parse_args(["--exchange-balances", "USDT=10000,BTC=0.2,ETH=4"])
    assert options_from_args(ns).exchange_balances == {"USDT": "10000", "BTC": "0.2", "ETH": "4"}
    assert options_from_args(build_parser().parse_args([])).exchange_balances is None


def test_start_balances_are_the_load_funding_or_the_named_over_the_defaults() -> None:
    loaded = ChaosOptions(rate_per_s=200.0, duration_s=600.0)
    assert loaded.exchange_start_balances() == exchange_funding(
        EXCHANGE_SYMBOLS, EXCHANGE_LOTS, 120_000
    )
    poor = ChaosOptions(exchange_balances={"USDT": "10000", "BTC": "0.2"})
    assert poor.exchange_start_balances() == {"BTC": "0.2", "ETH": "1000", "USDT": "10000"}


@pytest.mark.parametrize("named", [None, {"USDT": "10000", "BTC": "0.2", "ETH": "4"}])
def test_the_exchange_venues_config_is_valid_its_baselines_its_base_balances(
    named: dict[str, str] | None,
) -> None:
    """The harness's ccxt venue passes the config's own checks (a base asset's balance is
    its position_baseline), funded for the load or as named."""
    opts = ChaosOptions(duration_s=60.0, exchange_balances=named)
    (raw,) = [v for v in opts.config_overrides()["venues"] if v.get("kind") == "ccxt"]
    venue = VenueCfg.model_validate(raw)
    start = opts.exchange_start_balances()
    assert venue.sim is not None and venue.ccxt is not None
    assert {a: str(q) for a, q in venue.sim.balances.items()} == start
    assert {a: str(q) for a, q in venue.ccxt.position_baseline.items()} == {
        a: start[a] for a in ("BTC", "ETH")
    }
