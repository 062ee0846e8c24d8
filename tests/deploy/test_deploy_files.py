"""deploy/: example configs load, stop timeouts cover the supervisor's ordered shutdown, the
Grafana dashboard only uses registered metrics (the manifests: test_k8s_manifests.py,
test_compose.py, test_image.py)."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from protocol.config import SystemConfig, load_config
from tests.deploy.metric_names import METRIC_RE, REPO, registered_series_names

DEPLOY = REPO / "deploy"
CONFIGS = sorted(
    [*DEPLOY.glob("config/*.toml"), *DEPLOY.glob("compose/*.toml"), *DEPLOY.glob("k8s/*.toml")]
)
UNIT = DEPLOY / "systemd" / "tradepulse.service"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "tradepulse.json"

# The supervisor stops actors one after another: STOP, shutdown_timeout_s, SIGTERM, 1 s, SIGKILL.
_SIGTERM_GRACE_S = 1.0


def _worst_case_stop_s(cfg: SystemConfig) -> float:
    actors = 3 + len(cfg.venues) + sum(1 for v in cfg.venues if v.sim is not None)
    return actors * (cfg.supervisor.shutdown_timeout_s + _SIGTERM_GRACE_S)


def _unit_settings() -> dict[str, str]:
    settings: dict[str, str] = {}
    for line in UNIT.read_text().splitlines():
        m = re.match(r"^([A-Za-z]+)=(.*)$", line.strip())
        if m:
            settings[m.group(1)] = m.group(2)
    return settings


def _seconds(value: str) -> float:
    m = re.fullmatch(r"(\d+)(s|min)?", value.strip())
    assert m, f"unsupported duration {value!r}"
    return float(m.group(1)) * (60 if m.group(2) == "min" else 1)


@pytest.mark.parametrize("path", CONFIGS, ids=[str(p.relative_to(DEPLOY)) for p in CONFIGS])
def test_every_deploy_config_loads(path: Path) -> None:
    """Each example config under deploy/ is valid for protocol.config.load_config."""
    cfg = load_config(path)
    assert cfg.venues


def test_configs_were_found() -> None:
    names = {str(p.relative_to(DEPLOY)) for p in CONFIGS}
    assert {"config/production.example.toml", "compose/config.toml", "k8s/config.toml"} <= names


def test_production_example_matches_the_systemd_unit() -> None:
    """The unit's StateDirectory / RuntimeDirectory are the config's state and runtime dirs,
    and the FIX password comes from the environment, not the file."""
    cfg = load_config(DEPLOY / "config" / "production.example.toml")
    unit = _unit_settings()
    assert cfg.system.state_dir == f"/var/lib/{unit['StateDirectory']}"
    assert cfg.system.runtime_dir == f"/run/{unit['RuntimeDirectory']}"
    assert all(v.password_env for v in cfg.venues)


def test_systemd_unit_runs_the_supervisor_and_stops_it_in_time() -> None:
    """KillMode=mixed (SIGTERM to the supervisor only, SIGKILL to all at the timeout),
    Restart=on-failure, and TimeoutStopSec above the supervisor's worst-case ordered shutdown."""
    unit = _unit_settings()
    assert unit["ExecStart"].endswith("tradepulse run --config /etc/tradepulse/config.toml")
    assert unit["KillMode"] == "mixed"
    assert unit["Restart"] == "on-failure"
    cfg = load_config(DEPLOY / "config" / "production.example.toml")
    assert _seconds(unit["TimeoutStopSec"]) > _worst_case_stop_s(cfg)


def test_compose_grace_period_covers_the_shutdown() -> None:
    """(Kubernetes: per workload, tests/deploy/test_k8s_manifests.py.)"""
    compose = (DEPLOY / "compose" / "compose.yaml").read_text()
    m = re.search(r"stop_grace_period:\s*(\d+)s", compose)
    assert m, "compose.yaml sets no stop_grace_period"
    assert float(m.group(1)) > _worst_case_stop_s(load_config(DEPLOY / "compose" / "config.toml"))


def test_compose_mounts_exist() -> None:
    """Every relative path compose.yaml mounts or builds from is in the repository."""
    compose_dir = DEPLOY / "compose"
    text = (compose_dir / "compose.yaml").read_text()
    for rel in re.findall(r"^\s*-\s+(\.{1,2}/[^:\s]+):", text, flags=re.MULTILINE):
        assert (compose_dir / rel).exists(), rel
    assert (compose_dir / "../..").resolve() == REPO
    assert (REPO / "deploy" / "compose" / "Dockerfile").exists()


# --------------------------------------------------------------------------- grafana


def _dashboard_exprs() -> list[str]:
    """Every query of the dashboard: the panels' and the annotations'."""
    dash: dict[str, Any] = json.loads(DASHBOARD.read_text())
    panels = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    return panels + [a["expr"] for a in dash["annotations"]["list"] if "expr" in a]


def test_dashboard_is_valid_json_with_unique_panel_ids() -> None:
    dash = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    assert dash["uid"] and dash["title"]


def test_dashboard_uses_only_registered_metrics() -> None:
    used = {name for expr in _dashboard_exprs() for name in METRIC_RE.findall(expr)}
    assert len(used) >= 10
    missing = used - registered_series_names()
    assert not missing, (
        f"dashboard uses metrics actors/runtime/metrics.py does not register: {missing}"
    )


def test_dashboard_has_a_host_variable_that_scopes_every_metric() -> None:
    """`host` lists the supervisors Prometheus scrapes (job tradepulse), several or all may be
    chosen, and every tradepulse_* selector of every query carries instance=~"$host"."""
    dash = json.loads(DASHBOARD.read_text())
    host = next(v for v in dash["templating"]["list"] if v["name"] == "host")
    assert host["query"]["query"] == 'label_values(up{job="tradepulse"}, instance)'
    assert host["multi"] and host["includeAll"]
    for expr in _dashboard_exprs():
        selectors = re.findall(r"\b(tradepulse_[a-z0-9_]+)(\{[^}]*\})?", expr)
        assert selectors, expr
        for name, labels in selectors:
            assert 'instance=~"$host"' in labels, f"{name} in {expr!r} is not scoped to $host"


def test_dashboard_annotates_kill_switch_changes_and_actor_restarts() -> None:
    dash = json.loads(DASHBOARD.read_text())
    exprs = {a["name"]: a["expr"] for a in dash["annotations"]["list"]}
    assert "changes(tradepulse_kill_switch_engaged{" in exprs["Kill-switch changes"]
    assert "increase(tradepulse_actor_restarts_total{" in exprs["Actor restarts"]
    assert all(a["enable"] for a in dash["annotations"]["list"])


def test_dashboard_queries_are_valid_promql(promtool: Path, tmp_path: Path) -> None:
    """Every panel query parses: checked as recording rules by promtool."""
    rules = ["groups:", "  - name: dashboard", "    rules:"]
    for i, expr in enumerate(_dashboard_exprs()):
        rules += [f"      - record: dashboard_query_{i}", f"        expr: {json.dumps(expr)}"]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text("\n".join(rules) + "\n")
    proc = subprocess.run(
        [str(promtool), "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


# How each shipped config's runtime_dir mount looks at start: (config, mount point, mode of
# the mount as the platform creates it). Kubernetes makes an emptyDir 0777 (2777 with
# fsGroup); compose mounts a tmpfs 0700 owned by the service user; systemd's
# RuntimeDirectory= is 0700 (RuntimeDirectoryMode default 0755 is not group-writable).
MOUNTS = [
    ("k8s/config.toml", "/run/tradepulse", 0o2777),
    ("compose/config.toml", "/run/tradepulse", 0o700),
    ("config/production.example.toml", "/run/tradepulse", 0o755),
]


@pytest.mark.parametrize(("name", "mount", "mode"), MOUNTS, ids=[m[0] for m in MOUNTS])
def test_shipped_runtime_dirs_pass_the_private_dir_check(
    tmp_path: Path, name: str, mount: str, mode: int
) -> None:
    """The runtime-dir check (a private dir of ours) accepts every shipped deployment as the
    platform mounts it (found by review: the k8s emptyDir, 0777, made the pod exit 2)."""
    from actors.supervisor.host import prepare_runtime_dir

    cfg = load_config(DEPLOY / name)
    configured = Path(cfg.system.runtime_dir)
    assert configured.is_relative_to(mount), (configured, mount)
    fake_mount = tmp_path / "mnt"
    fake_mount.mkdir()
    os.chmod(fake_mount, mode)
    where = fake_mount / configured.relative_to(mount)
    system = cfg.system.model_copy(update={"runtime_dir": str(where)})
    prepare_runtime_dir(cfg.model_copy(update={"system": system}))
    assert stat.S_IMODE(where.stat().st_mode) == 0o700
