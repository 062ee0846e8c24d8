"""The OMS book keeps live orders and the newest terminal ones; older terminal orders live
in the durable archive and every lookup still finds them (actors.oms.retention)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from actors.oms import reads
from actors.oms.journal import Journal
from actors.oms.order_archive import OrderArchive, Retention
from actors.oms.order_book import OrderBook
from actors.oms.retention import open_book
from actors.oms.views import OmsViews
from protocol import commands as wire
from protocol.messages import (
    ExecReport,
    ListOrders,
    OrderList,
    OrderStatus,
    OrdType,
    RiskVerdict,
    Side,
    SubmitOrder,
    VenueOrder,
)
from tests.oms.test_evictions import held_commits

V = "sim"
D = Decimal


def _submit(coid: str, qty: str = "1") -> SubmitOrder:
    return SubmitOrder(
        client_order_id=coid, venue=V, symbol="ABC", side=Side.BUY, qty=D(qty),
        order_type=OrdType.MARKET,
    )  # fmt: skip


def _fill(cl: str, exec_id: str) -> ExecReport:
    return ExecReport(
        venue=V, exec_id=exec_id, kind="fill", cl_ord_id=cl, last_qty=D(1), last_px=D(100),
        cum_qty=D(1), ord_status=OrderStatus.FILLED,
    )  # fmt: skip


def _filled(book: OrderBook, coid: str, journal: Journal | None = None) -> None:
    """Submit, approve and fill one order of 1 (journalled when `journal` is given)."""
    outcomes = [
        book.submit(_submit(coid), 1),
        book.risk_verdict(RiskVerdict(client_order_id=coid, approved=True), 2),
        book.apply_exec(_fill(coid, f"X-{coid}"), 3),
    ]
    for out in outcomes:
        assert out.applied, out.reason
        for rec in out.records if journal is not None else ():
            journal.append(rec)
    if journal is not None:
        journal.commit()  # and the evicted orders are written to the archive
    elif book.evictions is not None:
        book.evictions.sync()  # as the commit and the next snapshot would


def _book(tmp_path: Path, keep: int) -> OrderBook:
    return OrderBook(Retention(OrderArchive.in_dir(tmp_path), keep))


def test_only_the_newest_terminal_orders_stay_in_memory(tmp_path: Path) -> None:
    """With keep=3, ten filled orders leave three in the book and seven in the archive;
    a live order is never evicted, however many terminal orders follow it."""
    book = _book(tmp_path, keep=3)
    assert book.submit(_submit("live"), 1).applied
    for i in range(10):
        _filled(book, f"o{i}")
    in_memory = {o.client_order_id for o in book.orders()}
    assert in_memory == {"live", "o7", "o8", "o9"}
    retention = book.retention
    assert retention is not None
    assert len(retention.archive) == 7
    assert book.position(V, "ABC").qty == D(10)  # positions are not orders: all counted


def test_an_evicted_order_is_read_back_by_id_and_by_clordid(tmp_path: Path) -> None:
    """GetOrder by client_order_id and a lookup by (venue, ClOrdID) find an archived order,
    with its fills and status."""
    book = _book(tmp_path, keep=2)
    for i in range(6):
        _filled(book, f"o{i}")
    assert "o0" not in {o.client_order_id for o in book.orders()}
    order = book.get("o0")
    assert order is not None and order.status is OrderStatus.FILLED
    assert book.held("o0") is None  # memory only: what a sweep over many ids asks
    assert order.cum_qty == D(1) and "X-o0" in order.exec_ids
    found = book.find(V, "o1")
    assert found is not None and found.client_order_id == "o1"
    assert book.get("never") is None and book.find(V, "never") is None


def test_a_reused_client_order_id_of_an_evicted_order_is_still_refused(tmp_path: Path) -> None:
    """Duplicate detection at intake covers evicted orders: the same submit again is a
    duplicate (nothing new journalled, nothing sent), other terms are refused."""
    book = _book(tmp_path, keep=2)
    for i in range(6):
        _filled(book, f"o{i}")
    again = book.submit(_submit("o0"), 10)
    assert again.kind == "duplicate" and not again.records
    assert again.order is not None and again.order.status is OrderStatus.FILLED
    other = book.submit(_submit("o1", qty="5"), 11)
    assert other.kind == "refused" and "reused" in other.reason


def test_a_late_duplicate_execution_of_an_evicted_order_is_applied_once(tmp_path: Path) -> None:
    """A venue resending the fill of an order that left memory is a duplicate, not an
    unmatched fill (which would escalate) nor a second fill."""
    book = _book(tmp_path, keep=2)
    for i in range(6):
        _filled(book, f"o{i}")
    out = book.apply_exec(_fill("o0", "X-o0"), 20)
    assert out.kind == "duplicate"
    assert not book.unmatched_fills()
    assert book.position(V, "ABC").qty == D(6)


def test_evicted_orders_survive_snapshot_compaction_and_a_crash(tmp_path: Path) -> None:
    """The journal's snapshot compacts away the records of evicted orders: the orders whose
    archive commit was confirmed are in the archive, the others (in flight) in the
    snapshot. After a crash (the writer's transaction lost, as kill -9 would lose it) the
    reopened OMS book still finds every order and refuses their ids again."""
    journal, rec = Journal.open(tmp_path, fsync=False)
    book = open_book(journal, rec.snapshot, tmp_path, keep=3)
    evictions, retention = book.evictions, book.retention
    assert evictions is not None and retention is not None
    for i in range(10):
        _filled(book, f"o{i}", journal)
    assert evictions.sync() and len(book.orders()) == 3  # o0..o6 archived
    with held_commits(evictions):
        for i in range(10, 20):
            _filled(book, f"o{i}", journal)  # o7..o16 in flight
        journal.write_snapshot(book.to_dict())  # compaction: o0..o16's records are gone
        assert len(book.orders()) == 13
    retention.archive.close()  # kill -9: nothing committed after this point
    journal.close()

    journal, rec = Journal.open(tmp_path, fsync=False)
    assert rec.records == []  # everything is in the snapshot or the archive
    book = open_book(journal, rec.snapshot, tmp_path, keep=3)
    for i in range(20):
        order = book.get(f"o{i}")
        assert order is not None and order.status is OrderStatus.FILLED, i
    assert book.submit(_submit("o0"), 30).kind == "duplicate"
    journal.close()


def test_replay_restores_an_order_evicted_before_the_snapshot(tmp_path: Path) -> None:
    """A journal record after the snapshot for an order that was evicted before it (a late
    fill on a CANCELLED order, say) replays onto the order read back from the archive."""
    journal, rec = Journal.open(tmp_path, fsync=False)
    book = open_book(journal, rec.snapshot, tmp_path, keep=2)
    for i in range(6):
        _filled(book, f"o{i}", journal)
    journal.write_snapshot(book.to_dict())
    late = {"kind": "event", "id": "o0", "event": "accepted", "status": "FILLED", "ts_ns": 9}
    journal.append(late)
    journal.commit()
    journal.close()
    journal, rec = Journal.open(tmp_path, fsync=False)
    book = open_book(journal, rec.snapshot, tmp_path, keep=2)
    for r in rec.records:
        book.apply_record(r)  # would raise "record for unknown order" without the archive
    order = book.get("o0")
    assert order is not None and order.ts_updated_ns == 9
    journal.close()


def test_keep_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        Retention(OrderArchive.in_dir(tmp_path), 0)


def test_the_operator_orders_view_lists_archived_orders_too(tmp_path: Path) -> None:
    """`tradepulse orders` shows the newest orders first, continuing into the archive, and
    its total counts every order once (an archived order read back counts once)."""
    book = _book(tmp_path, keep=2)
    for i in range(8):
        _filled(book, f"o{i}")
        order = book.get(f"o{i}")
        assert order is not None
        order.ts_updated_ns = 1000 + i  # what its records would stamp
    assert book.get("o0", admit=True) is not None  # read back: in memory and in the archive
    views = OmsViews(book)
    reply = views.answer(wire.Orders(limit=5))
    assert reply.data is not None
    assert reply.data["total"] == 8
    assert [r["client_order_id"] for r in reply.data["orders"]] == ["o7", "o6", "o5", "o4", "o3"]
    everything = views.answer(wire.Orders(limit=50)).data
    assert everything is not None
    assert sorted(r["client_order_id"] for r in everything["orders"]) == [f"o{i}" for i in range(8)]


def test_a_read_only_lookup_does_not_churn_the_book(tmp_path: Path) -> None:
    """`get` (GetOrder, the venue link's sweep of its acked orders each pass, the views
    replaying fills) reads an archived order without holding it again, so nothing else is
    evicted (and written to the archive) for it: a pass over 15k old ids costs reads only."""
    book = _book(tmp_path, keep=2)
    for i in range(6):
        _filled(book, f"o{i}")
    held = {o.client_order_id for o in book.orders()}
    order = book.get("o0")
    assert order is not None and order.status is OrderStatus.FILLED
    assert book.held("o0") is None  # memory only: what a sweep over many ids asks
    assert {o.client_order_id for o in book.orders()} == held


def test_a_clients_order_list_pages_on_into_the_archive(tmp_path: Path) -> None:
    """ListOrders (every order, page by page) returns every order, those in memory first,
    then the archived ones (one read back, in both, twice: the client lists it once); an
    open-only list is the book's open orders."""
    book = _book(tmp_path, keep=2)
    assert book.submit(_submit("live"), 1).applied
    for i in range(8):
        _filled(book, f"o{i}")
    assert book.get("o0", admit=True) is not None  # read back: in memory and in the archive
    seen: list[str] = []
    offset: int | None = 0
    while offset is not None:
        page = reads.order_page(book, ListOrders(offset=offset, limit=3), 0, 1)
        assert isinstance(page, OrderList)
        seen += [o.client_order_id for o in page.orders]
        offset = page.next_offset
    assert sorted(seen) == sorted(["live", "o0", *(f"o{i}" for i in range(8))])
    open_only = reads.order_page(book, ListOrders(open_only=True), 0, 1)
    assert isinstance(open_only, OrderList)
    assert [o.client_order_id for o in open_only.orders] == ["live"]


def test_a_venue_order_open_under_an_archived_clordid_is_escalated(tmp_path: Path) -> None:
    """Reconciliation finds open at the venue an order ours holds FILLED in the archive (the
    planner, which sees the book's memory only, proposes an Adopt): it is not adopted but
    escalated as `terminal_mismatch`, as for a terminal order in memory; a venue view that
    agrees is a plain duplicate."""
    book = _book(tmp_path, keep=2)
    for i in range(6):
        _filled(book, f"o{i}")
    open_at_venue = VenueOrder(
        cl_ord_id="o0", symbol="ABC", side=Side.BUY, order_qty=D(1), status=OrderStatus.ACCEPTED
    )
    out = book.adopt(V, open_at_venue, 50)
    assert out.kind == "refused" and not out.records
    assert [e.kind for e in out.escalations] == ["terminal_mismatch"]
    agrees = open_at_venue.model_copy(update={"status": OrderStatus.FILLED})
    assert book.adopt(V, agrees, 51).kind == "duplicate"


def test_a_new_submit_reads_the_archive_for_its_id_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Intake asks the book (and so the archive: an SQLite read) whether the client_order_id
    is known once, not again inside `OrderBook.submit`; a reused id of an evicted order is
    still a duplicate."""
    from tests.oms.test_journal_space import _Reply
    from tests.oms.test_trading_after_close import _rig

    oms, risk, intake = _rig()
    oms.book = book = _book(tmp_path, keep=2)
    for i in range(4):
        _filled(book, f"old{i}")
    assert book.retention is not None
    archive = book.retention.archive
    reads: list[str] = []
    real_get = archive.get

    def counting_get(coid: str) -> object:
        reads.append(coid)
        return real_get(coid)

    monkeypatch.setattr(archive, "get", counting_get)
    intake.submit(_submit("new1"), _Reply())  # type: ignore[arg-type]
    assert reads == ["new1"] and len(risk.pending) == 1
    again = _Reply()
    intake.submit(_submit("old0"), again)  # type: ignore[arg-type]
    oms.run_pending()
    assert reads == ["new1", "old0"] and len(risk.pending) == 1  # not asked again
    (ack,) = again.answers
    assert ack.duplicate and ack.order.status is OrderStatus.FILLED
