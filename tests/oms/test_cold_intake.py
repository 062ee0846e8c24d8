"""Which venues take new orders while the OMS starts (`PlanApplier.unready`): a venue not
reconciled since the start never; in a cold start, none before every venue has its
opening positions (`oms.cold_start_intake = "every_venue"`, the default), since risk's
`max_position` counts a symbol at every venue; on a warm start each venue once its own
pass is done (every position is in the journal)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import structlog

from actors.oms.plan_apply import PlanApplier
from protocol.config import OmsCfg


def _applier(tmp_path: Path, *, cold: bool, intake: str = "every_venue") -> PlanApplier:
    marker = tmp_path / "cold"
    if cold:
        marker.touch()
    links = {"simA": SimpleNamespace(ever_reconciled=True),
             "simB": SimpleNamespace(ever_reconciled=False)}  # fmt: skip
    cfg = OmsCfg(cold_start_intake=intake)  # type: ignore[arg-type]
    return PlanApplier(SimpleNamespace(), links, cfg, structlog.get_logger(), marker)  # type: ignore[arg-type]


def test_a_cold_start_keeps_every_venue_waiting_for_the_last_opening_positions(
    tmp_path: Path,
) -> None:
    applier = _applier(tmp_path, cold=True)
    assert applier.unready("simB") == "simB not reconciled yet since the OMS started"
    assert "cold start: simB has no opening positions yet" in str(applier.unready("simA"))
    applier.links["simB"].ever_reconciled = True  # type: ignore[attr-defined]
    assert applier.unready("simA") is None


@pytest.mark.parametrize(("cold", "intake"), [(False, "every_venue"), (True, "per_venue")])
def test_a_warm_start_or_per_venue_intake_opens_each_venue_on_its_own(
    tmp_path: Path, cold: bool, intake: str
) -> None:
    applier = _applier(tmp_path, cold=cold, intake=intake)
    assert applier.unready("simA") is None
    assert applier.unready("simB") == "simB not reconciled yet since the OMS started"
