"""deploy/compose: compose.yaml passes the compose-spec JSON schema (the one check-jsonschema
vendors: offline), every service has a healthcheck, Prometheus is on the compose network
and scrapes the core and every edge, and the one-shot `keys` service's script makes keys the
link accepts."""

from __future__ import annotations

import copy
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from check_jsonschema.builtin_schemas import get_builtin_schema

from protocol.config import SystemConfig, load_config
from protocol.curve_keys import link_keys, secret_file
from protocol.link_config import CORE, edge_groups, tcp_address
from tests.deploy.metric_names import REPO

COMPOSE_DIR = REPO / "deploy" / "compose"
COMPOSE = COMPOSE_DIR / "compose.yaml"
PROM_DIR = REPO / "deploy" / "prometheus"
SUPERVISOR_IMAGE = "tradepulse-live:0.1.0"

Obj = dict[str, Any]


@pytest.fixture(scope="module")
def compose() -> Obj:
    doc: Obj = yaml.safe_load(COMPOSE.read_text())
    return doc


@pytest.fixture(scope="module")
def cfg() -> SystemConfig:
    return load_config(COMPOSE_DIR / "config.toml")


def _schema_errors(doc: Obj) -> list[str]:
    """What the compose-spec schema check-jsonschema vendors (`check-jsonschema
    --builtin-schema vendor.compose-spec`) says of `doc`, run in-process."""
    schema = get_builtin_schema("vendor.compose-spec")
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc)]


def test_compose_file_passes_the_compose_spec_schema(compose: Obj) -> None:
    """The compose-spec schema; a key the spec does not have, in a service or in a
    healthcheck, is refused by the same check (it can fail)."""
    assert _schema_errors(compose) == []
    broken = copy.deepcopy(compose)
    broken["services"][CORE]["stop_grace_periode"] = "60s"
    assert any("stop_grace_periode" in e for e in _schema_errors(broken))
    broken = copy.deepcopy(compose)
    broken["services"]["prometheus"]["healthcheck"]["tset"] = ["CMD", "true"]
    assert any("tset" in e for e in _schema_errors(broken))


def _supervisors(compose: Obj) -> dict[str, Obj]:
    """The services that run `tradepulse run`, by host group."""
    out: dict[str, Obj] = {}
    for name, service in compose["services"].items():
        command = service.get("command", [])
        if command[:1] == ["run"]:
            group = command[command.index("--host-group") + 1]
            assert group not in out
            assert name == group, f"service {name} runs --host-group {group}: name it so"
            out[group] = service
    return out


def test_every_service_has_a_healthcheck(compose: Obj) -> None:
    for name, service in compose["services"].items():
        check = service.get("healthcheck")
        assert check and check["test"][0] in ("CMD", "CMD-SHELL"), name
        assert not check.get("disable"), name


def test_no_service_borrows_another_ones_network(compose: Obj) -> None:
    """Prometheus on the compose network, not `network_mode: service:X` (it would lose its
    network when X's container restarts); no service sets a network mode at all."""
    for name, service in compose["services"].items():
        assert "network_mode" not in service, name
        assert "networks" not in service, name  # all on the default network


def test_a_supervisor_service_per_host_group(compose: Obj, cfg: SystemConfig) -> None:
    """One service per host group of the config, each with its own state volume, the
    config mounted where its command reads it, its own part of the keys volume at [link]
    keys_dir, and a grace period above its ordered shutdown."""
    supervisors = _supervisors(compose)
    assert set(supervisors) == {CORE, *edge_groups(cfg.venues)}
    states = set()
    for group, service in supervisors.items():
        assert service["image"] == SUPERVISOR_IMAGE
        command = service["command"]
        config_path = command[command.index("--config") + 1]
        mounts = [m for m in service["volumes"] if isinstance(m, str)]
        assert f"./config.toml:{config_path}:ro" in mounts, group
        (state,) = [m.split(":")[0] for m in mounts if m.split(":")[1] == cfg.system.state_dir]
        states.add(state)
        (keys,) = [m for m in service["volumes"] if isinstance(m, dict)]
        assert keys["source"] == "keys" and keys["target"] == cfg.link.keys_dir, group
        assert keys["volume"]["subpath"] == group and keys["read_only"] is True
        tmpfs = {t.split(":")[0]: t for t in service["tmpfs"]}
        assert "mode=0700,uid=10001" in tmpfs[cfg.system.runtime_dir]
        assert service["depends_on"]["keys"] == {"condition": "service_completed_successfully"}
        assert service["read_only"] is True
    assert len(states) == len(supervisors), "two supervisors share a state volume"


def test_the_edges_reach_the_core_by_service_name(compose: Obj, cfg: SystemConfig) -> None:
    connect, bind = tcp_address(cfg.link.connect), tcp_address(cfg.link.bind)
    assert connect is not None and bind is not None
    assert connect == (CORE, bind[1])
    assert cfg.metrics.host == "0.0.0.0"


def _scrape_targets(prom: Obj) -> dict[str, str]:
    """target -> host_group label of the tradepulse job."""
    (job,) = [j for j in prom["scrape_configs"] if j["job_name"] == "tradepulse"]
    return {
        target: static["labels"]["host_group"]
        for static in job["static_configs"]
        for target in static["targets"]
    }


def test_prometheus_scrapes_the_core_and_every_edge(compose: Obj, cfg: SystemConfig) -> None:
    """prometheus-compose.yml (the file the prometheus service loads) has one target per
    supervisor service at [metrics] port, labelled with its host group, and sends alerts to
    the alertmanager service."""
    prometheus = compose["services"]["prometheus"]
    assert "--config.file=/etc/prometheus/prometheus-compose.yml" in prometheus["command"]
    assert "../prometheus:/etc/prometheus:ro" in prometheus["volumes"]
    prom = yaml.safe_load((PROM_DIR / "prometheus-compose.yml").read_text())
    expected = {f"{group}:{cfg.metrics.port}": group for group in _supervisors(compose)}
    assert _scrape_targets(prom) == expected
    (am,) = prom["alerting"]["alertmanagers"]
    assert am["static_configs"][0]["targets"] == ["alertmanager:9093"]
    assert "alertmanager" in compose["services"] and "grafana" in compose["services"]


def test_promtool_accepts_the_compose_prometheus_config(promtool: Path) -> None:
    proc = subprocess.run(
        [str(promtool), "check", "config", str(PROM_DIR / "prometheus-compose.yml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 rule files found" in proc.stdout


def test_the_keys_service_makes_keys_the_link_accepts(
    compose: Obj, cfg: SystemConfig, tmp_path: Path
) -> None:
    """The `keys` service's own script, run with the venv's `tradepulse` in a temp dir for
    the volume: each supervisor's part holds its secret key 0600 and its peers' public keys,
    and link_keys loads them; a second run (compose up again) keeps the same keys."""
    keys = compose["services"]["keys"]
    assert keys["entrypoint"] == ["sh", "-c"]
    (script,) = keys["command"]
    (volume,) = keys["volumes"]
    mount = volume.split(":")[1]
    assert f"cd {mount}\n" in script
    tool = shutil.which("tradepulse", path=str(Path(sys.executable).parent))
    assert tool is not None
    volume_dir = tmp_path / "volume"
    volume_dir.mkdir(mode=0o700)
    env = {**os.environ, "PATH": f"{Path(tool).parent}{os.pathsep}{os.environ['PATH']}"}
    seen: list[bytes] = []
    for _ in range(2):
        proc = subprocess.run(
            ["sh", "-c", script.replace(f"cd {mount}\n", f"cd {volume_dir}\n")],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        for group in _supervisors(compose):
            part = volume_dir / group
            assert stat.S_IMODE(secret_file(part, group).stat().st_mode) == 0o600
            assert sorted(p.name for p in part.iterdir() if p.name.endswith("_secret")) == [
                f"{group}.key_secret"
            ]
            loaded = link_keys(
                cfg.link.model_copy(update={"keys_dir": str(part)}), cfg.venues, group
            )
            assert loaded is not None
            peers = edge_groups(cfg.venues) if group == CORE else [CORE]
            assert sorted(loaded.peers.values()) == peers
        seen.append(secret_file(volume_dir / CORE, CORE).read_bytes())
    assert seen[0] == seen[1]
