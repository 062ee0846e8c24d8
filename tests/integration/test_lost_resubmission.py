"""An order the OMS resubmitted whose resubmission the venue never read either, through the
real system. A D of an earlier connection gets a gap fill at the next logon (fix transmit
`NOT_RESENT`), so it can never arrive; the planner, which leaves an order it resubmitted
less than `oms.resubmit_grace_s` ago alone ("a resubmission is in flight"), left the market
order PENDING_SUBMIT for the grace (32 s) after the venue was back. For a FIX venue a new
connection now ends every resubmission's grace (`VenueLink.on_state`): the pass at that
logon resubmits it. (Found by a review of the gap-fill change.)

Deterministic: the venue stops reading (`hang`) with the D in its socket and drops the
session (the unread bytes die with it); the resubmission at the next logon waits for a
token of the venue's rate limit (2/s), long enough for the venue to hang again first."""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest

from protocol import paths
from protocol.messages import OrderStatus
from tests.helpers import SystemUnderTest, eventually
from tests.system_ops import client, sim_fault, submit_when_open, venue_order

pytestmark = pytest.mark.integration
VENUE = "simB"


def _sends_in_fix_store(sut: SystemUnderTest, cl_ord_id: str) -> int:
    """How many NewOrderSingles of `cl_ord_id` the connector's FIX store keeps (numbered,
    kept and, the store synced first, handed to the socket)."""
    data = (paths.fix_dir(sut.state_dir, VENUE) / "session.log").read_bytes()
    pos, found = 8, 0  # after the magic; records: "<BIII" kind, value, length, crc
    while pos + 13 <= len(data):
        kind, _seq, length, _crc = struct.unpack_from("<BIII", data, pos)
        payload = data[pos + 13 : pos + 13 + length]
        pos += 13 + length
        mine = b"\x0111=" + cl_ord_id.encode() + b"\x01" in payload
        if kind == 1 and b"\x0135=D\x01" in payload and mine:
            found += 1
    return found


def _venue(name: str, **extra: object) -> dict[str, object]:
    return {
        "name": name,
        "target_comp_id": name.upper(),
        "sim": {"reference_prices": {"AAPL": "100.00"}},
        **extra,
    }


def _lose_the_unread_bytes(sut: SystemUnderTest) -> int:
    """The hung venue drops the session (what it never read dies with the socket) and reads
    again; returns the log mark from before."""
    since = sut.mark()
    sim_fault(sut, VENUE, "drop_session")
    sim_fault(sut, VENUE, "clear")
    return since


def test_a_lost_resubmission_is_resubmitted_at_the_next_logon_not_after_the_grace(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """Filled once the venue is back, long before the grace (the longest allowed, 240 s)."""
    overrides = {
        "supervisor": {"hang_missed_intervals": 1000},
        "oms": {"resubmit_grace_s": 240.0},
        "venues": [_venue("simA"), _venue(VENUE, rate_limit_per_s=2.0, rate_burst=1)],
    }
    sut = start_system(overrides=overrides)
    with client(sut) as c:
        warm = submit_when_open(c, VENUE)  # the session numbered past its logon
        c.wait_for_status(warm.client_order_id, {OrderStatus.ACCEPTED}, timeout_s=10)
        # 1. the first send of a market order dies unread with the connection
        sim_fault(sut, VENUE, "hang", "600")
        order = c.submit(VENUE, "AAPL", "BUY", "10", "MARKET", timeout_s=10)
        coid, venue_id = order.client_order_id, order.cl_ord_id
        eventually(lambda: _sends_in_fix_store(sut, venue_id) == 1, 10, message="first D kept")
        since = _lose_the_unread_bytes(sut)
        # 2. the pass at the next logon resubmits it (as designed); the resubmission waits
        # for a rate-limit token: the venue hangs again first, and it dies unread too
        sut.wait_event("order_resubmitted", 30.0, since=since, client_order_id=coid)
        sim_fault(sut, VENUE, "hang", "600")
        eventually(lambda: _sends_in_fix_store(sut, venue_id) == 2, 10, message="resubmit kept")
        assert venue_order(sut, VENUE, venue_id) is None  # the venue never read either D
        since = _lose_the_unread_bytes(sut)
        served = sut.wait_event("fix_resend_served", 30.0, since=since, actor=f"connector.{VENUE}")
        assert served["orders_gap_filled"] >= 1, served  # the resubmission: a gap fill
        # 3. the pass at this logon finds the venue does not know it and resubmits it; in
        # the grace (240 s) it would wait, PENDING_SUBMIT, well past this deadline
        done = {OrderStatus.FILLED, OrderStatus.REJECTED, OrderStatus.CANCELLED}
        final = c.wait_for_status(coid, done, timeout_s=60)
        assert final.status is OrderStatus.FILLED, final
    assert sut.stop() == 0
