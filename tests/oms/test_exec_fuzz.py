"""Fuzzing the OMS's execution path (issue 16, reconciliation robustness): ExecReports valid
on the wire with hostile values - quantities and prices at every bound, fills beyond the
order, reports for terminal, replaced or unknown orders, exec ids reused with other
content - applied to a book holding orders in every kind of state. Applying one must never
raise (an apply that raises is quarantined, `actors.oms.exec_quarantine`, but a real input
should not get there), every record it makes must encode for the journal, and replaying
those records into a fresh book must give the same orders and positions (the journal is
the truth). Pure: no sockets."""

from __future__ import annotations

import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.oms.journal import encode_record
from actors.oms.order_archive import OrderArchive, Retention
from actors.oms.order_book import OrderBook
from protocol.messages import (
    ExecReport,
    OrderStatus,
    OrdType,
    ReplaceOrder,
    RiskVerdict,
    Side,
    SubmitOrder,
)

V = "sim"
D = Decimal
_KINDS = ("accepted", "rejected", "fill", "cancelled", "replaced", "cancel_rejected",
          "expired", "status", "unsent")  # fmt: skip

# quantities and prices a venue could send that pass the wire's bounds (`protocol.domain`)
_DECIMALS = st.one_of(
    st.sampled_from(["0", "1", "4", "6", "10", "95", "-1", "-10", "0.5", "1E-60", "-1E-60",
                     "9999999999999999999", "-9999999999999999999", "1E+18", "0E+18",
                     "0.0000000000000000000000000001", "9999999999.999999999999999999",
                     "1234567890123456789.0", "0.000000000000000000000000000000000000001"]),
    st.decimals(min_value=D("-1E+18"), max_value=D("1E+18"), allow_nan=False,
                allow_infinity=False, places=4),
).map(D)  # fmt: skip


def _book() -> tuple[OrderBook, list[str]]:
    """A book with an order in each interesting state; the ClOrdIDs it knows."""
    book = OrderBook()
    ts = 1
    for coid, side in (("live", Side.BUY), ("repl", Side.SELL), ("canc", Side.BUY),
                       ("done", Side.SELL), ("part", Side.BUY)):  # fmt: skip
        msg = SubmitOrder(client_order_id=coid, venue=V, symbol="ABC", side=side, qty=D(10),
                          order_type=OrdType.LIMIT, price=D(95))  # fmt: skip
        book.submit(msg, ts)
        book.risk_verdict(RiskVerdict(client_order_id=coid, approved=True), ts + 1)
        order = book.get(coid)
        assert order is not None
        book.apply_exec(ExecReport(venue=V, exec_id=f"A-{coid}", kind="accepted",
                                   cl_ord_id=order.cl_ord_id), ts + 2)  # fmt: skip
        ts += 3
    pend = SubmitOrder(client_order_id="pend", venue=V, symbol="ABC", side=Side.BUY, qty=D(10),
                       order_type=OrdType.LIMIT, price=D(95))  # fmt: skip
    book.submit(pend, ts)
    book.risk_verdict(RiskVerdict(client_order_id="pend", approved=True), ts + 1)
    book.mark_resubmitted("pend", ts + 2)
    book.mark_resubmitted("pend", ts + 2)  # resubmitted twice, never acknowledged
    book.request_replace(ReplaceOrder(client_order_id="repl", qty=D(8), price=D(96)), ts)
    book.request_cancel("canc", ts)
    for coid, qty in (("done", "10"), ("part", "4")):
        order = book.get(coid)
        assert order is not None
        fill = ExecReport(venue=V, exec_id=f"F-{coid}", kind="fill", cl_ord_id=order.cl_ord_id,
                          last_qty=D(qty), last_px=D(95), cum_qty=D(qty))  # fmt: skip
        assert book.apply_exec(fill, ts).applied
    ids = sorted({cl for o in book.orders() for cl in o.cl_ord_ids} | {"nope", ""})
    return book, ids


def _reports(ids: list[str]) -> st.SearchStrategy[ExecReport]:
    return st.builds(
        ExecReport,
        venue=st.just(V),
        exec_id=st.sampled_from(["E1", "E2", "E3", "F-done", "A-live", ""]),
        kind=st.sampled_from(_KINDS),
        cl_ord_id=st.sampled_from(ids),
        orig_cl_ord_id=st.sampled_from(ids),
        venue_order_id=st.sampled_from(["", "V1"]),
        symbol=st.sampled_from(["ABC", "XYZ", ""]),
        side=st.sampled_from([None, Side.BUY, Side.SELL]),
        order_qty=st.one_of(st.none(), _DECIMALS),
        price=st.one_of(st.none(), _DECIMALS),
        last_qty=_DECIMALS,
        last_px=_DECIMALS,
        cum_qty=_DECIMALS,
        avg_px=_DECIMALS,
        leaves_qty=_DECIMALS,
        ord_status=st.one_of(st.none(), st.sampled_from(list(OrderStatus))),
        text=st.sampled_from(["", "duplicate order", "x" * 300]),
        exec_seq=st.integers(min_value=0, max_value=2**70),
    )


def _state(book: OrderBook) -> list[Any]:
    """Every order (in memory or archived: memory wins), positions, unmatched fills."""
    held = {o.client_order_id: o for o in book.retention.archive} if book.retention else {}
    held.update((o.client_order_id, o) for o in book.orders())
    orders = sorted((o.client_order_id, o.status, o.cum_qty, o.qty, o.price, o.cl_ord_id,
                     sorted(o.exec_ids), o.resubmits) for o in held.values())  # fmt: skip
    positions = sorted((p.symbol, p.qty, p.avg_px, p.realized_pnl) for p in book.positions())
    return [orders, positions, sorted(u.exec_id for u in book.unmatched_fills())]


_BASE = _book()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_no_hostile_execution_makes_the_apply_raise(data: st.DataObject) -> None:
    """Any sequence of wire-valid ExecReports, however hostile their values: every apply
    returns an outcome (applied, duplicate or refused, never an exception), its records
    encode for the journal, and replaying the journal gives the same book."""
    book = OrderBook.from_dict(_BASE[0].to_dict())
    journal: list[dict[str, Any]] = []
    for report in data.draw(st.lists(_reports(_BASE[1]), min_size=1, max_size=12)):
        out = book.apply_exec(report, 100)
        for rec in out.records:
            encode_record(rec)
            journal.append(rec)
    replayed = OrderBook.from_dict(_BASE[0].to_dict())
    for rec in journal:
        replayed.apply_record(rec)
    assert _state(replayed) == _state(book)


def _archived(path: Path) -> OrderBook:
    """The base book keeping one terminal order in memory, older ones in a SQLite archive."""
    return OrderBook.from_dict(_BASE[0].to_dict(), Retention(OrderArchive(path), keep=1))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_no_hostile_execution_makes_the_apply_raise_with_an_archive(data: st.DataObject) -> None:
    """The same with a book that keeps one terminal order in memory: orders finishing move
    older ones to the archive, and reports for those are read back from it (the apply's I/O):
    never an exception, and replaying the journal gives the same orders, archived or not."""
    with tempfile.TemporaryDirectory() as tmp:
        book = _archived(Path(tmp) / "live.sqlite")
        journal: list[dict[str, Any]] = []
        for report in data.draw(st.lists(_reports(_BASE[1]), min_size=1, max_size=12)):
            out = book.apply_exec(report, 100)
            for rec in out.records:
                encode_record(rec)
                journal.append(rec)
        replayed = _archived(Path(tmp) / "replay.sqlite")
        for rec in journal:
            replayed.apply_record(rec)
        assert _state(replayed) == _state(book)
        for b in (book, replayed):
            assert b.retention is not None
            b.retention.archive.close()
