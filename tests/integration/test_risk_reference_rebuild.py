"""Risk's reference price (the last fill's price: a market order's notional, the price band)
after its exposure is rebuilt from the OMS (a kill -9 of risk), through the real system.
Two simulated venues quote AAPL at 100 and at 150; the gate's configured reference before
any fill is the first's (`actors.risk.support.reference_prices`)."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Any

import pytest

from protocol.exceptions import RiskRejected
from protocol.messages import OrderStatus
from tests.integration.oms_support import overrides, start, systems, venue_cfg
from tests.system_ops import VENUE, client, submit_when_open

pytestmark = pytest.mark.integration


def _cfg() -> dict[str, Any]:
    cfg = overrides()
    cfg["venues"] = [venue_cfg("simA"), venue_cfg("simB", reference_prices={"AAPL": "150.00"})]
    cfg["risk"] = {"max_order_notional": "12000"}
    return cfg


def test_a_rebuilt_risk_prices_a_market_order_at_the_last_fill_not_the_configured_one() -> None:
    """A buy of 1 fills at simB at 150.01; a market buy of 100 there (15,001) is refused
    `max_notional` (limit 12,000). Risk is killed -9 and rebuilds from the OMS: the same
    order is refused again. Before, the rebuilt risk had no last fill price (the OMS's
    positions did not say it) and priced it at the configured 100: 10,000, approved, and
    it filled for 15,001 over the limit."""
    with systems() as started:
        sut = start(started, overrides=_cfg())
        with client(sut) as c:
            submit_when_open(c, "simB", "BUY", "1", None, client_order_id="first", tif="IOC")
            c.wait_for_status("first", {OrderStatus.FILLED})
            with pytest.raises(RiskRejected, match="max_order_notional"):
                submit_when_open(c, "simB", "BUY", "100", None, client_order_id="m1", tif="IOC")
            since = sut.mark()
            os.kill(sut.pid_of("risk"), signal.SIGKILL)
            sut.wait_event("exposure_rebuilt", 20.0, since=since, actor="risk")
            with pytest.raises(RiskRejected, match="max_order_notional"):
                submit_when_open(c, "simB", "BUY", "100", None, client_order_id="m2", tif="IOC")


def test_a_warm_start_prices_a_market_order_at_a_configured_reference_above_the_last_fill() -> None:
    """One venue quoting AAPL at 100: a buy of 1 fills at 100.01. The system is stopped and
    started again on the same state with the venue's reference moved to 150 (its simulator
    quotes there now): a market buy of 100 (~15,001) is refused `max_notional` (12,000).
    Before, risk priced it at the OMS's last execution, 100.01 (10,001): approved, and it
    filled for ~15,001, over the limit."""
    root = Path(tempfile.mkdtemp(prefix="tp", dir="/tmp"))  # ipc paths: short
    try:
        with systems() as started:
            cfg = overrides()
            cfg["risk"] = {"max_order_notional": "12000"}
            sut = start(started, overrides=cfg, root=root)
            with client(sut) as c:
                submit_when_open(c, VENUE, "BUY", "1", None, client_order_id="first", tif="IOC")
                c.wait_for_status("first", {OrderStatus.FILLED})
            assert sut.stop() == 0
            cfg = overrides(reference_prices={"AAPL": "150.00"})
            cfg["risk"] = {"max_order_notional": "12000"}
            again = start(started, overrides=cfg, root=root)
            with client(again) as c:
                assert c.get_order("first").avg_px < 101  # the OMS's last execution
                with pytest.raises(RiskRejected, match="max_order_notional"):
                    submit_when_open(c, VENUE, "BUY", "100", None, client_order_id="m", tif="IOC")
    finally:
        shutil.rmtree(root, ignore_errors=True)
