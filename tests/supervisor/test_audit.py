"""The audit log and the operator identity: JSON lines, private, durable, bounded by
rotation; a write that fails is counted and never raises; read-only views are not audited;
the identity comes from the peer address only."""

from __future__ import annotations

import json
import os
import pwd
import stat
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import structlog
from prometheus_client import REGISTRY

from actors.supervisor.audit import (
    AuditLog,
    is_read_only,
    login_uid,
    operator_from_peer,
    parse_loginuid,
    user_name,
)
from protocol import commands as wire

LOG = structlog.get_logger().bind(actor="supervisor")


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_command_is_appended_as_one_private_json_line(tmp_path: Path) -> None:
    """Record fields: command, args, uid, user, pid, reason, result; the file is 0600 in a
    0700 dir created on first use."""
    path = tmp_path / "audit" / "operator.jsonl"
    audit = AuditLog(path, LOG)
    op = wire.OperatorId(uid=1000, user="alice", pid=42)
    audit.command(wire.Restart(actor="oms", reason="stuck"), op, "ok", "oms restarting")
    audit.command(wire.KillSwitch(action="engage", reason="drill"), op, "ok", "engaged")
    first, second = lines(path)
    assert first["command"] == "restart" and first["args"] == {
        "actor": "oms", "force": False, "reason": "stuck", "override_stop": False
    }  # fmt: skip
    assert (first["uid"], first["user"], first["pid"], first["reason"]) == (
        1000,
        "alice",
        42,
        "stuck",
    )
    assert (first["result"], first["detail"]) == ("ok", "oms restarting")
    assert second["command"] == "kill-switch" and str(second["ts"]).endswith("Z")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_read_only_views_are_not_audited(tmp_path: Path) -> None:
    path = tmp_path / "operator.jsonl"
    audit = AuditLog(path, LOG)
    for command in (wire.Status(), wire.Exposure(), wire.KillSwitch(action="status")):
        assert is_read_only(command)
        audit.command(command, None, "ok", "")
    assert not path.exists()
    assert not is_read_only(wire.Intake(action="pause", reason="drill"))
    assert not is_read_only(wire.Reload())


def test_the_file_rotates_and_keeps_at_most_keep_files(tmp_path: Path) -> None:
    """Past max_bytes the file moves to .1 (.1 to .2, ...); the oldest beyond `keep` goes;
    no record is lost from the files kept, and none is split."""
    path = tmp_path / "operator.jsonl"
    audit = AuditLog(path, LOG, max_bytes=400, keep=3)
    for i in range(40):
        assert audit.append({"n": i, "pad": "x" * 50})
    files = sorted(tmp_path.iterdir())
    assert [f.name for f in files] == ["operator.jsonl", "operator.jsonl.1", "operator.jsonl.2"]
    assert all(f.stat().st_size <= 400 for f in files)
    kept = [r["n"] for f in reversed(files) for r in lines(f)]
    assert kept == list(range(40 - len(kept), 40))  # the newest, in order, contiguous


def test_a_write_that_fails_is_counted_and_does_not_raise(tmp_path: Path) -> None:
    blocker = tmp_path / "audit"
    blocker.write_text("a file where the dir should be")
    audit = AuditLog(blocker / "operator.jsonl", LOG)
    before = REGISTRY.get_sample_value("tradepulse_audit_write_failures_total") or 0.0
    audit.command(wire.Reload(reason="x"), None, "ok", "")
    after = REGISTRY.get_sample_value("tradepulse_audit_write_failures_total")
    assert after == before + 1


def test_the_identity_comes_from_the_peer_address() -> None:
    """libzmq's ipc peer address `localhost:uid:gid:pid`; anything else: unknown."""
    uid = os.getuid()
    op = operator_from_peer(f"localhost:{uid}:{os.getgid()}:{os.getpid()}")
    assert (op.uid, op.user, op.pid) == (uid, pwd.getpwuid(uid).pw_name, os.getpid())
    assert op.describe() == f"{op.user} (uid {uid}, pid {os.getpid()})"
    for bad in (None, "", "tcp://127.0.0.1:5555", "localhost:a:b:c"):
        assert operator_from_peer(bad) == wire.OperatorId()


@pytest.mark.parametrize("uid", [2**31 - 7, 987654])
def test_a_uid_without_a_passwd_entry_is_named_by_its_number(uid: int) -> None:
    try:
        pwd.getpwuid(uid)
    except KeyError:
        assert user_name(uid) == str(uid)
    else:
        pytest.skip("uid exists here")


def test_the_user_name_is_looked_up_once_per_uid(monkeypatch: pytest.MonkeyPatch) -> None:
    """`top` polls status every second: the passwd lookup (NSS, maybe LDAP) is cached per
    uid, bounded."""
    calls: list[int] = []

    def getpwuid(uid: int) -> Any:
        calls.append(uid)
        return SimpleNamespace(pw_name=f"user{uid}")

    monkeypatch.setattr("actors.supervisor.audit.pwd.getpwuid", getpwuid)
    user_name.cache_clear()
    try:
        names = [user_name(u) for u in (4001, 4001, 4002, 4001)]
        assert names == ["user4001", "user4001", "user4002", "user4001"]
        assert calls == [4001, 4002]
        assert user_name.cache_info().maxsize is not None  # bounded
    finally:
        user_name.cache_clear()


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1000", 1000), ("0\n", 0), ("4294967295", None), ("-1", None), ("", None), ("x", None)],
)
def test_the_login_uid_is_parsed_with_unset_as_none(text: str, expected: int | None) -> None:
    assert parse_loginuid(text) == expected


def test_the_login_user_is_recorded_and_named_when_it_differs(tmp_path: Path) -> None:
    """`sudo -u tradepulse`: uid is the service account, the login uid the person; both go
    to the audit record, and `describe` names the login when it differs."""
    op = wire.OperatorId(uid=990, user="tradepulse", pid=42, login_uid=1000, login_user="alice")
    assert op.describe() == "tradepulse (uid 990, pid 42, login alice)"
    same = wire.OperatorId(uid=1000, user="alice", pid=42, login_uid=1000, login_user="alice")
    assert same.describe() == "alice (uid 1000, pid 42)"
    audit = AuditLog(tmp_path / "audit" / "operator.jsonl", structlog.get_logger())
    audit.command(wire.Restart(actor="oms", reason="r"), op, "ok", "restarting")
    record = json.loads((tmp_path / "audit" / "operator.jsonl").read_text())
    assert (record["login_uid"], record["login_user"]) == (1000, "alice")


def test_the_identity_carries_this_processs_login_uid_whatever_it_is() -> None:
    with open("/proc/self/loginuid") as f:
        expected = parse_loginuid(f.read())
    op = operator_from_peer(f"localhost:{os.getuid()}:{os.getgid()}:{os.getpid()}")
    assert op.login_uid == expected
    assert op.login_user == ("" if expected is None else user_name(expected))
    assert login_uid(2**22 + 12345) is None  # no such process: unset, not an error
