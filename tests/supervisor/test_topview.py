"""`tradepulse top`'s frames from fixed samples (a `status` reply as the supervisor builds
it, parsed metrics, psutil usage) and their rendering to text; its `--interval` check."""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest

from actors.supervisor.topstats import MetricsSample
from actors.supervisor.topview import FrameSequence, Sample, Usage, build_frame, render_text
from supervisor import build_parser

INF = math.inf


def _actor(aid: str, pid: int | None, **extra: Any) -> dict[str, Any]:
    row = {
        "id": aid,
        "kind": aid.split(".")[0],
        "pid": pid,
        "state": "running" if pid else "backoff",
        "epoch": 1,
        "restarts": 0,
        "uptime_s": 75.0,
        "heartbeat_age_s": 0.12 if pid else None,
        "loop_lag_s": 0.0,
        "rss_bytes": 40 * 1048576 if pid else 0,
        "cpu_percent": 1.5 if pid else 0.0,
        "endpoints": {},
        "info": {},
    }
    return row | extra


STATUS: dict[str, Any] = {
    "supervisor_pid": 100,
    "uptime_s": 3725.0,
    "metrics_url": "http://127.0.0.1:9000/metrics",
    "actors": [
        _actor(
            "oms",
            101,
            info={
                "intake": "open",
                "journal": "ok",
                "queues": {"simA": 0, "simB": 4},
                "venues": {"simA": "reconciled", "simB": "reconcile_failing: timeout"},
            },
        ),
        _actor("connector.simA", 102, info={"fix_state": "active"}),
        _actor("connector.simB", None, restarts=3, info={}),
    ],
    "venues": {
        "simA": {"state": "CONNECTED", "detail": "logged on"},
        "simB": {"state": "DOWN", "detail": "restart budget exceeded"},
    },
    "kill_switch": {"engaged": False, "reason": "", "source": "", "ts_ns": 0},
    "intake": "open",
    "queues": {"simA": 0, "simB": 4},
}


def _metrics(orders: float, acks_fast: float, acks_slow: float) -> MetricsSample:
    """simA: `orders` new orders, acks in the 10-20 ms bucket and in the 1-2.5 s one."""
    total = acks_fast + acks_slow
    return MetricsSample(
        orders={"simA": orders, "simB": 0.0},
        fills={"simA": orders / 2},
        latency={"simA": {0.01: 0.0, 0.02: acks_fast, 1.0: acks_fast, 2.5: total, INF: total}},
        in_session={"simA": True, "simB": False},
    )


def _sample(at_s: float, status: dict[str, Any] | None, metrics: MetricsSample | None) -> Sample:
    return Sample(at_s, 1_800_000_000.0 + at_s, status, metrics, error="" if status else "gone")


def test_frame_of_two_samples_has_rates_and_interval_quantiles_per_venue() -> None:
    """20 new orders in 2 s: 10/s overall and for simA; the interval's acks are all fast, so
    p99 is under 20 ms even though earlier acks were slow."""
    prev = _sample(10.0, STATUS, _metrics(orders=100, acks_fast=0, acks_slow=50))
    cur = _sample(12.0, STATUS, _metrics(orders=120, acks_fast=20, acks_slow=50))
    frame = build_frame(prev, cur)
    assert frame.running and frame.interval_s == pytest.approx(2.0)
    assert frame.orders_per_s == pytest.approx(10.0)
    assert frame.fills_per_s == pytest.approx(5.0)
    assert frame.latency.window == "interval"
    assert frame.latency.p99_s is not None and frame.latency.p99_s < 0.02
    sim_a, sim_b = frame.venues
    assert (sim_a.name, sim_a.orders_per_s, sim_a.queue, sim_a.fix) == ("simA", 10.0, 0, "active")
    assert sim_a.in_session is True and sim_a.link == "reconciled"
    assert (sim_b.session, sim_b.queue, sim_b.in_session) == ("DOWN", 4, False)
    assert sim_b.link == "reconcile_failing: timeout" and sim_b.latency.p50_s is None


def test_one_sample_has_no_rates_and_quantiles_since_start() -> None:
    frame = build_frame(None, _sample(1.0, STATUS, _metrics(orders=5, acks_fast=0, acks_slow=4)))
    assert frame.interval_s is None and frame.orders_per_s is None
    assert frame.latency.window == "since start"
    assert frame.latency.p50_s is not None and 1.0 <= frame.latency.p50_s <= 2.5


def test_psutil_usage_of_this_process_wins_over_the_supervisors_figures() -> None:
    """CPU % measured here over the interval replaces the status figure; a first look (None)
    keeps the supervisor's; an actor without a pid shows neither."""
    cur = Sample(
        1.0,
        1.0,
        STATUS,
        None,
        usage={101: Usage(42.0, 99 * 1048576), 102: Usage(None, 10 * 1048576)},
    )
    oms, conn_a, conn_b = build_frame(None, cur).actors
    assert (oms.cpu_percent, oms.rss_bytes) == (42.0, 99 * 1048576)
    assert (conn_a.cpu_percent, conn_a.rss_bytes) == (1.5, 10 * 1048576)
    assert (conn_b.pid, conn_b.cpu_percent, conn_b.rss_bytes, conn_b.restarts) == (
        None,
        None,
        None,
        3,
    )


def test_rendered_frame_shows_actors_venues_rates_latency_kill_switch_and_intake() -> None:
    status = copy.deepcopy(STATUS)
    status["kill_switch"] = {"engaged": True, "reason": "fat finger", "source": "operator"}
    status["intake"] = "paused"
    prev = _sample(10.0, status, _metrics(orders=100, acks_fast=0, acks_slow=0))
    cur = _sample(11.0, status, _metrics(orders=103, acks_fast=10, acks_slow=0))
    text = render_text(build_frame(prev, cur), width=120)
    for needle in ("oms", "connector.simA", "connector.simB", "backoff", "40.0M", "0.12s"):
        assert needle in text
    assert "up 1h02m" in text and "interval 1.0s" in text
    assert "kill-switch: ENGAGED (operator: fat finger)" in text
    assert "intake: paused" in text
    assert "orders 3.0/s  fills 1.5/s  submit->ack p50 15.0ms p99 19.9ms (last interval)" in text
    venue_lines = [line for line in text.splitlines() if line.startswith(("simA", "simB"))]
    assert len(venue_lines) == 2
    assert venue_lines[0].split()[:9] == (
        "simA CONNECTED in active 0 3.0 15.0ms 19.9ms reconciled".split()
    )
    assert venue_lines[1].split()[:8] == "simB DOWN out - 4 0.0 - -".split()
    assert "reconcile_failing: timeout" in venue_lines[1]
    assert "restart budget exceeded" in venue_lines[1]
    assert all(len(line) <= 120 for line in text.splitlines())


def test_frame_without_metrics_says_so_and_shows_the_rest() -> None:
    cur = Sample(1.0, 1.0, STATUS, None, metrics_error="http://127.0.0.1:9000/metrics: refused")
    text = render_text(build_frame(None, cur), width=120)
    assert "metrics unavailable: http://127.0.0.1:9000/metrics: refused" in text
    assert "connector.simA" in text and "p50 - p99 -" in text


def test_not_running_frame_says_so_with_the_time_since_the_last_answer() -> None:
    ok = _sample(10.0, STATUS, None)
    frame = build_frame(ok, _sample(13.0, None, None))
    assert not frame.running and frame.last_answer_s == 3.0
    text = render_text(frame)
    assert "NOT RUNNING (last answer 3.0s ago): gone" in text
    assert "oms" not in text  # nothing stale is shown as if current


def test_after_an_outage_the_first_answer_starts_afresh() -> None:
    """No rate spans the gap: the supervisor may be a new one with restarted counters."""
    frames = FrameSequence()
    frames.next(_sample(1.0, STATUS, _metrics(orders=10, acks_fast=0, acks_slow=0)))
    assert frames.next(_sample(2.0, STATUS, _metrics(20, 0, 0))).orders_per_s == 10.0
    assert not frames.next(_sample(3.0, None, None)).running
    back = frames.next(_sample(4.0, STATUS, _metrics(orders=500, acks_fast=0, acks_slow=0)))
    assert back.running and back.orders_per_s is None and back.interval_s is None
    assert frames.next(_sample(5.0, STATUS, _metrics(502, 0, 0))).orders_per_s == 2.0


def test_frame_json_is_plain_data() -> None:
    data = build_frame(None, _sample(1.0, STATUS, _metrics(1, 1, 0))).to_json()
    assert data["actors"][0]["id"] == "oms" and data["venues"][1]["session"] == "DOWN"
    assert data["latency"]["window"] == "since start"


@pytest.mark.parametrize("bad", ["0", "-1", "abc", "7200"])
def test_interval_outside_its_range_is_a_usage_error(
    bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["top", "--interval", bad])
    assert exc.value.code == 2
    assert "--interval" in capsys.readouterr().err


def test_a_venue_without_acks_in_the_interval_shows_no_quantiles() -> None:
    """simA's acks all came before the interval: its P50/P99 are unknown (`-`), not the
    since-start figures the column does not label; simB, acked in it, has its own."""
    before = _metrics(orders=100, acks_fast=0, acks_slow=50)
    after = _metrics(orders=100, acks_fast=0, acks_slow=50)
    slow_b = {0.01: 0.0, 0.02: 0.0, 1.0: 0.0, 2.5: 3.0, INF: 3.0}
    before.latency["simB"] = {0.01: 0.0, 0.02: 0.0, 1.0: 0.0, 2.5: 0.0, INF: 0.0}
    after.latency["simB"] = slow_b
    frame = build_frame(_sample(10.0, STATUS, before), _sample(12.0, STATUS, after))
    sim_a, sim_b = frame.venues
    assert (sim_a.latency.p50_s, sim_a.latency.p99_s) == (None, None)
    assert sim_b.latency.p50_s is not None and sim_b.latency.window == "interval"
    first = build_frame(None, _sample(10.0, STATUS, before)).venues[0]
    assert first.latency.window == "since start"  # one sample: the header says so
