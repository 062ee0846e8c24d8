"""rev6 review of 143666a: an "unsent" exec id's `<ns>` is the connector's wall clock
(`time.time_ns()` in actors/connector/ccxt/flows.py), and the OMS takes one no later than
the order's kept one for a duplicate. A connector whose clock is behind the one that wrote
the kept id (an NTP step back, a restart on a host whose clock is behind, a second
incarnation) sends genuine new "unsent" reports that are dropped: resends that never went
out are counted, and the order escalates `resubmit_unconfirmed` - what the branch exists
to prevent - until that connector's clock passes the kept stamp (hours, for a clock that
was hours ahead)."""

from __future__ import annotations

from actors.oms.order_book import OrderBook
from protocol.messages import ExecReport
from tests.oms.test_resubmit_unsent import V, _approved, _plan


def _unsent_at(ns: int) -> ExecReport:
    return ExecReport(
        venue=V, exec_id=f"u1:unsent:{ns}", kind="unsent", cl_ord_id="u1",
        text="not sent: its lookup by client id before a resend was inconclusive",
    )  # fmt: skip


def test_unsent_reports_from_a_connector_clock_stepped_back_are_taken_back() -> None:
    book = OrderBook()
    _approved(book)
    hour = 3_600 * 10**9
    first = 1_800_000_000 * 10**9 + hour  # the connector's clock ran an hour ahead
    book.mark_resubmitted("u1", 10)
    assert book.apply_exec(_unsent_at(first), 11).applied
    # its clock is corrected (or it restarts on a host with the right time): each later
    # resend, a grace (30 s) apart, is again not sent, and reported so
    for n in range(1, 4):
        book.mark_resubmitted("u1", 20 + n)
        out = book.apply_exec(_unsent_at(first - hour + n * 30 * 10**9), 30 + n)
        assert out.applied, f"resend {n} went unsent but was taken for a duplicate: {out}"
    order = book.get("u1")
    assert order is not None and order.resubmits == 0
    assert _plan(book) == [("resubmit", "")]  # not escalated: nothing was ever sent
