"""Pure supervision logic: backoff delays, restart intensity, child specs, the demo's wait.
No processes."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.runtime.backoff import backoff_delay
from actors.supervisor.demo import enough_finished
from actors.supervisor.restart_policy import (
    ChildSpec,
    RestartTracker,
    StartQueue,
    child_specs,
    start_plan,
)
from protocol.config import load_config
from protocol.messages import OrderStatus

DEMO = Path(__file__).resolve().parents[2] / "deploy" / "config" / "demo.toml"
MID = lambda: 0.5  # noqa: E731 - a rand() stub that gives zero jitter
LOW = lambda: 0.0  # noqa: E731 - the most negative jitter
HIGH = lambda: 0.999999  # noqa: E731 - the most positive jitter (random() < 1)


def _delay(attempt: int, rand: object = MID, **kw: float) -> float:
    params = {"initial_s": 0.01, "factor": 2.0, "max_s": 1.0, "jitter": 0.2} | kw
    return backoff_delay(attempt, rand=rand, **params)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- backoff_delay


def test_backoff_grows_exponentially_from_initial() -> None:
    """Without jitter, the n-th retry waits initial * factor**(n-1)."""
    assert [_delay(n) for n in range(1, 6)] == pytest.approx([0.01, 0.02, 0.04, 0.08, 0.16])


def test_backoff_is_capped_at_max() -> None:
    """Past the cap every retry waits max_s, even for huge attempt numbers."""
    assert _delay(7) == pytest.approx(0.64)
    assert _delay(8) == 1.0 and _delay(50) == 1.0 and _delay(10_000) == 1.0


def test_jitter_stays_within_its_fraction() -> None:
    """jitter=0.2 spreads a delay over [0.8, 1.2] x the base."""
    assert _delay(3, LOW) == pytest.approx(0.04 * 0.8)
    assert _delay(3, HIGH) == pytest.approx(0.04 * 1.2, rel=1e-5)


def test_jitter_never_pushes_past_the_cap() -> None:
    assert _delay(30, HIGH) == 1.0
    assert _delay(30, LOW) == pytest.approx(0.8)


def test_long_crash_loop_does_not_overflow() -> None:
    """A connector retried at the cap for hours reaches attempt numbers where factor**n is
    beyond float range: the delay stays max_s instead of raising OverflowError."""
    assert _delay(1025) == 1.0 and _delay(10**6, factor=10.0) == 1.0
    assert _delay(10**6, initial_s=0.0) == 0.0


def test_attempt_zero_or_negative_waits_nothing() -> None:
    assert _delay(0) == 0.0 and _delay(-3) == 0.0


def test_zero_initial_restarts_at_once() -> None:
    assert _delay(1, initial_s=0.0) == 0.0 and _delay(9, initial_s=0.0) == 0.0


def test_factor_one_is_constant_backoff() -> None:
    assert {_delay(n, factor=1.0) for n in range(1, 10)} == {0.01}


def test_default_rand_spreads_delays() -> None:
    """With the real random source, repeated calls differ but stay within the bounds."""
    delays = [
        backoff_delay(4, initial_s=0.01, factor=2.0, max_s=1.0, jitter=0.5) for _ in range(200)
    ]
    assert len(set(delays)) > 1
    assert all(0.04 <= d <= 0.12 for d in delays)


@settings(max_examples=500, deadline=None)
@given(
    attempt=st.integers(1, 100_000),
    initial_s=st.floats(0.0, 10.0),
    factor=st.floats(1.0, 10.0),
    max_extra_s=st.floats(0.0, 100.0),
    jitter=st.floats(0.0, 1.0),
    r=st.floats(0.0, 1.0, exclude_max=True),
)
def test_backoff_bounds_hold_for_any_parameters(
    attempt: int, initial_s: float, factor: float, max_extra_s: float, jitter: float, r: float
) -> None:
    """0 <= delay <= max_s, and delay is within +/- jitter of min(max_s, initial*factor**(n-1))."""
    max_s = initial_s + max_extra_s
    d = backoff_delay(
        attempt, initial_s=initial_s, factor=factor, max_s=max_s, jitter=jitter, rand=lambda: r
    )
    try:
        base = min(max_s, initial_s * factor ** (attempt - 1))
    except OverflowError:
        base = max_s if initial_s > 0 else 0.0
    assert 0.0 <= d <= max_s
    assert base * (1 - jitter) - 1e-9 <= d <= base * (1 + jitter) + 1e-9


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 60), st.floats(0.0, 1.0, exclude_max=True), st.floats(0.0, 1.0, exclude_max=True)
)
def test_backoff_is_monotonic_without_jitter(attempt: int, _r1: float, _r2: float) -> None:
    assert _delay(attempt, jitter=0.0) <= _delay(attempt + 1, jitter=0.0)


# --------------------------------------------------------------------------- RestartTracker


def test_tracker_counts_consecutive_crashes_as_attempts() -> None:
    """Crashes that each ran briefly give attempts 1, 2, 3... for the backoff."""
    t = RestartTracker(max_restarts=10, window_s=60.0, reset_after_s=30.0)
    assert [t.record_exit(now=float(i), ran_for_s=0.5) for i in range(4)] == [1, 2, 3, 4]
    assert t.total == 4 and t.consecutive == 4


def test_tracker_resets_after_a_stable_run() -> None:
    """An incarnation that ran for reset_after_s or longer starts the backoff over."""
    t = RestartTracker(max_restarts=10, window_s=60.0, reset_after_s=30.0)
    for i in range(3):
        t.record_exit(now=float(i), ran_for_s=1.0)
    assert t.record_exit(now=100.0, ran_for_s=30.0) == 1
    assert t.record_exit(now=101.0, ran_for_s=0.1) == 2
    assert t.total == 5  # the total never resets


def test_tracker_just_under_reset_period_keeps_counting() -> None:
    t = RestartTracker(max_restarts=10, window_s=60.0, reset_after_s=30.0)
    t.record_exit(now=0.0, ran_for_s=0.0)
    assert t.record_exit(now=1.0, ran_for_s=29.999) == 2


def test_tracker_over_budget_after_max_restarts_in_window() -> None:
    """max_restarts restarts inside the window are allowed; one more is over budget."""
    t = RestartTracker(max_restarts=3, window_s=10.0, reset_after_s=30.0)
    for now in (0.0, 1.0, 2.0):
        t.record_exit(now=now, ran_for_s=0.0)
        assert not t.over_budget()
    t.record_exit(now=3.0, ran_for_s=0.0)
    assert t.over_budget()


def test_tracker_window_forgets_old_restarts() -> None:
    """Restarts older than window_s no longer count against the budget."""
    t = RestartTracker(max_restarts=3, window_s=10.0, reset_after_s=30.0)
    for now in (0.0, 1.0, 2.0, 3.0):
        t.record_exit(now=now, ran_for_s=0.0)
    assert t.over_budget()
    t.record_exit(now=12.5, ran_for_s=0.0)  # 0.0, 1.0 and 2.0 fall out of [2.5, 12.5]
    assert not t.over_budget()


def test_tracker_slow_crash_rate_never_goes_over_budget() -> None:
    """One crash every window/budget seconds, forever, stays within the budget."""
    t = RestartTracker(max_restarts=5, window_s=10.0, reset_after_s=1000.0)
    for i in range(100):
        t.record_exit(now=i * 2.5, ran_for_s=2.0)
        assert not t.over_budget()


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(0.0, 5.0), min_size=1, max_size=60), st.integers(1, 10), st.floats(0.5, 20.0)
)
def test_tracker_budget_matches_a_sliding_window_count(
    gaps: list[float], max_restarts: int, window_s: float
) -> None:
    """over_budget() is exactly: more than max_restarts exits within the last window_s."""
    t = RestartTracker(max_restarts=max_restarts, window_s=window_s, reset_after_s=1e9)
    times: list[float] = []
    now = 0.0
    for gap in gaps:
        now += gap
        times.append(now)
        t.record_exit(now=now, ran_for_s=0.0)
        in_window = [x for x in times if x >= now - window_s]
        assert t.over_budget() == (len(in_window) > max_restarts)


# --------------------------------------------------------------------------- child specs


def test_child_specs_start_order_and_criticality() -> None:
    """Simulated venues first (the outside world), then risk, oms, one connector per venue,
    heartbeat last; only risk and oms stop the system when over budget."""
    specs = child_specs(load_config(DEMO))
    assert [s.id for s in specs] == [
        "venuesim.simA", "venuesim.simB", "exchangesim.binance-local", "risk", "oms",
        "connector.simA", "connector.simB", "connector.binance-local", "heartbeat",
    ]  # fmt: skip
    assert {s.id for s in specs if s.critical} == {"risk", "oms"}
    by_id = {s.id: s for s in specs}
    assert by_id["connector.simA"].venue == "simA" and by_id["connector.simA"].kind == "connector"


def test_start_plan_spawns_simulators_at_once_and_each_connector_after_its_own() -> None:
    """The simulators start together with the core; risk then the OMS are one chain (one
    at a time, each after the one before is READY), each venue's simulator and connector
    one chain beside it: a connector does not wait for the OMS (its logon overlaps the OMS's
    journal replay); the heartbeat starts once every chain is through."""
    at_once, queue = start_plan(child_specs(load_config(DEMO)))
    assert at_once == ["venuesim.simA", "venuesim.simB", "exchangesim.binance-local"]
    assert queue.stages == [
        [["risk", "oms"], ["venuesim.simA", "connector.simA"],
         ["venuesim.simB", "connector.simB"],
         ["exchangesim.binance-local", "connector.binance-local"]],
        [["heartbeat"]],
    ]  # fmt: skip


def test_the_start_queue_runs_its_chains_side_by_side_and_its_stages_in_order() -> None:
    """Each chain moves on when its head is through; a child that is not a head does not
    move anything; the next stage comes once every chain of this one is through."""
    q = StartQueue([[["risk", "oms"], ["sim", "conn"]], [["heartbeat"]]])
    assert q.heads() == ["risk", "sim"]
    assert not q.leave("oms")  # not a head yet
    assert q.leave("sim") and q.heads() == ["risk", "conn"]
    assert q.leave("conn") and q.heads() == ["risk"]
    assert q.leave("risk") and q.heads() == ["oms"]
    assert q.leave("oms") and q.heads() == ["heartbeat"]
    assert q.leave("heartbeat") and q.heads() == [] and not q.leave("heartbeat")


def test_child_specs_take_timeouts_from_config(short_tmp: Path) -> None:
    path = short_tmp / "c.toml"
    path.write_text(
        "[supervisor]\nstart_timeout_s = 3\nshutdown_timeout_s = 1.5\n"
        '[[venues]]\nname = "live"\nhost = "10.0.0.1"\nport = 9876\n'
    )
    specs = child_specs(load_config(path))
    assert [s.id for s in specs] == ["risk", "oms", "connector.live", "heartbeat"]  # no sim
    at_once, queue = start_plan(specs)
    assert (at_once, queue.stages) == ([], [[["risk", "oms"], ["connector.live"]], [["heartbeat"]]])
    assert all(isinstance(s, ChildSpec) for s in specs)
    assert {(s.start_timeout_s, s.shutdown_timeout_s) for s in specs} == {(3.0, 1.5)}
    assert all(s.restart == "permanent" for s in specs)


def test_a_ccxt_venue_with_a_sim_table_gets_a_simulated_exchange(short_tmp: Path) -> None:
    """kind "ccxt" + [venues.sim]: `exchangesim.<venue>` (kind exchangesim), spawned at once
    like a FIX venue's simulator, its connector queued behind it; a ccxt venue without a
    sim table gets none."""
    path = short_tmp / "c.toml"
    ccxt = '[venues.ccxt]\napi_key_env = "K"\nsecret_env = "S"\nsymbols = ["BTC/USDT"]\n'
    path.write_text(
        '[[venues]]\nname = "fixsim"\n[venues.sim]\n'
        f'[[venues]]\nname = "binance-local"\nkind = "ccxt"\n{ccxt}'
        '[venues.sim]\nreference_prices = {"BTC/USDT" = "50000"}\n'
        f'[[venues]]\nname = "binance"\nkind = "ccxt"\n{ccxt}'
    )
    specs = child_specs(load_config(path))
    assert [(s.id, s.kind, s.venue) for s in specs[:2]] == [
        ("venuesim.fixsim", "venuesim", "fixsim"),
        ("exchangesim.binance-local", "exchangesim", "binance-local"),
    ]
    assert not any(s.id.endswith(".binance") and s.kind != "connector" for s in specs)
    at_once, queue = start_plan(specs)
    assert at_once == ["venuesim.fixsim", "exchangesim.binance-local"]
    assert queue.stages == [
        [["risk", "oms"], ["venuesim.fixsim", "connector.fixsim"],
         ["exchangesim.binance-local", "connector.binance-local"], ["connector.binance"]],
        [["heartbeat"]],
    ]  # fmt: skip


# --------------------------------------------------------------------------- the demo's wait


def test_the_demo_stops_waiting_once_two_orders_are_finished() -> None:
    """`make run`'s demo waits for its market order to fill and its far limit order to be
    cancelled, not for its whole deadline: the order statuses it polls are compared with the
    terminal ones (it used to compare whole printed lines, so it always waited 20 s)."""
    S = OrderStatus
    assert not enough_finished([])
    assert not enough_finished([S.FILLED, S.ACCEPTED, S.ACCEPTED, S.PENDING_CANCEL])
    assert enough_finished([S.FILLED, S.ACCEPTED, S.ACCEPTED, S.CANCELLED])
    assert enough_finished([S.REJECTED, S.EXPIRED])
    assert not enough_finished([S.PARTIALLY_FILLED, S.UNKNOWN, S.FILLED])


# --------------------------------------------------------------------------- host groups


def test_each_host_group_runs_only_its_venues_and_the_link(tmp_path: Path) -> None:
    """The core runs risk, the OMS, the heartbeat and its own venues; an edge only the sims
    and connectors of the venues placed on it; both run the link once a venue is on an edge,
    started before the connectors (an edge's reach the OMS through it)."""
    text = (
        '[link]\nbind = "tcp://*:7100"\nconnect = "tcp://core:7100"\nkeys_dir = "k"\n'
        '[[venues]]\nname = "simA"\nhost_group = "edge-a"\n[venues.sim]\n'
        '[[venues]]\nname = "simB"\n[venues.sim]\n'
        '[[venues]]\nname = "simC"\nhost_group = "edge-b"\n'
    )
    (tmp_path / "c.toml").write_text(text)
    cfg = load_config(tmp_path / "c.toml")
    core = [s.id for s in child_specs(cfg, "core")]
    assert core == ["venuesim.simB", "risk", "oms", "link", "connector.simB", "heartbeat"]
    edge_a = child_specs(cfg, "edge-a")
    assert [s.id for s in edge_a] == ["venuesim.simA", "link", "connector.simA"]
    assert not any(s.critical for s in edge_a)  # nothing on an edge stops the system
    at_once, queue = start_plan(edge_a)  # one chain: the link first
    assert (at_once, queue.stages) == (
        ["venuesim.simA"],
        [[["link", "venuesim.simA", "connector.simA"]]],
    )
    assert [s.id for s in child_specs(cfg, "edge-b")] == ["link", "connector.simC"]


def test_a_single_host_runs_no_link() -> None:
    cfg = load_config(DEMO)
    assert "link" not in [s.id for s in child_specs(cfg)]
    assert child_specs(cfg) == child_specs(cfg, "core")
