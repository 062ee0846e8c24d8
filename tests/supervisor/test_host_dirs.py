"""Which runtime and state dirs the supervisor uses (actors/supervisor/host.py): the rule
for a shared dir (group- or other-writable) on made-up stat results, then on real dirs.

The rule: a private dir (no group/other write bit) must be ours, and is the runtime dir; a
shared one (a Kubernetes emptyDir, root-owned 0777; an fsGroup volume, root:gid 2770) must
belong to root or to us, and holds our own 0700 `tp/`; a shared dir of another non-root
user is refused (its owner can replace anything in it, sticky bit or not)."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Any

import pytest

from actors.supervisor.host import (
    check_owner,
    lock_state_dir,
    prepare_runtime_dir,
    runtime_dir_is_shared,
    shared_dir_fields,
)
from protocol import paths
from protocol.config import SystemConfig, load_config, parse_config
from protocol.exceptions import ConfigError
from tests.helpers import SUPERVISOR, run_python

ME = 1000
NOBODY = 65534
P = Path("/run/tp")
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown to another uid needs root")


def _st(mode: int, uid: int, kind: int = stat.S_IFDIR) -> os.stat_result:
    return os.stat_result((kind | mode, 1, 1, 1, uid, uid, 0, 0, 0, 0))


@pytest.mark.parametrize(
    ("mode", "uid", "shared"),
    [
        (0o700, ME, False),  # ours, private: the dir itself
        (0o755, ME, False),
        (0o777, 0, True),  # an emptyDir
        (0o2770, 0, True),  # an fsGroup volume
        (0o2777, 0, True),  # an emptyDir with an fsGroup
        (0o1777, 0, True),  # /tmp
        (0o770, ME, True),  # ours, but the group can write: our tp/ inside
        (0o777, ME, True),
    ],
)
def test_a_dir_is_shared_when_someone_besides_its_owner_can_write_it(
    mode: int, uid: int, shared: bool
) -> None:
    assert runtime_dir_is_shared(_st(mode, uid), P, euid=ME) is shared


@pytest.mark.parametrize("mode", [0o777, 0o1777, 0o2770, 0o775, 0o757])
def test_a_shared_dir_of_another_non_root_user_is_refused_sticky_or_not(mode: int) -> None:
    with pytest.raises(ConfigError, match=f"owned by uid {NOBODY}, who could replace") as exc:
        runtime_dir_is_shared(_st(mode, NOBODY), P, euid=ME)
    assert exc.value.field == "system.runtime_dir"
    assert f"mode {mode:o}" in str(exc.value)


@pytest.mark.parametrize(
    ("st", "why"),
    [
        (_st(0o777, ME, stat.S_IFLNK), "is a symlink"),
        (_st(0o644, ME, stat.S_IFREG), "is not a directory"),
    ],
)
def test_a_symlink_or_a_file_is_refused(st: os.stat_result, why: str) -> None:
    with pytest.raises(ConfigError, match=why):
        runtime_dir_is_shared(st, P, euid=ME)


def test_a_private_dir_of_another_user_is_left_to_the_private_dir_check() -> None:
    """Not shared, not refused here: `_private_dir` refuses it (owned by another uid), so
    a root-run supervisor may still use a 0700 dir of root's."""
    assert runtime_dir_is_shared(_st(0o700, NOBODY), P, euid=ME) is False
    check_owner(_st(0o700, NOBODY), P, "system.state_dir", euid=ME)  # no error


def test_the_owner_rule_names_the_key_it_is_checked_for() -> None:
    with pytest.raises(ConfigError) as exc:
        check_owner(_st(0o2770, NOBODY), P, "system.state_dir", euid=ME)
    assert exc.value.field == "system.state_dir"
    check_owner(_st(0o2770, 0), P, "system.state_dir", euid=ME)
    check_owner(_st(0o777, ME), P, "system.state_dir", euid=ME)


def test_runtime_files_are_in_tp_of_a_shared_dir_and_in_a_private_one_itself(
    tmp_path: Path,
) -> None:
    """The path every process computes from the dir's mode alone (no owner involved)."""
    rt = tmp_path / "rt"
    assert paths.runtime_files_dir(rt) == rt  # absent: created private
    rt.mkdir(mode=0o700)
    assert paths.runtime_files_dir(rt) == rt
    os.chmod(rt, 0o2770)
    assert paths.runtime_files_dir(rt) == rt / paths.SHARED_SUBDIR
    link = tmp_path / "link"
    link.symlink_to(rt)
    assert paths.runtime_files_dir(link) == link  # not followed (refused at start)


# ------------------------------------------------------------------ real dirs


def _cfg(root: Path, **system: Any) -> SystemConfig:
    base = {"state_dir": str(root / "state"), "runtime_dir": str(root / "rt")}
    return parse_config({"system": base | system, "venues": [{"name": "simA", "sim": {}}]})


@pytest.fixture
def env_kept() -> Any:
    """prepare_runtime_dir sets PROMETHEUS_MULTIPROC_DIR: put it back."""
    before = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    yield
    if before is None:
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    else:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = before


@pytest.mark.usefixtures("env_kept")
def test_a_shared_runtime_dir_gets_a_private_tp_and_nothing_else_in_it_changes(
    tmp_path: Path,
) -> None:
    """0777 (an emptyDir): tp/ is made 0700 with the metrics dir in it, the sockets go
    there (`cfg.runtime_path`), the shared dir keeps its mode and others' files (a
    `control.sock` of someone else's included)."""
    cfg = _cfg(tmp_path)
    rt = cfg.runtime_base
    rt.mkdir()
    os.chmod(rt, 0o777)
    (rt / "control.sock").write_text("theirs")
    made = prepare_runtime_dir(cfg)
    own = rt / paths.SHARED_SUBDIR
    assert made == own == cfg.runtime_path
    assert cfg.endpoint(paths.CONTROL) == f"ipc://{own}/control.sock"
    assert stat.S_IMODE(own.stat().st_mode) == 0o700
    assert (paths.metrics_dir(own) / paths.METRICS_MARKER).is_file()
    assert stat.S_IMODE(rt.stat().st_mode) == 0o777
    assert (rt / "control.sock").read_text() == "theirs"
    fields = shared_dir_fields(rt)
    assert fields == {"dir": str(rt), "owner_uid": os.geteuid(), "mode": "777", "sticky": False}
    assert shared_dir_fields(own) is None  # private and ours: nothing to say


@pytest.mark.usefixtures("env_kept")
def test_in_a_setgid_group_dir_tp_loses_the_group_bits(tmp_path: Path) -> None:
    """2770 (an fsGroup volume): tp/ inherits setgid from it; it ends 0700 all the same."""
    cfg = _cfg(tmp_path)
    cfg.runtime_base.mkdir()
    os.chmod(cfg.runtime_base, 0o2770)
    own = prepare_runtime_dir(cfg)
    assert stat.S_IMODE(own.stat().st_mode) == 0o700


@pytest.mark.usefixtures("env_kept")
@pytest.mark.parametrize("left", ["file", "dir"])
def test_a_fresh_run_forgets_the_heartbeats_compared_times(tmp_path: Path, left: str) -> None:
    """The heartbeat's compared times are one run's worth: a new supervisor run removes the
    file an earlier run left (its heartbeat watches every venue from its start), nothing
    else; a directory of that name (not ours to remove) is left, the start not failing."""
    cfg = _cfg(tmp_path)
    rt = cfg.runtime_base
    rt.mkdir(mode=0o700)
    compared = paths.heartbeat_compared_path(rt)
    if left == "file":
        compared.write_text('{"version": 1, "venues": {"simA": 1.0}}')
    else:
        compared.mkdir()
    (rt / "other.json").write_text("kept")
    assert prepare_runtime_dir(cfg) == rt
    assert compared.is_dir() if left == "dir" else not compared.exists()
    assert (rt / "other.json").read_text() == "kept"


@as_root
@pytest.mark.usefixtures("env_kept")
@pytest.mark.parametrize("kind", ["another user's dir", "a symlink", "group-writable"])
def test_a_tp_that_is_not_our_private_dir_is_refused(tmp_path: Path, kind: str) -> None:
    """Someone who can write the shared dir made tp/ first: refused, not used or changed."""
    cfg = _cfg(tmp_path)
    rt = cfg.runtime_base
    rt.mkdir()
    os.chmod(rt, 0o1777)
    own = rt / paths.SHARED_SUBDIR
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    if kind == "a symlink":
        own.symlink_to(elsewhere)
    else:
        own.mkdir()
        os.chmod(own, 0o770 if kind == "group-writable" else 0o700)
        if kind == "another user's dir":
            os.chown(own, NOBODY, NOBODY)
    why = {"a symlink": "symlink", "group-writable": "writable by group or others"}
    with pytest.raises(ConfigError, match=why.get(kind, f"owned by uid {NOBODY}")):
        prepare_runtime_dir(cfg)
    assert list(elsewhere.iterdir()) == []
    if kind != "a symlink":
        assert list(own.iterdir()) == []


@as_root
def test_a_state_dir_shared_by_another_user_is_refused_and_one_of_roots_is_used(
    tmp_path: Path,
) -> None:
    cfg = _cfg(tmp_path)
    state = cfg.state_path
    state.mkdir()
    os.chmod(state, 0o2770)
    os.chown(state, NOBODY, NOBODY)
    with pytest.raises(ConfigError, match=f"system.state_dir: .* owned by uid {NOBODY}"):
        lock_state_dir(cfg)
    assert not paths.supervisor_lock(state).exists()
    os.chown(state, 0, NOBODY)
    fd = lock_state_dir(cfg)
    os.close(fd)
    assert stat.S_IMODE(state.stat().st_mode) == 0o700  # ours (root runs the test): tightened


def test_the_ipc_length_guard_counts_tp_in_a_shared_dir(tmp_path: Path) -> None:
    """A runtime dir whose endpoints just fit is too long once it is shared (tp/ added)."""
    config = tmp_path / "config.toml"
    config.write_text('[[venues]]\nname = "simA"\n[venues.sim]\n')
    probe = Path(tempfile.mkdtemp(prefix="tp", dir="/tmp"))
    try:
        longest = "ipc://" + str(probe / "x") + "/connector." + "X" * 24 + ".sock"
        rt = probe / ("x" * (1 + 106 - len(longest)))  # endpoints of 106 chars
        rt.mkdir(mode=0o700)
        load_config(config, state_dir=str(tmp_path / "state"), runtime_dir=str(rt))
        os.chmod(rt, 0o777)
        with pytest.raises(ConfigError, match="system.runtime_dir: too long"):
            load_config(config, state_dir=str(tmp_path / "state"), runtime_dir=str(rt))
    finally:
        shutil.rmtree(probe)


@as_root
def test_an_offline_command_on_a_state_dir_shared_by_another_user_exits_2(
    tmp_path: Path,
) -> None:
    """`fix seq` with no supervisor running takes the state dir's lock itself: the same
    refusal as `run`, one line and exit 2 (not a traceback)."""
    config = tmp_path / "config.toml"
    config.write_text('[[venues]]\nname = "simA"\n[venues.sim]\n')
    state, rt = tmp_path / "state", Path(tempfile.mkdtemp(prefix="tp", dir="/tmp"))
    state.mkdir()
    os.chmod(state, 0o2770)
    os.chown(state, NOBODY, NOBODY)
    try:
        args = ["fix", "seq", "--venue", "simA", "--next-in", "5", "--reason", "test"]
        args += ["--config", str(config), "--state-dir", str(state), "--runtime-dir", str(rt)]
        done = run_python([str(SUPERVISOR), *args], timeout_s=60)
    finally:
        shutil.rmtree(rt)
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.splitlines()
    assert "system.state_dir" in line and f"owned by uid {NOBODY}, who could" in line
