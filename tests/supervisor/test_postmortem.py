"""The post-mortem bundle's pure parts and its files: redaction, time parsing, range
filtering of the log files, the size bound, the manifest, rotation, the engagement trigger
and pruning (the running system: tests/integration/test_postmortem.py)."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from actors.risk.killswitch import KillSwitchState
from actors.supervisor import logfiles, postmortem
from actors.supervisor.logfiles import RotatingFile, line_time, lines_between, utc_stamp, wrap_line
from actors.supervisor.postmortem import Bundle, fair_shares, pack
from actors.supervisor.postmortem_watch import EngagementTrigger, prune
from protocol import paths
from protocol.config import SystemConfig
from protocol.redact import REDACTED, is_secret_field, redact
from tests.helpers import REPO_ROOT, SUPERVISOR

T0 = 1_796_000_000.0  # a fixed time (2026-11-30)


def _line(ts_s: float, event: str, **fields: Any) -> bytes:
    return json.dumps({"event": event, **fields, "ts": utc_stamp(ts_s)}).encode()


# --------------------------------------------------------------------------- redaction


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("password", True),
        ("db_password", True),
        ("api_key", True),
        ("SecretKey", True),
        ("auth_token", True),
        ("password_env", False),  # the variable's name, not its value
        ("username_env", False),
        ("tls_key_file", False),  # where the key is, not the key
        ("host", False),
        ("keep_files", False),
        ("554", True),  # logon_fields: Password, NewPassword(925), RawData(96)
        ("925", True),
        ("96", True),
        ("1137", False),  # DefaultApplVerID
    ],
)
def test_secret_fields_are_named_by_the_documented_rule(name: str, secret: bool) -> None:
    assert is_secret_field(name) is secret


def test_redact_replaces_secret_values_at_any_depth_and_keeps_the_rest() -> None:
    """Nested dicts and lists are walked; an empty secret stays visibly empty (it tells
    that none was set); `*_env` names are kept."""
    config = {
        "venues": [{"name": "a", "password": "hunter2", "password_env": "A_PW", "api_key": ""}],
        "extra": {"deep": {"secret_token": "t0k3n-value", "port": 9}},
    }
    out = redact(config)
    assert out["venues"][0] == {
        "name": "a",
        "password": REDACTED,
        "password_env": "A_PW",
        "api_key": "",
    }
    assert out["extra"]["deep"] == {"secret_token": REDACTED, "port": 9}
    assert "hunter2" not in json.dumps(out) and "t0k3n-value" not in json.dumps(out)


def test_collect_from_a_bare_state_dir_redacts_the_config_and_says_what_is_missing(
    tmp_path: Path,
) -> None:
    """No system ever ran: the bundle still has the config (a NewPassword logon field
    redacted, the password variable's name kept) and the kill-switch (never engaged);
    everything else is listed as missing, with why."""
    cfg = SystemConfig.model_validate(
        {
            "system": {"state_dir": str(tmp_path / "state"), "runtime_dir": str(tmp_path / "rt")},
            "venues": [
                {
                    "name": "simA",
                    "password_env": "SIMA_PW",
                    "dialect": {"logon_fields": {"925": "n3w-s3cret", "1137": "9"}},
                }
            ],
        }
    )
    (tmp_path / "state").mkdir()
    (tmp_path / "staging").mkdir()
    bundle = Bundle(tmp_path / "staging")
    assert postmortem.collect(cfg, bundle, T0, T0 + 60) is False  # not running
    assert bundle.names == ["config.json", "kill_switch.json"]
    config = json.loads((tmp_path / "staging" / "config.json").read_text())
    venue = config["config"]["venues"][0]
    assert venue["dialect"]["logon_fields"] == {"925": REDACTED, "1137": "9"}
    assert venue["password_env"] == "SIMA_PW"
    assert config["credential_variables"] == {"venues[simA].password_env": "SIMA_PW"}
    state = json.loads((tmp_path / "staging" / "kill_switch.json").read_text())
    assert state["engaged"] is False and state["history"] == []
    assert {m["item"] for m in bundle.missing} == {
        "status.json",
        "metrics.txt",
        "logs/tradepulse.log",
        "journal.jsonl",
        "fix/simA.log",
    }
    assert all(m["why"] for m in bundle.missing)


def test_a_part_that_cannot_be_read_is_listed_as_missing_and_the_rest_goes_in(
    tmp_path: Path,
) -> None:
    cfg = SystemConfig.model_validate(
        {
            "system": {"state_dir": str(tmp_path / "state"), "runtime_dir": str(tmp_path / "rt")},
            "venues": [{"name": "simA"}],
        }
    )
    log_dir = paths.logs_dir(tmp_path / "state")
    (log_dir / paths.LOG_FILE_NAME).mkdir(parents=True)  # not a file: reading it fails
    (log_dir / f"{paths.LOG_FILE_NAME}.1").write_bytes(_line(T0, "kept") + b"\n")
    (tmp_path / "staging").mkdir()
    bundle = Bundle(tmp_path / "staging")
    postmortem.collect(cfg, bundle, T0 - 1, T0 + 1)
    assert bundle.names == ["config.json", "kill_switch.json"]
    why = {m["item"]: m["why"] for m in bundle.missing}["logs/tradepulse.log"]
    assert why.startswith("unreadable: IsADirectoryError")


# --------------------------------------------------------------------------- times


def test_parse_time_takes_now_an_age_or_an_iso_time() -> None:
    assert postmortem.parse_time("now", T0) == T0
    assert postmortem.parse_time("10m", T0) == pytest.approx(T0 - 600, abs=1e-3)
    assert postmortem.parse_time("2026-11-30T00:00:00Z", T0) == 1_796_083_200.0 - 86400
    assert postmortem.parse_time("2026-11-30T01:00:00+01:00", T0) == 1_796_083_200.0 - 86400
    with pytest.raises(ValueError, match="neither"):
        postmortem.parse_time("yesterday", T0)


@pytest.mark.parametrize("text", ["99999999999d", "9" * 400 + "s", "1960-01-01T00:00:00Z"])
def test_a_time_before_1970_is_refused_with_its_reason(text: str) -> None:
    """`postmortem --since 99999999999d` (or `fix log --since`) ended in a traceback (year
    -273788674 out of range, exit 1) when the bundle formatted it: one reading of the time
    (`actors.runtime.when`) refuses it, so each command answers its usage error."""
    with pytest.raises(ValueError, match="before 1970-01-01"):
        postmortem.parse_time(text, T0)
    assert postmortem.parse_time("1970-01-01T00:00:00Z", T0) == 0.0


def test_postmortem_with_a_range_before_1970_is_a_usage_error_not_a_traceback(
    tmp_path: Path,
) -> None:
    (tmp_path / "state").mkdir()
    argv = [sys.executable, str(SUPERVISOR), "postmortem", "--config", "deploy/config/demo.toml",
            "--state-dir", str(tmp_path / "state"), "--out", str(tmp_path / "b.tar.gz"),
            "--since", "99999999999d"]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=REPO_ROOT)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "tradepulse postmortem: --since/--until: '99999999999d' is before 1970-01-01"
    ]
    assert not (tmp_path / "b.tar.gz").exists()


def _postmortem(state: Path, out: Path) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, str(SUPERVISOR), "postmortem", "--config", "deploy/config/demo.toml",
            "--state-dir", str(state), "--out", str(out), "--since", "10m"]  # fmt: skip
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=REPO_ROOT)


def test_postmortem_out_a_directory_writes_the_bundle_in_it(tmp_path: Path) -> None:
    """`--out /var/tmp` (where an operator keeps such files): the bundle goes in it under
    the default name. Before, the rename onto the directory failed: "cannot write", exit 1."""
    (tmp_path / "state").mkdir()
    (tmp_path / "out").mkdir()
    done = _postmortem(tmp_path / "state", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    [bundle] = (tmp_path / "out").iterdir()
    assert bundle.name.startswith("tradepulse-postmortem-") and bundle.name.endswith(".tar.gz")
    with tarfile.open(bundle) as tar:
        assert "MANIFEST.json" in tar.getnames()
    assert f"wrote {bundle}" in done.stdout


def test_postmortem_out_in_a_missing_directory_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "state").mkdir()
    done = _postmortem(tmp_path / "state", tmp_path / "nowhere" / "b.tar.gz")
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"tradepulse postmortem: --out {tmp_path}/nowhere/b.tar.gz: {tmp_path}/nowhere is not "
        "a directory"
    ]


@pytest.mark.parametrize("kind", ["file", "fifo"])
def test_postmortem_out_that_exists_is_refused_and_left_as_it_was(
    tmp_path: Path, kind: str
) -> None:
    """`--out deploy/config/production.toml` (a completion gone wrong) replaced the config
    with the bundle, exit 0; a FIFO there was replaced too. Now: exit 2, nothing written."""
    (tmp_path / "state").mkdir()
    out = tmp_path / "production.toml"
    if kind == "file":
        out.write_text("[system]\n")
    else:
        os.mkfifo(out)
    done = _postmortem(tmp_path / "state", out)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"tradepulse postmortem: --out {out} exists: not overwritten (name a new file)"
    ]
    if kind == "file":
        assert out.read_text() == "[system]\n"
    else:
        assert stat.S_ISFIFO(out.lstat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["production.toml", "state"]


def test_record_time_is_the_records_ts_or_its_orders_last_update() -> None:
    assert postmortem.record_time({"data": {"kind": "event", "ts_ns": 2_000_000_000}}) == 2.0
    order = {"ts_created_ns": 1_000_000_000, "ts_updated_ns": 3_000_000_000}
    assert postmortem.record_time({"data": {"kind": "new", "order": order}}) == 3.0
    assert postmortem.record_time({"data": {"kind": "x"}}) is None


# --------------------------------------------------------------------------- log files


def test_lines_between_keeps_the_range_across_rotated_files(tmp_path: Path) -> None:
    """Oldest file first; a line with no time (a torn one) goes with the line before it;
    both ends of the range are included."""
    name = paths.LOG_FILE_NAME
    (tmp_path / f"{name}.2").write_bytes(_line(T0, "a") + b"\n" + _line(T0 + 1, "b") + b"\n")
    (tmp_path / f"{name}.1").write_bytes(_line(T0 + 2, "c") + b"\ntorn{\n")
    (tmp_path / name).write_bytes(_line(T0 + 3, "d") + b"\n\n" + _line(T0 + 9, "e") + b"\n")
    (tmp_path / f"{name}.old").write_bytes(_line(T0 + 2, "not-a-rotation") + b"\n")
    got = list(lines_between(tmp_path, T0 + 1, T0 + 3))
    assert got == [_line(T0 + 1, "b"), _line(T0 + 2, "c"), b"torn{", _line(T0 + 3, "d")]


def test_line_time_reads_structlogs_iso_stamp() -> None:
    assert line_time(_line(T0 + 0.25, "x")) == pytest.approx(T0 + 0.25)
    long = _line(T0 + 1, "x", detail="y" * 5000, nested='{"ts": "2020-01-01T00:00:00Z"}')
    assert line_time(long) == pytest.approx(T0 + 1)  # the last `ts`, structlog's
    assert line_time(b'{"event": "x"}') is None
    assert line_time(b'{"ts": "not a time at all", "event": "x"}') is None


def test_wrap_line_keeps_json_and_wraps_anything_else_with_a_time() -> None:
    assert wrap_line(b'{"event": "x"}', "stdout") == b'{"event": "x"}'
    wrapped = json.loads(wrap_line(b"Traceback (most recent call last):", "stderr"))
    assert wrapped["event"] == "raw_output" and wrapped["stream"] == "stderr"
    assert wrapped["line"] == "Traceback (most recent call last):"
    assert line_time(wrap_line(b"x", "stderr")) is not None


def test_rotating_file_rotates_by_size_keeps_n_files_and_is_private(tmp_path: Path) -> None:
    path = tmp_path / "logs" / paths.LOG_FILE_NAME
    f = RotatingFile(path, max_bytes=100, keep=3)
    for i in range(10):
        f.write(f"{i:02d}".encode() * 20 + b"\n")  # 41 bytes: two lines a file
    f.close()
    names = sorted(p.name for p in path.parent.iterdir())
    assert names == [paths.LOG_FILE_NAME, f"{paths.LOG_FILE_NAME}.1", f"{paths.LOG_FILE_NAME}.2"]
    assert [p.read_bytes()[:2] for p in logfiles.log_files(path.parent)] == [b"04", b"06", b"08"]
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in path.parent.iterdir())
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_a_write_cut_short_by_a_full_disk_makes_the_next_line_start_on_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC after half a line: the write raises (the caller counts the loss); once space
    returns the next line starts after a newline, so no two lines are glued together."""
    f = RotatingFile(tmp_path / "x.log", max_bytes=1 << 20, keep=2)
    f.write(b'{"a": 1}\n')
    real_write = os.write
    calls = {"n": 0}

    def full_disk(fd: int, data: Any) -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            return real_write(fd, bytes(data[:3]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(logfiles.os, "write", full_disk)
    with pytest.raises(OSError):
        f.write(b'{"b": 2}\n')
    with pytest.raises(OSError):
        f.write(b'{"c": 3}\n')
    monkeypatch.setattr(logfiles.os, "write", real_write)
    f.write(b'{"d": 4}\n')
    f.close()
    assert (tmp_path / "x.log").read_bytes() == b'{"a": 1}\n{"b\n{"d": 4}\n'


# --------------------------------------------------------------------------- the bundle


def _bundle(tmp_path: Path, files: dict[str, bytes]) -> Bundle:
    staging = tmp_path / "staging"
    staging.mkdir()
    bundle = Bundle(staging)
    for name, data in files.items():
        bundle.add_lines(name, data.split(b"\n")[:-1])
    return bundle


def test_fair_shares_gives_small_files_all_and_splits_the_rest() -> None:
    assert fair_shares({"a": 10, "b": 1000, "c": 1000}, 510) == {"a": 10, "b": 250, "c": 250}
    assert fair_shares({"a": 10, "b": 20}, 1000) == {"a": 10, "b": 20}
    assert fair_shares({"a": 10}, -5) == {"a": 0}


def test_pack_writes_a_private_bundle_whose_manifest_matches_its_files(tmp_path: Path) -> None:
    lines = b"".join(b"line %06d\n" % i for i in range(300_000))  # 3.3 MB of log
    bundle = _bundle(
        tmp_path,
        {"config.json": b"{}\n", "logs/tradepulse.log": lines, "journal.jsonl": b"j1\nj2\n"},
    )
    bundle.add_lines("fix/simA.log", [])  # empty: not in the bundle
    bundle.lack("status.json", "system not running")
    out = tmp_path / "b.tar.gz"
    manifest = pack(bundle, out, 2 << 20, {"range": {}})
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    with tarfile.open(out) as tar:
        names = tar.getnames()
        contents = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    assert names[0] == "MANIFEST.json"
    assert json.loads(contents["MANIFEST.json"]) == manifest
    assert [f["name"] for f in manifest["files"]] == names[1:]
    for entry in manifest["files"]:
        data = contents[entry["name"]]
        assert entry["bytes"] == len(data)
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
    assert manifest["missing"] == [{"item": "status.json", "why": "system not running"}]
    log = contents["logs/tradepulse.log"]
    assert len(log) + len(contents["config.json"]) < 2 << 20
    assert log.endswith(b"line 299999\n") and log.startswith(b"line ")  # newest, whole lines
    assert manifest["truncated"] == [
        {"name": "logs/tradepulse.log", "original_bytes": len(lines), "kept_bytes": len(log)}
    ]
    assert contents["journal.jsonl"] == b"j1\nj2\n"  # under its share: whole
    assert not list(tmp_path.glob(".b.tar.gz.tmp-*"))


def test_staging_keeps_only_the_newest_lines_of_a_file_over_its_cap(tmp_path: Path) -> None:
    """A range bigger than the bundle may hold is never staged whole (disk use stays
    bounded); the manifest still says how big it was and that it was cut."""
    staging = tmp_path / "staging"
    staging.mkdir()
    bundle = Bundle(staging, cap_bytes=1 << 20)
    lines = [b"line %07d" % i for i in range(400_000)]  # 5.2 MB with newlines
    assert bundle.add_lines("logs/tradepulse.log", iter(lines)) == len(lines)
    staged = (staging / "logs/tradepulse.log").read_bytes()
    assert len(staged) <= (1 << 20) * 3 // 2 and staged.endswith(b"line 0399999\n")
    assert staged.startswith(b"line ")
    manifest = pack(bundle, tmp_path / "b.tar.gz", 1 << 20, {})
    (cut,) = manifest["truncated"]
    assert cut["original_bytes"] == 13 * len(lines) and cut["kept_bytes"] < 1 << 20


# --------------------------------------------------------------------------- the trigger


def _ks(engaged: bool, ts_ns: int = 0) -> KillSwitchState:
    return KillSwitchState(engaged=engaged, reason="r", source="s", ts_ns=ts_ns)


def test_a_bundle_is_due_a_delay_after_the_switch_goes_from_off_to_engaged() -> None:
    trigger = EngagementTrigger(engaged=False, delay_s=2.0)
    trigger.observe(_ks(False), 100.0)
    assert trigger.take_due(200.0) is None
    trigger.observe(_ks(True, ts_ns=int(T0 * 1e9)), 300.0)
    trigger.observe(_ks(True, ts_ns=int(T0 * 1e9)), 301.0)  # still engaged: not again
    assert trigger.take_due(301.9) is None
    assert trigger.take_due(302.0) == pytest.approx(T0)
    assert trigger.take_due(400.0) is None  # taken once
    trigger.observe(_ks(False), 500.0)
    trigger.observe(_ks(True, ts_ns=int((T0 + 9) * 1e9)), 501.0)  # a new engagement
    assert trigger.take_due(501.0, force=True) == pytest.approx(T0 + 9)  # at shutdown


def test_a_switch_engaged_before_the_start_is_not_a_new_engagement() -> None:
    trigger = EngagementTrigger(engaged=True, delay_s=0.0)
    trigger.observe(_ks(True, ts_ns=1), 1.0)
    assert trigger.take_due(10.0, force=True) is None


def test_prune_keeps_the_newest_bundles(tmp_path: Path) -> None:
    for stamp in ("20261201T000000000Z", "20261203T000000000Z", "20261202T000000000Z"):
        (tmp_path / f"postmortem-{stamp}.tar.gz").write_bytes(b"x")
    (tmp_path / "notes.txt").write_bytes(b"kept")
    (tmp_path / ".postmortem-old").mkdir()  # a writer killed mid-way, long ago
    (tmp_path / ".postmortem-old" / "config.json").write_bytes(b"{}")
    (tmp_path / ".postmortem-x.tar.gz.tmp-7").write_bytes(b"x")
    os.utime(tmp_path / ".postmortem-old", (T0 - 7200, T0 - 7200))
    os.utime(tmp_path / ".postmortem-x.tar.gz.tmp-7", (T0 - 7200, T0 - 7200))
    (tmp_path / ".postmortem-now").mkdir()  # being written right now: kept
    gone = prune(tmp_path, keep=2, now_s=T0)
    assert [p.name for p in gone] == ["postmortem-20261201T000000000Z.tar.gz"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".postmortem-now",
        "notes.txt",
        "postmortem-20261202T000000000Z.tar.gz",
        "postmortem-20261203T000000000Z.tar.gz",
    ]
