"""`tradepulse top`'s metric math: quantiles from (deltas of) cumulative histogram buckets,
counter rates across a reset, and what it reads from the supervisor's /metrics page."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.supervisor.topstats import (
    Latency,
    bucket_delta,
    counter_delta,
    histogram_quantile,
    latency,
    merge_buckets,
    parse_metrics,
    rate,
)

INF = math.inf
# 10 observations between 10 and 20 ms, none elsewhere
TEN_AT_10_20MS = {0.005: 0.0, 0.01: 0.0, 0.02: 10.0, 0.05: 10.0, INF: 10.0}


def test_quantile_interpolates_inside_the_bucket_it_falls_in() -> None:
    """Like Prometheus's histogram_quantile: linear inside the bucket holding the rank."""
    assert histogram_quantile(0.5, TEN_AT_10_20MS) == pytest.approx(0.015)
    assert histogram_quantile(0.99, TEN_AT_10_20MS) == pytest.approx(0.0199)
    assert histogram_quantile(1.0, TEN_AT_10_20MS) == pytest.approx(0.02)


def test_quantile_of_the_lowest_bucket_starts_at_zero() -> None:
    assert histogram_quantile(0.5, {0.01: 4.0, 0.02: 4.0, INF: 4.0}) == pytest.approx(0.005)


def test_quantile_in_the_inf_bucket_is_the_highest_finite_bound() -> None:
    """Observations above the largest bound: the quantile is that bound, not infinity."""
    slow = {0.01: 1.0, 2.5: 1.0, INF: 100.0}
    assert histogram_quantile(0.99, slow) == 2.5


def test_quantile_of_no_observations_is_none_and_a_bad_q_is_refused() -> None:
    assert histogram_quantile(0.5, {0.01: 0.0, INF: 0.0}) is None
    assert histogram_quantile(0.5, {}) is None
    with pytest.raises(ValueError, match="within 0..1"):
        histogram_quantile(1.5, TEN_AT_10_20MS)


def test_interval_quantiles_come_from_the_bucket_deltas_only() -> None:
    """Before: 1000 slow acks (1-2.5 s). In the interval: 10 fast ones (10-20 ms). The
    interval's p99 is the fast one; the cumulative histogram would say over a second."""
    before = {0.01: 0.0, 0.02: 0.0, 1.0: 0.0, 2.5: 1000.0, INF: 1000.0}
    after = {0.01: 0.0, 0.02: 10.0, 1.0: 10.0, 2.5: 1010.0, INF: 1010.0}
    lat = latency(before, after)
    assert lat.window == "interval" and lat.count == 10
    assert lat.p50_s == pytest.approx(0.015)
    assert lat.p99_s is not None and lat.p99_s < 0.02
    assert histogram_quantile(0.99, after) > 1.0  # what "since start" would have said


def test_latency_without_acks_in_the_interval_falls_back_to_since_start() -> None:
    assert latency(TEN_AT_10_20MS, TEN_AT_10_20MS).window == "since start"
    assert latency(None, TEN_AT_10_20MS).p50_s == pytest.approx(0.015)
    assert latency(None, {}) == Latency()
    assert latency(None, {0.01: 0.0, INF: 0.0}).window == ""


def test_a_histogram_that_went_back_was_reset_and_counts_from_zero() -> None:
    """A restarted supervisor empties its multiprocess dir: the new counts are the delta."""
    big = {0.01: 50.0, INF: 100.0}
    small = {0.01: 2.0, INF: 3.0}
    assert bucket_delta(big, small) == small
    assert bucket_delta(small, big) == {0.01: 48.0, INF: 97.0}


def test_merge_adds_the_venues_histograms() -> None:
    merged = merge_buckets([{0.01: 1.0, INF: 2.0}, {0.01: 3.0, INF: 3.0}])
    assert merged == {0.01: 4.0, INF: 5.0}


def test_rate_is_per_second_over_the_interval_and_survives_a_reset() -> None:
    assert rate(10.0, 25.0, 1.5) == pytest.approx(10.0)
    assert rate(100.0, 5.0, 1.0) == 5.0  # reset: 5 since it
    assert rate(None, 25.0, 1.0) is None  # one sample: no rate
    assert rate(1.0, 2.0, 0.0) is None
    assert counter_delta(3.0, 3.0) == 0.0


@given(
    st.lists(st.integers(min_value=0, max_value=50), min_size=1, max_size=8),
    st.floats(min_value=0.0, max_value=1.0),
    st.floats(min_value=0.0, max_value=1.0),
)
def test_quantiles_grow_with_q_and_stay_within_the_bounds(
    per_bucket: list[int], q1: float, q2: float
) -> None:
    bounds = [0.001 * 2**i for i in range(len(per_bucket))]
    cumulative, running = {}, 0.0
    for le, n in zip(bounds, per_bucket, strict=True):
        running += n
        cumulative[le] = running
    cumulative[INF] = running
    lo, hi = sorted((q1, q2))
    a, b = histogram_quantile(lo, cumulative), histogram_quantile(hi, cumulative)
    if running == 0:
        assert a is None and b is None
        return
    assert a is not None and b is not None
    assert 0.0 <= a <= b <= bounds[-1]


METRICS = """\
# HELP tradepulse_orders_total Orders reaching a status
# TYPE tradepulse_orders_total counter
tradepulse_orders_total{status="PENDING_RISK",venue="simA"} 7.0
tradepulse_orders_total{status="ACCEPTED",venue="simA"} 6.0
tradepulse_orders_total{status="PENDING_RISK",venue="simB"} 2.0
# HELP tradepulse_fills_total Fills applied (once per exec id)
# TYPE tradepulse_fills_total counter
tradepulse_fills_total{venue="simA"} 3.0
# HELP tradepulse_order_latency_seconds Submit received by the OMS -> venue acknowledgement
# TYPE tradepulse_order_latency_seconds histogram
tradepulse_order_latency_seconds_bucket{le="0.01",venue="simA"} 2.0
tradepulse_order_latency_seconds_bucket{le="0.025",venue="simA"} 6.0
tradepulse_order_latency_seconds_bucket{le="+Inf",venue="simA"} 6.0
tradepulse_order_latency_seconds_count{venue="simA"} 6.0
tradepulse_order_latency_seconds_sum{venue="simA"} 0.08
# HELP tradepulse_venue_in_session 1 inside the venue's trading session
# TYPE tradepulse_venue_in_session gauge
tradepulse_venue_in_session{venue="simA"} 1.0
tradepulse_venue_in_session{venue="simB"} 0.0
# HELP tradepulse_actor_up 1 while the actor is READY
# TYPE tradepulse_actor_up gauge
tradepulse_actor_up{actor="oms"} 1.0
"""


def test_parse_reads_new_orders_fills_latency_buckets_and_sessions_per_venue() -> None:
    """Only orders entering the OMS (PENDING_RISK) count as new; `le` is a float with +Inf."""
    m = parse_metrics(METRICS)
    assert m.orders == {"simA": 7.0, "simB": 2.0}
    assert m.fills == {"simA": 3.0}
    assert m.latency == {"simA": {0.01: 2.0, 0.025: 6.0, INF: 6.0}}
    assert m.in_session == {"simA": True, "simB": False}


def test_parse_of_something_that_is_not_prometheus_text_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse_metrics('tradepulse_orders_total{venue="simA" 1\n')
