"""The numbers `tradepulse top` derives from the supervisor's Prometheus text: the order
and fill counters per venue, the submit -> ack latency histogram per venue, and from two
samples of them a rate (per second) and latency quantiles over the interval between.

Pure functions of parsed samples: no sockets, no clock (tests/supervisor/test_topstats.py).
Counters can go back (the supervisor restarted and its multiprocess dir was emptied): a
counter lower than before counts from zero, as Prometheus's `rate()` does.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

# what the OMS exports (actors/runtime/metrics.py)
ORDERS = "tradepulse_orders_total"  # by venue and status: a new order enters PENDING_RISK
FILLS = "tradepulse_fills_total"
LATENCY_BUCKET = "tradepulse_order_latency_seconds_bucket"  # submit received -> venue ack
IN_SESSION = "tradepulse_venue_in_session"
NEW_ORDER_STATUS = "PENDING_RISK"

Buckets = dict[float, float]  # upper bound (`le`, +Inf included) -> cumulative count


@dataclass(frozen=True)
class MetricsSample:
    """What top reads from one scrape, per venue."""

    orders: dict[str, float] = field(default_factory=dict)  # orders that entered the OMS
    fills: dict[str, float] = field(default_factory=dict)
    latency: dict[str, Buckets] = field(default_factory=dict)
    in_session: dict[str, bool] = field(default_factory=dict)


def parse_metrics(text: str) -> MetricsSample:
    """The samples top uses from a /metrics page (a ValueError if it is not Prometheus text)."""
    sample = MetricsSample()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            venue = s.labels.get("venue")
            if venue is None:
                continue
            if s.name == ORDERS and s.labels.get("status") == NEW_ORDER_STATUS:
                sample.orders[venue] = sample.orders.get(venue, 0.0) + s.value
            elif s.name == FILLS:
                sample.fills[venue] = sample.fills.get(venue, 0.0) + s.value
            elif s.name == LATENCY_BUCKET and "le" in s.labels:
                buckets = sample.latency.setdefault(venue, {})
                le = float(s.labels["le"])
                buckets[le] = buckets.get(le, 0.0) + s.value
            elif s.name == IN_SESSION:
                sample.in_session[venue] = s.value >= 1.0
    return sample


def counter_delta(prev: float | None, cur: float) -> float:
    """How much a counter grew; a counter that went back was reset and counts from zero."""
    if prev is None or cur < prev:
        return cur
    return cur - prev


def rate(prev: float | None, cur: float, interval_s: float) -> float | None:
    """Per second over `interval_s`; None without a previous sample or a positive interval."""
    if prev is None or interval_s <= 0:
        return None
    return counter_delta(prev, cur) / interval_s


def bucket_delta(prev: Mapping[float, float] | None, cur: Mapping[float, float]) -> Buckets:
    """The observations between two samples of one histogram, bucket by bucket (cumulative
    still). A reset (the total went back) makes `cur` itself the delta."""
    if not prev or _total(cur) < _total(prev):
        return dict(cur)
    return {le: max(0.0, count - prev.get(le, 0.0)) for le, count in cur.items()}


def merge_buckets(histograms: Iterable[Mapping[float, float]]) -> Buckets:
    """One histogram of several with the same bounds (all venues together)."""
    merged: Buckets = {}
    for buckets in histograms:
        for le, count in buckets.items():
            merged[le] = merged.get(le, 0.0) + count
    return merged


def histogram_quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """The `q` quantile (0..1) of a cumulative histogram, interpolated linearly inside the
    bucket it falls in, as Prometheus's `histogram_quantile` does: the lowest bucket starts
    at 0, a quantile in the +Inf bucket is the highest finite bound. None: no observations."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile {q} is not within 0..1")
    bounds = sorted(buckets)
    total = _total(buckets)
    if total <= 0 or not bounds:
        return None
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for le in bounds:
        count = buckets[le]
        if count >= rank and count > lower_count:
            if math.isinf(le):
                return lower_bound
            return lower_bound + (le - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = le, count
    return lower_bound


@dataclass(frozen=True)
class Latency:
    """Submit -> ack quantiles, in seconds, and the window they cover."""

    p50_s: float | None = None
    p99_s: float | None = None
    window: str = ""  # "interval": the last interval; "since start": no ack in it; "": none
    count: float = 0.0


def latency(prev: Mapping[float, float] | None, cur: Mapping[float, float]) -> Latency:
    """p50/p99 of the acks of the last interval; without any (or a previous sample), of
    every ack since the counters started."""
    delta = bucket_delta(prev, cur) if prev else {}
    if prev and _total(delta) > 0:
        buckets, window = delta, "interval"
    elif _total(cur) > 0:
        buckets, window = dict(cur), "since start"
    else:
        return Latency()
    return Latency(
        p50_s=histogram_quantile(0.5, buckets),
        p99_s=histogram_quantile(0.99, buckets),
        window=window,
        count=_total(buckets),
    )


def _total(buckets: Mapping[float, float]) -> float:
    """The number of observations: the +Inf bucket (the largest cumulative count)."""
    return max(buckets.values(), default=0.0)
