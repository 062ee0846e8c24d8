"""Prometheus alert rules: promtool checks and unit tests pass, and every metric the rules
name is one the code registers."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.deploy.metric_names import (
    METRIC_RE,
    REPO,
    alert_names,
    registered_series_names,
    rule_exprs,
)

PROM_DIR = REPO / "deploy" / "prometheus"
ALERTS = PROM_DIR / "alerts.yml"

RUNBOOK_ALERTS = {
    "NoPositionHeartbeat",
    "PersistentReconnects",
    "KillSwitchEngaged",
    "ActorFlapping",
    "ActorDown",
    "VenueDown",
    "QueueDepthHigh",
    "OrderLatencyHigh",
    "UnmatchedFill",
    "ReconcileFailing",
}


def _run(promtool: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(promtool), *args], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )


def test_promtool_check_rules_passes(promtool: Path) -> None:
    proc = _run(promtool, "check", "rules", str(ALERTS))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(alert_names(ALERTS.read_text()))} rules found" in proc.stdout


def test_promtool_rule_unit_tests_pass(promtool: Path) -> None:
    """alerts_test.yml: for every alert, series that fire it and series that must not."""
    proc = _run(promtool, "test", "rules", str(PROM_DIR / "alerts_test.yml"))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_promtool_check_config_passes(promtool: Path) -> None:
    """prometheus.yml is valid and loads the rules."""
    proc = _run(promtool, "check", "config", str(PROM_DIR / "prometheus.yml"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 rule files found" in proc.stdout


def test_every_runbook_alert_has_a_rule_and_a_unit_test() -> None:
    text = ALERTS.read_text()
    names = alert_names(text)
    assert len(names) == len(set(names)), "duplicate alert names"
    assert RUNBOOK_ALERTS <= set(names)
    tests = (PROM_DIR / "alerts_test.yml").read_text()
    for name in names:
        assert f"alertname: {name}" in tests, f"{name} has no promtool unit test"


def test_every_metric_in_the_rules_is_registered_by_the_code() -> None:
    """A typo in a metric name makes an alert silently never fire: catch it here."""
    exprs = rule_exprs(ALERTS.read_text())
    assert len(exprs) == len(alert_names(ALERTS.read_text()))
    used = {name for expr in exprs for name in METRIC_RE.findall(expr)}
    assert used, "no tradepulse_* metric found in the rule expressions"
    missing = used - registered_series_names()
    assert not missing, (
        f"rules use metrics that actors/runtime/metrics.py does not register: {missing}"
    )


def test_expr_extraction_handles_inline_and_block_scalars() -> None:
    text = (
        "    rules:\n"
        "      - alert: A\n"
        "        expr: tradepulse_a == 1\n"
        "        labels: {}\n"
        "      - alert: B\n"
        "        expr: |\n"
        "          rate(tradepulse_b_total[5m])\n"
        "\n"
        "            > 1\n"
        "        for: 1m\n"
    )
    assert rule_exprs(text) == ["tradepulse_a == 1", "rate(tradepulse_b_total[5m])\n> 1"]
    assert alert_names(text) == ["A", "B"]
