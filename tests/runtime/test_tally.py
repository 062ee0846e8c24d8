"""A loop turn's metric updates (actors.runtime.tally): held until the flush, then written
once per child with the values the updates one by one would have written."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from actors.runtime.tally import Tally
from tests.helpers import REPO_ROOT

_BUCKETS = (0.001, 0.01, 0.1, 1.0)
_VALUES = (0.0005, 0.001, 0.002, 0.01, 0.05, 0.5, 1.0, 3.0, math.inf, 0.0, 0.001)


def _samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for metric in registry.collect()
        for s in metric.samples
        if not s.name.endswith("_created")
    }


def _metrics(registry: CollectorRegistry) -> tuple[Any, Any, Any]:
    counter = Counter("t_things", "t", ["k"], registry=registry).labels(k="a")
    gauge = Gauge("t_depth", "t", ["k"], registry=registry).labels(k="a")
    hist = Histogram("t_seconds", "t", ["k"], buckets=_BUCKETS, registry=registry).labels(k="a")
    return counter, gauge, hist


def test_a_flush_writes_what_the_updates_one_by_one_would_have() -> None:
    """Counter increments summed, the gauge's last value, the histogram's buckets, count
    and sum (inf in the last bucket): equal to the same updates made directly."""
    direct, batched = CollectorRegistry(), CollectorRegistry()
    dc, dg, dh = _metrics(direct)
    bc, bg, bh = _metrics(batched)
    tally = Tally()
    for i, v in enumerate(_VALUES):
        dc.inc()
        dc.inc(2)
        dg.set(i)
        dh.observe(v)
        tally.inc(bc)
        tally.inc(bc, 2)
        tally.set(bg, i)
        tally.observe(bh, v)
    tally.flush()
    assert _samples(batched) == _samples(direct)
    assert _samples(batched)[("t_seconds_count", (("k", "a"),))] == len(_VALUES)


def test_nothing_is_written_before_the_flush_and_a_flush_empties_the_tally() -> None:
    """Updates wait for the flush; a second flush writes nothing again."""
    registry = CollectorRegistry()
    counter, gauge, hist = _metrics(registry)
    tally = Tally()
    tally.inc(counter, 3)
    tally.set(gauge, 7)
    tally.observe(hist, 0.05)
    assert tally.pending
    assert _samples(registry)[("t_things_total", (("k", "a"),))] == 0
    assert _samples(registry)[("t_seconds_count", (("k", "a"),))] == 0
    tally.flush()
    assert not tally.pending
    tally.flush()
    samples = _samples(registry)
    assert samples[("t_things_total", (("k", "a"),))] == 3
    assert samples[("t_depth", (("k", "a"),))] == 7
    assert samples[("t_seconds_count", (("k", "a"),))] == 1


class _Plain:
    """A histogram child without prometheus_client's fields (another release)."""

    def __init__(self) -> None:
        self.seen: list[float] = []

    def observe(self, amount: float) -> None:
        self.seen.append(amount)


def test_a_histogram_without_the_library_fields_gets_each_observation() -> None:
    """The fallback: every observation passed on, in order."""
    plain = _Plain()
    tally = Tally()
    for v in (0.3, 0.1, 0.2):
        tally.observe(plain, v)
    tally.flush()
    assert plain.seen == [0.3, 0.1, 0.2]


_CRASH_PROBE = """
import json
import pytest
from prometheus_client import REGISTRY
from actors.risk.actor import RiskActor
from actors.runtime import metrics
from actors.runtime.tally import TURN
from tests.actor_stubs import Harness

h = Harness()
actor = h.start(RiskActor, "risk")
child = metrics.RISK_CHECKS.labels(outcome="tally_crash_probe")

def turn_that_raises(max_wait_s=1.0):
    TURN.inc(child)
    raise RuntimeError("a bug in a handler")

actor.setup = lambda: None  # the harness ran it already
actor._iterate = turn_that_raises
try:
    actor.run()
except RuntimeError:
    pass
value = REGISTRY.get_sample_value("tradepulse_risk_checks_total", {"outcome": "tally_crash_probe"})
h.close()
print(json.dumps({"pending": TURN.pending, "value": value}))
"""


def test_the_last_turns_counts_are_written_when_the_loop_raises() -> None:
    """An exception out of the loop (or out of on_stop) still writes what its turn
    counted: `run` flushes the tally in its `finally` (cpu6 review). In a fresh
    interpreter: `run` takes the process's signals and logging."""
    out = subprocess.run(
        [sys.executable, "-c", _CRASH_PROBE],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"pending": False, "value": 1.0}


def test_the_loop_flushes_an_interval_after_the_first_pending_update() -> None:
    """`flush_due` after each turn: the first turn with updates starts the interval, the
    first turn `FLUSH_AFTER_S` later writes everything pending; `wait_s` bounds the loop's
    block so an idle loop still writes in time; nothing pending: no wake (inf)."""
    from actors.runtime.tally import FLUSH_AFTER_S

    registry = CollectorRegistry()
    counter, _gauge, _hist = _metrics(registry)
    tally = Tally()
    assert tally.wait_s(0.0) == math.inf
    tally.inc(counter)
    tally.flush_due(10.0)  # the turn that added it: held
    assert _samples(registry)[("t_things_total", (("k", "a"),))] == 0
    assert tally.wait_s(10.0) == pytest.approx(FLUSH_AFTER_S)
    tally.inc(counter, 2)
    tally.flush_due(10.0 + FLUSH_AFTER_S / 2)  # a later turn, not due yet
    assert _samples(registry)[("t_things_total", (("k", "a"),))] == 0
    assert tally.wait_s(10.0 + FLUSH_AFTER_S) == 0.0
    tally.flush_due(10.0 + FLUSH_AFTER_S)
    assert _samples(registry)[("t_things_total", (("k", "a"),))] == 3
    assert not tally.pending and tally.wait_s(11.0) == math.inf
