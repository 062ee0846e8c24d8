"""Pending FIX queries: answers matched by the echoed request id, ends detected, failures."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from prometheus_client import REGISTRY

from actors.connector.adapter import RequestFailed, StatusResult
from actors.connector.fix.queries import (
    MassCancelQuery,
    MassStatusQuery,
    PositionsQuery,
    QueryBook,
    StatusQuery,
)
from protocol.messages import ErrorCode
from tests.connector.fix.support import fix_message
from tests.log_stub import RecordingLog


class Result:
    def __init__(self) -> None:
        self.calls: list[Any] = []

    def __call__(self, value: Any) -> None:
        self.calls.append(value)

    @property
    def value(self) -> Any:
        assert len(self.calls) == 1, self.calls
        return self.calls[0]


def status(cl: str, *extra: tuple[int, str], status: str = "0") -> list[tuple[int, str]]:
    return [
        (150, "I"),
        (39, status),
        (11, cl),
        (37, "O-" + cl),
        (55, "AAPL"),
        (54, "1"),
        (38, "10"),
        (14, "0"),
        (6, "0"),
        (151, "10"),
        *extra,
    ]


def test_status_query_completes_when_every_id_is_answered() -> None:
    """Known ids become VenueOrders (keyed by the venue's current ClOrdID), unknown ones
    are listed as unknown; done is called once, after the last answer."""
    book, done = QueryBook("v"), Result()
    book.add(StatusQuery("S1", {"S1.0": "a", "S1.1": "old", "S1.2": "ghost"}, done))
    assert book.feed_status(fix_message(status("a", (790, "S1.0"))))
    assert book.feed_status(fix_message(status("new", (790, "S1.1"))))
    assert not done.calls
    unknown = [(150, "I"), (39, "8"), (103, "5"), (11, "ghost"), (790, "S1.2"), (37, "NONE")]
    assert book.feed_status(fix_message(unknown))
    result: StatusResult = done.value
    assert [o.cl_ord_id for o in result.orders] == ["a", "new"] and result.unknown == ["ghost"]
    assert len(book) == 0


def test_status_answer_without_request_id_is_matched_by_clordid() -> None:
    book, done = QueryBook("v"), Result()
    book.add(StatusQuery("S1", {"S1.0": "a"}, done))
    assert book.feed_status(fix_message(status("a")))
    assert [o.cl_ord_id for o in done.value.orders] == ["a"]


def test_answers_to_no_pending_query_are_not_consumed() -> None:
    """An old answer replayed by a FIX resend matches nothing and changes nothing."""
    book, done = QueryBook("v"), Result()
    book.add(StatusQuery("S2", {"S2.0": "a"}, done))
    assert not book.feed_status(fix_message(status("zz", (790, "S1.0"))))
    assert not book.feed_position(fix_message([(710, "P-old"), (727, "0")]))
    assert not book.feed_mass_cancel(fix_message([(11, "MC-old"), (531, "7")]))
    assert not done.calls


def test_mass_status_collects_until_last_report() -> None:
    book, done = QueryBook("v"), Result()
    book.add(MassStatusQuery("M1", done))
    book.feed_status(fix_message(status("a", (584, "M1"), (911, "2"))))
    assert not done.calls
    book.feed_status(fix_message(status("b", (584, "M1"), (911, "2"), (912, "Y"))))
    assert [o.cl_ord_id for o in done.value] == ["a", "b"]


def test_mass_status_with_no_orders_is_one_empty_answer() -> None:
    """The single report with TotNumReports 0 / ClOrdID NONE is the end, not a row."""
    book, done = QueryBook("v"), Result()
    book.add(MassStatusQuery("M1", done))
    none = [(150, "I"), (39, "8"), (11, "NONE"), (584, "M1"), (911, "0"), (912, "Y")]
    assert book.feed_status(fix_message(none))
    assert done.value == []


def test_mass_status_ends_on_the_announced_count_without_912() -> None:
    book, done = QueryBook("v"), Result()
    book.add(MassStatusQuery("M1", done))
    book.feed_status(fix_message(status("a", (584, "M1"), (911, "1"))))
    assert len(done.value) == 1


def test_positions_rows_until_the_announced_count() -> None:
    book, done = QueryBook("v"), Result()
    book.add(PositionsQuery("P1", done, "v"))
    book.feed_position(
        fix_message(
            [
                (710, "P1"),
                (727, "2"),
                (728, "0"),
                (55, "AAPL"),
                (704, "10"),
                (705, "0"),
                (730, "100"),
            ]
        )
    )
    assert not done.calls
    book.feed_position(
        fix_message(
            [
                (710, "P1"),
                (727, "2"),
                (728, "0"),
                (55, "MSFT"),
                (704, "0"),
                (705, "3"),
                (730, "300"),
            ]
        )
    )
    assert [(p.symbol, p.qty) for p in done.value] == [("AAPL", Decimal(10)), ("MSFT", Decimal(-3))]


def test_positions_end_on_the_announced_count_of_reports_even_with_an_unreadable_row() -> None:
    """A PositionReport has no LastRptRequested(912): the answer ends after as many
    reports as TotalNumPosReports(727) announced, a row we cannot read (no Symbol)
    counting too, so the query completes instead of timing out."""
    book, done = QueryBook("v"), Result()
    book.add(PositionsQuery("P1", done, "v"))
    head = [(710, "P1"), (727, "2"), (728, "0")]
    book.feed_position(fix_message([*head, (704, "10"), (705, "0"), (730, "100")]))
    assert not done.calls
    book.feed_position(fix_message([*head, (55, "MSFT"), (704, "0"), (705, "3"), (730, "300")]))
    assert [(p.symbol, p.qty) for p in done.value] == [("MSFT", Decimal(-3))]


@pytest.mark.parametrize(
    ("field", "value"),
    [(704, "1e999999"), (704, "NaN"), (705, "9" * 40), (730, "abc"), (704, "9" * 19)],
)
def test_a_position_row_with_an_unreadable_number_fails_the_query(field: int, value: str) -> None:
    """LongQty, ShortQty or SettlPrice present but no number within the bounds (or a net
    out of them): the query fails (VENUE_REFUSED), counted and logged; the row was read
    as a position of 0 (or as ShortQty alone), one the venue never reported."""
    before = _unreadable_positions()
    log = RecordingLog()
    book, done = QueryBook("v", log), Result()
    book.add(PositionsQuery("P1", done, "v"))
    row = {704: "10", 705: "0", 730: "100"} | {field: value}
    if value == "9" * 19:
        row[705] = "-" + "9" * 19  # each within the bounds, their difference not
    book.feed_position(fix_message([(710, "P1"), (727, "2"), (55, "AAPL"), *row.items()]))
    assert isinstance(done.value, RequestFailed)
    assert done.value.code is ErrorCode.VENUE_REFUSED
    assert "unreadable position report" in str(done.value)
    assert _unreadable_positions() - before == 1
    assert [ev for _lvl, ev, _kw in log.lines] == ["fix_answer_unreadable"]
    assert len(book) == 0  # the query is gone: a late row is no one's
    assert not book.feed_position(fix_message([(710, "P1"), (55, "MSFT"), (704, "1")]))


def _unreadable_positions() -> float:
    labels = {"venue": "v", "source": "position"}
    value = REGISTRY.get_sample_value("tradepulse_venue_answers_unreadable_total", labels)
    return value or 0.0


def test_no_positions_is_an_empty_answer_and_a_refusal_is_an_error() -> None:
    book, empty, refused = QueryBook("v"), Result(), Result()
    book.add(PositionsQuery("P1", empty, "v"))
    book.add(PositionsQuery("P2", refused, "v"))
    book.feed_position(fix_message([(710, "P1"), (727, "0"), (728, "2")]))
    book.feed_position(fix_message([(710, "P2"), (728, "3"), (58, "not authorised")]))
    assert empty.value == []
    assert isinstance(refused.value, RequestFailed) and "not authorised" in str(refused.value)


def test_mass_cancel_accepted_unless_response_is_zero() -> None:
    book, ok, no = QueryBook("v"), Result(), Result()
    book.add(MassCancelQuery("MC1", ok))
    book.add(MassCancelQuery("MC2", no))
    book.feed_mass_cancel(fix_message([(11, "MC1"), (531, "7")]))
    book.feed_mass_cancel(fix_message([(11, "MC2"), (531, "0")]))
    assert ok.value is True and no.value is False


def test_expire_and_fail_all_call_done_once_with_the_error() -> None:
    book, a, b = QueryBook("v"), Result(), Result()
    book.add(StatusQuery("S1", {"S1.0": "x"}, a))
    book.add(MassStatusQuery("M1", b))
    book.expire("S1", RequestFailed(ErrorCode.TIMEOUT, "late"))
    book.expire("S1", RequestFailed(ErrorCode.TIMEOUT, "again"))
    book.fail_all(RequestFailed(ErrorCode.VENUE_DOWN, "gone"))
    assert a.value.code is ErrorCode.TIMEOUT and b.value.code is ErrorCode.VENUE_DOWN
    assert not book.feed_status(fix_message(status("x", (790, "S1.0"))))


def test_mass_status_part_is_never_taken_for_the_answer_to_an_h_of_the_same_order() -> None:
    """While an H about order `a` is pending, the mass status's report about `a` (584, no
    790) goes to the mass status; the H is answered by its own report (790)."""
    book, h_done, af_done = QueryBook("v"), Result(), Result()
    book.add(StatusQuery("S1", {"S1.0": "a"}, h_done))
    book.add(MassStatusQuery("M1", af_done))
    assert book.feed_status(fix_message(status("a", (584, "M1"), (911, "1"), (912, "Y"))))
    assert [o.cl_ord_id for o in af_done.value] == ["a"] and not h_done.calls
    assert book.feed_status(fix_message(status("a", (790, "S1.0"), status="1")))
    assert [o.cl_ord_id for o in h_done.value.orders] == ["a"]


def test_mass_status_over_the_reply_limit_is_refused_at_once_and_drained() -> None:
    """A mass status announcing more reports than one reply to the OMS carries is refused
    (VENUE_REFUSED, not 'unsupported': the next pass asks again) at its first report; the
    rest is consumed without answering again, and the query ends with the last one."""
    book, done = QueryBook("v"), Result()
    book.add(MassStatusQuery("M1", done, limit=2))
    assert book.feed_status(fix_message(status("a", (584, "M1"), (911, "3"))))
    err: RequestFailed = done.value
    assert err.code is ErrorCode.VENUE_REFUSED and not err.unsupported and "over the 2" in str(err)
    assert book.feed_status(fix_message(status("b", (584, "M1"), (911, "3"))))
    assert len(book) == 1
    assert book.feed_status(fix_message(status("c", (584, "M1"), (911, "3"), (912, "Y"))))
    assert len(book) == 0 and len(done.calls) == 1


def test_mass_status_without_a_count_is_refused_when_it_grows_over_the_limit() -> None:
    book, done = QueryBook("v"), Result()
    book.add(MassStatusQuery("M1", done, limit=2))
    for cl in ("a", "b"):
        book.feed_status(fix_message(status(cl, (584, "M1"))))
    assert not done.calls
    book.feed_status(fix_message(status("c", (584, "M1"))))
    assert done.value.code is ErrorCode.VENUE_REFUSED


def test_mass_status_is_refused_when_its_reply_would_be_too_many_bytes() -> None:
    """Fewer orders than the count limit but long venue ids: refused once the reply's
    estimated bytes pass the budget (the OMS would refuse a frame over the codec's 4 MiB
    as malformed, pass after pass), with the budget named."""
    book, done = QueryBook("v"), Result()
    book.add(MassStatusQuery("M1", done, max_bytes=100_000))
    long_id = "x" * 60
    for i in range(1000):
        book.feed_status(fix_message(status(f"{long_id}{i:04d}", (584, "M1"))))
        if done.calls:
            break
    err: RequestFailed = done.value
    assert err.code is ErrorCode.VENUE_REFUSED and "over the 100000 bytes" in str(err)
    assert 300 < i < 450  # ~270 bytes each (two 64-character ids): refused near the budget


def test_the_reply_bytes_estimate_counts_a_non_ascii_byte_twice() -> None:
    """A byte over 0x7f in a venue's id is read as latin-1 and becomes two bytes of UTF-8 in
    the reply: the estimate counts it so, and the budget is reached in about half the
    orders of the same byte length in ASCII (~400 bytes each against ~270)."""
    book, done = QueryBook("v"), Result()
    book.add(MassStatusQuery("M1", done, max_bytes=100_000))
    for i in range(1000):
        book.feed_status(fix_message(status(f"{'é' * 30}{i:04d}", (584, "M1"))))
        if done.calls:
            break
    assert done.value.code is ErrorCode.VENUE_REFUSED
    assert 200 < i < 300, i


def _unreadable_status() -> float:
    labels = {"venue": "v", "source": "status"}
    value = REGISTRY.get_sample_value("tradepulse_venue_answers_unreadable_total", labels)
    return value or 0.0


@pytest.mark.parametrize(
    ("field", "value"), [(14, "NaN"), (38, "1e999999"), (44, "9" * 40), (151, "abc"), (6, "-")]
)
def test_a_status_answer_with_an_unreadable_number_is_no_evidence(field: int, value: str) -> None:
    """An H answer whose CumQty, OrderQty, Price, LeavesQty or AvgPx is no number within
    the bounds: neither an order (it was one FILLED with CumQty 0, or a replaced order of
    quantity 0) nor unknown; counted and logged. A mass status leaves that row out and
    still ends on the announced count."""
    before = _unreadable_status()
    log = RecordingLog()
    book, done, mass = QueryBook("v", log), Result(), Result()
    book.add(StatusQuery("S1", {"S1.0": "a"}, done))
    bad = dict(status("a", (790, "S1.0"), status="2")) | {field: value}
    assert book.feed_status(fix_message(list(bad.items())))
    assert done.value == StatusResult()
    book.add(MassStatusQuery("M1", mass))
    assert book.feed_status(fix_message(status("b", (584, "M1"), (911, "2"))))
    row = dict(status("c", (584, "M1"), (911, "2"))) | {field: value}
    assert book.feed_status(fix_message(list(row.items())))
    assert [o.cl_ord_id for o in mass.value] == ["b"]
    assert _unreadable_status() - before == 2
    assert [ev for _lvl, ev, _kw in log.lines] == ["fix_answer_unreadable"] * 2
