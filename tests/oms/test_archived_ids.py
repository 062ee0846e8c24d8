"""A new client order id costs no SQLite lookup (actors/oms/archived_ids.py): the OMS's
archive asks a Bloom filter of its ids first, and the answers stay exactly SQLite's (a
duplicate of an archived order, a reuse of its id or of one of its ClOrdIDs, are found)."""

from __future__ import annotations

import sqlite3
import tracemalloc
import types
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from actors.oms import archived_ids
from actors.oms.archived_ids import ArchivedIds
from actors.oms.journal import Journal
from actors.oms.order_book import OrderBook
from actors.oms.retention import open_book
from protocol.messages import ExecReport, OrdType, Side, SubmitOrder
from tests.oms.test_evictions import _cancelled
from tests.oms.test_exec_quarantine import V, _Host, _live

D = Decimal


def _submit(coid: str, qty: str = "1") -> SubmitOrder:
    return SubmitOrder(
        client_order_id=coid, venue=V, symbol="ABC", side=Side.BUY, qty=D(qty),
        order_type=OrdType.LIMIT, price=D("90"),
    )  # fmt: skip


class _Oms:
    def __init__(self, path: Path) -> None:
        self.journal, rec = Journal.open(path, fsync=False)
        self.book = open_book(self.journal, rec.snapshot, path, keep=1)
        for r in rec.records:
            self.book.apply_record(r)
        self.host = _Host(path, self.book)
        assert self.book.retention is not None and self.book.evictions is not None
        self.archive = self.book.retention.archive
        self.queries: list[str] = []
        self.archive._db.set_trace_callback(self.queries.append)  # noqa: SLF001

    def step(self) -> None:
        for r in self.host.journal:
            self.journal.append(r)
        self.host.journal.clear()
        self.journal.commit()
        assert self.book.evictions is not None
        assert self.book.evictions.sync()

    def close(self) -> None:
        assert self.book.evictions is not None
        self.book.evictions.close()
        self.archive.close()
        self.journal.close()


@pytest.fixture
def oms(tmp_path: Path) -> Iterator[_Oms]:
    o = _Oms(tmp_path)
    try:
        yield o
    finally:
        o.close()


def _ready(book: OrderBook) -> ArchivedIds:
    assert book.retention is not None
    ids = book.retention.archive.ids
    assert ids is not None and ids.wait(10.0)
    return ids


def test_a_new_client_order_id_asks_sqlite_nothing(oms: _Oms) -> None:
    for coid in ("o0", "o1", "o2"):
        _cancelled(oms.host, coid)
        oms.step()  # o0, o1 archived
    _ready(oms.book)
    oms.queries.clear()
    out = oms.book.submit(_submit("fresh-1"), 10)
    assert out.applied and oms.queries == []


def test_archived_ids_are_still_found_exactly(oms: _Oms) -> None:
    """o0 archived (with its cancel request's ClOrdID): the same submit again is a
    duplicate, other terms are refused, each of its ClOrdIDs is found; a new one is not."""
    cl = _live(oms.book, "o0")
    asked = oms.book.request_cancel("o0", 5)  # a cancel request: a second ClOrdID
    assert asked.applied and asked.order is not None
    req = asked.order.cl_ord_ids[-1]
    rep = ExecReport(venue=V, exec_id="X-o0", kind="cancelled", cl_ord_id=req, orig_cl_ord_id=cl)
    assert oms.book.apply_exec(rep, 6).applied
    order = oms.book.get("o0")
    assert order is not None and order.is_terminal and len(order.cl_ord_ids) == 2
    _cancelled(oms.host, "o1")
    _cancelled(oms.host, "o2")
    oms.step()
    assert oms.book.held("o0") is None  # in the archive only
    ids = _ready(oms.book)
    assert ids.maybe_id("o0") and ids.maybe_cl(V, "o0")
    again = order.view()
    same = SubmitOrder(
        client_order_id="o0", venue=V, symbol=again.symbol, side=again.side, qty=again.qty,
        order_type=again.order_type, price=again.price, tif=again.tif,
    )  # fmt: skip
    assert oms.book.submit(same, 20).kind == "duplicate"
    assert oms.book.submit(_submit("o0", "7"), 21).kind == "refused"
    for cl in order.cl_ord_ids:
        assert oms.book.find(V, cl) is not None, cl
    assert oms.book.find(V, "never-used") is None


def test_a_restarted_oms_rebuilds_the_filter_from_the_archive(tmp_path: Path) -> None:
    """Ids archived by an earlier incarnation: found before the rebuild is done (every
    answer "maybe" then: SQLite asked) and after it; an id handed to the writer while the
    rebuild ran is kept."""
    first = _Oms(tmp_path)
    for i in range(5):
        _cancelled(first.host, f"o{i}")
        first.step()
    first.journal.write_snapshot(first.book.to_dict())
    first.close()
    ids = ArchivedIds()
    assert ids.maybe_id("anything")  # not rebuilt yet: "maybe"
    ids.add("late", V, ("late", "late.c1"))  # handed over before the rebuild is adopted
    ids.rebuild(tmp_path / "orders.sqlite")
    assert ids.wait(10.0)
    assert all(ids.maybe_id(f"o{i}") and ids.maybe_cl(V, f"o{i}") for i in range(4))
    assert ids.maybe_id("late") and ids.maybe_cl(V, "late.c1")
    assert not ids.maybe_id("fresh") or not ids.maybe_cl(V, "fresh")  # (2 misses: ~0)
    again = _Oms(tmp_path)
    try:
        for i in range(4):
            assert again.book.get(f"o{i}") is not None
    finally:
        again.close()


def test_an_unreadable_archive_leaves_every_answer_to_sqlite(tmp_path: Path) -> None:
    ids = ArchivedIds()
    ids.rebuild(tmp_path / "missing" / "orders.sqlite")
    assert not ids.wait(10.0)
    assert ids.maybe_id("x") and ids.maybe_cl(V, "x")


def test_a_failed_rebuild_keeps_nothing_aside(tmp_path: Path) -> None:
    """Review finding 1: a rebuild that failed left every key handed over afterwards in
    `_early` for the rest of the process (70 MiB after 200,000 orders). Now it is given up
    (logged once), `add` keeps nothing and every answer is "maybe"."""
    ids = ArchivedIds()
    ids.rebuild(tmp_path / "missing" / "orders.sqlite")  # the read fails
    with capture_logs() as logs:
        assert not ids.wait(10.0)
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for i in range(50_000):
            coid = f"client-order-{i:012d}"
            ids.add(coid, V, (f"{coid}.0", f"{coid}.1"))
        grown = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
    assert grown < 1 << 20, f"grew by {grown / 2**20:.1f} MiB"
    assert [e["event"] for e in logs] == ["archived_ids_rebuild_failed"]
    assert ids.maybe_id("client-order-000000000001") and ids.maybe_id("fresh")


def test_keys_kept_aside_during_a_rebuild_are_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    """A rebuild that never ends (a hung read): past `MAX_EARLY` keys it is given up."""
    monkeypatch.setattr(archived_ids, "MAX_EARLY", 30)
    ids = ArchivedIds()  # (no rebuild started: the same as one still running)
    with capture_logs() as logs:
        for i in range(100):
            ids.add(f"o{i}", V, (f"o{i}",))
    assert ids._early is None  # noqa: SLF001
    assert [e["event"] for e in logs] == ["archived_ids_rebuild_failed"]
    assert ids.maybe_id("o1") and ids.maybe_id("fresh") and not ids.ready


def test_a_failing_rebuild_in_the_oms_keeps_no_handed_over_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same through the OMS's archive: its rebuild's read fails once (a transient
    SQLITE_BUSY at start); the orders archived afterwards are not kept, ids still found."""

    def failing(*a: object, **k: object) -> sqlite3.Connection:
        raise sqlite3.OperationalError("database is locked")

    fake = types.SimpleNamespace(connect=failing, Error=sqlite3.Error)
    monkeypatch.setattr(archived_ids, "sqlite3", fake)  # in archived_ids only
    oms = _Oms(tmp_path)
    try:
        ids = oms.archive.ids
        assert ids is not None and not ids.wait(10.0)
        for i in range(300):
            _cancelled(oms.host, f"o{i}")
            oms.step()
        assert ids._early is None  # noqa: SLF001
        assert oms.book.held("o0") is None and oms.book.get("o0") is not None
        assert oms.book.submit(_submit("o0", "7"), 21).kind == "refused"
    finally:
        oms.close()
