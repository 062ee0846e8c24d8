"""Trading windows and blackouts (`[trading]`) through the real system.

A restart into a blackout that covers now: the OMS warns `trading_window_closed_at_start`,
refuses new orders with OUTSIDE_TRADING_WINDOW saying the blackout's reason and when it
reopens, still takes the cancel of an order from before, and `status` / `intake status`
show the blackout and its end. A window reloaded to close a few seconds from now, after an
order rested (no assumption on how fast the system starts): at the close (waited for,
never slept) new orders and a replace that adds quantity are refused, while a replace
that lowers it and a cancel go through."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from protocol.client import ExecutionClient, NotReady, OutsideTradingWindow
from protocol.messages import OrderStatus
from tests.helpers import SystemUnderTest, eventually, make_config, to_toml
from tests.integration.oms_support import overrides, start, systems
from tests.system_ops import SYMBOL, VENUE, client, submit_when_open

pytestmark = pytest.mark.integration

EVERY_DAY = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
CLOSE_IN_S = (4, 8, 16, 32)  # a window ending this far from now, until one is applied open
CLOSE_WAIT_S = CLOSE_IN_S[-1] + 15.0  # its close is logged within this of its reload


def refusal(c: ExecutionClient, coid: str) -> OutsideTradingWindow | None:
    """Submit a resting buy: the OutsideTradingWindow refusal, or None while the OMS is
    not ready; an accepted order fails the test (the calendar says closed by now)."""
    try:
        c.submit(VENUE, SYMBOL, "BUY", "1", "LIMIT", price="95.00", tif="DAY",
                 client_order_id=coid, timeout_s=5.0)  # fmt: skip
    except OutsideTradingWindow as exc:
        return exc
    except NotReady:
        return None
    raise AssertionError(f"{coid} was accepted outside the trading window")


def oms_info(sut: SystemUnderTest) -> dict[str, Any]:
    status = sut.status()
    return next(a.get("info") or {} for a in status["actors"] if a["id"] == "oms")


def test_a_blackout_covering_now_refuses_new_orders_and_takes_cancels(short_tmp: Path) -> None:
    """Run 1 (no windows) leaves a resting order. Run 2, configured with a blackout from a
    minute ago to an hour from now: warning at start; a submit is refused with the code,
    `why` blackout, the reason and the reopening time; the old order is cancelled at the
    venue; status, intake status and the metrics show the blackout and its end."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    ends = now + dt.timedelta(hours=1)
    blackout = {"start": (now - dt.timedelta(minutes=1)).isoformat(), "end": ends.isoformat(),
                "reason": "FOMC announcement"}  # fmt: skip
    with systems() as started:
        first = start(started, root=short_tmp, overrides=overrides())
        with client(first) as c:
            submit_when_open(c, VENUE, price="95.00", client_order_id="rest-0")
            c.wait_for_status("rest-0", {OrderStatus.ACCEPTED})
        assert first.stop() == 0
        cfg = overrides() | {"trading": {"timezone": "Europe/London", "blackouts": [blackout]}}
        sut = start(started, root=short_tmp, overrides=cfg)
        warned = sut.wait_event("trading_window_closed_at_start", actor="oms")
        assert warned["level"] == "warning"
        assert (warned["why"], warned["reason"]) == ("blackout", "FOMC announcement")
        assert warned["next_change"] == ends.isoformat()
        with client(sut) as c:
            exc = eventually(lambda: refusal(c, "new-0"), 20.0, message="refused submit")
            assert exc.why == "blackout"
            text = str(exc)
            assert text.startswith("trading closed: blackout (FOMC announcement); reopens at ")
            assert f"({ends:%H:%M:%S} UTC)" in text and "Europe/London" in text
            with pytest.raises(OutsideTradingWindow):
                c.replace("rest-0", qty="20")  # adds risk: a new order risk-wise
            c.cancel("rest-0")
            assert c.wait_for_status("rest-0", {OrderStatus.CANCELLED}, 20.0)
        info = eventually(lambda: oms_info(sut).get("trading"), 10.0)
        assert (info["open"], info["why"], info["reason"]) == (
            False,
            "blackout",
            "FOMC announcement",
        )
        assert info["next_change"] == ends.isoformat() and info["next_why"] == "open"
        assert sut.status()["intake"].startswith("closed: blackout (FOMC announcement)")
        shown = sut.cli("status")
        assert shown.returncode == 0, shown.stderr
        assert "intake: closed: blackout (FOMC announcement); reopens at" in shown.stdout
        intake = sut.cli("intake", "status")
        assert intake.returncode == 0, intake.stderr
        assert "ok: intake closed: blackout (FOMC announcement)" in intake.stdout
        assert sut.metric("tradepulse_trading_window_open") == 0
        assert sut.metric("tradepulse_trading_window_next_change_timestamp_seconds") == (
            ends.timestamp()
        )
        assert (sut.metric("tradepulse_orders_refused_total", reason="outside_trading_window")
                or 0) >= 1  # fmt: skip


def test_a_window_closing_soon_closes_intake_at_its_end(short_tmp: Path) -> None:
    """Started without windows (always open), an order rests; then `reload` of a daily UTC
    window that started two hours ago and ends a few seconds after now: applied while
    open, closing then; once the window ends, `trading_window_closed` is logged, a submit
    is refused (`why` outside_window), a replace raising the quantity is refused, one
    lowering it is taken, and a cancel is taken. (No assumption on how fast the machine
    is: a window that ended before the OMS applied it is reloaded again, further out.)"""
    with systems() as started:
        sut = start(started, root=short_tmp, overrides=overrides())
        with client(sut) as c:
            submit_when_open(c, VENUE, qty="10", price="95.00", client_order_id="rest-0")
            c.wait_for_status("rest-0", {OrderStatus.ACCEPTED})
            before = eventually(lambda: oms_info(sut).get("trading"), 10.0)
            assert before["open"] and not before["configured"] and before["next_change"] is None
            closes, since = reload_window_closing_soon(sut)
            closed = sut.wait_event("trading_window_closed", CLOSE_WAIT_S, since=since,
                                    actor="oms")  # fmt: skip
            assert closed["why"] == "outside_window" and not closed["open"]
            assert dt.datetime.now(dt.UTC) >= closes  # not before its end
            exc = eventually(lambda: refusal(c, "late-0"), 10.0, message="refused submit")
            assert exc.why == "outside_window"
            assert str(exc).startswith("trading closed: outside the trading windows; reopens at")
            info = oms_info(sut)["trading"]
            assert (info["open"], info["why"], info["configured"]) == (
                False,
                "outside_window",
                True,
            )
            with pytest.raises(OutsideTradingWindow):
                c.replace("rest-0", qty="20")
            with pytest.raises(OutsideTradingWindow):
                c.replace("rest-0", price="96.00")
            c.replace("rest-0", qty="5")  # takes risk off: allowed
            view = eventually(lambda: _settled_qty(c, "rest-0"), 20.0, message="replaced")
            assert view == 5
            c.cancel("rest-0")
            c.wait_for_status("rest-0", {OrderStatus.CANCELLED}, 20.0)
        assert sut.metric("tradepulse_trading_window_open") == 0


def reload_window_closing_soon(sut: SystemUnderTest) -> tuple[dt.datetime, int]:
    """Write a config whose daily window ends a few seconds from now and `reload` it; the
    OMS logs `trading_window_config_applied` with the state it applied. If the window had
    already ended by then (a slow machine), reload one ending further out (a later end
    reopens it). Returns the end of the window applied open, and the log mark before its
    reload (its close is logged after that mark)."""
    for close_in_s in CLOSE_IN_S:
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        closes = now + dt.timedelta(seconds=close_in_s)
        window = {"days": EVERY_DAY, "start": f"{now - dt.timedelta(hours=2):%H:%M:%S}",
                  "end": f"{closes:%H:%M:%S}"}  # fmt: skip
        cfg = overrides() | {"trading": {"windows": [window]}}
        sut.config_path.write_text(to_toml(make_config(venues=(VENUE,), overrides=cfg)))
        since = sut.mark()
        reply = sut.control("reload", timeout_s=30.0, reason="window closing soon")
        assert reply.status == "ok", reply
        applied = sut.wait_event("trading_window_config_applied", 20.0, since=since, actor="oms")
        if applied["open"]:
            assert applied["next_change"] == closes.isoformat(), applied
            return closes, since
        assert applied["why"] == "outside_window", applied  # it ended before it was applied
    raise AssertionError(f"no window applied before its end, up to {CLOSE_IN_S[-1]} s ahead")


def _settled_qty(c: ExecutionClient, coid: str) -> int | None:
    view = c.get_order(coid)
    if view.status is OrderStatus.ACCEPTED and view.qty == 5:
        return 5
    return None
