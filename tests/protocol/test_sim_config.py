"""`[venues.sim] balances`, the local exchange's starting balances: validated where the
config is loaded, with the key named; the defaults unchanged when it is absent."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from actors.exchangesim.book import BINANCE_COMMISSION
from protocol.config import SystemConfig, load_config
from protocol.exceptions import ConfigError

EXCHANGE = """
[[venues]]
name = "bx"
kind = "ccxt"
[venues.ccxt]
api_key_env = "K"
secret_env = "S"
symbols = ["BTC/USDT"]
position_baseline = { BTC = "1000" }
[venues.sim]
reference_prices = { "BTC/USDT" = "60000" }
"""


def _load(tmp_path: Path, text: str) -> SystemConfig:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return load_config(path)


def test_balances_default_to_none_named_and_take_non_negative_decimals(tmp_path: Path) -> None:
    """No key: no balances named (the exchange's defaults apply, as before); named: decimals
    as written, zero allowed."""
    cfg = _load(tmp_path, EXCHANGE)
    assert cfg.venues[0].sim is not None and cfg.venues[0].sim.balances == {}
    cfg = _load(tmp_path, EXCHANGE + 'balances = { USDT = "20000.5", ETH = "0" }\n')
    sim = cfg.venues[0].sim
    assert sim is not None and sim.balances == {"USDT": Decimal("20000.5"), "ETH": Decimal(0)}


@pytest.mark.parametrize(
    ("line", "field", "words"),
    [
        (
            'balances = { USDT = "-1" }',
            "venues[bx].sim.balances.USDT",
            "greater than or equal to 0",
        ),
        ('balances = { USDT = "lots" }', "venues[bx].sim.balances.USDT", "decimal"),
        ('balances = { USDT = "Infinity" }', "venues[bx].sim.balances.USDT", "finite"),
        ('balances = { usdt = "1" }', "venues[bx].sim.balances.usdt.[key]", "pattern"),
        ('balances = { BTC = "5" }', "venues[bx]", "position_baseline BTC = 1000"),
    ],
    ids=["negative", "not_a_decimal", "infinite", "lowercase_asset", "baseline_disagrees"],
)
def test_bad_balances_are_a_config_error_naming_the_key(
    tmp_path: Path, line: str, field: str, words: str
) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, EXCHANGE + line + "\n")
    assert info.value.field == field, str(info.value)
    assert words.lower() in str(info.value).lower()


def test_balances_on_a_fix_venue_sim_are_refused(tmp_path: Path) -> None:
    """The FIX venue simulator has no account: the key there is a mistake, said so."""
    text = '[[venues]]\nname = "simA"\n[venues.sim]\nbalances = { USD = "1" }\n'
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, text)
    assert info.value.field == "venues[simA]"
    assert 'kind = "ccxt" venues only' in str(info.value)


def test_balances_of_a_base_asset_without_a_position_baseline_are_refused(
    tmp_path: Path,
) -> None:
    """No `position_baseline` for BTC is a baseline of 0: 50 BTC at the start would be a
    position of +50 against the OMS's 0 (docs/ccxt-venues.md: a config error says so); 0
    BTC, or an asset no symbol trades (ETH here), is no position."""
    bare = EXCHANGE.replace('position_baseline = { BTC = "1000" }\n', "")
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, bare + 'balances = { BTC = "50" }\n')
    assert "position_baseline has no BTC" in str(info.value)
    cfg = _load(tmp_path, bare + 'balances = { BTC = "0", ETH = "5", USDT = "100" }\n')
    sim = cfg.venues[0].sim
    assert sim is not None and sim.balances["BTC"] == 0


def test_commission_rate_defaults_to_binances_and_is_the_local_exchanges_only(
    tmp_path: Path,
) -> None:
    """No key: None, which the local exchange takes as Binance's default 0.1%; a rate is a
    decimal in [0, 1); on a FIX venue's simulator (no account) the key is refused."""
    cfg = _load(tmp_path, EXCHANGE)
    assert cfg.venues[0].sim is not None and cfg.venues[0].sim.commission_rate is None
    assert BINANCE_COMMISSION == Decimal("0.001")
    sim = _load(tmp_path, EXCHANGE + 'commission_rate = "0"\n').venues[0].sim
    assert sim is not None and sim.commission_rate == 0
    for bad in ('"1"', '"-0.1"'):
        with pytest.raises(ConfigError) as info:
            _load(tmp_path, EXCHANGE + f"commission_rate = {bad}\n")
        assert info.value.field == "venues[bx].sim.commission_rate", str(info.value)
    text = '[[venues]]\nname = "simA"\n[venues.sim]\ncommission_rate = "0.001"\n'
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, text)
    assert 'kind = "ccxt" only' in str(info.value)
