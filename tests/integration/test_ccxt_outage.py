"""A crypto exchange that goes away while a ccxt connector is logged on: with the
user-data stream down and the exchange not answering, the session ends (the venue is
DISCONNECTED, so the OMS stops sending) and comes back once the exchange does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.helpers import SystemUnderTest

pytestmark = pytest.mark.integration

VENUE = {
    "name": "bx",
    "kind": "ccxt",
    "request_timeout_s": 0.5,
    "ccxt": {
        "exchange": "binance",
        "api_key_env": "TP_TEST_BX_KEY",
        "secret_env": "TP_TEST_BX_SECRET",
        "symbols": ["BTC/USDT"],
        "poll_interval_s": 0.2,
        "position_baseline": {"BTC": "1000"},
    },
    "sim": {"reference_prices": {"BTC/USDT": "60000.00"}},
}
ENV = {"TP_TEST_BX_KEY": "k" * 64, "TP_TEST_BX_SECRET": "s" * 64}


def test_an_exchange_that_stops_answering_ends_the_session_until_it_is_back(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    sut = start_system(overrides={"venues": [VENUE]}, env=ENV)
    sut.wait_event("ccxt_stream_up", 20.0)
    since = sut.mark()
    stopped = sut.cli("stop", "exchangesim.bx", "--reason", "exchange outage (test)")
    assert stopped.returncode == 0, stopped.stderr
    down: dict[str, Any] = sut.wait_event("venue_state", 15.0, since=since, state="DISCONNECTED")
    assert str(down["detail"]).startswith("exchange unreachable")
    # three failed pings in a row end the session; on a loaded machine one may have failed
    # (a slow answer) before the outage, so count the run, not the lines since the mark
    failed = sut.events("ccxt_ping_failed", since=since)
    assert failed and failed[-1]["failures"] >= 3, failed
    back = sut.cli("start", "exchangesim.bx")
    assert back.returncode == 0, back.stderr
    sut.wait_event("venue_state", 30.0, since=since, state="CONNECTED")
