"""A replace that raises an order's quantity, through the real system: risk checks the new
terms and counts them as open exposure from its approval until the venue has confirmed or
refused them (`actors.risk.exposure`). The venue holds its execution reports back, so the
replace stays PENDING_REPLACE at the OMS while more orders are checked."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import pytest

from protocol.client import ClientError, ExecutionClient
from protocol.exceptions import KillSwitchEngaged, RiskRejected
from protocol.messages import OrderStatus
from tests.helpers import SystemUnderTest, eventually
from tests.integration.oms_support import overrides, start, systems
from tests.system_ops import VENUE, client, sim_fault, submit_when_open

pytestmark = pytest.mark.integration
D = Decimal


@contextmanager
def _resting_buy(
    risk: dict[str, str], **oms: Any
) -> Iterator[tuple[SystemUnderTest, ExecutionClient]]:
    """A system with these `risk` limits (and `oms` settings) and a client whose buy `a` of
    100 at 95.00 rests ACCEPTED at the venue."""
    cfg = overrides(oms=oms)
    cfg["risk"] = risk
    with systems() as started:
        sut = start(started, overrides=cfg)
        with client(sut) as c:
            submit_when_open(c, VENUE, "BUY", "100", "95.00", client_order_id="a")
            c.wait_for_status("a", {OrderStatus.ACCEPTED})
            yield sut, c


def test_a_pending_replace_that_raises_qty_counts_its_new_terms_against_max_position() -> None:
    """max_position 1000. A resting buy of 100 is replaced to 1000 (approved: worst case
    1000); the venue's confirmation is held back, the order is PENDING_REPLACE. A new buy
    of 900 would make the worst case 1900 (the venue may take the replace at any moment):
    refused `max_position`. Before, risk still counted the old 100 open and approved it."""
    with _resting_buy({"max_position": "1000"}, request_timeout_s=20.0) as (sut, c):
        sim_fault(sut, VENUE, "delay_exec_ms", "5000")
        assert c.replace("a", qty="1000").status is OrderStatus.PENDING_REPLACE
        with pytest.raises(RiskRejected, match="max_position"):
            submit_when_open(c, VENUE, "BUY", "900", "95.00", client_order_id="b")
        sim_fault(sut, VENUE, "clear")
        c.wait_for_status("a", {OrderStatus.ACCEPTED})
        assert c.get_order("a").qty == D(1000)


def test_a_replace_refused_before_is_checked_again_when_asked_again() -> None:
    """max_position 1000. Resting buys `a` 100 and `b` 900: a replace of `a` to 200 is
    refused `max_position` (worst case 1100). `b` is cancelled; the same replace asked again
    is a new question (worst case 200): approved. Before, risk answered it from its verdict
    cache (a check identical to one answered before counted as a re-sent one): the
    refusal stood as long as `a` lived."""
    with _resting_buy({"max_position": "1000"}) as (_sut, c):
        submit_when_open(c, VENUE, "BUY", "900", "95.00", client_order_id="b")
        c.wait_for_status("b", {OrderStatus.ACCEPTED})
        with pytest.raises(RiskRejected, match="max_position"):
            c.replace("a", qty="200")
        c.cancel("b")
        c.wait_for_status("b", {OrderStatus.CANCELLED})
        assert c.replace("a", qty="200").status is OrderStatus.PENDING_REPLACE
        c.wait_for_status("a", {OrderStatus.ACCEPTED})
        assert c.get_order("a").qty == D(200)


def test_a_replace_asked_while_another_is_pending_leaves_no_exposure_behind() -> None:
    """max_position 1000. A resting buy `a` of 100 is replaced to 200 (the venue holds its
    answer: PENDING_REPLACE); a second replace to 900 while that one is pending is refused
    by the OMS (one request at a time). The venue takes the 200: a buy `b` of 800 makes the
    worst case 1000, approved. Before, risk was asked about the 900 first, approved it and
    counted it open until `a` ended (the OMS refused it after): `b` was refused at 1700."""
    with _resting_buy({"max_position": "1000"}, request_timeout_s=20.0) as (sut, c):
        sim_fault(sut, VENUE, "delay_exec_ms", "3000")
        assert c.replace("a", qty="200").status is OrderStatus.PENDING_REPLACE
        with pytest.raises(ClientError, match="INVALID_STATE"):
            c.replace("a", qty="900")
        sim_fault(sut, VENUE, "clear")
        eventually(lambda: c.get_order("a").qty == D(200), 15.0, message="a at 200")
        submit_when_open(c, VENUE, "BUY", "800", "95.00", client_order_id="b")


def test_a_replace_that_only_lowers_the_qty_is_not_refused_by_the_daily_loss() -> None:
    """max_daily_loss 3. A resting buy `a` of 100; two market round trips lose 4.00: new
    orders are refused `max_daily_loss`, and so is a replace of `a` that raises it. One that
    only lowers its qty (to 40, same price) takes risk off: taken, and the venue has it at
    40. Before, risk was asked about it as about a new order and refused it: the client
    could only cancel. While the kill-switch is engaged, it is refused as everything."""
    with _resting_buy({"max_daily_loss": "3"}) as (sut, c):
        for n in range(2):
            for side in ("BUY", "SELL"):
                coid = f"rt{n}-{side}"
                submit_when_open(c, VENUE, side, "100", None, client_order_id=coid, tif="IOC")
                c.wait_for_status(coid, {OrderStatus.FILLED})
        with pytest.raises(RiskRejected, match="max_daily_loss"):
            c.replace("a", qty="120")
        c.replace("a", qty="40")
        eventually(lambda: c.get_order("a").qty == D(40), 15.0, message="a at 40")
        # while the kill-switch is engaged, it is refused as everything is
        sim_fault(sut, VENUE, "delay_exec_ms", "5000")  # the mass cancel's reports held
        done = sut.cli("kill-switch", "engage", "--reason", "halt")
        assert done.returncode == 0, done.stdout + done.stderr
        with pytest.raises(KillSwitchEngaged):
            c.replace("a", qty="30")
