"""`[venues.reconnect]`: a table that leaves `initial_s` out keeps the venue's first step
(0.05 s), and 0 is refused. Before, such a table got the general backoff's 0, and every
later step is a multiple of the first: the connector retried the venue at once, forever,
DOWN or not (the hot loop a broker locks a session out for)."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.connector.policy import ReconnectPolicy
from protocol.config import load_config
from protocol.exceptions import ConfigError

VENUE = """
[[venues]]
name = "simA"
[venues.sim]
reference_prices = { AAPL = "100.00" }
"""


def _load(tmp_path: Path, reconnect: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f"{VENUE}[venues.reconnect]\n{reconnect}\n")
    return path


def test_a_table_without_initial_s_keeps_the_first_step_and_never_retries_in_a_hot_loop(
    tmp_path: Path,
) -> None:
    cfg = load_config(_load(tmp_path, "max_s = 10.0"))
    backoff = cfg.venue("simA").reconnect
    assert (backoff.initial_s, backoff.max_s) == (0.05, 10.0)
    policy = ReconnectPolicy(backoff, 3, 5.0, rand=lambda: 0.5)  # jitter's midpoint: none
    delays = [policy.on_down(False, 0.0).delay_s for _ in range(5)]
    assert delays == [0.05, 0.1, 10.0, 10.0, 10.0]  # DOWN from the third: the cap


def test_a_first_step_of_zero_is_refused_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(_load(tmp_path, "initial_s = 0"))
    assert "venues[simA].reconnect.initial_s" in str(info.value)


def test_without_the_table_the_defaults_are_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(VENUE)
    backoff = load_config(path).venue("simA").reconnect
    assert (backoff.initial_s, backoff.factor, backoff.max_s, backoff.jitter) == (
        0.05, 2.0, 5.0, 0.2,
    )  # fmt: skip
