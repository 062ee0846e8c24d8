"""Alertmanager routing (deploy/alertmanager/alertmanager.yml): `amtool check-config` passes;
`amtool config routes test` pages on KillSwitchEngaged, UnmatchedFill, ExecutionQuarantined,
PersistentReconnects (and MetricsTargetDown: with the target down none of them can fire) and
sends every other alert of alerts.yml, with its own severity label, to the warning receiver;
the inhibit rules name real alerts and never silence a page."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.deploy.metric_names import REPO, alert_names

ALERTMANAGER = REPO / "deploy" / "alertmanager" / "alertmanager.yml"
ALERTS = REPO / "deploy" / "prometheus" / "alerts.yml"
PAGES = {
    "KillSwitchEngaged",
    "UnmatchedFill",
    "ExecutionQuarantined",
    "PersistentReconnects",
    "MetricsTargetDown",
}
PAGE, WARN = "tradepulse-page", "tradepulse-warning"


def _amtool(amtool: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(amtool), *args], cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )


def severities() -> dict[str, str]:
    """alert name -> its severity label, from alerts.yml."""
    text = ALERTS.read_text()
    found = re.findall(r"- alert: (\w+)\n(?:(?!\s*- alert:).*\n)*?\s+severity: (\w+)", text)
    return dict(found)


def test_every_alert_has_a_severity() -> None:
    assert set(severities()) == set(alert_names(ALERTS.read_text()))
    assert set(severities().values()) <= {"critical", "warning"}


def test_amtool_check_config_passes(amtool: Path) -> None:
    proc = _amtool(amtool, "check-config", str(ALERTMANAGER))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout and "3 inhibit rules" in proc.stdout


@pytest.mark.parametrize(("alert", "severity"), sorted(severities().items()))
def test_each_alert_is_routed_to_the_page_or_the_warning_receiver(
    amtool: Path, alert: str, severity: str
) -> None:
    labels = [f"alertname={alert}", f"severity={severity}", "venue=simA", "actor=oms"]
    proc = _amtool(amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER}", *labels)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.split() == [PAGE if alert in PAGES else WARN], proc.stdout


def test_routing_does_not_depend_on_severity_for_pages(amtool: Path) -> None:
    """PersistentReconnects is a warning in alerts.yml and still pages; a critical alert not
    on the page list only warns."""
    for labels, receiver in (
        (["alertname=PersistentReconnects", "severity=warning"], PAGE),
        (["alertname=VenueDown", "severity=critical"], WARN),
        (["alertname=SomethingNew"], WARN),  # no severity: the default route
    ):
        cmd = ["config", "routes", "test", f"--config.file={ALERTMANAGER}", *labels]
        assert _amtool(amtool, *cmd).stdout.split() == [receiver], labels


def _names(matchers: str) -> set[str]:
    return {n for group in re.findall(r'alertname=~?"([^"]+)"', matchers) for n in group.split("|")}


def test_inhibit_rules_name_real_alerts_and_never_silence_a_page() -> None:
    text = ALERTMANAGER.read_text()
    known = set(alert_names(ALERTS.read_text()))
    assert _names(text) <= known, _names(text) - known
    rules = text.split("inhibit_rules:")[1].split("receivers:")[0]
    targets = re.findall(r"target_matchers:\n((?:\s+- .*\n)+)", rules)
    assert len(targets) == 3
    silenced = set().union(*(_names(t) for t in targets))
    assert not silenced & PAGES, silenced & PAGES
    assert {"QueueDepthHigh", "OrderLatencyHigh"} <= silenced


def _rule_expr(alert: str) -> str:
    """The `expr` of `alert` in alerts.yml."""
    text = ALERTS.read_text()
    found = re.search(rf"- alert: {alert}\n\s+expr: \|\n((?:\s{{10,}}.*\n)+)", text)
    assert found, alert
    return found.group(1)


def test_the_kill_switch_inhibits_only_its_own_hosts_consequences() -> None:
    """While one host's switch is engaged, only that host's heartbeat, queue and latency
    warnings are silenced (`equal: [instance]`, and the alert keeps `instance`); ActorDown
    and VenueDown never are (the halt's cancels depend on those actors and venues)."""
    rules = ALERTMANAGER.read_text().split("inhibit_rules:")[1].split("receivers:")[0]
    (rule,) = [r for r in rules.split("  - source_matchers:")[1:] if "KillSwitchEngaged" in r]
    assert re.search(r"^\s+equal: \[instance\]$", rule, flags=re.MULTILINE), rule
    targets = _names(rule.split("target_matchers:")[1])
    assert targets == {"NoPositionHeartbeat", "QueueDepthHigh", "OrderLatencyHigh"}
    assert not targets & {"ActorDown", "VenueDown"}
    for alert in ["KillSwitchEngaged", *targets]:  # else `equal` never matches: nothing inhibited
        assert re.search(r"by \(instance\b", _rule_expr(alert)), alert


def test_a_kill_switch_alert_with_its_instance_label_still_pages(amtool: Path) -> None:
    labels = ["alertname=KillSwitchEngaged", "severity=critical", "instance=hostA:9464"]
    proc = _amtool(amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER}", *labels)
    assert proc.stdout.split() == [PAGE], proc.stdout + proc.stderr
