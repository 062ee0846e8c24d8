"""The real venue-sim process and the FIX session rules it shares with the connector: a
valid FIX 4.4 MsgType it does not take gets a BusinessMessageReject, a garbled frame is
ignored without consuming its number and comes again through the ResendRequest."""

from __future__ import annotations

import time

import pytest

from actors.connector.fix import codec as fc
from actors.connector.fix.events import SessionRejectReceived
from tests.venuesim.rig import FixClient, SimProcess, field

pytestmark = pytest.mark.integration


def test_quote_request_gets_business_reject_unsupported_msg_type(
    sim_process: SimProcess, client: FixClient
) -> None:
    """QuoteRequest (35=R) is valid FIX 4.4 that the venue does not serve: it answers
    35=j with RefSeqNum, RefMsgType R and BusinessRejectReason 380=3, not a session
    Reject, and the session keeps trading."""
    m = client.mark()
    seq = client.send("R", [(131, "Q1"), (146, 1), (55, "AAPL")])
    (j,) = client.wait_msgs(1, m)
    got = (field(j, 35), field(j, 45), field(j, 372), field(j, 380))
    assert got == ("j", str(seq), "R", "3")
    assert not any(isinstance(e, SessionRejectReceived) for e in client.events)
    m = client.mark()
    client.order("L1", price="99.50")
    assert field(client.wait_msgs(1, m)[0], 150) == "0"


def test_garbled_order_is_ignored_then_recovered_by_resend(
    sim_process: SimProcess, client: FixClient
) -> None:
    """A NewOrderSingle arriving with a bad CheckSum gets no Reject and its number is not
    consumed: the next order opens a gap, the venue asks for a resend, and both orders are
    acknowledged (the first as the PossDup copy)."""
    mark = sim_process.mark()
    m = client.mark()
    now = fc.sending_time(time.time())
    order = [(11, "G1"), (55, "AAPL"), (54, "1"), (60, now), (38, "10"), (40, "2"), (44, "99.50")]
    client.session.send("D", order)
    data = client.session.data_to_send()
    assert client.sock is not None and data.endswith(b"\x01")
    client.sock.sendall(data[:-4] + (b"000" if data[-4:-1] != b"000" else b"001") + b"\x01")
    sim_process.wait_event("fix_garbled_ignored", since=mark, reason="bad_checksum")
    client.order("G2", price="99.40")
    acks = client.wait_msgs(2, m, msg_type="8")
    assert sorted((field(a, 11), field(a, 150)) for a in acks) == [("G1", "0"), ("G2", "0")]
    assert not any(isinstance(e, SessionRejectReceived) for e in client.events)
    sim_process.wait_event("fix_resend_requested", since=mark)
