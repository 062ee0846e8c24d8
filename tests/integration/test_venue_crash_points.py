"""kill -9 of the FIX venue at its worst moment, with real processes: the venue simulator
has written an operation to its log (an order taken, a market order filled) and dies
before any of its execution reports reached its FIX session, and before the session
store recorded the request's MsgSeqNum (`venuesim.<venue>:engine_written_before_reports`).
The supervisor restarts it on its state: it holds the order, has never answered it, and
expects the NewOrderSingle's number again. A real venue's crash and restart: afterwards the
OMS must agree with what the venue holds, the order once at the venue, never resubmitted
as a second order, every fill applied once."""

from __future__ import annotations

from decimal import Decimal

import pytest

from protocol.messages import OrderStatus
from tests.integration.oms_support import (
    OmsSystem,
    check_journal_fills,
    check_sweep,
    overrides,
    settle,
    systems,
)
from tests.system_ops import SYMBOL, VENUE, client, find_venue_order, submit_when_open

pytestmark = pytest.mark.integration
D = Decimal
SIM = f"venuesim.{VENUE}"
POINT = "engine_written_before_reports"


def _crash_on(sut: OmsSystem, qty: str, price: str | None, coid: str) -> None:
    """A warm order settled first (the session numbered past 1), then the crash point armed
    and the order `coid` submitted: the venue dies taking it, comes back, and asks for the
    NewOrderSingle again (its store never recorded its number)."""
    with client(sut) as c:
        submit_when_open(c, VENUE, client_order_id="warm-1")
        settle(c, sut, ["warm-1"])
        since = sut.mark()
        sut.arm(f"{SIM}:{POINT}")
        submit_when_open(c, VENUE, qty=qty, price=price, client_order_id=coid)
        sut.wait_event("injected_crash", 15.0, since=since, actor=SIM, point=POINT)
        sut.wait_event("actor_exited", 15.0, since=since, child=SIM, signal="SIGKILL")
        sut.wait_event("actor_ready", 15.0, since=since, child=SIM)
        # the restarted venue never recorded the order's MsgSeqNum: it asks for it again
        sut.wait_event("fix_resend_requested", 15.0, since=since, actor=SIM)


def test_venue_killed_after_taking_a_resting_order_before_answering_it() -> None:
    """The venue holds the limit order (resting) but never acknowledged it: the OMS ends
    with it ACCEPTED like the venue, the venue holds it once, and the OMS never resubmitted
    it (the venue asks for the NewOrderSingle again, of a connection that is gone: a gap
    fill, not a copy; the OMS finds the order at the venue)."""
    with systems() as started:
        sut = OmsSystem(crash_at=[f"{SIM}:{POINT}"], overrides=overrides())
        started.append(sut)
        sut.start()
        _crash_on(sut, "5", "95.00", "rest-1")
        with client(sut) as c:
            final = settle(c, sut, ["warm-1", "rest-1"])
        rest = final.oms["rest-1"]
        assert (rest.status, rest.qty, rest.cum_qty) == (OrderStatus.ACCEPTED, D(5), D(0))
        venue_rest = find_venue_order(final.venue, "rest-1")
        assert venue_rest is not None and venue_rest["status"] == "ACCEPTED"
        assert not sut.events("order_resubmitted", client_order_id="rest-1")
        exits = [e["child"] for e in sut.events("actor_exited")]
        assert exits == [SIM], exits


def test_venue_killed_after_filling_a_market_order_before_reporting_it() -> None:
    """The venue filled a market buy of 2000 across four quote levels and died before
    reporting anything: the OMS ends FILLED 2000 @ 100.025 with position 2000 like the
    venue, each fill applied and journalled once, the order never sent again as new."""
    with systems() as started:
        sut = OmsSystem(crash_at=[f"{SIM}:{POINT}"], overrides=overrides())
        started.append(sut)
        sut.start()
        _crash_on(sut, "2000", None, "sweep-1")
        with client(sut) as c:
            final = settle(c, sut, ["warm-1", "sweep-1"])
        check_sweep(sut, final)
        check_journal_fills(sut, final.oms)
        assert final.oms_positions == {SYMBOL: D(2000)}
        assert not sut.events("order_resubmitted", client_order_id="sweep-1")
