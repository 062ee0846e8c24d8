"""Prometheus alert rules: promtool checks and unit tests pass, and every metric the rules
name is one the code registers."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

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
    "PositionsNotCompared",
    "PersistentReconnects",
    "KillSwitchEngaged",
    "ActorFlapping",
    "ActorDown",
    "VenueDown",
    "QueueDepthHigh",
    "OrderLatencyHigh",
    "UnmatchedFill",
    "ExecutionQuarantined",
    "OrderReplacedExternally",
    "OrderArchiveFailing",
    "OrderArchiveStalled",
    "ReconcileFailing",
    "ResubmitsUnsent",
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


def test_the_host_config_scrapes_the_core_and_the_edges_file(
    promtool: Path, tmp_path: Path
) -> None:
    """prometheus.yml: the core as a static target, the edges from edges.yml (file_sd). The
    edge entry edges.yml shows in its comment, once uncommented, passes promtool (which
    checks the SD file too) and labels the target with its host group."""
    config = yaml.safe_load((PROM_DIR / "prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "tradepulse"
    assert job["static_configs"] == [
        {"targets": ["127.0.0.1:9464"], "labels": {"host_group": "core"}}
    ]
    assert job["file_sd_configs"] == [{"files": ["edges.yml"]}]
    shipped = (PROM_DIR / "edges.yml").read_text()
    assert yaml.safe_load(shipped) == []
    example = "\n".join(
        line.removeprefix("# ") for line in shipped.splitlines() if line.startswith("# ")
    )
    example = example[example.index("- targets:") :]
    for name in ("prometheus.yml", "alerts.yml"):
        shutil.copy(PROM_DIR / name, tmp_path / name)
    (tmp_path / "edges.yml").write_text(example + "\n")
    (group,) = yaml.safe_load(example)
    assert group["labels"]["host_group"].startswith("edge")
    proc = _run(promtool, "check", "config", str(tmp_path / "prometheus.yml"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (tmp_path / "edges.yml").write_text(example.replace("labels:", "labelz:") + "\n")
    proc = _run(promtool, "check", "config", str(tmp_path / "prometheus.yml"))
    assert proc.returncode != 0, "promtool did not check the SD file"


def test_the_k8s_config_keeps_the_annotated_tradepulse_pods() -> None:
    """prometheus-k8s.yml (Debian's promtool has no kubernetes_sd, so its structure is checked
    here): pods of the kustomization's namespace, kept by the prometheus.io/scrape annotation
    every workload carries (test_k8s_manifests.py), labelled with their host group."""
    config = yaml.safe_load((PROM_DIR / "prometheus-k8s.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "tradepulse"
    (sd,) = job["kubernetes_sd_configs"]
    kustomization = yaml.safe_load((REPO / "deploy" / "k8s" / "kustomization.yaml").read_text())
    assert sd == {"role": "pod", "namespaces": {"names": [kustomization["namespace"]]}}
    relabel = job["relabel_configs"]
    assert relabel[0] == {
        "source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"],
        "regex": "true",
        "action": "keep",
    }
    targets = {r.get("target_label") for r in relabel}
    assert {"__address__", "__metrics_path__", "host_group", "instance"} <= targets


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
