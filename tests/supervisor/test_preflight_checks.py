"""The checks of `tradepulse preflight` (actors/supervisor/preflight_checks.py) on their own:
real dirs, sockets and flocks in a temp dir, an injected free-space probe for the disk."""

from __future__ import annotations

import fcntl
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actors.risk import killswitch
from actors.supervisor import preflight_checks as pf
from actors.supervisor.commands.preflight import envelope, format_checks
from actors.supervisor.failclosed import marker_path
from protocol import paths
from protocol.config import SystemConfig, parse_config

NOBODY = 65534


def _cfg(tmp_path: Path, **over: Any) -> SystemConfig:
    venues = over.pop("venues", [{"name": "simA", "sim": {}}])
    system = {"state_dir": str(tmp_path / "state"), "runtime_dir": str(tmp_path / "rt")}
    return parse_config({"system": system | over.pop("system", {}), "venues": venues, **over})


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A listening TCP socket on a free loopback port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield sock
    sock.close()


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port bound by us but not listening: a connect to it is refused, and no
    other process can take it during the test."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    yield sock.getsockname()[1]
    sock.close()


def _by_name(checks: list[pf.Check]) -> dict[str, pf.Check]:
    return {c.name: c for c in checks}


def test_every_missing_credential_is_listed_and_no_value_is_shown(tmp_path: Path) -> None:
    """Two venues, three variables unset of four: one FAIL row per venue naming each unset
    variable with its field; a set variable's value appears nowhere."""
    venues = [
        {"name": "a", "port": 1, "username_env": "TP_A_USER", "password_env": "TP_A_PW"},
        {"name": "b", "port": 1, "username_env": "TP_B_USER", "password_env": "TP_B_PW"},
        {"name": "c", "port": 1},
    ]
    cfg = _cfg(tmp_path, venues=venues)
    rows = _by_name(pf.credential_checks(cfg, {"TP_A_USER": "s3cret-user"}))
    assert set(rows) == {"credentials:a", "credentials:b"}
    assert rows["credentials:a"].status == "FAIL"
    assert rows["credentials:a"].detail == "not set: TP_A_PW (venues[a].password_env)"
    assert rows["credentials:b"].detail == (
        "not set: TP_B_USER (venues[b].username_env), TP_B_PW (venues[b].password_env)"
    )
    assert "s3cret-user" not in repr(rows)
    env = {"TP_A_USER": "u", "TP_A_PW": "p", "TP_B_USER": "u", "TP_B_PW": "p"}
    assert all(c.status == "PASS" for c in pf.credential_checks(cfg, env))
    [none] = pf.credential_checks(_cfg(tmp_path), {})
    assert (none.name, none.status) == ("credentials", "PASS")


def test_a_tls_file_that_does_not_load_fails_naming_the_field(tmp_path: Path) -> None:
    venues = [{"name": "x", "port": 1, "tls": {"ca_file": str(tmp_path / "no-ca.pem")}}]
    [row] = pf.tls_checks(_cfg(tmp_path, venues=venues))
    assert row.name == "tls:x" and row.status == "FAIL" and "venues[x].tls" in row.detail
    assert pf.tls_checks(_cfg(tmp_path))[0].status == "PASS"


def test_dirs_that_do_not_exist_yet_pass_and_are_not_created(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    assert pf.state_dir_check(cfg).status == "PASS"
    assert pf.runtime_dir_check(cfg).status == "PASS"
    assert pf.kill_switch_check(cfg).status == "PASS"
    assert not cfg.state_path.exists() and not cfg.runtime_path.exists()


def test_dirs_under_a_regular_file_fail_naming_it(tmp_path: Path) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("")
    system = {"state_dir": str(blocker / "state"), "runtime_dir": str(blocker / "rt")}
    cfg = _cfg(tmp_path, system=system)
    for row in (pf.state_dir_check(cfg), pf.runtime_dir_check(cfg)):
        assert row.status == "FAIL" and f"{blocker} is not a directory" in row.detail, row
    assert pf.kill_switch_check(cfg).status == "PASS"  # no state yet: nothing engaged
    cfg = _cfg(tmp_path, system={"state_dir": str(blocker)})
    assert pf.state_dir_check(cfg) == pf.Check("state_dir", "FAIL", f"{blocker} is not a directory")


def test_runtime_dirs_run_refuses_fail(tmp_path: Path) -> None:
    """A symlink, a shared dir of another (non-root) user, a `metrics/` without the system's
    marker: what `prepare_runtime_dir` refuses with exit 2 is a FAIL, and nothing in it is
    changed."""
    cfg = _cfg(tmp_path)
    rt = cfg.runtime_path
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    rt.symlink_to(target)
    assert "symlink" in pf.runtime_dir_check(cfg).detail
    rt.unlink()
    rt.mkdir()
    os.chmod(rt, 0o775)
    if os.geteuid() == 0:  # chown needs root
        os.chown(rt, NOBODY, NOBODY)
        row = pf.runtime_dir_check(cfg)
        assert row.status == "FAIL" and f"owned by uid {NOBODY}, who could" in row.detail
        os.chown(rt, os.geteuid(), os.getegid())
    os.chmod(rt, 0o700)
    (rt / "metrics").mkdir()
    row = pf.runtime_dir_check(cfg)
    assert row.status == "FAIL" and "not created by tradepulse" in row.detail
    (rt / "metrics" / paths.METRICS_MARKER).touch()
    assert pf.runtime_dir_check(cfg).status == "PASS"
    assert sorted(p.name for p in rt.iterdir()) == ["metrics"]  # the probe file is gone


def test_a_shared_runtime_dir_is_checked_through_the_private_dir_run_makes_in_it(
    tmp_path: Path,
) -> None:
    """A shared runtime dir (0777, like an emptyDir) passes, naming the 0700 dir `run`
    creates in it (not created here); once it exists, that dir is what is checked: another
    user's (or a group-writable one) fails."""
    cfg = _cfg(tmp_path)
    base = cfg.runtime_base
    base.mkdir()
    os.chmod(base, 0o777)
    row = pf.runtime_dir_check(cfg)
    own = base / paths.SHARED_SUBDIR
    assert row.status == "PASS" and f"{own} will be created (0700)" in row.detail, row
    assert "mode 777" in row.detail and list(base.iterdir()) == []
    own.mkdir(mode=0o700)
    assert pf.runtime_dir_check(cfg) == pf.Check(
        "runtime_dir", "PASS", f"{own} private and writable"
    )
    os.chmod(own, 0o770)
    row = pf.runtime_dir_check(cfg)
    assert row.status == "FAIL" and "writable by group or others" in row.detail


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another uid needs root")
def test_a_state_dir_mounted_for_root_passes_and_one_shared_by_another_user_fails(
    tmp_path: Path,
) -> None:
    """Root-owned and group-writable (a volume with an fsGroup): PASS, its files will be
    private; the same dir owned by another non-root user: FAIL naming the owner."""
    cfg = _cfg(tmp_path)
    state = cfg.state_path
    state.mkdir()
    os.chmod(state, 0o2770)
    os.chown(state, 0, NOBODY)
    row = pf.state_dir_check(cfg)
    assert row.status == "PASS", row
    os.chown(state, NOBODY, NOBODY)
    row = pf.state_dir_check(cfg)
    assert row.status == "FAIL" and f"owned by uid {NOBODY}, who could" in row.detail, row


def test_a_held_state_dir_lock_is_a_running_supervisor(tmp_path: Path) -> None:
    """While another process holds the lock (as a running supervisor does), FAIL naming the
    pid it wrote; the probe takes no lasting lock (the holder's is untouched, and once it
    is released an exclusive lock can be taken at once)."""
    cfg = _cfg(tmp_path)
    assert pf.supervisor_check(cfg).status == "PASS"  # no lock file: not even created
    assert not cfg.state_path.exists()
    cfg.state_path.mkdir()
    lock = paths.supervisor_lock(cfg.state_path)
    lock.write_text("4242\n")
    holder = os.open(lock, os.O_RDWR)  # a separate open file description: its own flock
    fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        row = pf.supervisor_check(cfg)
        assert row.status == "FAIL" and "pid 4242" in row.detail and "exit 3" in row.detail
    finally:
        os.close(holder)
    assert pf.supervisor_check(cfg).status == "PASS"
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises if the probe kept a lock
    finally:
        os.close(fd)


def test_metrics_port_held_by_a_listener_fails_and_a_free_one_passes(
    tmp_path: Path, listener: socket.socket
) -> None:
    port = listener.getsockname()[1]
    row = pf.metrics_port_check(_cfg(tmp_path, metrics={"port": port}))
    assert row.status == "FAIL" and f"127.0.0.1:{port}" in row.detail
    assert "metrics.port" in row.detail and "in use" in row.detail
    assert pf.metrics_port_check(_cfg(tmp_path, metrics={"port": 0})).status == "PASS"
    listener.close()
    assert pf.port_problem("127.0.0.1", port) is None  # released: the probe did not keep it
    assert pf.port_problem("127.0.0.1", port) is None


def test_venue_connect_passes_fails_or_skips_an_embedded_simulator(
    tmp_path: Path, listener: socket.socket, closed_port: int
) -> None:
    up = _cfg(tmp_path, venues=[{"name": "up", "port": listener.getsockname()[1]}])
    row = pf.venue_check(up.venues[0], timeout_s=5)
    assert row.status == "PASS" and "accepts TCP" in row.detail
    down = _cfg(tmp_path, venues=[{"name": "down", "port": closed_port}])
    row = pf.venue_check(down.venues[0], timeout_s=5)
    assert row == pf.Check("venue:down", "FAIL", f"127.0.0.1:{closed_port}: connection refused")
    sim = pf.venue_check(_cfg(tmp_path).venues[0])
    assert sim == pf.Check("venue:simA", "SKIP", sim.detail) and "embedded simulator" in sim.detail
    nowhere = _cfg(tmp_path, venues=[{"name": "zero"}]).venues[0]
    assert pf.venue_check(nowhere).status == "FAIL"
    bad_host = _cfg(tmp_path, venues=[{"name": "h", "host": "no-such-host.invalid", "port": 1}])
    row = pf.venue_check(bad_host.venues[0], timeout_s=5)
    assert row.status == "FAIL" and "cannot resolve no-such-host.invalid" in row.detail


def test_disk_below_the_named_need_fails(tmp_path: Path) -> None:
    """The need is the journal reserve + the FIX message log caps (twice for a simulated
    venue) + the log files + the kept bundles + a bundle's staging + the margin, each
    named in the detail; one byte less free is a FAIL."""
    cfg = _cfg(tmp_path, venues=[{"name": "simA", "sim": {}}, {"name": "real", "port": 1}])
    cap = cfg.venues[0].message_log.max_file_bytes * cfg.venues[0].message_log.keep_files
    log = cfg.logging
    need = cfg.oms.journal_reserve_bytes + 3 * cap + pf.DISK_MARGIN_BYTES
    need += log.max_file_bytes * log.keep_files  # the log files
    need += log.postmortem_max_bytes * log.postmortem_keep  # the kept bundles
    need += log.postmortem_max_bytes * (6 + 1)  # staging: 1.5 x 4 files + the archive
    assert pf.disk_needed(cfg) == need
    assert pf.disk_check(cfg, lambda _p: need).status == "PASS"
    row = pf.disk_check(cfg, lambda _p: need - 1)
    assert row.status == "FAIL" and str(tmp_path) in row.detail
    for part in ("journal reserve", "FIX message logs", "log files", "kept bundles", "staging"):
        assert part in row.detail, row.detail
    assert pf.disk_check(cfg).status == "PASS"  # the real probe, on the nearest existing dir
    quiet = cfg.model_copy(
        update={
            "logging": log.model_copy(update={"file": False, "postmortem_on_kill_switch": False})
        }
    )
    assert pf.disk_needed(quiet) == cfg.oms.journal_reserve_bytes + 3 * cap + pf.DISK_MARGIN_BYTES


def test_an_engaged_kill_switch_is_a_warning_with_its_reason(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    path = paths.kill_switch_path(cfg.state_path)
    killswitch.engage(path, "desk: fat finger on simA", "operator")
    row = pf.kill_switch_check(cfg)
    assert row.status == "WARN" and "ENGAGED" in row.detail
    assert "operator: desk: fat finger on simA" in row.detail
    killswitch.reset(path, "understood", operator="ops")
    assert pf.kill_switch_check(cfg) == pf.Check("kill_switch", "PASS", "off")
    marker_path(cfg.state_path).write_text("oms over its restart budget")
    row = pf.kill_switch_check(cfg)
    assert row.status == "WARN" and "unclean critical exit" in row.detail


def test_table_and_envelope_say_failed_only_for_a_fail() -> None:
    checks = [
        pf.Check("config", "PASS", "ok"),
        pf.Check("venue:simA", "SKIP", "embedded simulator, skipped"),
        pf.Check("kill_switch", "WARN", "ENGAGED"),
    ]
    text = format_checks(checks)
    assert text.splitlines()[0].split() == ["CHECK", "RESULT", "DETAIL"]
    assert text.splitlines()[-1] == "preflight passed: 3 checks, 1 warning(s)"
    assert envelope(checks)["status"] == "ok"
    failed = [*checks, pf.Check("disk", "FAIL", "full")]
    assert envelope(failed)["status"] == "error"
    assert format_checks(failed).splitlines()[-1].startswith("preflight FAILED: 1 of 4")


def test_the_metrics_bind_itself_names_a_taken_port(
    tmp_path: Path, listener: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Taken between `run`'s probe and the bind: still a ConfigError naming metrics.port
    (one line, exit 2 at the CLI), not an OSError traceback."""
    from actors.supervisor.host import start_metrics_server
    from protocol.exceptions import ConfigError

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    port = listener.getsockname()[1]
    with pytest.raises(ConfigError) as info:
        start_metrics_server(_cfg(tmp_path, metrics={"port": port}))
    assert info.value.field == "metrics.port" and f"127.0.0.1:{port}" in str(info.value)


class _Denied(type(Path())):  # type: ignore[misc]  # a concrete Path class to subclass
    """A path whose checks fail as in a state dir this user cannot enter (tests run as
    root, who enters every dir)."""

    def exists(self, **_: Any) -> bool:
        raise PermissionError(13, "Permission denied", str(self))

    def is_file(self, **_: Any) -> bool:
        raise PermissionError(13, "Permission denied", str(self))


@pytest.mark.parametrize("denied", ["marker", "kill_switch_file"])
def test_a_state_dir_this_user_cannot_enter_is_a_fail_row_not_a_lost_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, denied: str
) -> None:
    """PermissionError from the kill-switch check: a FAIL row naming the path and what to
    do; every other check is still in the table."""
    cfg = _cfg(tmp_path)
    if denied == "marker":
        monkeypatch.setattr(pf, "marker_path", lambda state: _Denied(state) / "unclean")
    else:
        monkeypatch.setattr(paths, "kill_switch_path", lambda state: _Denied(state) / "ks")
    checks = pf.run_checks(cfg, environ={})
    row = _by_name(checks)["kill_switch"]
    assert row.status == "FAIL" and "Permission denied" in row.detail
    assert str(cfg.state_path) in row.detail and "run preflight as the service user" in row.detail
    assert {"state_dir", "runtime_dir", "metrics_port", "disk"} <= _by_name(checks).keys()


def _placed(tmp_path: Path, port: int, *, plaintext: bool = False) -> SystemConfig:
    from protocol.curve_keys import generate

    keys = tmp_path / "keys"
    if not plaintext:
        generate(keys, "core")
        generate(keys, "edge-a")
    endpoint = f"tcp://127.0.0.1:{port}"
    link: dict[str, Any] = {"bind": endpoint, "connect": endpoint}
    link |= {"allow_plaintext": True} if plaintext else {"keys_dir": str(keys)}
    return _cfg(
        tmp_path,
        link=link,
        venues=[
            {"name": "edgev", "host_group": "edge-a", "port": 1, "password_env": "TP_EDGE_PW"},
            {"name": "corev", "sim": {}},
        ],
    )


def _row(checks: list[pf.Check], name: str) -> pf.Check | None:
    return next((c for c in checks if c.name == name), None)


def test_each_host_group_checks_its_own_venues_and_its_end_of_the_link(
    tmp_path: Path, listener: socket.socket
) -> None:
    """The core asks no credential of a venue placed on an edge, and checks its link keys
    and listening port; the edge checks its venue's credentials, its keys and that the
    core's endpoint accepts tcp (here the listener: the port the core would bind is taken,
    which the core's row reports)."""
    cfg = _placed(tmp_path, listener.getsockname()[1])
    core = pf.run_checks(cfg, environ={}, host_group="core")
    assert _row(core, "credentials:edgev") is None and _row(core, "venue:edgev") is None
    keys = _row(core, "link_keys")
    assert keys is not None and keys.status == "PASS" and "accepts edge-a" in keys.detail
    bind = _row(core, "link_bind")
    assert bind is not None and bind.status == "FAIL" and "cannot listen" in bind.detail
    edge = pf.run_checks(cfg, environ={}, host_group="edge-a")
    cred = next(c for c in edge if c.name.startswith("credentials"))
    assert cred.status == "FAIL" and "TP_EDGE_PW" in cred.detail
    connect = _row(edge, "link_connect")
    assert connect is not None and connect.status == "PASS"
    assert _row(edge, "venue:corev") is None


def test_link_rows_fail_on_an_open_secret_and_warn_in_plaintext(tmp_path: Path) -> None:
    cfg = _placed(tmp_path, 1)
    os.chmod(tmp_path / "keys" / "edge-a.key_secret", 0o640)
    edge = pf.run_checks(cfg, environ={"TP_EDGE_PW": "x"}, host_group="edge-a")
    keys = _row(edge, "link_keys")
    assert keys is not None and keys.status == "FAIL" and "chmod 600" in keys.detail
    connect = _row(edge, "link_connect")
    assert connect is not None and connect.status == "FAIL"
    plain = pf.run_checks(_placed(tmp_path / "p", 1, plaintext=True), environ={})
    row = _row(plain, "link_keys")
    assert row is not None and row.status == "WARN"


def test_a_single_host_has_no_link_rows(tmp_path: Path) -> None:
    checks = pf.run_checks(_cfg(tmp_path), environ={})
    assert not [c for c in checks if c.name.startswith("link")]


def test_a_placement_too_big_for_one_link_fails_its_row() -> None:
    """62 venues on edge-a: that edge's link would need more sockets than a process holds
    (`run` refuses it, exit 2); the core's end of the same placement fits."""
    link = {"bind": "tcp://127.0.0.1:1", "connect": "tcp://127.0.0.1:1", "allow_plaintext": True}
    venues = [{"name": f"v{i}", "host_group": "edge-a"} for i in range(62)]
    cfg = parse_config({"link": link, "venues": venues})
    rows = {c.name: c for c in pf.link_checks(cfg, "edge-a", 0.5)}
    assert rows["link_size"].status == "FAIL" and "62 venues on edge-a" in rows["link_size"].detail
    assert "link_size" not in {c.name for c in pf.link_checks(cfg, "core", 0.5)}


def test_a_host_group_run_refuses_is_a_config_error_not_a_pass(
    short_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`run --host-group edge-x` with no venue placed on edge-x exits 2 (config error);
    preflight of that start said "preflight passed" (exit 0, no venue checked). It now
    refuses it as `run` does: one line, exit 2, no table."""
    import supervisor

    config = short_tmp / "tp.toml"
    config.write_text(
        f'[system]\nstate_dir = "{short_tmp / "state"}"\nruntime_dir = "{short_tmp / "rt"}"\n'
        '[metrics]\nport = 0\n[[venues]]\nname = "simA"\n[venues.sim]\n'
    )
    argv = ["preflight", "--config", str(config), "--host-group", "edge-x"]
    assert supervisor.main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == (
        "tradepulse: config error: host_group: 'edge-x': no venue is placed on it (edges: none)\n"
    )
