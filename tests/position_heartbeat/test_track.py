"""Pure heartbeat logic: position differences, N consecutive divergent beats, missed beats
and the outage tolerance."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from actors.position_heartbeat.track import DivergenceTracker, OutageTracker, position_diff

D = Decimal


# --------------------------------------------------------------------------- diff


def test_diff_is_venue_minus_oms_over_both_sides_symbols() -> None:
    """A symbol only one side holds counts as zero on the other; equal symbols are omitted."""
    venue = {"AAPL": D(10), "MSFT": D(-5), "IBM": D(3)}
    oms = {"AAPL": D(10), "MSFT": D(-2), "TSLA": D(4)}
    assert position_diff(venue, oms) == {"IBM": D(3), "MSFT": D(-3), "TSLA": D(-4)}


@given(
    st.dictionaries(st.sampled_from("ABCD"), st.integers(-100, 100).map(D)),
    st.dictionaries(st.sampled_from("ABCD"), st.integers(-100, 100).map(D)),
)
def test_diff_is_empty_exactly_when_the_views_agree(
    venue: dict[str, Decimal], oms: dict[str, Decimal]
) -> None:
    """No difference iff every symbol's quantity is equal (missing = 0)."""
    agree = all(venue.get(s, D(0)) == oms.get(s, D(0)) for s in set(venue) | set(oms))
    assert (position_diff(venue, oms) == {}) == agree
    assert all(d != 0 for d in position_diff(venue, oms).values())


# --------------------------------------------------------------------------- divergence


def test_engages_on_the_nth_consecutive_divergent_beat_only() -> None:
    """N divergent beats in a row engage once; further divergent beats do not repeat it."""
    t = DivergenceTracker(D(0), beats=3)
    steps = [t.observe("simA", {"AAPL": D(5)}) for _ in range(5)]
    assert [s.consecutive for s in steps] == [1, 2, 3, 4, 5]
    assert [s.engage for s in steps] == [False, False, True, False, False]
    assert all(s.divergent for s in steps)


def test_a_matching_beat_restarts_the_count() -> None:
    """A transient difference (a fill on its way to the OMS) that clears is not escalated."""
    t = DivergenceTracker(D(0), beats=3)
    t.observe("simA", {"AAPL": D(5)})
    t.observe("simA", {"AAPL": D(5)})
    cleared = t.observe("simA", {})
    assert not cleared.divergent and cleared.consecutive == 0
    assert [t.observe("simA", {"AAPL": D(1)}).engage for _ in range(3)] == [False, False, True]


def test_tolerance_is_inclusive_per_symbol() -> None:
    """A difference at the tolerance is fine, beyond it counts; only excess symbols listed."""
    t = DivergenceTracker(D("0.5"), beats=1)
    at = t.observe("simA", {"AAPL": D("0.5"), "MSFT": D("-0.5")})
    assert not at.divergent and not at.engage
    over = t.observe("simA", {"AAPL": D("0.5"), "MSFT": D("-0.6")})
    assert over.excess == {"MSFT": D("-0.6")} and over.engage


def test_venues_are_tracked_separately() -> None:
    t = DivergenceTracker(D(0), beats=2)
    t.observe("simA", {"AAPL": D(1)})
    assert not t.observe("simB", {"AAPL": D(1)}).engage
    assert t.observe("simA", {"AAPL": D(1)}).engage
    assert t.consecutive("simA") == 2 and t.consecutive("simB") == 1


# --------------------------------------------------------------------------- outage


def tracker(engage: bool = True) -> OutageTracker:
    return OutageTracker(
        ["simA", "simB"], missing_intervals=2, tolerance_s=10.0, engage_on_missing=engage, now_s=0.0
    )


def test_short_gap_alerts_but_does_not_engage() -> None:
    """missing_intervals missed beats raise the alert once; under the outage tolerance the
    kill-switch is not engaged (a normal reconnect)."""
    t = tracker()
    steps = [t.missed("simA", float(s)) for s in (1, 2, 3)]
    assert [s.missed for s in steps] == [1, 2, 3]
    assert [s.alert for s in steps] == [False, True, False]
    assert not any(s.engage for s in steps)
    assert t.ok("simA", 4.0) == 3
    assert t.missed_count("simA") == 0


def test_outage_beyond_the_tolerance_engages_once() -> None:
    """Without a good beat for longer than the tolerance (counted from the last good beat),
    engage once per outage; a good beat ends the episode."""
    t = tracker()
    t.ok("simA", 5.0)
    assert not t.missed("simA", 14.0).engage  # 9 s
    step = t.missed("simA", 15.0)  # 10 s
    assert step.engage and step.outage_s == 10.0
    assert not t.missed("simA", 16.0).engage
    t.ok("simA", 17.0)
    assert not t.missed("simA", 26.0).engage
    assert t.missed("simA", 27.5).engage


def test_outage_counts_from_tracking_start_for_a_venue_never_seen() -> None:
    t = tracker()
    assert t.missed("simB", 10.0).engage
    assert t.age_s("simA", 3.0) == 3.0


def test_engage_on_missing_off_only_alerts() -> None:
    t = tracker(engage=False)
    steps = [t.missed("simA", float(s)) for s in range(1, 30)]
    assert not any(s.engage for s in steps)
    assert sum(s.alert for s in steps) == 1


def test_a_moving_difference_is_executions_in_flight_not_divergence() -> None:
    """Under continuous trading the venue/OMS difference moves from beat to beat (flipping
    sign, or staying on one side when the flow is one-sided): no engage; a lost fill leaves
    a difference that stays put and engages after N beats."""
    t = DivergenceTracker(D(0), beats=3)
    steps = [t.observe("v", {"AAPL": D(d)}) for d in ("129", "-66", "250", "-3", "40")]
    one_sided = [t.observe("u", {"MSFT": D(d)}) for d in ("85", "41", "120", "17", "60")]
    assert not any(s.engage for s in steps + one_sided)
    lost = [t.observe("w", {"AAPL": D(d)}) for d in ("10", "10", "10")]
    assert [s.engage for s in lost] == [False, False, True]


def test_transient_differences_alternating_between_symbols_never_add_up() -> None:
    """Found by the chaos soak: under load, fills in flight showed as AAPL -10, AAPL -10,
    MSFT 200, AAPL -1, MSFT 50 on five beats in a row; no symbol's difference stayed put,
    yet the venue's count reached 5 and engaged the kill-switch. Each symbol has its own
    run; a difference that stays put on one symbol still engages while others flicker."""
    t = DivergenceTracker(D(0), beats=5)
    beats = [{"AAPL": D(-10)}, {"AAPL": D(-10)}, {"MSFT": D(200)}, {"AAPL": D(-1)}, {"MSFT": D(50)}]
    steps = [t.observe("simA", diff) for diff in beats]
    assert [s.consecutive for s in steps] == [1, 2, 1, 1, 1]
    assert not any(s.engage for s in steps)
    lost = [t.observe("simB", {"AAPL": D(7), "MSFT": D(m)}) for m in ("3", "-2", "9", "4", "1")]
    assert [s.consecutive for s in lost] == [1, 2, 3, 4, 5]
    assert [s.engage for s in lost] == [False, False, False, False, True]


# --------------------------------------------------------------------------- reloads mid-run


def test_lowering_divergence_beats_below_a_running_count_engages_at_the_next_beat() -> None:
    """A reload that lowers `divergence_beats` below the count of a divergence in progress
    engages at the next divergent beat (not never, as an `==` test would), and only once."""
    t = DivergenceTracker(D("0.5"), beats=5)
    assert not any(t.observe("simA", {"AAPL": D(100)}).engage for _ in range(3))
    t.beats = 2  # what HeartbeatActor.on_config does
    steps = [t.observe("simA", {"AAPL": D(100)}) for _ in range(10)]
    assert [s.engage for s in steps[:2]] == [True, False]
    assert sum(s.engage for s in steps) == 1


def test_raising_divergence_beats_after_it_engaged_does_not_engage_the_same_run_again() -> None:
    t = DivergenceTracker(D("0.5"), beats=2)
    assert [t.observe("simA", {"AAPL": D(1)}).engage for _ in range(3)] == [False, True, False]
    t.beats = 5
    assert not any(t.observe("simA", {"AAPL": D(1)}).engage for _ in range(10))
    t.observe("simA", {})  # the episode ends; a new run engages at the new threshold
    assert [t.observe("simA", {"AAPL": D(1)}).engage for _ in range(5)][-1]


def test_lowering_missing_intervals_during_an_outage_alerts_at_the_next_miss() -> None:
    t = OutageTracker(
        ["simA"], missing_intervals=5, tolerance_s=1e9, engage_on_missing=True, now_s=0
    )
    assert not any(t.missed("simA", float(i)).alert for i in range(3))
    t.missing_intervals = 2
    alerts = [t.missed("simA", 10.0 + i).alert for i in range(10)]
    assert alerts[0] and sum(alerts) == 1
    t.ok("simA", 30.0)  # a good beat ends the episode: the next outage alerts again
    assert [t.missed("simA", 31.0 + i).alert for i in range(3)] == [False, True, False]
