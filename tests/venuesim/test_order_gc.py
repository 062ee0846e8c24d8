"""The venue's orders and the cyclic collector: a resting order adds no object the
collector tracks (each added five, a list of ClOrdIDs, one of fills, one of exec ids, a
tuple in it and the order itself: a full collection of the venue sim at 54,000 resting
orders took 0.5 s under load), so its cost per order does not grow with its open orders."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable
from decimal import Decimal

import pytest

from actors.runtime.gcpause import collections_paused
from actors.venuesim import ExecEvent
from actors.venuesim.ledger import Ledger
from tests.venuesim.support import NO_MM, Sim

RESTING = 10_000


@pytest.fixture
def own(make_sim: Callable[..., Sim]) -> Sim:
    """A venue where only the client's own orders trade (no market maker)."""
    return make_sim(**NO_MM)


def _tracked() -> int:
    gc.collect()  # the young tuples the collector untracks at their first pass
    return len(gc.get_objects())


def _rest(sim: Sim, i: int) -> None:
    """A resting sell; every third one partly filled by the client's own buy and then
    moved away (replaced: a second ClOrdID, a fill, three exec ids), so the next one's
    buy meets only the next one."""
    if i % 3:
        assert sim.order(f"s{i}", "SELL", 10, f"{105 + i % 50}.00")[0].ord_status == "0"
        return
    assert sim.order(f"s{i}", "SELL", 10, "300.00", symbol="MSFT")[0].ord_status == "0"
    events = sim.order(f"b{i}", "BUY", 4, "300.00", symbol="MSFT", tif="IOC")
    assert (events[1].cl_ord_id, events[1].exec_type, events[1].last_qty) == (f"s{i}", "F", 4)
    moved = sim.replace(f"s{i}r", f"s{i}", 10, f"{400 + i % 50}.00")[0]
    assert moved.exec_type == "5" and moved.leaves_qty == 6


def test_resting_orders_add_no_object_the_collector_tracks(own: Sim) -> None:
    """10,000 resting orders (a third of them partly filled and replaced) add no tracked
    object: not the order, nor its ClOrdIDs, fills or exec ids (50,000 before)."""
    _rest(own, -1)  # the book's levels, the ledger's dicts, caches: warm
    before = _tracked()
    with collections_paused():  # the build itself: fast, the count is taken after
        for i in range(RESTING):
            _rest(own, i)
    grown = _tracked() - before
    assert grown < 200, f"{grown} more tracked objects for {RESTING:,} resting orders"
    assert own.venue.open_count == RESTING + 1
    replaced = own.venue.status("s0r")
    assert replaced is not None and replaced.cl_ord_ids == ("s0", "s0r")
    assert len(replaced.fills) == 1 and replaced.leaves_qty == 6
    held = own.venue._ledger.by_cl["s0r"]
    for value in (held, held.chain, held.fills, held.execs, own.venue._ledger.open):
        assert not gc.is_tracked(value), value


def test_matching_against_untracked_orders_is_unchanged(own: Sim) -> None:
    """After a full collection (the untracked orders are still there, none freed early) a
    buy sweeps the resting sells in price-time order at their prices."""
    with collections_paused():
        for i in range(4):
            _rest(own, i)
    gc.collect()
    events = own.order("sweep", "BUY", 30, "402.00", symbol="MSFT", tif="IOC")
    fills = [(e.cl_ord_id, e.last_qty, str(e.last_px)) for e in events if e.exec_type == "F"]
    assert fills == [("s0r", 6, "400.00"), ("sweep", 6, "400.00")]
    fills = [
        (e.cl_ord_id, e.last_qty, str(e.last_px))
        for e in own.order("sweep2", "BUY", 25, "106.00", tif="IOC")
        if e.exec_type == "F"
    ]
    assert fills == [("s1", 10, "106.00"), ("sweep2", 10, "106.00")]


def test_an_order_that_ends_and_leaves_memory_is_freed() -> None:
    """3,000 orders that rest, fill partly, get cancelled and leave memory (the ledger
    keeps 50 ended ones): with the cyclic collector off, the memory they took is given
    back (reference counting alone frees them: an untracked order in a reference cycle
    would never be freed). A leak of an order and its values is ~1 KiB each: 3 MiB here."""
    ledger = Ledger({"AAPL": Decimal(100)}, None, keep_terminal=50)
    ledger.book_id = "bk"

    def run(first: int, n: int) -> None:
        for i in range(first, first + n):
            oid, x = i + 1, 3 * i
            acc = {
                "t": "acc", "oid": oid, "cl": f"c{i}", "sym": "AAPL", "side": "BUY",
                "typ": "LIMIT", "tif": "DAY", "qty": "10", "px": "99.5", "prio": oid,
                "x": x + 1, "ts": i,
            }  # fmt: skip
            ledger.apply(acc)
            ledger.apply(
                {"t": "fill", "oid": oid, "q": "4", "px": "99.5", "lvl": None, "x": x + 2, "ts": i}
            )
            ledger.apply(
                {"t": "end", "oid": oid, "st": "4", "cl": f"k{i}", "text": "", "x": x + 3, "ts": i}
            )

    with collections_paused():
        run(0, 500)  # the ledger at its 50 ended orders, the retired-id ring made
        tracemalloc.start()
        try:
            held = tracemalloc.get_traced_memory()[0]
            run(500, 3000)
            grown = tracemalloc.get_traced_memory()[0] - held
        finally:
            tracemalloc.stop()
    assert grown < 256 * 1024, f"{grown} bytes kept by 3,000 ended orders"
    assert len(ledger.orders) == 50 and not ledger.open
    assert ledger.known_cl("c17") and ledger.known_cl("k17")  # gone, still a duplicate


def test_an_execution_report_is_a_frozen_untracked_value(own: Sim) -> None:
    """An execution report (a msgspec struct since issue 16) is what the frozen dataclass
    was: equal and hashed by its fields, shown with them, not changeable; and the
    collector does not track it (its values refer to nothing)."""
    report = own.order("c1", "BUY", 10, "99.00")[0]
    assert isinstance(report, ExecEvent)
    twin = ExecEvent(**{f: getattr(report, f) for f in ExecEvent.__struct_fields__})
    assert twin == report and hash(twin) == hash(report) and twin is not report
    assert twin != ExecEvent(**{**{f: getattr(report, f) for f in ExecEvent.__struct_fields__},
                                "text": "other"})  # fmt: skip
    assert repr(report).startswith("ExecEvent(exec_id='bk-E") and "cl_ord_id='c1'" in repr(report)
    with pytest.raises(AttributeError):
        report.text = "changed"  # type: ignore[misc]
    assert not gc.is_tracked(report)
