"""Review of a11cbe9 (`oms.resubmit_grace_s` configurable, 1-3600 s; now 1-240): the
ResubmitsUnsent alert (deploy/prometheus/alerts.yml) assumes an unsent resend every 30 s
("An unsent resend every resubmit_grace_s (30 s)"): `increase(...[5m]) > 0` held `for:
15m`. A stuck order is resent once per grace (at the next pass after it), so with a grace
above ~4.5 minutes the 5-minute windows between two resends read 0, the pending alert
resets, and a resubmission that never goes out is never alerted on."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import yaml
from annotated_types import Le

from protocol.config import OmsCfg
from tests.deploy.metric_names import REPO

ALERTS = REPO / "deploy" / "prometheus" / "alerts.yml"
HOURS = 5


def _max_grace_s() -> float:
    (le,) = [m.le for m in OmsCfg.model_fields["resubmit_grace_s"].metadata if isinstance(m, Le)]
    return float(le)


def test_resubmits_unsent_fires_for_a_stuck_order_at_every_accepted_grace(
    promtool: Path, tmp_path: Path
) -> None:
    """An order whose resends the connector keeps leaving unsent, one per grace (the
    largest grace the config accepts, plus the periodic pass), for hours: the alert fires."""
    every_min = math.ceil((_max_grace_s() + OmsCfg().reconcile_interval_s) / 60)
    samples = HOURS * 60
    values = " ".join(str(i // every_min) for i in range(samples))
    venue = "stuck"
    test = {
        "rule_files": [str(ALERTS)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {
                        "series": f'tradepulse_oms_resubmits_unsent_total{{venue="{venue}"}}',
                        "values": values,
                    }
                ],
                "alert_rule_test": [
                    {
                        "eval_time": f"{samples - 1}m",
                        "alertname": "ResubmitsUnsent",
                        "exp_alerts": [
                            {
                                "exp_labels": {"severity": "warning", "venue": venue},
                                "exp_annotations": {
                                    "summary": f"Resubmissions to venue {venue} keep going unsent",
                                    "description": "For over 15 minutes the connector of"
                                    f" {venue} has not sent orders the OMS resubmitted"
                                    " (order_resubmit_unsent): they stay PENDING_SUBMIT, not"
                                    " escalated, until the venue can be asked about them"
                                    " again.",
                                    "runbook_step": "resubmits unsent: read"
                                    " `order_resubmit_unsent` (reason) and the venue's"
                                    " health; `tradepulse orders --open`",
                                },
                            }
                        ],
                    }
                ],
            }
        ],
    }
    path = tmp_path / "resubmit_grace_alert_test.yml"
    path.write_text(yaml.safe_dump(test, sort_keys=False))
    proc = subprocess.run(
        [str(promtool), "test", "rules", str(path)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, (
        f"a resend unsent every {every_min} min (oms.resubmit_grace_s up to {_max_grace_s()} s)"
        f" never fires ResubmitsUnsent:\n{proc.stdout}{proc.stderr}"
    )
