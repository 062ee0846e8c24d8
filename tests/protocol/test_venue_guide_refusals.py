"""Settings the venue guides' audit found accepted though they cannot work: each refused at
load, exit 2, naming the venue. A ccxt `position_baseline` key that is no base asset of
`symbols` (a typo: the asset meant counted its whole balance as our position, and the
heartbeat halted trading); `sandbox` with `base_url` (ccxt's sandbox replaced the URL: a
venue meant for a local exchange talked to the real testnet); a ccxt venue's simulator
without a market for one of its symbols (the default "AAPL" failed only when the local
exchange started). And the Logon's extra fields go in tag order, as documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from protocol.config import load_config
from protocol.exceptions import ConfigError
from protocol.fix_config import DialectCfg

CCXT = """
[[venues]]
name = "bx"
kind = "ccxt"
[venues.ccxt]
api_key_env = "K"
secret_env = "S"
symbols = ["BTC/USDT", "ETH/USDT"]
"""


def _error(tmp_path: Path, text: str, field: str = "venues[bx]") -> str:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.field == field, info.value.field
    return str(info.value)


@pytest.mark.parametrize(
    ("lines", "words"),
    [
        ('position_baseline = { BTC = "1", btc = "0.5" }', "position_baseline names btc"),
        ('position_baseline = { USDT = "100" }', "position_baseline names USDT"),
        ('sandbox = true\nbase_url = "http://127.0.0.1:9"', "sandbox and base_url"),
    ],
    ids=["lower_case_asset", "quote_asset", "sandbox_with_base_url"],
)
def test_a_ccxt_setting_that_cannot_work_is_refused(tmp_path: Path, lines: str, words: str) -> None:
    assert words in _error(tmp_path, CCXT + lines + "\n", "venues[bx].ccxt")


@pytest.mark.parametrize(
    ("sim", "words"),
    [
        ("", "'AAPL' is not a \"BASE/QUOTE\" market"),  # the default reference_prices
        ('reference_prices = { "BTC/USDT" = "60000" }', "has no ETH/USDT"),
        (  # as the local exchange reads its markets (`market_parts`): refused at load too
            'reference_prices = { "BTC/USDT" = "1", "ETH/USDT" = "1", "BTC/" = "1" }',
            "'BTC/' is not a \"BASE/QUOTE\" market",
        ),
        ("", "sandbox = true would trade on the exchange's testnet"),
    ],
    ids=["default_prices", "a_symbol_without_a_market", "half_a_market", "sandbox"],
)
def test_a_ccxt_simulator_needs_a_market_for_each_symbol(
    tmp_path: Path, sim: str, words: str
) -> None:
    sandbox = "sandbox = true\n" if "sandbox" in words else ""
    assert words in _error(tmp_path, CCXT + sandbox + "[venues.sim]\n" + sim + "\n")


def test_a_ccxt_simulator_with_every_market_and_the_shipped_venues_load(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    prices = 'reference_prices = { "BTC/USDT" = "60000", "ETH/USDT" = "3000" }'
    path.write_text(CCXT + 'position_baseline = { BTC = "0" }\n[venues.sim]\n' + prices + "\n")
    assert load_config(path).venues[0].sim is not None


def test_logon_fields_go_in_tag_order() -> None:
    """Sorted as text they went 1137, 1408, 96."""
    dialect = DialectCfg(logon_fields={"96": "x", "1137": "9", "1408": "FIX.5.0SP2"})
    assert [tag for tag, _ in dialect.logon_extra()] == [96, 1137, 1408]
