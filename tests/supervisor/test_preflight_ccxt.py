"""`preflight`'s venue row for a ccxt venue: a TCP connect to its exchange's REST host (its
`base_url`, else the exchange class's own API, the testnet's with `sandbox`). It used to
connect to the venue's FIX `host:port`, which a ccxt venue leaves at 0: every real ccxt
venue failed preflight ("port 0 and no [venues.sim]")."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actors.supervisor import preflight_checks as pf
from protocol.ccxt_config import CcxtCfg
from protocol.config import VenueCfg, parse_config


def _ccxt(tmp_path: Path, **ccxt: Any) -> VenueCfg:
    table = {"api_key_env": "K", "secret_env": "S", "symbols": ["BTC/USDT"]} | ccxt
    venue = {"name": "bx", "kind": "ccxt", "ccxt": table}
    system = {"state_dir": str(tmp_path / "state"), "runtime_dir": str(tmp_path / "rt")}
    return parse_config({"system": system, "venues": [venue]}).venues[0]


@pytest.fixture
def listener() -> Iterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield sock.getsockname()[1]
    sock.close()


def test_a_ccxt_venue_is_checked_at_its_base_url(tmp_path: Path, listener: int) -> None:
    row = pf.venue_check(_ccxt(tmp_path, base_url=f"http://127.0.0.1:{listener}"), timeout_s=5)
    assert row.status == "PASS" and f"127.0.0.1:{listener} accepts TCP" in row.detail, row
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, not listening: a connect is refused
    port = closed.getsockname()[1]
    try:
        row = pf.venue_check(_ccxt(tmp_path, base_url=f"http://127.0.0.1:{port}"), timeout_s=5)
    finally:
        closed.close()
    assert row == pf.Check("venue:bx", "FAIL", f"127.0.0.1:{port}: connection refused")


def test_without_base_url_the_exchanges_own_api_host_is_the_one_checked() -> None:
    """Read from ccxt's exchange class (no connect here: the machine may have no network)."""
    cfg: dict[str, Any] = {"api_key_env": "K", "secret_env": "S", "symbols": ["BTC/USDT"]}
    assert pf.ccxt_rest_address(CcxtCfg(**cfg)) == ("api.binance.com", 443)
    assert pf.ccxt_rest_address(CcxtCfg(**cfg, sandbox=True)) == ("testnet.binance.vision", 443)
    assert pf.ccxt_rest_address(CcxtCfg(**cfg, base_url="https://proxy.example")) == (
        "proxy.example", 443,
    )  # fmt: skip


def test_an_exchange_ccxt_does_not_have_fails_in_one_line() -> None:
    """The config refuses any exchange but binance (tests/protocol/test_ccxt_exchanges.py);
    the address lookup still names an unknown one rather than raising from ccxt."""
    cfg = CcxtCfg.model_construct(
        exchange="nosuchexchange", base_url="", sandbox=False, symbols=["BTC/USDT"]
    )
    with pytest.raises(ValueError, match="ccxt has no exchange 'nosuchexchange'"):
        pf.ccxt_rest_address(cfg)
