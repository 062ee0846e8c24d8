"""The Kubernetes deployment starts (deploy/k8s): the core and the edge edge-a as two real
supervisors run as the pods run them: as the image's non-root user (uid 10001, setpriv),
with the shipped config (only the link's address and the dirs moved to this machine), the
runtime dir inside a world-writable setgid dir (the emptyDir under fsGroup), the state dir
a group-owned setgid dir (the PVC under fsGroup), and the keys copied from a secret volume
laid out as the kubelet does by the pods' own copy-keys command, run as that user too. The
link comes up both ways and the core sees the edge's venue."""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from protocol.curve_keys import generate, public_file, secret_file
from protocol.link_config import CORE, venues_of
from tests.deploy.kustomize import by_kind, render, workloads
from tests.deploy.metric_names import REPO
from tests.helpers import SystemUnderTest

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the supervisors as uid 10001"),
    pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) missing"),
]

UID = GID = 10001  # the image's user (deploy/compose/Dockerfile), the pods' runAsUser/fsGroup
AS_POD_USER = ["setpriv", f"--reuid={UID}", f"--regid={GID}", "--clear-groups", "--"]


def _pod_user_problem(python: str) -> str:
    """Why `python` cannot run the supervisor as the pod user ("" if it can): the
    interpreter, this checkout and the venv's packages must be reachable by uid 10001, and
    so must sys.executable in the child (the supervisor starts its fork server with it)."""
    proc = subprocess.run(
        [
            *AS_POD_USER,
            python,
            "-c",
            "import subprocess, sys, supervisor;"
            "subprocess.run([sys.executable, '-c', 'import zmq, pydantic'], check=True)",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return "" if proc.returncode == 0 else (proc.stderr.strip().splitlines() or ["?"])[-1]


def _pod_user_python(where: Path) -> str:
    """An interpreter the pod user may run the supervisor with: this one or, where it lives in
    a dir only root may enter (pyenv under /root here), a venv of the system's Python of the
    same version that sees this venv's packages (same CPython minor version: the same ABI).
    A checkout the user cannot read is a skip, naming why."""
    problem = _pod_user_problem(sys.executable)
    if not problem:
        return sys.executable
    system = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")
    if not system.exists():
        pytest.skip(f"uid {UID} cannot run {sys.executable} ({problem}) and there is no {system}")
    subprocess.run([str(system), "-m", "venv", "--without-pip", str(where)], check=True, timeout=60)
    (purelib,) = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    site = Path(sysconfig.get_paths(vars={"base": str(where), "platbase": str(where)})["purelib"])
    (site / "shared_venv.pth").write_text(purelib + "\n")
    python = str(where / "bin" / "python")
    problem = _pod_user_problem(python)
    if problem:
        pytest.skip(f"uid {UID} cannot run the supervisor from {REPO}: {problem}")
    return python


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _pod_dir(path: Path, mode: int, owner: int = 0) -> Path:
    """A dir as the kubelet makes a volume under fsGroup: group GID, setgid."""
    path.mkdir(parents=True)
    os.chown(path, owner, GID)
    os.chmod(path, mode)
    return path


def _shipped() -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The rendered ConfigMap's config as a dict, and each workload's copy-keys command."""
    objects = render(REPO / "deploy" / "k8s")
    (cm,) = by_kind(objects, "ConfigMap")
    commands = {}
    for w in workloads(objects):
        pod = w["spec"]["template"]["spec"]
        args = pod["containers"][0]["args"]
        (init,) = pod["initContainers"]
        commands[args[args.index("--host-group") + 1]] = init["command"][:4]
    return tomllib.loads(cm["data"]["config.toml"]), commands


@pytest.fixture
def pods() -> Iterator[dict[str, SystemUnderTest]]:
    config, copy_keys = _shipped()
    groups = [CORE, *sorted({v.get("host_group", CORE) for v in config["venues"]} - {CORE})]
    base = Path(tempfile.mkdtemp(prefix="tpk8s", dir="/tmp"))  # short: ipc paths
    os.chmod(base, 0o755)
    generated = base / "generated"
    for group in groups:
        generate(generated, group)
    python = _pod_user_python(base / "python")
    # SystemUnderTest runs [*launcher, sys.executable, supervisor.py, ...]: swap the interpreter
    launcher = [*AS_POD_USER, "sh", "-c", f'shift; exec {shlex.quote(python)} "$@"', "sh"]
    endpoint = f"tcp://127.0.0.1:{_free_port()}"
    made: dict[str, SystemUnderTest] = {}
    try:
        for group in groups:
            pod = _pod_dir(base / group, 0o2777)  # the runtime emptyDir: runtime_dir inside
            _pod_dir(pod / "state", 0o2770)  # the PVC
            secret = _pod_dir(pod / "secret", 0o1777)
            peers = [g for g in groups if g != group] if group == CORE else [CORE]
            for src in [secret_file(generated, group), *(public_file(generated, p) for p in peers)]:
                shutil.copyfile(src, secret / src.name)
                os.chown(secret / src.name, 0, GID)
                os.chmod(secret / src.name, 0o440)  # what fsGroup makes of defaultMode 0440
            keys = _pod_dir(pod / "keys", 0o2777)  # the keys emptyDir
            proc = subprocess.run(
                [*AS_POD_USER, *copy_keys[group], str(secret), str(keys)],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            assert proc.returncode == 0, proc.stderr
            link = {**config["link"], "bind": endpoint, "connect": endpoint, "keys_dir": str(keys)}
            overrides = {**config, "link": link, "metrics": {"host": "127.0.0.1", "port": 0}}
            overrides.pop("system")
            made[group] = SystemUnderTest(
                venues=(),
                overrides=overrides,
                root=pod,
                launcher=launcher,
                run_args=["--host-group", group],
            )
        yield made
    finally:
        for sut in reversed(made.values()):
            sut.destroy()
        shutil.rmtree(base, ignore_errors=True)


def test_core_and_edge_start_as_the_pod_user_and_link_up(pods: dict[str, SystemUnderTest]) -> None:
    """Both supervisors and all their actors run as uid 10001, the link comes up at both
    ends, each edge's connector logs on to its venue and the core's OMS sees that venue
    connected, across the link."""
    core = pods[CORE].start(wait_ready=False)
    edges = {group: sut for group, sut in pods.items() if group != CORE}
    assert edges
    for edge in edges.values():
        edge.start(wait_ready=False)
    for group, edge in edges.items():
        core.wait_event("link_up", timeout_s=30.0, peer=group)
        edge.wait_event("link_up", timeout_s=30.0, peer=CORE)
        for venue in venues_of(edge.cfg.venues, group):
            edge.wait_event("fix_logon", timeout_s=30.0, venue=venue)
            core.wait_event("venue_state", timeout_s=30.0, state="CONNECTED", venue=venue)
    for sut in pods.values():
        assert sut.proc is not None and sut.proc.poll() is None, sut.describe()
        supervisor = psutil.Process(sut.proc.pid)
        actors = supervisor.children(recursive=True)
        assert actors
        for proc in [supervisor, *actors]:
            assert set(proc.uids()) == {UID}, (proc.cmdline(), proc.uids())
