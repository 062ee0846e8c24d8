"""`tradepulse fix log` and `tradepulse fix seq` against the real supervisor (issue 11,
section 3): the message log of both sides, read while the system runs and after it
stopped, credentials never on disk; the next sequence numbers shown from the store and set
through the control plane (the running session uses them) or, stopped, in the store."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from actors.connector.fix.msglog import log_files
from protocol import paths
from protocol.messages import OrderStatus
from tests.helpers import SUPERVISOR, eventually
from tests.integration.oms_support import OmsSystem, overrides, start, systems
from tests.system_ops import VENUE, client, submit_when_open

pytestmark = pytest.mark.integration

PASSWORD = "pw-Zq81-never-on-disk"
USERNAME = "trader-7f3"


def _creds() -> dict[str, object]:
    cfg = overrides(require_username=USERNAME)
    cfg["venues"][0] |= {"username_env": "TP_TEST_FIX_USER", "password_env": "TP_TEST_FIX_PW"}
    return cfg


def _start(started: list[OmsSystem], short_tmp: Path) -> OmsSystem:
    env = {"TP_TEST_FIX_USER": USERNAME, "TP_TEST_FIX_PW": PASSWORD}
    return start(started, root=short_tmp, overrides=_creds(), env=env)


def _cli(sut: OmsSystem, *args: str) -> subprocess.CompletedProcess[str]:
    return sut.cli("fix", *args, "--venue", VENUE)


def _ok(sut: OmsSystem, *args: str) -> str:
    out = _cli(sut, *args)
    assert out.returncode == 0, f"{args}: exit {out.returncode}\n{out.stdout}\n{out.stderr}"
    return out.stdout


def test_fix_log_prints_both_sides_running_and_stopped(short_tmp: Path) -> None:
    """Our log has our Logon and order OUT and the venue's report IN, with tag and enum
    names; --venue-side shows the simulator's side; --follow prints a message written
    after it started; the credentials are in no log file; after the system stopped the
    log still reads. An unknown venue is a usage error (2)."""
    with systems() as started:
        sut = _start(started, short_tmp)
        with client(sut) as c:
            submit_when_open(c, VENUE, client_order_id="log-1", timeout_s=15)
            c.wait_for_status("log-1", {OrderStatus.ACCEPTED})
            follower = _Follower(sut)
            try:
                submit_when_open(c, VENUE, client_order_id="log-2", timeout_s=15)
                eventually(lambda: any("ClOrdID=" in ln and "log-2" in ln for ln in follower.lines))
            finally:
                follower.stop()
        ours = _ok(sut, "log").splitlines()
        assert any("  OUT  A Logon  " in ln and "Username=***" in ln for ln in ours)
        assert any("  OUT  D NewOrderSingle  " in ln and "Side=1(BUY)" in ln for ln in ours)
        assert any("  IN   8 ExecutionReport  " in ln and "ExecType=0(NEW)" in ln for ln in ours)
        theirs = _ok(sut, "log", "--venue-side").splitlines()
        assert any("  IN   D NewOrderSingle  " in ln for ln in theirs)
        raw = _ok(sut, "log", "--raw", "--since", "1h").splitlines()
        assert any("|35=D|" in ln for ln in raw)
        for directory in (
            paths.fix_message_log_dir(sut.state_dir, VENUE),
            paths.venue_message_log_dir(sut.state_dir, VENUE),
        ):
            for path in log_files(directory):
                data = path.read_bytes()
                assert PASSWORD.encode() not in data and USERNAME.encode() not in data
        assert sut.stop() == 0
        after = _ok(sut, "log").splitlines()
        assert after[: len(ours)] == ours  # the log outlives the system; logouts were added
        assert any("  OUT  5 Logout  " in ln for ln in after[len(ours) :])
        unknown = sut.cli("fix", "log", "--venue", "nope")
        assert unknown.returncode == 2 and "unknown venue 'nope'" in unknown.stderr


def test_fix_log_without_a_log_yet_says_so(short_tmp: Path) -> None:
    sut = OmsSystem(root=short_tmp, overrides=overrides())
    out = sut.cli("fix", "log", "--venue", VENUE)
    assert out.returncode == 1 and "no FIX message log for venue 'simA' yet" in out.stderr


def test_fix_seq_shows_and_sets_the_numbers_running_and_stopped(short_tmp: Path) -> None:
    """Running: `fix seq` shows the store's numbers; setting next-out (with a reason) goes
    to the connector, which logs fix_seq_set (warning, old/new, reason), and the live
    session sends its next message with the new number; the venue asks for the gap, gets
    a gap fill, and orders still flow. No reason: usage error (2). Stopped: the CLI sets
    next-in in the store itself, and `fix seq` shows it."""
    with systems() as started:
        sut = _start(started, short_tmp)
        with client(sut) as c:
            submit_when_open(c, VENUE, client_order_id="seq-1", timeout_s=15)
            c.wait_for_status("seq-1", {OrderStatus.ACCEPTED})
            shown = _ok(sut, "seq").strip()
            assert shown.startswith(f"{VENUE}: next-in ")
            next_out = int(shown.rsplit(" ", 1)[1])
            no_reason = _cli(sut, "seq", "--next-out", str(next_out + 50))
            assert no_reason.returncode == 2 and "reason" in no_reason.stderr
            target = next_out + 50
            text = _ok(sut, "seq", "--next-out", str(target), "--reason", "venue asked us")
            assert f"-> {target}" in text and "connector.simA" in text
            event = sut.wait_event("fix_seq_set", 5.0, actor=f"connector.{VENUE}")
            assert event["level"] == "warning" and event["reason"] == "venue asked us"
            assert event["next_out"] == target and next_out <= event["old_next_out"] < target
            submit_when_open(c, VENUE, client_order_id="seq-2", timeout_s=15)
            c.wait_for_status("seq-2", {OrderStatus.ACCEPTED})
        theirs = _ok(sut, "log", "--venue-side", "--raw").splitlines()
        assert any(f"|34={target}|" in ln and "  IN  " in ln for ln in theirs)
        assert any(
            "|35=4|" in ln and "|123=Y|" in ln for ln in _ok(sut, "log", "--raw").splitlines()
        )
        assert sut.stop() == 0
        out = _cli(sut, "seq", "--next-in", "777", "--reason", "restored from backup")
        assert out.returncode == 0, out.stderr
        assert "next-in" in out.stdout and "-> 777" in out.stdout
        assert '"event": "fix_seq_set"' in out.stderr and "restored from backup" in out.stderr
        [line] = [ln for ln in out.stderr.splitlines() if '"fix_seq_set"' in ln]
        assert {"ts", "level", "actor"} <= json.loads(line).keys()  # the actors' log fields
        assert _ok(sut, "seq").strip().startswith(f"{VENUE}: next-in 777, next-out ")


class _Follower:
    """`tradepulse fix log --follow` in a subprocess; its lines collected by a thread."""

    def __init__(self, sut: OmsSystem) -> None:
        argv = [sys.executable, str(SUPERVISOR), "fix", "log", "--follow", "--venue", VENUE]
        self.proc = subprocess.Popen(
            [*argv, *sut.cli_args()],
            env=sut.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)
        self._thread.join(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
