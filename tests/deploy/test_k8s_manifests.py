"""deploy/k8s: the kustomization renders (tests/deploy/kustomize.py, the same objects as
`kubectl kustomize` where kubectl exists), every rendered object passes the Kubernetes
OpenAPI schema in strict mode (kubernetes-validate, schemas bundled: offline), and the
manifests agree with the one config file they deploy: a Deployment per edge group, keys
the link accepts, NetworkPolicy ports, probes, disruption budgets, a non-root user."""

from __future__ import annotations

import copy
import os
import re
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from protocol.config import SystemConfig, load_config
from protocol.curve_keys import generate, link_keys, load_secret, public_file, secret_file
from protocol.exceptions import ConfigError
from protocol.link_config import CORE, check_link, edge_groups, tcp_address, venues_of
from tests.deploy.kustomize import Obj, by_kind, normalized, render, workloads
from tests.deploy.metric_names import REPO

K8S = REPO / "deploy" / "k8s"
CONFIG_MAP = "tradepulse-config"
CONFIG_KEY = "config.toml"
# The oldest Kubernetes the manifests are for (unhealthyPodEvictionPolicy: 1.27 on by
# default) and the newest schema kubernetes-validate bundles.
K8S_VERSIONS = ["1.29.0", kubernetes_validate.latest_version()]
SERVICE_USER = 10001  # deploy/compose/Dockerfile: useradd --uid


@pytest.fixture(scope="module")
def objects() -> list[Obj]:
    return render(K8S)


@pytest.fixture(scope="module")
def cfg(objects: list[Obj], tmp_path_factory: pytest.TempPathFactory) -> SystemConfig:
    """The config the pods mount: the rendered ConfigMap's file, loaded as `run` loads it."""
    (cm,) = [
        o for o in by_kind(objects, "ConfigMap") if o["metadata"]["name"].startswith(CONFIG_MAP)
    ]
    path = tmp_path_factory.mktemp("k8s") / CONFIG_KEY
    path.write_text(cm["data"][CONFIG_KEY])
    return load_config(path)


def _pod(workload: Obj) -> Obj:
    spec: Obj = workload["spec"]["template"]["spec"]
    return spec


def _supervisor(workload: Obj) -> Obj:
    (container,) = [c for c in _pod(workload)["containers"] if c["name"] == "supervisor"]
    return container


def _host_group(workload: Obj) -> str:
    args: list[str] = _supervisor(workload)["args"]
    return args[args.index("--host-group") + 1] if "--host-group" in args else CORE


def _by_group(objects: list[Obj]) -> dict[str, Obj]:
    groups: dict[str, Obj] = {}
    for w in workloads(objects):
        group = _host_group(w)
        assert group not in groups, f"two workloads run --host-group {group}"
        groups[group] = w
    return groups


def _volume(workload: Obj, name: str) -> Obj:
    (volume,) = [v for v in _pod(workload)["volumes"] if v["name"] == name]
    return volume


def _mount(container: Obj, volume: str) -> str:
    (path,) = [m["mountPath"] for m in container["volumeMounts"] if m["name"] == volume]
    return str(path)


def _selects(selector: Obj, labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, selector  # no matchExpressions in these manifests
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


# --------------------------------------------------------------------------- rendering


def test_renders_the_core_and_every_workload_of_the_deployment(objects: list[Obj]) -> None:
    kinds = sorted({o["kind"] for o in objects})
    assert kinds == [
        "ConfigMap",
        "Deployment",
        "Namespace",
        "NetworkPolicy",
        "PersistentVolumeClaim",
        "PodDisruptionBudget",
        "Service",
        "StatefulSet",
    ]
    assert all(
        o["metadata"].get("namespace") == "tradepulse" for o in objects if o["kind"] != "Namespace"
    )
    for w in workloads(objects):
        for c in [*_pod(w).get("initContainers", []), *_pod(w)["containers"]]:
            assert c["image"] == "tradepulse-live:0.1.0", (w["metadata"]["name"], c["name"])
        assert _volume(w, "config")["configMap"]["name"].startswith(f"{CONFIG_MAP}-")


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
def test_the_renderer_agrees_with_kubectl_kustomize(objects: list[Obj]) -> None:
    """The test renderer prints what `kubectl kustomize deploy/k8s` prints, up to the
    generated ConfigMap's hash suffix, so what is validated here is what is applied."""
    proc = subprocess.run(
        ["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    theirs = [d for d in yaml.safe_load_all(proc.stdout) if d is not None]
    assert normalized(objects, {CONFIG_MAP}) == normalized(theirs, {CONFIG_MAP})


# --------------------------------------------------------------------------- schema


def _validation_error(obj: Obj, version: str) -> str | None:
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return f"{obj['kind']}/{obj['metadata']['name']}: {exc.message}"
    return None


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_rendered_object_passes_the_strict_schema(objects: list[Obj], version: str) -> None:
    """kubernetes-validate --strict: the OpenAPI schema of that Kubernetes version, and no
    property the schema does not know (a misspelt or misplaced field)."""
    errors = [e for o in objects if (e := _validation_error(o, version)) is not None]
    assert not errors, errors


def test_strict_validation_catches_a_misplaced_field(objects: list[Obj]) -> None:
    """The check above can fail: a field in the wrong place (the kind of slip that kubectl
    apply without --validate=strict would silently drop) is reported."""
    (edge,) = by_kind(objects, "Deployment")
    broken = copy.deepcopy(edge)
    broken["spec"]["template"]["spec"]["containers"][0]["startupprobe"] = {}
    assert _validation_error(broken, K8S_VERSIONS[-1]) is not None
    broken = copy.deepcopy(edge)
    broken["spec"]["replicas"] = "1"
    assert _validation_error(broken, K8S_VERSIONS[-1]) is not None


# --------------------------------------------------------------------------- the config


def test_the_config_map_describes_the_link_and_an_edge(cfg: SystemConfig) -> None:
    """The ConfigMap's file loads with the project's loader (which runs check_link), places
    at least one venue on an edge, and the link has keys (no plaintext)."""
    check_link(cfg.link, cfg.venues)
    assert edge_groups(cfg.venues)
    assert cfg.link.keys_dir and not cfg.link.allow_plaintext
    assert cfg.metrics.host == "0.0.0.0"  # the scrape comes from another pod


def test_every_host_group_has_exactly_one_workload(objects: list[Obj], cfg: SystemConfig) -> None:
    """The core is one StatefulSet (replicas 1, a state volume claim); every edge group of
    the config one Deployment with replicas 1 and strategy Recreate (never two connectors on
    one FIX session), its own PersistentVolumeClaim for the state dir; no workload runs a
    group no venue names."""
    groups = _by_group(objects)
    assert set(groups) == {CORE, *edge_groups(cfg.venues)}
    core = groups[CORE]
    assert core["kind"] == "StatefulSet" and core["spec"]["replicas"] == 1
    assert [t["metadata"]["name"] for t in core["spec"]["volumeClaimTemplates"]] == ["state"]
    assert _mount(_supervisor(core), "state") == cfg.system.state_dir
    claims = {o["metadata"]["name"] for o in by_kind(objects, "PersistentVolumeClaim")}
    used: set[str] = set()
    for group in edge_groups(cfg.venues):
        edge = groups[group]
        assert edge["kind"] == "Deployment", group
        assert edge["spec"]["replicas"] == 1, group
        assert edge["spec"]["strategy"] == {"type": "Recreate"}, group
        claim = _volume(edge, "state")["persistentVolumeClaim"]["claimName"]
        assert claim in claims and claim not in used, (group, claim)
        used.add(claim)
        assert _mount(_supervisor(edge), "state") == cfg.system.state_dir
        assert venues_of(cfg.venues, group)


def test_every_supervisor_runs_the_mounted_config(objects: list[Obj]) -> None:
    for w in workloads(objects):
        sup = _supervisor(w)
        args = sup["args"]
        assert args[:3] == ["run", "--config", f"{_mount(sup, 'config')}/{CONFIG_KEY}"], args


# --------------------------------------------------------------------------- keys


def _copy_keys(workload: Obj) -> tuple[list[str], str, str]:
    """The init container's shell command, and its two arguments: the Secret's mount and
    the keys dir."""
    (init,) = [c for c in _pod(workload)["initContainers"] if c["name"] == "copy-keys"]
    command: list[str] = init["command"]
    assert command[:2] == ["sh", "-c"], command
    src, dst = command[4], command[5]
    assert _mount(init, "keys-secret") == src
    assert _mount(init, "keys") == dst
    return command, src, dst


def test_every_workload_mounts_its_own_keys(objects: list[Obj], cfg: SystemConfig) -> None:
    """Each pod's key Secret is tradepulse-keys-<its group>; the init container copies it
    into the memory emptyDir the supervisor mounts at [link] keys_dir."""
    for group, w in _by_group(objects).items():
        secret = _volume(w, "keys-secret")["secret"]
        assert secret["secretName"] == f"tradepulse-keys-{group}"
        assert _volume(w, "keys")["emptyDir"]["medium"] == "Memory"
        _, _, dst = _copy_keys(w)
        assert dst == cfg.link.keys_dir
        assert _mount(_supervisor(w), "keys") == cfg.link.keys_dir


def _kubelet_secret_volume(where: Path, files: dict[str, Path]) -> None:
    """A secret volume as the kubelet lays it out with fsGroup set: the files in a
    timestamped dir, mode 0440 whatever defaultMode asked (fsGroup adds g+r), reached through
    ..data symlinks."""
    data = where / "..2026_01_01_00_00_00.000000001"
    data.mkdir(parents=True)
    for name, source in files.items():
        shutil.copyfile(source, data / name)
        os.chmod(data / name, 0o440)
    (where / "..data").symlink_to(data.name)
    for name in files:
        (where / name).symlink_to(f"..data/{name}")


@pytest.fixture
def generated(tmp_path: Path, cfg: SystemConfig) -> Iterator[Path]:
    keys = tmp_path / "generated"
    for group in [CORE, *edge_groups(cfg.venues)]:
        generate(keys, group)
    yield keys


def test_copied_keys_are_what_the_link_accepts(
    objects: list[Obj], cfg: SystemConfig, generated: Path, tmp_path: Path
) -> None:
    """Per workload, the Secret as README.md says to create it (its own secret key, the
    peers' public keys), laid out as the kubelet does under fsGroup: the link refuses the
    secret key there (group-readable), and accepts it once the pod's own copy-keys command
    has run, also a second time (a restarted pod keeps its emptyDir)."""
    for group, w in _by_group(objects).items():
        peers = edge_groups(cfg.venues) if group == CORE else [CORE]
        files = {secret_file(generated, group).name: secret_file(generated, group)}
        files |= {public_file(generated, p).name: public_file(generated, p) for p in peers}
        secret_dir, keys_dir = tmp_path / group / "secret", tmp_path / group / "keys"
        _kubelet_secret_volume(secret_dir, files)
        keys_dir.mkdir()
        os.chmod(keys_dir, 0o2777)  # an emptyDir with fsGroup
        with pytest.raises(ConfigError, match="open to group or others"):
            load_secret(secret_file(secret_dir, group), "link.keys_dir")

        command, _, _ = _copy_keys(w)
        for _ in range(2):
            proc = subprocess.run(
                [*command[:4], str(secret_dir), str(keys_dir)],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            assert proc.returncode == 0, proc.stderr
            mode = stat.S_IMODE(secret_file(keys_dir, group).stat().st_mode)
            assert mode == 0o600, oct(mode)
            link = cfg.link.model_copy(update={"keys_dir": str(keys_dir)})
            loaded = link_keys(link, cfg.venues, group)
            assert loaded is not None
            assert sorted(loaded.peers.values()) == sorted(peers)


# --------------------------------------------------------------------------- network


def _policy_for(objects: list[Obj], labels: dict[str, str]) -> Obj:
    """The one NetworkPolicy with rules that selects a pod with `labels` (the default deny
    selects every pod and has none)."""
    found = [
        p
        for p in by_kind(objects, "NetworkPolicy")
        if p["spec"]["podSelector"] and _selects(p["spec"]["podSelector"], labels)
    ]
    assert len(found) == 1, [p["metadata"]["name"] for p in found]
    return found[0]


def _ports(rule: Obj) -> set[tuple[str, int]]:
    return {(p["protocol"], p["port"]) for p in rule["ports"]}


def test_network_policies_allow_only_the_link_the_scrape_and_dns(
    objects: list[Obj], cfg: SystemConfig
) -> None:
    """A default deny of both directions for the namespace; the core takes the link port of
    [link] bind from edge pods only and the metrics port from Prometheus; an edge takes the
    scrape only and may reach the core's link port and DNS; every rule names its ports."""
    address = tcp_address(cfg.link.bind)
    assert address is not None
    link = ("TCP", address[1])
    metrics = ("TCP", cfg.metrics.port)
    dns = {("UDP", 53), ("TCP", 53)}

    (deny,) = [p for p in by_kind(objects, "NetworkPolicy") if not p["spec"]["podSelector"]]
    assert sorted(deny["spec"]["policyTypes"]) == ["Egress", "Ingress"]
    assert "ingress" not in deny["spec"] and "egress" not in deny["spec"]

    groups = _by_group(objects)
    core_labels = groups[CORE]["spec"]["template"]["metadata"]["labels"]
    core = _policy_for(objects, core_labels)
    assert sorted(core["spec"]["policyTypes"]) == ["Egress", "Ingress"]
    ingress = {frozenset(_ports(r)): r for r in core["spec"]["ingress"]}
    assert set(ingress) == {frozenset({link}), frozenset({metrics})}
    (from_edges,) = ingress[frozenset({link})]["from"]
    assert set(from_edges) == {"podSelector"}  # this namespace's pods only
    assert [_ports(r) for r in core["spec"]["egress"]] == [dns]

    for group in edge_groups(cfg.venues):
        labels = groups[group]["spec"]["template"]["metadata"]["labels"]
        assert _selects(from_edges["podSelector"], labels), group
        assert not _selects(from_edges["podSelector"], core_labels)
        edge = _policy_for(objects, labels)
        assert [_ports(r) for r in edge["spec"]["ingress"]] == [{metrics}]
        egress = {frozenset(_ports(r)): r for r in edge["spec"]["egress"]}
        assert set(egress) == {frozenset({link}), frozenset(dns)}
        (to_core,) = egress[frozenset({link})]["to"]
        assert _selects(to_core["podSelector"], core_labels)
        # the scrape comes from the same place as the core's
        assert edge["spec"]["ingress"][0]["from"] == ingress[frozenset({metrics})]["from"]


def test_the_link_service_is_where_the_edges_connect(objects: list[Obj], cfg: SystemConfig) -> None:
    """[link] connect names the Service and its port; the Service selects the core pod and
    targets the core's `link` containerPort, which is [link] bind's port."""
    connect, bind = tcp_address(cfg.link.connect), tcp_address(cfg.link.bind)
    assert connect is not None and bind is not None
    host, port = connect
    (service,) = [s for s in by_kind(objects, "Service") if s["metadata"]["name"] == host]
    core = _by_group(objects)[CORE]
    assert _selects(
        {"matchLabels": service["spec"]["selector"]}, core["spec"]["template"]["metadata"]["labels"]
    )
    (svc_port,) = service["spec"]["ports"]
    assert svc_port["port"] == port
    container_ports = {p["name"]: p["containerPort"] for p in _supervisor(core)["ports"]}
    assert container_ports[svc_port["targetPort"]] == bind[1]


def test_every_supervisor_is_scraped_on_its_metrics_port(
    objects: list[Obj], cfg: SystemConfig
) -> None:
    """The core and every edge pod carry the prometheus.io/* annotations (README.md's scrape
    job keeps the pods that have them) with [metrics] port, which is the containerPort."""
    for group, w in _by_group(objects).items():
        notes = w["spec"]["template"]["metadata"]["annotations"]
        assert notes["prometheus.io/scrape"] == "true", group
        assert notes["prometheus.io/port"] == str(cfg.metrics.port), group
        assert notes["prometheus.io/path"] == "/metrics", group
        ports = {p["name"]: p["containerPort"] for p in _supervisor(w)["ports"]}
        assert ports["metrics"] == cfg.metrics.port


# --------------------------------------------------------------------------- pods


def test_every_supervisor_has_a_startup_probe_and_no_liveness_probe(objects: list[Obj]) -> None:
    for w in workloads(objects):
        sup = _supervisor(w)
        probe = sup["startupProbe"]["httpGet"]
        assert probe == {"path": "/metrics", "port": "metrics"}
        assert sup["startupProbe"]["periodSeconds"] * sup["startupProbe"]["failureThreshold"] >= 60
        assert "livenessProbe" not in sup  # the supervisor restarts hung actors itself


def test_every_workload_has_one_budget_that_forbids_eviction(objects: list[Obj]) -> None:
    budgets = by_kind(objects, "PodDisruptionBudget")
    for w in workloads(objects):
        labels = w["spec"]["template"]["metadata"]["labels"]
        covering = [b for b in budgets if _selects(b["spec"]["selector"], labels)]
        assert len(covering) == 1, (w["metadata"]["name"], covering)
        assert covering[0]["spec"]["maxUnavailable"] == 0
    assert len(budgets) == len(workloads(objects))


def test_pods_run_as_the_image_user_with_a_read_only_root(objects: list[Obj]) -> None:
    """The namespace enforces Pod Security `restricted`, and the pods meet it: runAsNonRoot
    with the image's uid (the Dockerfile's useradd), the RuntimeDefault seccomp profile,
    every container without privilege escalation or capabilities; on a read-only root
    filesystem too: what the code writes goes to the state volume, the runtime and keys
    emptyDirs and /tmp."""
    dockerfile = (REPO / "deploy" / "compose" / "Dockerfile").read_text()
    assert re.search(rf"useradd .*--uid {SERVICE_USER}\b", dockerfile)
    (namespace,) = by_kind(objects, "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for w in workloads(objects):
        pod = _pod(w)["securityContext"]
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}  # restricted wants it
        assert pod["runAsNonRoot"] is True
        assert pod["runAsUser"] == pod["runAsGroup"] == pod["fsGroup"] == SERVICE_USER
        assert _pod(w)["automountServiceAccountToken"] is False
        for c in [*_pod(w)["initContainers"], *_pod(w)["containers"]]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, c["name"]
            assert sc["allowPrivilegeEscalation"] is False, c["name"]
            assert sc["capabilities"] == {"drop": ["ALL"]}, c["name"]
        writable = {m["mountPath"] for m in _supervisor(w)["volumeMounts"] if not m.get("readOnly")}
        assert writable == {"/var/lib/tradepulse", "/run/tradepulse", "/tmp"}


def _actors_on(cfg: SystemConfig, group: str) -> int:
    """How many actors the supervisor of `group` stops one after another."""
    venues = [v for v in cfg.venues if v.host_group == group]
    sims = sum(1 for v in venues if v.sim is not None)
    link = 1 if edge_groups(cfg.venues) else 0
    own = 3 if group == CORE else 0  # risk, oms, heartbeat
    return own + len(venues) + sims + link


def test_grace_periods_cover_each_supervisors_shutdown(
    objects: list[Obj], cfg: SystemConfig
) -> None:
    """terminationGracePeriodSeconds above the supervisor's worst-case ordered shutdown:
    per actor on that host group, shutdown_timeout_s + 1 s."""
    for group, w in _by_group(objects).items():
        worst_s = _actors_on(cfg, group) * (cfg.supervisor.shutdown_timeout_s + 1.0)
        assert _pod(w)["terminationGracePeriodSeconds"] > worst_s, group


def _shell_command(text: str, start: str) -> str:
    """The shell command that begins with `start` in `text`, its continuation lines joined."""
    lines = text.splitlines()
    (first,) = [i for i, line in enumerate(lines) if line.strip().startswith(start)]
    command = [lines[first]]
    while command[-1].endswith("\\"):
        command.append(lines[first + len(command)])
    return " ".join(line.rstrip("\\") for line in command)


def test_the_readme_creates_the_secrets_the_pods_mount(
    objects: list[Obj], cfg: SystemConfig
) -> None:
    """README.md's `kubectl create secret` commands make each pod's Secret with exactly the
    files the link loads on that host group."""
    readme = (K8S / "README.md").read_text()
    for group in _by_group(objects):
        command = _shell_command(
            readme, f"kubectl -n tradepulse create secret generic tradepulse-keys-{group} "
        )
        files = {Path(f).name for f in re.findall(r"--from-file=(\S+)", command)}
        peers = edge_groups(cfg.venues) if group == CORE else [CORE]
        assert files == {f"{group}.key_secret", *(f"{p}.key" for p in peers)}, group
