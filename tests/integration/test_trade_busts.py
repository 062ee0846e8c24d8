"""A venue busts (FIX 150=H) or corrects (150=G) a trade of a filled order, with the whole
system running: the OMS's order and position, risk's own view and the venue agree after
it, the bust applied once; also when the OMS is killed -9 after journalling it and before
acknowledging it, and when the connector is killed -9 with the bust unread in its socket.

Before the bust was mapped the connector dropped the report (``exec_not_forwarded``): the
OMS kept the fill the venue took back and stayed above the venue's position."""

from __future__ import annotations

import os
import signal
from decimal import Decimal
from typing import Any

import pytest

from actors.connector.fix.msglog import log_files, parse_line
from protocol.messages import OrderStatus
from protocol.paths import venue_fix_dir
from tests.helpers import SystemUnderTest, eventually
from tests.integration.oms_support import (
    OmsSystem,
    check_journal_fills,
    overrides,
    settle,
    start,
    systems,
)
from tests.system_ops import (
    SYMBOL,
    VENUE,
    client,
    journal_records,
    kill_switch,
    sim_fault,
    submit_when_open,
    venue_order,
)

pytestmark = pytest.mark.integration
D = Decimal
CONNECTOR = f"connector.{VENUE}"


def _trade_of(sut: SystemUnderTest, cl_ord_id: str) -> str:
    """The venue's ExecID of the only trade of order `cl_ord_id`."""
    order = venue_order(sut, VENUE, cl_ord_id)
    assert order is not None and len(order["fills"]) == 1, order
    exec_id: str = order["fills"][0]["exec_id"]
    return exec_id


def _risk_agrees(sut: SystemUnderTest) -> bool:
    """Risk's position and realised P&L of the symbol are the OMS's."""
    oms = {p["symbol"]: p for p in sut.control("positions").data.get("positions", [])}
    reply = sut.control("exposure")
    risk = {p["symbol"]: p for p in reply.data.get("positions", [])}
    if reply.status != "ok":
        return False
    mine, theirs = oms.get(SYMBOL, {}), risk.get(SYMBOL, {})
    return all(D(mine.get(k, 0)) == D(theirs.get(k, 0)) for k in ("qty", "realized_pnl"))


def _busts(sut: SystemUnderTest, views: Any) -> list[dict[str, Any]]:
    """The journal's ``trade_bust`` records (its fills, busts included, add up to the
    orders' cum: `check_journal_fills`)."""
    records = journal_records(sut)
    check_journal_fills(sut, views, records)
    return [
        r["data"] for r in records if r["kind"] == "record" and r["data"]["kind"] == "trade_bust"
    ]


def _filled(sut: OmsSystem, c: Any, coid: str, qty: str = "100") -> str:
    """A market buy filled at the venue and in the OMS: its trade's ExecID."""
    submit_when_open(c, VENUE, qty=qty, price=None, client_order_id=coid)
    settle(c, sut, [coid])
    assert c.get_order(coid).status is OrderStatus.FILLED
    return _trade_of(sut, coid)


def test_a_venue_bust_of_a_filled_orders_trade_is_followed_end_to_end() -> None:
    """Buy 100 at market, filled; the venue busts the trade (the order done, cum 0): the OMS
    order is CANCELLED with cum 0, its position flat like the venue's and risk's, the
    bust journalled once and logged ``trade_busted``; then a second order's trade is
    corrected in price and the OMS, risk and the venue agree again."""
    with systems() as started:
        sut = start(started, overrides=overrides())
        with client(sut) as c:
            trade = _filled(sut, c, "bust-1")
            since = sut.mark()
            sim_fault(sut, VENUE, "bust_trade", trade)
            eventually(lambda: c.get_order("bust-1").cum_qty == 0, 10.0,
                       message=lambda: repr(c.get_order("bust-1")))  # fmt: skip
            final = settle(c, sut, ["bust-1"])
            assert final.oms["bust-1"].status is OrderStatus.CANCELLED
            assert "busted by the venue" in final.oms["bust-1"].reason  # what clients read
            assert final.oms_positions == {}
            fills = sut.control("fills").data["fills"]
            newest = fills[0]  # the bust's row: the fill negated, "<exec id> busts <ref>"
            assert (newest["qty"], newest["exec_id"].endswith(f" busts {trade}")) == ("-100", True)
            eventually(lambda: _risk_agrees(sut), 10.0)
            sut.wait_event("trade_busted", 5.0, since=since, client_order_id="bust-1")
            assert [(r["id"], r["ref"]) for r in _busts(sut, final.oms)] == [("bust-1", trade)]
            fix = _filled(sut, c, "fix-1", qty="50")
            sim_fault(sut, VENUE, "correct_trade", f"{fix} 50 99.50")
            eventually(lambda: c.get_order("fix-1").avg_px == D("99.50"), 10.0)
            final = settle(c, sut, ["bust-1", "fix-1"])
            assert final.oms_positions == {SYMBOL: D(50)}
            eventually(lambda: _risk_agrees(sut), 10.0)


def test_kill9_of_the_oms_between_journalling_the_bust_and_its_ack() -> None:
    """The OMS is killed -9 right after the commit that journalled the bust, before the
    connector got its ack: the connector sends it again to the next OMS, which finds it
    applied (its exec id); one ``trade_bust`` record, the OMS equals the venue."""
    with systems() as started:
        sut = start(started, overrides=overrides(), crash_at=["after_journal_before_send"])
        with client(sut) as c:
            trade = _filled(sut, c, "bust-2")
            since = sut.mark()
            sut.arm("after_journal_before_send")
            sim_fault(sut, VENUE, "bust_trade", trade)
            sut.wait_event("actor_ready", 20.0, since=since, child="oms")
            final = settle(c, sut, ["bust-2"])
        assert final.oms["bust-2"].cum_qty == 0 and final.oms_positions == {}
        assert len(_busts(sut, final.oms)) == 1
        eventually(lambda: _risk_agrees(sut), 10.0)


def test_kill9_of_the_connector_with_the_bust_unread() -> None:
    """The connector is frozen, the venue busts the trade (its report waits in the socket)
    and the connector is killed -9: the next one gets the report again (FIX resend), the
    OMS applies it once and equals the venue."""
    cfg = overrides() | {"supervisor": {"hang_missed_intervals": 50}}
    with systems() as started:
        sut = start(started, overrides=cfg)
        with client(sut) as c:
            trade = _filled(sut, c, "bust-3")
            pid = sut.pid_of(CONNECTOR)
            since = sut.mark()
            os.kill(pid, signal.SIGSTOP)
            try:
                sim_fault(sut, VENUE, "bust_trade", trade)
                assert c.get_order("bust-3").cum_qty == D(100)  # not delivered yet
            finally:
                os.kill(pid, signal.SIGKILL)
            sut.wait_event("actor_ready", 15.0, since=since, child=CONNECTOR)
            eventually(lambda: c.get_order("bust-3").cum_qty == 0, 15.0)
            final = settle(c, sut, ["bust-3"])
        assert final.oms_positions == {}
        assert len(_busts(sut, final.oms)) == 1
        eventually(lambda: _risk_agrees(sut), 10.0)


def test_the_position_heartbeat_agrees_after_a_bust() -> None:
    """The heartbeat compares every 0.2 s (the venue's positions asked as often, 3 beats
    to engage): after the bust it finds the OMS's position the venue's and never asks for
    the kill-switch. Before busts were applied, the OMS kept the fill and the heartbeat
    engaged the kill-switch (``position_divergence: simA AAPL venue 0 oms 100``)."""
    cfg = overrides()
    cfg["heartbeat"] = {"interval_s": 0.2, "venue_positions_interval_s": 0.2, "log_every_n": 1,
                        "divergence_beats": 3, "engage_on_missing": False}  # fmt: skip
    with systems() as started:
        sut = start(started, overrides=cfg)
        with client(sut) as c:
            trade = _filled(sut, c, "bust-4")
            since = sut.mark()
            sim_fault(sut, VENUE, "bust_trade", trade)
            settle(c, sut, ["bust-4"])
            after = sut.mark()
            sut.wait_events("heartbeat", 10, 15.0, since=after, venue=VENUE, diff={})
        assert not sut.events("kill_switch_requested", since=since)
        assert kill_switch(sut)["engaged"] is False


def _venue_sent(sut: SystemUnderTest, field: bytes) -> int:
    """How many messages with `field` the venue has put on the wire (its FIX message log:
    written once the turn's bytes are taken for the socket)."""
    logs = log_files(venue_fix_dir(sut.state_dir, VENUE) / "messages")
    lines = (parse_line(line) for path in logs for line in path.read_bytes().splitlines())
    return sum(
        1 for e in lines if e and e.direction == "OUT" and b"\x01" + field + b"\x01" in e.raw
    )


def _corrected(sut: OmsSystem, c: Any, coids: dict[str, tuple[str, str]]) -> None:
    """Each order of `coids` (id -> corrected qty, price) shows its correction applied
    once: cum and average price as corrected, equal to the venue's, the position the
    venue's, one ``trade_bust`` record each (`check_journal_fills`: no exec id twice, the
    journal's sum the OMS's cum), risk the OMS's."""
    for coid in coids:
        eventually(lambda coid=coid: c.get_order(coid).avg_px == D(coids[coid][1]), 15.0,
                   message=lambda coid=coid: repr(c.get_order(coid)))  # fmt: skip
    final = settle(c, sut, list(coids))  # the OMS equals the venue, every order
    for coid, (qty, px) in coids.items():
        assert (final.oms[coid].cum_qty, final.oms[coid].avg_px) == (D(qty), D(px))
    assert final.oms_positions == {SYMBOL: sum(D(q) for q, _ in coids.values())}
    busts = _busts(sut, final.oms)
    assert sorted(b["id"] for b in busts) == sorted(coids), busts
    eventually(lambda: _risk_agrees(sut), 10.0)


def test_kill9_of_the_oms_between_journalling_a_correction_and_its_ack() -> None:
    """The OMS is killed -9 right after the commit that journalled a correction (150=G),
    before the connector got its ack: the next OMS is sent it again and finds it applied
    (its exec id); the fill is on its corrected terms once, one ``trade_bust`` record."""
    with systems() as started:
        sut = start(started, overrides=overrides(), crash_at=["after_journal_before_send"])
        with client(sut) as c:
            trade = _filled(sut, c, "fix-2")
            since = sut.mark()
            sut.arm("after_journal_before_send")
            sim_fault(sut, VENUE, "correct_trade", f"{trade} 60 101.25")
            sut.wait_event("injected_crash", 15.0, since=since, actor="oms")
            sut.wait_event("actor_ready", 20.0, since=since, child="oms")
            _corrected(sut, c, {"fix-2": ("60", "101.25")})


def test_kill9_of_the_oms_with_a_correction_read_but_not_journalled() -> None:
    """Two corrections reach the OMS in one batch (the connector frozen while the venue
    corrects both trades) and the OMS is killed -9 once the first is committed, the
    second applied in memory only: the connector sends the batch again, the next OMS finds
    the first applied and applies the second; each once, on its corrected terms."""
    cfg = overrides() | {"supervisor": {"hang_missed_intervals": 50}}
    with systems() as started:
        sut = start(started, overrides=cfg, crash_at=["mid_exec_batch"])
        with client(sut) as c:
            first, second = _filled(sut, c, "fix-3a"), _filled(sut, c, "fix-3b", qty="50")
            pid = sut.pid_of(CONNECTOR)
            since = sut.mark()
            sut.arm("mid_exec_batch")
            os.kill(pid, signal.SIGSTOP)  # both reports wait in its socket: one batch
            try:
                sim_fault(sut, VENUE, "correct_trade", f"{first} 70 99.75")
                sim_fault(sut, VENUE, "correct_trade", f"{second} 50 100.40")
                eventually(lambda: _venue_sent(sut, b"150=G") == 2, 10.0)
            finally:
                os.kill(pid, signal.SIGCONT)
            sut.wait_event("injected_crash", 15.0, since=since, actor="oms", point="mid_exec_batch")
            sut.wait_event("actor_ready", 20.0, since=since, child="oms")
            _corrected(sut, c, {"fix-3a": ("70", "99.75"), "fix-3b": ("50", "100.40")})


def test_kill9_of_the_connector_after_reading_a_correction_before_forwarding_it() -> None:
    """The connector is killed -9 after reading the correction's 35=8, before handing it
    to the OMS or keeping it (crash point `exec_read_before_forward`): its next-in did not
    pass it, so the venue sends it again to the next connector; the OMS applies it once."""
    point = f"{CONNECTOR}:exec_read_before_forward"
    with systems() as started:
        sut = start(started, overrides=overrides(), crash_at=[point])
        with client(sut) as c:
            trade = _filled(sut, c, "fix-4")
            since = sut.mark()
            sut.arm(point)
            sim_fault(sut, VENUE, "correct_trade", f"{trade} 100 98.50")
            sut.wait_event("injected_crash", 15.0, since=since, actor=CONNECTOR)
            sut.wait_event("actor_ready", 20.0, since=since, child=CONNECTOR)
            _corrected(sut, c, {"fix-4": ("100", "98.50")})
