"""Risk's daily loss over a trading day through the real system (one simulated venue whose
price stands still: a market round trip of 100 loses the spread, 2.00). The day's boundary
is moved to a few seconds from now by a reload (`risk.day_start`), so a real boundary is
crossed; then risk and the OMS are killed (-9) mid-day and the day's baseline survives
(`state/risk/trading_day.json`, `actors.risk.trading_day`)."""

from __future__ import annotations

import datetime as dt
import os
import signal
import time
from decimal import Decimal
from typing import Any

import pytest

from protocol.client import ExecutionClient
from protocol.exceptions import RiskRejected
from protocol.messages import OrderStatus
from tests.helpers import eventually, make_config, to_toml
from tests.integration.oms_support import OmsSystem, overrides, start, systems
from tests.system_ops import VENUE, client, sim_fault, submit_when_open

pytestmark = pytest.mark.integration
D = Decimal
LIMIT = "3"  # max_daily_loss: one round trip (2.00) passes, two (4.00) do not


def _cfg(oms: dict[str, Any] | None = None, **risk: str) -> dict[str, Any]:
    cfg = overrides(oms=oms)
    cfg["risk"] = {"max_daily_loss": LIMIT, **risk}
    return cfg


def _round_trip(c: ExecutionClient, tag: str) -> None:
    for side in ("BUY", "SELL"):
        coid = f"{tag}-{side.lower()}"
        submit_when_open(c, VENUE, side, "100", None, client_order_id=coid, tif="IOC")
        c.wait_for_status(coid, {OrderStatus.FILLED})


def _daily(sut: OmsSystem) -> dict[str, Any] | None:
    """Risk's trading day from `exposure` (None: not answering or not rebuilt yet)."""
    try:
        reply = sut.control("exposure", timeout_s=2.0)
    except Exception:  # noqa: BLE001 - restarting: not answering yet
        return None
    daily = (reply.data or {}).get("daily") if reply.status == "ok" else None
    return daily if isinstance(daily, dict) and daily.get("day") else None


def _day_pnl(sut: OmsSystem, expected: str) -> dict[str, Any]:
    def at() -> dict[str, Any] | None:
        daily = _daily(sut)
        ok = daily is not None and D(daily["daily_realized_pnl"]) == D(expected)
        return daily if ok else None

    found: dict[str, Any] = eventually(at, 15.0, message=lambda: f"day's P&L {expected}: "
                                       f"{_daily(sut)}")  # fmt: skip
    return found


def _refusal(c: ExecutionClient, coid: str) -> str:
    """ "" if risk approves a resting buy of 1, else risk's reason."""
    try:
        submit_when_open(c, VENUE, "BUY", "1", "95.00", client_order_id=coid)
    except RiskRejected as exc:
        return exc.reason
    return ""


def test_a_day_boundary_and_kills_of_risk_and_the_oms_keep_the_days_loss() -> None:
    """Two round trips lose 4.00 > 3: refused. The boundary passes: a new day at -4.00,
    approved (before the fix, the loss ran from the cold start: refused for good). One more
    round trip (-2.00 today); kill -9 of risk: the day resumes at its baseline (-2.00 today,
    approved); one more (-4.00 today): refused, also after a kill -9 of the OMS."""
    with systems() as started:
        sut = start(started, overrides=_cfg())
        with client(sut) as c:
            _round_trip(c, "rt1")
            _round_trip(c, "rt2")
            _day_pnl(sut, "-4")
            assert "max_daily_loss" in _refusal(c, "p1")

            boundary = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=10)  # after the reload is in
            day_start = boundary.strftime("%H:%M:%S")
            sut.config_path.write_text(to_toml(make_config(
                venues=(VENUE,), overrides=_cfg(day_start=day_start))))  # fmt: skip
            mark = sut.mark()
            out = sut.cli("reload", "--reason", "move the day's boundary")
            assert out.returncode == 0, out.stdout + out.stderr
            started_day = sut.wait_event("risk_trading_day_started", 20.0, since=mark)
            assert started_day["day"] == boundary.date().isoformat()
            assert D(started_day["baseline"]) == D(-4)
            assert _refusal(c, "p2") == ""

            _round_trip(c, "rt3")
            _day_pnl(sut, "-2")
            since, pid = sut.mark(), sut.pid_of("risk")
            os.kill(pid, signal.SIGKILL)
            resumed = sut.wait_event("risk_trading_day_resumed", 20.0, since=since)
            assert (resumed["day"], D(resumed["baseline"])) == (started_day["day"], D(-4))
            _day_pnl(sut, "-2")
            assert _refusal(c, "p3") == ""

            _round_trip(c, "rt4")
            _day_pnl(sut, "-4")
            assert "max_daily_loss" in _refusal(c, "p4")
            since, pid = sut.mark(), sut.pid_of("oms")
            os.kill(pid, signal.SIGKILL)
            sut.wait_event("actor_ready", 20.0, since=since, child="oms")
            sut.wait_event("exposure_rebuilt", 20.0, since=since, actor="risk")
            daily = _day_pnl(sut, "-4")
            assert D(daily["baseline"]) == D(-4)
            assert "max_daily_loss" in _refusal(c, "p5")


def _filled_while_risk_is_frozen_over(sut: OmsSystem, c: ExecutionClient, boundary: float) -> int:
    """A round trip reaches the venue just before `boundary`, which holds its reports back
    6 s; risk is frozen (SIGSTOP) until the OMS applied both fills after the boundary, then
    killed -9 (it starts again on the new day). Returns the log mark before the freeze."""
    sim_fault(sut, VENUE, "delay_exec_ms", "6000")
    eventually(lambda: time.time() >= boundary - 4, 60.0, message="4 s before the boundary")
    for side in ("BUY", "SELL"):
        submit_when_open(c, VENUE, side, "100", None, client_order_id=f"rt2-{side}", tif="IOC")
    since, pid = sut.mark(), sut.pid_of("risk")
    os.kill(pid, signal.SIGSTOP)
    try:
        assert time.time() < boundary, "frozen after the boundary: too slow"
        for side in ("BUY", "SELL"):
            order = c.wait_for_status(f"rt2-{side}", {OrderStatus.FILLED}, timeout_s=30.0)
            assert order.ts_ns > boundary * 1e9  # applied after it
    finally:
        os.kill(pid, signal.SIGKILL)
    return since


def _frozen_cfg(day_start: str) -> dict[str, Any]:
    # the OMS waits out the held reports (no reconciliation finds the fills before them)
    cfg = _cfg({"request_timeout_s": 20.0}, day_start=day_start)
    cfg["supervisor"] = {"hang_missed_intervals": 100}  # frozen risk: not killed as hung
    return cfg


def test_fills_while_risk_is_down_over_the_boundary_count_to_the_new_day() -> None:
    """The boundary is in the config from the start (the OMS marks its positions' days with
    it). A round trip loses 2.00 the day before. Just before the boundary another round trip
    reaches the venue, whose reports it holds back 6 s; risk is frozen (SIGSTOP) and the OMS
    applies both fills after the boundary; then risk is killed -9 and starts on the new
    day: its baseline is the OMS's mark at the boundary (-2.00), the day's P&L -2.00. Before
    the fix the new day began at the P&L at risk's start (-4.00): today's 2.00 uncounted."""
    boundary = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=35)
    with systems() as started:
        sut = start(started, overrides=_frozen_cfg(boundary.strftime("%H:%M:%S")))
        with client(sut) as c:
            _round_trip(c, "rt1")
            _day_pnl(sut, "-2")
            since = _filled_while_risk_is_frozen_over(sut, c, boundary.timestamp())
            started_day = sut.wait_event("risk_trading_day_started", 20.0, since=since)
            assert started_day["day"] == boundary.date().isoformat()
            assert D(started_day["baseline"]) == D(-2)
            _day_pnl(sut, "-2")


def test_a_reloaded_day_start_reaches_the_oms_fills_while_risk_is_down_count_to_the_new_day() -> (
    None
):
    """As above, with the boundary moved by a reload (the system started with a day start
    12 hours away): the reload reaches the OMS too, which marks its positions' days by the
    new setting from then on, so risk's start on the new day finds the mark at the boundary:
    baseline -2.00 (exact: no `risk_trading_day_baseline_approximate`). Before, the OMS
    took the new setting only at its next start: the position read as approximate, the new
    day began at -4.00 and today's 2.00 went uncounted."""
    far = dt.datetime.now(dt.UTC) + dt.timedelta(hours=12)
    with systems() as started:
        sut = start(started, overrides=_frozen_cfg(far.strftime("%H:%M:%S")))
        with client(sut) as c:
            _round_trip(c, "rt1")
            _day_pnl(sut, "-2")
            boundary = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=20)
            moved = _frozen_cfg(boundary.strftime("%H:%M:%S"))
            sut.config_path.write_text(to_toml(make_config(venues=(VENUE,), overrides=moved)))
            out = sut.cli("reload", "--reason", "move the day's boundary")
            assert out.returncode == 0, out.stdout + out.stderr
            since = _filled_while_risk_is_frozen_over(sut, c, boundary.timestamp())
            started_day = sut.wait_event("risk_trading_day_started", 20.0, since=since)
            assert started_day["day"] == boundary.date().isoformat()
            assert D(started_day["baseline"]) == D(-2)
            _day_pnl(sut, "-2")  # (a round trip to risk: the lines of its start are all in)
            assert sut.events("risk_trading_day_baseline_approximate", since=since) == []
            assert "oms: applied risk" in out.stdout, out.stdout
