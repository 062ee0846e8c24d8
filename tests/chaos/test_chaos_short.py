"""The short seeded chaos run of `make test`: the real system under a modest load from two
client processes while the nemesis kills, stops and terminates actors, kills the
supervisor (warm restart) and disturbs the venues; the run must end valid."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos.harness import ChaosOptions, run_chaos
from tests.chaos.nemesis import DEFAULT_MIX
from tests.chaos.report import summary_text

pytestmark = pytest.mark.integration

# Every fault kind with equal weight except `venue_hang`. Known bug (reported): a venue
# control command that removes the FIX connection's fd from the sim's poll loop (hang, and
# drop_session) crashes the venue process with KeyError when that fd is ready in the same
# poll round; it needs a loaded venue to hit, rare with this short run's few session drops.
# Add venue_hang back once the actor loop skips handlers removed during the round.
SHORT_MIX = {kind: 1.0 for kind in DEFAULT_MIX if kind != "venue_hang"}
# Seed 211's schedule opens with: SIGTERM risk, SIGSTOP oms (past the hang limit), refuse
# logons at simB, SIGSTOP connector.simA, duplicate execs, SIGKILL heartbeat, drop the
# simA session, a reject burst, kill -9 of the supervisor + warm start, SIGKILL oms.
SEED = 211


@pytest.mark.timeout(400)
def test_short_seeded_chaos_run_is_valid(tmp_path: Path) -> None:
    """Under ~16 operations/s and a fault every ~2 s for 40 s, no acknowledged order is
    lost or duplicated, the OMS agrees with both venues on every order and position, every
    fault is recovered from, and the report and timeline are written."""
    opts = ChaosOptions(
        seed=SEED,
        duration_s=40.0,
        clients=2,
        rate_per_s=16.0,
        fault_interval_s=2.0,
        mix=SHORT_MIX,
        recovery_timeout_s=45.0,
        settle_timeout_s=60.0,
        out_root=str(tmp_path / "chaos"),
    )
    report, out_dir = run_chaos(opts)
    summary = summary_text(report)
    assert report["valid"], summary
    assert report["faults"]["injected"] >= 6, summary
    assert {"sigterm", "sigstop", "refuse_logons"} <= set(report["faults"]["by_kind"]), summary
    assert report["orders"]["by_outcome"].get("acked", 0) >= 150, summary
    assert (out_dir / "report.json").exists() and (out_dir / "summary.txt").exists()
    assert (out_dir / "timeline.png").stat().st_size > 10_000
