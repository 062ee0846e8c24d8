"""The supervisor as an unprivileged user in dirs mounted for root (issue 13, section 4).

A Kubernetes pod runs as a non-root uid, and its volumes are made by the kubelet as root: an
emptyDir is root-owned 0777, a volume with an `fsGroup` is root-owned, group = the pod's
gid, setgid (2770 here). Before the shared-dir rule, `run` exited 2 at once in both:
`config error: system.runtime_dir: .../rt is owned by uid 0, not by us (65534)`.

The tests run as root (here and in CI) and drop to a uid with no user (`NOBODY`) for the
supervisor: a launcher in Python (setgroups, setgid, setuid, exec), so no setpriv is
needed. That uid must be able to run an interpreter with the venv's packages and read the
repository; where the running interpreter or the checkout is not reachable for it (a
pyenv under /root, a checkout in a 0700 home), the test sets up what it needs in a temp dir
of its own: a reachable interpreter of the same version with the venv's site-packages on
PYTHONPATH, a copy of the sources.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from protocol import paths
from tests.helpers import REPO_ROOT, SystemUnderTest

pytestmark = pytest.mark.integration

NOBODY = 65534  # a uid (and gid) no file of the test belongs to
SOURCES = ("actors", "protocol", "supervisor.py")
# Drop to uid/gid, then exec ARGV with the chosen interpreter and sources: argv is
# `uid gid python src ARGV`, where ARGV[0] (the interpreter the caller named) is replaced by
# `python`, and a supervisor.py at ARGV[1] is the one in `src`.
_DROP = """\
import os, sys
uid, gid, python, src = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
argv = sys.argv[6:]
if argv and argv[0].endswith("supervisor.py"):
    argv[0] = os.path.join(src, "supervisor.py")
os.setgroups([])
os.setgid(gid)
os.setuid(uid)
os.chdir(src)
os.execv(python, [python, *argv])
"""
_PROBE = "import supervisor, actors.supervisor.daemon, actors.__main__, zmq, pydantic_core"


@dataclass(frozen=True)
class Runtime:
    """How `NOBODY` runs the system: this interpreter, these sources, this environment."""

    python: str
    src: Path
    env: dict[str, str]

    def launcher(self) -> list[str]:
        return [sys.executable, "-c", _DROP, str(NOBODY), str(NOBODY), self.python, str(self.src)]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`supervisor.py ARGS` as NOBODY (argv shaped as SystemUnderTest's)."""
        argv = [*self.launcher(), sys.executable, "supervisor.py", *args]
        return subprocess.run(
            argv, env=self.env, capture_output=True, text=True, timeout=60, check=False
        )


def _probe(python: str, src: Path, env: dict[str, str]) -> str | None:
    """Why NOBODY cannot import the system with `python` from `src`; None if it can."""
    argv = [sys.executable, "-c", _DROP, str(NOBODY), str(NOBODY), python, str(src)]
    argv += [sys.executable, "-c", _PROBE]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    return None if done.returncode == 0 else (done.stderr.strip().splitlines() or ["?"])[-1]


def _interpreters() -> list[str]:
    """This interpreter, then others of the same version (a pyenv build under /root cannot
    be run by another uid; the system's python3.X can)."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    found = [sys.executable, os.path.realpath(sys.executable)]
    found += [p for p in (shutil.which(version), f"/usr/bin/{version}") if p]
    return list(dict.fromkeys(found))


def _copy_sources(dest: Path) -> Path:
    """The sources, world-readable, in `dest` (for a checkout another uid cannot read)."""
    dest.mkdir()
    for name in SOURCES:
        if (REPO_ROOT / name).is_dir():
            shutil.copytree(REPO_ROOT / name, dest / name)
        else:
            shutil.copy2(REPO_ROOT / name, dest / name)
    for where, _, files in os.walk(dest):
        os.chmod(where, 0o755)
        for name in files:
            os.chmod(os.path.join(where, name), 0o644)
    return dest


@pytest.fixture(scope="module")
def nobody() -> Iterator[Runtime]:
    if os.geteuid() != 0:
        pytest.skip("needs root to run the supervisor as another uid (CI runs as root)")
    scratch = Path(tempfile.mkdtemp(prefix="tpu", dir="/tmp"))
    os.chmod(scratch, 0o755)
    base_env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    base_env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # left by a test in this process: root's
    packages = os.pathsep.join(site.getsitepackages())
    why: dict[str, str] = {}
    try:
        for src in (REPO_ROOT, None):
            src = src or _copy_sources(scratch / "src")
            for python in _interpreters():
                env = dict(base_env)
                if python != sys.executable:  # the venv's packages, for another interpreter
                    env["PYTHONPATH"] = packages + os.pathsep + env.get("PYTHONPATH", "")
                problem = _probe(python, src, env)
                if problem is None:
                    yield Runtime(python, src, env)
                    return
                why[f"{python} in {src}"] = problem
        pytest.fail(
            f"uid {NOBODY} cannot run the system (with {packages} on PYTHONPATH for another"
            f" interpreter): make an interpreter and the venv world-readable. Tried: {why}"
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _mount(path: Path, mode: int, gid: int) -> None:
    """A dir as the kubelet makes a volume: root-owned, this group and mode."""
    path.mkdir()
    os.chown(path, 0, gid)
    os.chmod(path, mode)


def _uids(pid: int) -> set[int]:
    proc = psutil.Process(pid)
    return {proc.uids().effective, *(c.uids().effective for c in proc.children(recursive=True))}


MOUNTS = {"emptydir-0777": (0o777, 0), "fsgroup-2770": (0o2770, NOBODY)}


@pytest.mark.parametrize("mount", list(MOUNTS))
def test_an_unprivileged_supervisor_runs_in_runtime_and_state_dirs_mounted_for_root(
    nobody: Runtime, mount: str
) -> None:
    """As uid 65534, with the runtime dir root-owned 0777 (an emptyDir) or root:65534 2770
    (an fsGroup volume) and the state dir root:65534 2770 (a PVC with an fsGroup): the
    system starts, every process runs as that uid, the sockets are in a 0700 dir of its own
    inside the runtime dir (nothing else of it is touched), `runtime_dir_shared` and
    `state_dir_shared` say so once, `status` run as that uid answers, and it stops with
    exit 0; `preflight` as that uid passes both dirs beforehand. Before the shared-dir rule
    it exited 2 at once ("owned by uid 0, not by us")."""
    mode, gid = MOUNTS[mount]
    root = Path(tempfile.mkdtemp(prefix="tpu", dir="/tmp"))
    sut = None
    try:
        os.chmod(root, 0o755)
        sut = SystemUnderTest(venues=("simA",), root=root, env=nobody.env)
        sut.launcher = nobody.launcher()
        os.chmod(sut.config_path, 0o644)
        _mount(sut.runtime_dir, mode, gid)
        _mount(sut.state_dir, 0o2770, NOBODY)
        (sut.runtime_dir / "theirs.txt").write_text("another container's")
        own = sut.runtime_dir / paths.SHARED_SUBDIR
        preflight = nobody.run("preflight", "--json", *sut.cli_args())
        rows = {c["name"]: c for c in json.loads(preflight.stdout)["data"]["checks"]}
        assert rows["runtime_dir"]["status"] == "PASS", rows
        assert f"{own} will be created (0700)" in rows["runtime_dir"]["detail"]
        assert rows["state_dir"]["status"] == "PASS", rows
        sut.start(timeout_s=60)
        assert sut.proc is not None
        assert _uids(sut.proc.pid) == {NOBODY}

        assert sut.cfg.runtime_path == own
        st = os.lstat(own)
        assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (NOBODY, 0o700)
        assert stat.S_ISSOCK(os.lstat(paths.socket_file(own, paths.CONTROL)).st_mode)
        assert sorted(p.name for p in sut.runtime_dir.iterdir()) == ["theirs.txt", "tp"]
        assert (sut.runtime_dir / "theirs.txt").read_text() == "another container's"
        mounted = os.lstat(sut.runtime_dir)  # the mount itself is left as it was
        assert (mounted.st_uid, mounted.st_gid, stat.S_IMODE(mounted.st_mode)) == (0, gid, mode)

        [shared] = sut.events("runtime_dir_shared")
        assert shared["owner_uid"] == 0 and shared["mode"] == f"{mode:o}"
        assert shared["private_dir"] == str(own) and shared["dir"] == str(sut.runtime_dir)
        [state] = sut.events("state_dir_shared")
        assert state["owner_uid"] == 0 and state["mode"] == "2770"
        lock = os.lstat(paths.supervisor_lock(sut.state_dir))
        assert (lock.st_uid, stat.S_IMODE(lock.st_mode)) == (NOBODY, 0o600)

        status = nobody.run("status", "--json", *sut.cli_args())
        assert status.returncode == 0, status.stderr
        assert '"running"' in status.stdout
        assert sut.stop() == 0
    finally:
        if sut is not None:
            sut.destroy()
        shutil.rmtree(root, ignore_errors=True)
