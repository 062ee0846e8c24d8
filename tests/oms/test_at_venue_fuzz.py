"""Fuzz of the sliced open_at_venue safety net (actors/oms/at_venue.py), with archiving.

1. every change noted: counts() must equal the full count at every beat, never a drift.
2. some changes not noted: once quiet for RECOUNT_S + a round, counts() equals the full count.
"""

from __future__ import annotations

import random
from decimal import Decimal
from pathlib import Path

import pytest

from actors.oms import at_venue
from actors.oms.at_venue import OpenAtVenue
from actors.oms.intake_state import open_at_venue
from actors.oms.order_archive import OrderArchive, Retention
from actors.oms.order_book import OrderBook
from actors.oms.orders import Outcome
from protocol.messages import OrderStatus, OrdType, RiskVerdict, Side, SubmitOrder

VENUES = ("simA", "simB", "simC")


def _ops(book: OrderBook, rng: random.Random, n_ids: list[int]) -> Outcome | None:
    coids = [o.client_order_id for o in book.held_orders()]
    r = rng.random()
    if r < 0.35 or not coids:
        n_ids[0] += 1
        coid = f"o{n_ids[0]}"
        msg = SubmitOrder(
            client_order_id=coid,
            venue=rng.choice(VENUES),
            symbol="AAPL",
            side=Side.BUY,
            qty=Decimal(10),
            order_type=OrdType.LIMIT,
            price=Decimal("95"),
        )
        return book.submit(msg, 1)
    coid = rng.choice(coids)
    o = book.held(coid)
    assert o is not None
    s = o.status
    if s is OrderStatus.PENDING_RISK:
        return book.risk_verdict(RiskVerdict(client_order_id=coid, approved=rng.random() < 0.9), 2)
    if s in (OrderStatus.PENDING_SUBMIT, OrderStatus.UNKNOWN):
        choice = rng.choice([OrderStatus.ACCEPTED, OrderStatus.REJECTED, "unknown", "resubmit"])
        if choice == "unknown":
            return book.mark_unknown(coid, "t", 3)
        if choice == "resubmit":
            return book.mark_resubmitted(coid, 3)
        return book.apply_venue_status(coid, OrderStatus(choice), 3)
    if s in (OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED):
        choice = rng.choice(["cancel_req", OrderStatus.CANCELLED, OrderStatus.EXPIRED])
        if choice == "cancel_req":
            return book.request_cancel(coid, 4)
        return book.apply_venue_status(coid, OrderStatus(choice), 4)
    if s is OrderStatus.PENDING_CANCEL:
        return book.apply_venue_status(coid, OrderStatus.CANCELLED, 5)
    return None


@pytest.mark.parametrize("seed", range(2))
def test_noted_changes_never_drift(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    archive = OrderArchive(tmp_path / "a.sqlite")
    book = OrderBook(Retention(archive, keep=20))
    tracker, n = OpenAtVenue(), [0]
    now = 0.0
    try:
        for _ in range(3 * at_venue.SLICE):  # a big book first
            out = _ops(book, rng, n)
            if out is not None and out.applied and out.order is not None:
                tracker.note(out.order)
        for beat in range(400):
            for _ in range(rng.randint(0, 60)):
                out = _ops(book, rng, n)
                if out is not None and out.applied and out.order is not None:
                    tracker.note(out.order)
            now += 0.1
            assert tracker.counts(book, now) == open_at_venue(book), beat
        assert tracker.drifts == 0
    finally:
        archive.close()


@pytest.mark.parametrize("seed", range(2))
def test_unnoted_changes_converge(tmp_path: Path, seed: int) -> None:
    rng = random.Random(100 + seed)
    archive = OrderArchive(tmp_path / "a.sqlite")
    book = OrderBook(Retention(archive, keep=20))
    tracker, n = OpenAtVenue(), [0]
    now = 0.0
    try:
        for _beat in range(300):
            for _ in range(rng.randint(0, 60)):
                out = _ops(book, rng, n)
                if out is not None and out.applied and out.order is not None and rng.random() < 0.9:
                    tracker.note(out.order)
            now += 0.1
            tracker.counts(book, now)
        rounds = len(book.held_orders()) // at_venue.SLICE + 2
        for _ in range(int(at_venue.RECOUNT_S / 0.1) + 2 * rounds + 2):
            now += 0.1
            tracker.counts(book, now)
        assert tracker.counts(book, now) == open_at_venue(book)
    finally:
        archive.close()
