"""The FIX adapter when the venue rejects one of our messages unread: a session Reject
(35=3) or a BusinessMessageReject (35=j). A refused NewOrderSingle is a rejected order
(the venue never had it) when the refused message can only have been that one send; a
refused status request fails its query at once, saying why."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal as D
from pathlib import Path

import pytest

from actors.connector.adapter import RequestFailed
from actors.connector.fix import codec as fc
from protocol.messages import CancelOnVenue, ErrorCode, OrderStatus, Side
from tests.connector.fix.test_adapter import Done, Harness, ask, order

REQUIRED_TAG_MISSING = 1


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(tmp_path)
    yield harness
    harness.close()


def test_a_session_reject_of_a_status_request_fails_the_query_at_once_with_its_reason(
    h: Harness,
) -> None:
    """What an engine validating the FIX 4.4 dictionary sent for an H without Side: the
    query fails as soon as the Reject arrives (not at the 30 s timeout), and its error
    names the message, the SessionRejectReason and the RefTagID, for reconciliation to
    report."""
    a = h.connected(request_timeout_s=30.0)
    h.venue.session_rejects["H"] = (54, REQUIRED_TAG_MISSING, "Required tag missing")
    status = Done()
    started = time.monotonic()
    a.order_status([ask("c1"), ask("c2")], status)
    h.loop.run_until(lambda: status.calls, timeout_s=5)
    assert time.monotonic() - started < 5
    (failed,) = status.calls
    assert isinstance(failed, RequestFailed) and failed.code is ErrorCode.VENUE_REFUSED
    assert str(failed) == (
        "session Reject of H: 373=1 Required tag missing, 371=54, Required tag missing"
    )
    h.loop.run_until(lambda: len([m for m in h.venue.received if m.msg_type == "H"]) == 2)
    h.loop.turn(0)
    assert status.calls == [failed]  # the second Reject finds nothing left to fail


def test_a_session_reject_of_a_new_order_single_is_a_rejected_order(h: Harness) -> None:
    """The venue refused our D at session level: it never read it as an order, so the
    order was never live. The OMS is told so as a rejection (exec id ``refused:<ClOrdID>``,
    OrdStatus REJECTED, the Reject's reason as text), not left unknown."""
    a = h.connected()
    h.venue.session_rejects["D"] = (55, REQUIRED_TAG_MISSING, "Required tag missing")
    sent = Done()
    a.place(order("c1"), sent)
    h.loop.run_until(lambda: h.listener.execs)
    assert sent.calls == [None]
    (report,) = h.listener.execs
    assert (report.kind, report.cl_ord_id, report.exec_id, report.ord_status) == (
        "rejected",
        "c1",
        "refused:c1",
        OrderStatus.REJECTED,
    )
    assert report.text == "session Reject of D: 373=1 Required tag missing, 371=55, " + (
        "Required tag missing"
    )


def test_a_business_reject_of_a_new_order_single_is_a_rejected_order(h: Harness) -> None:
    """A BusinessMessageReject (e.g. 380=4 application not available) of our D: the same."""
    a = h.connected()
    h.venue.answer = False
    a.place(order("c1"), Done())
    h.loop.run_until(lambda: [m for m in h.venue.received if m.msg_type == "D"])
    d_seq = h.venue.received[-1].seq
    h.venue.send("j", [(45, d_seq), (372, "D"), (379, "c1"), (380, 4), (58, "closed")])
    h.loop.run_until(lambda: h.listener.execs)
    (report,) = h.listener.execs
    assert (report.kind, report.cl_ord_id, report.exec_id) == ("rejected", "c1", "refused:c1")
    assert report.text == "BusinessMessageReject of D: 380=4, closed"


def test_a_reject_of_a_new_order_single_sent_before_a_restart_leaves_it_to_reconciliation(
    h: Harness,
) -> None:
    """The connector restarted between sending the D and the venue's Reject of it: the D
    may have reached the venue as a PossDup copy of a resend since, so the Reject proves
    nothing about the order: no rejection, `order_outcome_unknown` (reconciliation asks the
    venue). Found by review: a venue holding the order may refuse a copy."""
    first = h.connected()
    h.venue.answer = False
    first.place(order("c7"), Done())
    h.loop.run_until(lambda: [m for m in h.venue.received if m.msg_type == "D"])
    d_seq = h.venue.received[-1].seq
    h.retire(first)
    h.loop.run_until(lambda: h.venue.session is None)
    second = h.connected()
    next_in = second.info()["next_in"]
    h.venue.reject(d_seq, "D", 60, REQUIRED_TAG_MISSING, "Required tag missing")
    h.loop.run_until(lambda: second.info()["next_in"] != next_in)  # the Reject was read
    h.loop.turn(0)
    assert h.listener.execs == []


def test_a_reject_of_a_new_order_single_resent_on_request_is_not_a_rejection(
    h: Harness,
) -> None:
    """The venue asked for our D again (ResendRequest) and we sent a PossDup copy: its
    Reject may be of the copy while the venue holds the order, so it rejects nothing."""
    a = h.connected()
    h.venue.answer = False
    a.place(order("c1"), Done())
    h.loop.run_until(lambda: [m for m in h.venue.received if m.msg_type == "D"])
    d_seq = h.venue.received[-1].seq
    assert a.session.resent_through < d_seq
    a.session._tx.resend(d_seq, 0)  # what the session does on the venue's ResendRequest
    assert a.session.resent_through >= d_seq
    next_in = a.info()["next_in"]
    h.venue.reject(d_seq, "D", 60, REQUIRED_TAG_MISSING, "Required tag missing")
    h.loop.run_until(lambda: a.info()["next_in"] != next_in)
    h.loop.turn(0)
    assert h.listener.execs == []


def test_a_reject_whose_ref_msg_type_is_not_what_we_sent_is_not_applied(h: Harness) -> None:
    """A Reject naming RefMsgType H for the MsgSeqNum that carried our D (a venue's error,
    or numbers from before a sequence reset) rejects no order."""
    a = h.connected()
    h.venue.answer = False
    a.place(order("c1"), Done())
    h.loop.run_until(lambda: [m for m in h.venue.received if m.msg_type == "D"])
    next_in = a.info()["next_in"]
    h.venue.reject(h.venue.received[-1].seq, "H", 54, REQUIRED_TAG_MISSING, "nope")
    h.loop.run_until(lambda: a.info()["next_in"] != next_in)  # the Reject was read
    assert h.listener.execs == []


def test_a_late_reject_of_an_earlier_send_of_a_resubmitted_order_is_not_a_rejection(
    h: Harness,
) -> None:
    """Reconciliation resubmitted the order (same ClOrdID, a new D): a Reject of the first
    D that arrives after it says nothing about the resubmitted one, which may be live."""
    a = h.connected()
    h.venue.answer = False
    a.place(order("c1"), Done())
    h.loop.run_until(lambda: [m for m in h.venue.received if m.msg_type == "D"])
    first_seq = h.venue.received[-1].seq
    a.place(order("c1"), Done())
    h.loop.run_until(lambda: len([m for m in h.venue.received if m.msg_type == "D"]) == 2)
    next_in = a.info()["next_in"]
    h.venue.reject(first_seq, "D", 60, REQUIRED_TAG_MISSING, "Required tag missing")
    h.loop.run_until(lambda: a.info()["next_in"] != next_in)
    h.loop.turn(0)
    assert h.listener.execs == []


def _cancel(cl: str = "c1.x") -> CancelOnVenue:
    return CancelOnVenue(cl_ord_id=cl, orig_cl_ord_id="c1", symbol="AAPL", side=Side.BUY, qty=D(10))


def test_a_session_reject_of_a_cancel_is_a_cancel_reject(h: Harness) -> None:
    """The venue refused our F at session level: it never read the cancel, the order is as
    it was. The OMS is told so as the OrderCancelReject it stands for (kind
    cancel_rejected, exec id ``cxlrej:<request id>``, the Reject's reason as text), so the
    order leaves PENDING_CANCEL instead of waiting there for good. Before: logged
    `order_outcome_unknown` only."""
    a = h.connected()
    a.place(order("c1"), Done())
    h.loop.run_until(lambda: h.listener.execs)  # c1 is NEW at the venue
    h.venue.session_rejects["F"] = (41, REQUIRED_TAG_MISSING, "Required tag missing")
    a.cancel(_cancel(), Done())
    h.loop.run_until(lambda: len(h.listener.execs) >= 2)
    report = h.listener.execs[-1]
    assert (report.kind, report.cl_ord_id, report.exec_id) == (
        "cancel_rejected",
        "c1.x",
        "cxlrej:c1.x",
    )
    assert report.text.startswith("session Reject of F: 373=1")


def test_a_reject_of_a_cancel_resent_on_request_is_not_a_cancel_reject(h: Harness) -> None:
    """A Reject of an F we also sent again as a PossDup copy may be of the copy while the
    venue holds the cancel: it says nothing (reconciliation asks)."""
    a = h.connected()
    a.place(order("c1"), Done())
    h.loop.run_until(lambda: h.listener.execs)
    h.venue.answer = False
    a.cancel(_cancel(), Done())
    h.loop.run_until(lambda: [m for m in h.venue.received if m.msg_type == "F"])
    f_seq = h.venue.received[-1].seq
    a.session._tx.resend(f_seq, 0)  # what the session does on the venue's ResendRequest
    next_in = a.info()["next_in"]
    h.venue.reject(f_seq, "F", 41, REQUIRED_TAG_MISSING, "Required tag missing")
    h.loop.run_until(lambda: a.info()["next_in"] != next_in)
    h.loop.turn(0)
    assert [e.kind for e in h.listener.execs] == ["accepted"]


def test_a_business_reject_without_ref_seq_num_is_matched_by_its_business_ref_id(
    h: Harness,
) -> None:
    """RefSeqNum(45) is optional in a BusinessMessageReject: one that names our D only by
    BusinessRejectRefID(379) = its ClOrdID rejects that order, and one naming an H's
    OrdStatusReqID fails that query (before: unmatched, nothing happened)."""
    a = h.connected(request_timeout_s=30.0)
    h.venue.answer = False
    a.place(order("c1"), Done())
    h.loop.run_until(lambda: [m for m in h.venue.received if m.msg_type == "D"])
    h.venue.send("j", [(372, "D"), (379, "c1"), (380, 4), (58, "closed")])
    h.loop.run_until(lambda: h.listener.execs)
    (report,) = h.listener.execs
    assert (report.kind, report.cl_ord_id, report.exec_id) == ("rejected", "c1", "refused:c1")
    status = Done()
    a.order_status([ask("c1")], status)
    h.loop.run_until(lambda: [m for m in h.venue.received if m.msg_type == "H"])
    req_id = fc.get_str(h.venue.received[-1].msg, 790)
    h.venue.send("j", [(372, "H"), (379, req_id), (380, 3)])
    h.loop.run_until(lambda: status.calls, timeout_s=5)
    (failed,) = status.calls
    assert isinstance(failed, RequestFailed) and failed.code is ErrorCode.VENUE_REFUSED
