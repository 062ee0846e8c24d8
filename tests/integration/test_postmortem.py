"""The log files and the post-mortem bundle with the real system: a bundle of a running
system, of a stopped one (from the state dir alone), and the one a kill-switch engagement
writes by itself (the pure parts: tests/supervisor/test_postmortem.py)."""

from __future__ import annotations

import hashlib
import json
import signal
import stat
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from actors.connector.fix import msgview
from actors.supervisor.hangs import main_thread
from actors.supervisor.logfiles import utc_stamp
from actors.supervisor.postmortem_watch import write_config_dump
from actors.supervisor.stall import MIN_STALL_S
from protocol import paths
from protocol.config import SystemConfig
from tests.helpers import REPO_ROOT, SystemUnderTest, eventually, make_config, to_toml
from tests.system_ops import client, submit_when_open

Start = Callable[..., SystemUnderTest]
_PASSWORD = "pw-s3cret-value"
_RAW_DATA = "rawdata-s3cret-token"


def _open(bundle: Path) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The manifest and every file of a bundle, after checking the manifest against them."""
    assert stat.S_IMODE(bundle.stat().st_mode) == 0o600
    with tarfile.open(bundle) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    manifest = json.loads(files.pop("MANIFEST.json"))
    assert [f["name"] for f in manifest["files"]] == list(files)
    for entry in manifest["files"]:
        data = files[entry["name"]]
        assert (entry["bytes"], entry["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())
    return manifest, files


def _events(log: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.splitlines()]


def _postmortem(sut: SystemUnderTest, out: Path, *args: str) -> dict[str, Any]:
    result = sut.cli("postmortem", "--out", str(out), "--json", *args, timeout_s=60.0)
    assert result.returncode == 0, result.stderr
    printed: dict[str, Any] = json.loads(result.stdout)
    return printed


def test_bundle_of_a_running_system_holds_status_metrics_logs_journal_and_fix_log(
    start_system: Start, tmp_path: Path
) -> None:
    """With one order sent: the bundle has the status, a metrics snapshot, the log lines of
    the supervisor and of its actors (captured from their stdout into the 0600 log file),
    the order's journal record and its NewOrderSingle in the FIX log, nothing missing; the
    venue's password (from its env var, sent in the Logon) appears nowhere in it, the
    variable's name does (logon-field redaction: the unit tests)."""
    venue = {
        "name": "simA",
        "target_comp_id": "SIMA",
        "password_env": "TP_PM_PASSWORD",
        # RawData(96) in the Logon: redacted in config.json, the FIX log and the bundle
        "dialect": {"logon_fields": {"95": str(len(_RAW_DATA)), "96": _RAW_DATA}},
        "sim": {"reference_prices": {"AAPL": "100.00"}},
    }
    sut = start_system(
        venues=("simA",), overrides={"venues": [venue]}, env={"TP_PM_PASSWORD": _PASSWORD}
    )
    with client(sut) as c:
        view = submit_when_open(c, "simA")
    fix_dir = paths.fix_message_log_dir(sut.state_dir, "simA")
    eventually(lambda: any(b"\x0135=D\x01" in e.raw for e in msgview.entries(fix_dir)), 10.0)
    log_file = paths.logs_dir(sut.state_dir) / paths.LOG_FILE_NAME
    assert stat.S_IMODE(log_file.stat().st_mode) == 0o600
    printed = _postmortem(sut, tmp_path / "b.tar.gz", "--since", "10m")
    manifest, files = _open(tmp_path / "b.tar.gz")
    assert printed["out"] == str(tmp_path / "b.tar.gz") and printed["files"] == manifest["files"]
    assert manifest["system_running"] is True and manifest["missing"] == []
    assert manifest["host"] and manifest["version"] and manifest["truncated"] == []
    assert {"status.json", "metrics.txt", "config.json", "kill_switch.json"} <= set(files)
    status = json.loads(files["status.json"])
    assert status["status"] == "ok" and "oms" in [a["id"] for a in status["data"]["actors"]]
    assert b"tradepulse_actor_up" in files["metrics.txt"]
    actors = {e.get("actor") for e in _events(files["logs/tradepulse.log"])}
    assert {"supervisor", "oms", "risk", "connector.simA"} <= actors
    journal = [json.loads(line) for line in files["journal.jsonl"].splitlines()]
    assert any(
        r["data"].get("order", {}).get("client_order_id") == view.client_order_id for r in journal
    ), journal
    assert b"NewOrderSingle" in files["fix/simA.log"]
    config = json.loads(files["config.json"])
    assert config["credential_variables"] == {"venues[simA].password_env": "TP_PM_PASSWORD"}
    assert config["config"]["venues"][0]["dialect"]["logon_fields"]["96"] == "<redacted>"
    assert b" 96=***" in files["fix/simA.log"]  # RawData, not in the 4.4 dictionary
    for name, data in files.items():  # no secret anywhere: config, logs, FIX log, status
        assert _PASSWORD.encode() not in data, name
        assert _RAW_DATA.encode() not in data, name
    for path in fix_dir.iterdir():  # nor in the FIX message log itself
        assert _RAW_DATA.encode() not in path.read_bytes(), path


def test_bundle_of_a_stopped_system_comes_from_the_state_dir_and_says_what_is_missing(
    start_system: Start, tmp_path: Path
) -> None:
    """After a clean stop the log file holds the supervisor's last line; the bundle is
    written from the state dir, lists status and metrics as missing (not running), and a
    range with no activity has no log lines (said too)."""
    sut = start_system(venues=("simA",))
    assert sut.stop() == 0
    _postmortem(sut, tmp_path / "b.tar.gz")
    manifest, files = _open(tmp_path / "b.tar.gz")
    assert manifest["system_running"] is False
    missing = {m["item"]: m["why"] for m in manifest["missing"]}
    assert set(missing) >= {"status.json", "metrics.txt"}
    assert "not running" in missing["status.json"]
    events = _events(files["logs/tradepulse.log"])
    assert "loop_shutdown" in [e["event"] for e in events]
    assert {"supervisor", "oms"} <= {e.get("actor") for e in events}
    old = _postmortem(
        sut, tmp_path / "old.tar.gz", "--since", "2020-01-01T00:00:00Z", "--until", "2020-01-02"
    )
    assert {m["item"] for m in old["missing"]} >= {"logs/tradepulse.log", "fix/simA.log"}
    text = sut.cli("postmortem", "--out", str(tmp_path / "c.tar.gz"))
    assert text.returncode == 0 and "missing:" in text.stdout and "status.json" in text.stdout
    bad = sut.cli("postmortem", "--out", str(tmp_path / "d.tar.gz"), "--since", "yesterday")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "--since" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    nowhere = sut.cli("postmortem", "--out", str(tmp_path / "no" / "such" / "dir.tar.gz"))
    assert nowhere.returncode == 2 and "is not a directory" in nowhere.stderr  # usage
    assert len(nowhere.stderr.strip().splitlines()) == 1


def test_a_kill_switch_engagement_writes_a_bundle_with_the_engagement_in_its_log() -> None:
    """`kill-switch engage` from the CLI, with 24 MB of earlier log lines (a rotated file)
    in the range: the supervisor writes a bundle into state_dir/postmortem/ by itself
    (logging `postmortem_written` with its path), whose kill-switch file is ENGAGED and
    whose log excerpt holds the earlier lines and risk's engagement line, and meanwhile
    the supervisor never stalled nor took an actor for hung."""
    overrides = {"logging": {"postmortem_delay_s": 0.5}}
    sut = SystemUnderTest(venues=("simA",), overrides=overrides)
    try:
        _engagement_bundle(sut, overrides)
    finally:
        sut.destroy()


def _engagement_bundle(sut: SystemUnderTest, overrides: dict[str, Any]) -> None:
    earlier = utc_stamp(time.time() - 600)
    rotated = paths.logs_dir(sut.state_dir) / f"{paths.LOG_FILE_NAME}.1"
    rotated.parent.mkdir(parents=True, mode=0o700)
    line = '{"actor": "oms", "n": %d, "pad": "%s", "event": "earlier", "ts": "%s"}\n'
    with open(rotated, "w") as fh:
        fh.writelines(line % (i, "x" * 60, earlier) for i in range(240_000))
    sut.start()
    # a live reload before the engagement: the bundle records the config then in force
    reloaded = overrides | {"risk": {"max_order_qty": "77"}}
    sut.config_path.write_text(to_toml(make_config(venues=("simA",), overrides=reloaded)))
    assert sut.control("reload", timeout_s=30.0, reason="before the halt").status == "ok"
    assert sut.proc is not None
    waited_before = _run_queue_wait_s(sut.proc.pid)
    since = sut.mark()
    engaged = sut.cli("kill-switch", "engage", "--reason", "postmortem test")
    assert engaged.returncode == 0, engaged.stderr
    written = sut.wait_event("postmortem_written", timeout_s=60.0, since=since)
    bundle = Path(written["path"])
    assert bundle.parent == paths.postmortem_dir(sut.state_dir) and bundle.exists()
    manifest, files = _open(bundle)
    assert manifest["system_running"] is True
    assert "running supervisor" in manifest["config_source"]
    assert json.loads(files["config.json"])["config"]["risk"]["max_order_qty"] == "77"  # reloaded
    assert not list(bundle.parent.glob(".config-*"))  # the writer's config dump is gone
    state = json.loads(files["kill_switch.json"])
    assert state["engaged"] is True and state["reason"] == "postmortem test"
    assert state["history"][-1]["action"] == "engage"
    events = _events(files["logs/tradepulse.log"])
    assert sum(1 for e in events if e["event"] == "earlier") == 240_000
    assert any(
        e["event"] == "kill_switch_cancel_round" and e.get("why") == "engaged" for e in events
    ), [e["event"] for e in events[-50:]]
    assert not sut.events("actor_hung", since=since)
    # The writer is its own process: the supervisor's loop never blocked on the bundle. A
    # stall is wall time its thread did not run; on a loaded machine some of it is a wait for
    # a core (CI at load 7: three of 0.15-0.2 s), which the run queue's wait shows. Only the
    # rest (a blocking write, a sleep) counts against the bundle.
    stalled = sum(e["stall_s"] for e in sut.events("supervisor_stalled", since=since))
    waited = _run_queue_wait_s(sut.proc.pid) - waited_before
    assert stalled <= waited + MIN_STALL_S, (stalled, waited)
    assert sut.status()["kill_switch"]["engaged"]


def _run_queue_wait_s(pid: int) -> float:
    """`pid`'s main thread's time waiting for a core so far (0.0 where the kernel does not
    count it: every stall then counts against the bundle)."""
    sample = main_thread(pid)
    return 0.0 if sample is None or sample.waited_s is None else sample.waited_s


def test_a_bundle_still_due_at_shutdown_is_written_before_the_supervisor_exits(
    start_system: Start,
) -> None:
    """Engaged, then stopped long before `postmortem_delay_s` (60 s) passed: the shutdown
    writes the bundle (status and metrics missing: the control socket is closed by then),
    logs `postmortem_written` and exits 0."""
    sut = start_system(venues=("simA",), overrides={"logging": {"postmortem_delay_s": 60.0}})
    since = sut.mark()
    assert sut.cli("kill-switch", "engage", "--reason", "then stop").returncode == 0
    assert sut.stop() == 0
    written = sut.wait_event("postmortem_written", timeout_s=1.0, since=since)
    bundle = Path(written["path"])
    assert list(paths.postmortem_dir(sut.state_dir).glob("postmortem-*.tar.gz")) == [bundle]
    manifest, files = _open(bundle)
    assert manifest["system_running"] is False
    assert {"status.json", "metrics.txt"} <= {m["item"] for m in manifest["missing"]}
    assert json.loads(files["kill_switch.json"])["reason"] == "then stop"


def test_each_engagement_gets_its_bundle_and_only_the_newest_are_kept(
    start_system: Start,
) -> None:
    """engage, reset, engage again (`postmortem_keep` 1): two bundles are written, one for
    each engagement, and only the second is left in state_dir/postmortem/. The supervisor's
    own lines about them (`postmortem_started`) are JSON with an `event`, as every line."""
    overrides = {"logging": {"postmortem_delay_s": 0.0, "postmortem_keep": 1}}
    sut = start_system(venues=("simA",), overrides=overrides)
    since = sut.mark()
    for reason in ("first", "second"):
        assert sut.cli("kill-switch", "engage", "--reason", reason).returncode == 0
        sut.wait_events("postmortem_written", 1 if reason == "first" else 2, 30.0, since=since)
        if reason == "first":
            reset = sut.cli("kill-switch", "reset", "--reason", "flat, checked")
            assert reset.returncode == 0, reset.stderr
    first, second = (Path(e["path"]) for e in sut.events("postmortem_written", since=since))
    assert first != second and not first.exists()
    started = sut.events("postmortem_started", since=since, actor="supervisor")
    assert [Path(e["path"]) for e in started] == [first, second], sut.raw_lines[-20:]
    assert list(paths.postmortem_dir(sut.state_dir).glob("postmortem-*")) == [second]
    _, files = _open(second)
    assert json.loads(files["kill_switch.json"])["reason"] == "second"


def test_the_bundle_writer_finishes_through_ctrl_c_and_sigterm(short_tmp: Path) -> None:
    """Ctrl-C at the terminal or systemd's SIGTERM reach the whole process group: the
    writer of an automatic bundle ignores both and finishes (the supervisor owns shutdown
    and bounds its wait); what it logs goes to stdout as JSON."""
    state = short_tmp / "state"
    rotated = paths.logs_dir(state) / f"{paths.LOG_FILE_NAME}.1"
    rotated.parent.mkdir(parents=True, mode=0o700)
    line = '{"actor": "oms", "n": %d, "pad": "%s", "event": "earlier", "ts": "%s"}\n'
    with open(rotated, "w") as fh:
        fh.writelines(line % (i, "x" * 60, utc_stamp(time.time() - 60)) for i in range(240_000))
    cfg = SystemConfig.model_validate(
        {
            "system": {"state_dir": str(state), "runtime_dir": str(short_tmp / "rt")},
            "venues": [{"name": "simA"}],
        }  # fmt: skip
    )
    out = paths.postmortem_dir(state) / "postmortem-20261204T000000000Z.tar.gz"
    dump = write_config_dump(cfg, out.with_name(".config-20261204T000000000Z.json"))
    argv = [str(dump), str(out), repr(time.time() - 600)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "actors.supervisor.postmortem_watch", *argv],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        eventually(lambda: list(out.parent.glob(".postmortem-*")) or out.exists(), 30.0)
        proc.send_signal(signal.SIGINT)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr
    (written,) = [json.loads(x) for x in stdout.splitlines()]
    assert written["event"] == "postmortem_written" and written["path"] == str(out)
    manifest, files = _open(out)
    assert manifest["system_running"] is False
    assert files["logs/tradepulse.log"].count(b'"earlier"') == 240_000
