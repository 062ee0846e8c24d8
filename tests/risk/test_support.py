"""Pure helpers of the risk actor: verdict cache, mass-cancel tracker, trigger labels, and the
filter for order events already contained in a rebuilt snapshot."""

from __future__ import annotations

from decimal import Decimal

import pytest

from actors.risk.support import (
    TRIGGER_LABELS,
    CancelAction,
    CancelOutcome,
    CancelTracker,
    SnapshotCoverage,
    VerdictCache,
    trigger_label,
)
from protocol.messages import OrderStatus, OrderView, OrdType, RiskCheck, RiskVerdict, Side


def check(coid: str = "c1", qty: str = "10", price: str = "100") -> RiskCheck:
    return RiskCheck(
        client_order_id=coid, venue="simA", symbol="AAPL", side=Side.BUY, qty=Decimal(qty),
        order_type=OrdType.LIMIT, price=Decimal(price),
    )  # fmt: skip


def verdict(coid: str = "c1", approved: bool = True, code: str = "ok") -> RiskVerdict:
    return RiskVerdict(client_order_id=coid, approved=approved, reason_code=code)


# --------------------------------------------------------------------------- verdict cache


def test_identical_check_gets_the_cached_verdict() -> None:
    """A re-sent check (same id, same terms) is answered with the verdict it got before."""
    cache = VerdictCache()
    cache.put(check(), verdict(approved=False, code="max_position"))
    assert cache.get(check()) == verdict(approved=False, code="max_position")


def test_same_id_with_other_terms_is_a_new_question() -> None:
    """A check under the same id but another qty or price (a replace) is not served from
    the cache; after it is answered, the new terms are the ones cached."""
    cache = VerdictCache()
    cache.put(check(qty="10"), verdict())
    assert cache.get(check(qty="20")) is None
    assert cache.get(check(price="101")) is None
    cache.put(check(qty="20"), verdict(approved=False, code="max_order_qty"))
    assert cache.get(check(qty="20")) == verdict(approved=False, code="max_order_qty")
    assert cache.get(check(qty="10")) is None


def test_unknown_id_is_a_miss() -> None:
    assert VerdictCache().get(check()) is None


def test_cache_is_bounded_and_drops_the_least_recently_used() -> None:
    """Beyond its size the cache forgets the entry used longest ago; a hit refreshes."""
    cache = VerdictCache(max_entries=3)
    for i in range(3):
        cache.put(check(f"c{i}"), verdict(f"c{i}"))
    assert cache.get(check("c0")) is not None  # c0 is now the most recent
    cache.put(check("c3"), verdict("c3"))
    assert len(cache) == 3
    assert cache.get(check("c1")) is None
    assert all(cache.get(check(c)) is not None for c in ("c0", "c2", "c3"))


def view(coid: str, status: OrderStatus, qty: str = "10", price: str = "100") -> OrderView:
    return OrderView(
        client_order_id=coid, venue="simA", symbol="AAPL", side=Side.BUY, qty=Decimal(qty),
        order_type=OrdType.LIMIT, price=Decimal(price), status=status,
    )  # fmt: skip


def test_a_verdict_the_oms_applied_leaves_the_cache() -> None:
    """An order event out of PENDING_RISK on the checked terms (or terminal) means the OMS
    has the verdict and never re-sends the check: the entry goes. While the order still
    waits (PENDING_RISK), the entry stays, so a re-sent check gets the same verdict."""
    cache = VerdictCache()
    cache.put(check("a"), verdict("a"))
    cache.put(check("b"), verdict("b"))
    cache.settled(view("a", OrderStatus.PENDING_RISK))
    assert cache.get(check("a")) == verdict("a")
    cache.settled(view("a", OrderStatus.PENDING_SUBMIT))
    cache.settled(view("b", OrderStatus.REJECTED))
    assert len(cache) == 0
    cache.settled(view("never", OrderStatus.FILLED))  # nothing cached: nothing to do


def test_a_replace_check_in_flight_outlives_the_orders_other_events() -> None:
    """A check of a replace's new terms stays while the order's events still show the old
    terms (a fill of the live order, say): the OMS may still re-send it."""
    cache = VerdictCache()
    cache.put(check("r", qty="20"), verdict("r"))
    cache.settled(view("r", OrderStatus.PARTIALLY_FILLED, qty="10"))
    assert cache.get(check("r", qty="20")) == verdict("r")
    cache.settled(view("r", OrderStatus.ACCEPTED, qty="20"))  # replaced
    assert len(cache) == 0


def test_the_default_bound_is_small() -> None:
    """The default keeps ~1k entries (what is in flight), not 100k (~200 MiB when full)."""
    cache = VerdictCache()
    for i in range(5000):
        cache.put(check(f"c{i}"), verdict(f"c{i}"))
    assert len(cache) == 1024


# --------------------------------------------------------------------------- trigger labels


@pytest.mark.parametrize(
    ("reason", "source", "label"),
    [
        ("desk says stop", "operator", "operator"),
        ("position_divergence", "operator", "operator"),
        ("position_divergence: simA AAPL venue 10 oms 0", "heartbeat", "position_divergence"),
        ("connector_outage: simB for 61.0s", "heartbeat", "connector_outage"),
        ("unmatched_fill", "oms", "unmatched_fill"),
        ("oms_restart_intensity", "supervisor", "restart_intensity"),
        ("risk_restart_intensity", "supervisor", "restart_intensity"),
        ("oms_state_corrupt", "supervisor", "state_corrupt"),
        ("state_unreadable", "load", "state_unreadable"),
        ("max_position breach at 6.00x its limit", "risk", "limit_breach"),
        ("50 risk breaches within 10s", "risk", "limit_breach"),
        ("something new", "heartbeat", "other"),
        ("", "", "other"),
    ],
)
def test_trigger_label_is_one_of_a_fixed_set(reason: str, source: str, label: str) -> None:
    """Free-text reasons map to a bounded set of metric labels."""
    assert trigger_label(reason, source) == label
    assert label in TRIGGER_LABELS


# --------------------------------------------------------------------------- cancel tracker


def test_round_sends_to_every_venue_and_completes_when_all_confirm() -> None:
    tracker = CancelTracker(["a", "b"])
    assert not tracker.complete
    assert tracker.start_round() == ["a", "b"]
    for v in ("a", "b"):
        tracker.sent(v)
    assert tracker.on_outcome("a", CancelOutcome.DONE, 0.0) is CancelAction.NONE
    assert tracker.pending == ["b"] and not tracker.complete
    assert tracker.on_outcome("b", CancelOutcome.DONE, 0.0) is CancelAction.NONE
    assert tracker.complete and tracker.pending == []


def test_refusal_is_retried_and_never_restarts_the_connector() -> None:
    """A connector that answers "venue down" is alive: the cancel is retried, not escalated."""
    tracker = CancelTracker(["a"], restart_after_timeouts=1)
    tracker.start_round()
    for i in range(5):
        tracker.sent("a")
        assert tracker.on_outcome("a", CancelOutcome.REFUSED, float(i)) is CancelAction.RETRY
    assert tracker.venues["a"].restarts == 0
    tracker.sent("a")
    assert tracker.on_outcome("a", CancelOutcome.DONE, 9.0) is CancelAction.NONE
    assert tracker.complete and tracker.venues["a"].attempts == 6


def test_timeouts_restart_the_connector_at_most_once_per_cooldown() -> None:
    """After `restart_after_timeouts` consecutive timeouts the connector is restarted; while
    the cooldown runs, further timeouts only retry."""
    tracker = CancelTracker(["a"], restart_after_timeouts=2, restart_cooldown_s=10.0)
    tracker.start_round()
    tracker.sent("a")
    assert tracker.on_outcome("a", CancelOutcome.TIMEOUT, 0.0) is CancelAction.RETRY
    tracker.sent("a")
    assert tracker.on_outcome("a", CancelOutcome.TIMEOUT, 1.0) is CancelAction.RESTART
    for t in (2.0, 3.0, 4.0):
        tracker.sent("a")
        assert tracker.on_outcome("a", CancelOutcome.TIMEOUT, t) is CancelAction.RETRY
    tracker.sent("a")
    assert tracker.on_outcome("a", CancelOutcome.TIMEOUT, 11.5) is CancelAction.RESTART
    assert tracker.venues["a"].restarts == 2


def test_an_answer_resets_the_timeout_streak() -> None:
    tracker = CancelTracker(["a"], restart_after_timeouts=2)
    tracker.start_round()
    tracker.sent("a")
    tracker.on_outcome("a", CancelOutcome.TIMEOUT, 0.0)
    tracker.sent("a")
    tracker.on_outcome("a", CancelOutcome.REFUSED, 1.0)
    tracker.sent("a")
    assert tracker.on_outcome("a", CancelOutcome.TIMEOUT, 2.0) is CancelAction.RETRY


def test_new_round_while_in_flight_resends_after_the_answer() -> None:
    """A round started while a request is in flight does not double-send at once; the answer
    to the old request triggers a fresh send (orders may have arrived in between)."""
    tracker = CancelTracker(["a", "b"])
    tracker.start_round()
    tracker.sent("a")
    tracker.sent("b")
    assert tracker.on_outcome("b", CancelOutcome.DONE, 0.0) is CancelAction.NONE
    assert tracker.start_round() == ["b"]  # a is still in flight
    tracker.sent("b")
    assert tracker.on_outcome("a", CancelOutcome.DONE, 0.1) is CancelAction.RESEND
    tracker.sent("a")
    assert tracker.on_outcome("a", CancelOutcome.DONE, 0.2) is CancelAction.NONE
    assert tracker.on_outcome("b", CancelOutcome.DONE, 0.2) is CancelAction.NONE
    assert tracker.complete


def test_timeout_during_a_new_round_still_restarts_a_silent_connector() -> None:
    """A sweep round starting while the request to a silent connector is out neither resets
    its timeout streak nor delays the restart."""
    tracker = CancelTracker(["a"], restart_after_timeouts=1)
    tracker.start_round()
    tracker.sent("a")
    assert tracker.start_round() == []  # in flight
    assert tracker.on_outcome("a", CancelOutcome.TIMEOUT, 1.0) is CancelAction.RESTART
    assert tracker.pending == ["a"]


def test_stop_ignores_late_answers() -> None:
    """After a reset, answers still in flight change nothing and ask for nothing."""
    tracker = CancelTracker(["a"])
    tracker.start_round()
    tracker.sent("a")
    tracker.stop()
    assert tracker.on_outcome("a", CancelOutcome.TIMEOUT, 0.0) is CancelAction.NONE
    assert not tracker.active and not tracker.complete and tracker.pending == []


# --------------------------------------------------------------------------- rebuild coverage


def test_events_a_page_already_holds_are_skipped() -> None:
    """An event numbered at or before the page that listed its order is in that page."""
    c = SnapshotCoverage({"open1": 10, "open2": 12}, positions_seq=15)
    assert c.classify("open1", 9) == "skip"
    assert c.classify("open1", 10) == "skip"
    assert c.classify("open2", 12) == "skip"


def test_events_between_the_page_and_the_positions_count_their_state_not_their_fill() -> None:
    """After its page, before the positions answer: the fill is in the positions already;
    the same for an order no page listed (finished before, or opened after its page)."""
    c = SnapshotCoverage({"open1": 10}, positions_seq=15)
    assert c.classify("open1", 11) == "state"
    assert c.classify("open1", 15) == "state"
    assert c.classify("done-before", 3) == "state"
    assert c.classify("new-since", 14) == "state"


def test_events_after_the_positions_count_in_full() -> None:
    c = SnapshotCoverage({"open1": 10}, positions_seq=15)
    assert c.classify("open1", 16) == "full"
    assert c.classify("new-since", 16) == "full"


def test_an_unlisted_orders_events_up_to_the_first_page_are_skipped() -> None:
    """An order no page listed, its event at or before the first page's seq: it had ended
    when the listing passed it (its fill in the positions), so the event is not applied (it
    would bring the ended order back as open); after the first page: its state, as before."""
    c = SnapshotCoverage({"open1": 10}, positions_seq=15, first_seq=8)
    assert c.classify("done-before", 3) == "skip"
    assert c.classify("done-before", 8) == "skip"
    assert c.classify("new-since", 9) == "state"
    assert c.classify("open1", 9) == "skip"  # a listed order's page decides, as before
