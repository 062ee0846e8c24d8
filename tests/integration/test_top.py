"""`tradepulse top` against the real system: in a pseudo-terminal (its controlling
terminal, as an operator's shell gives it) it draws the actors and venues, puts the
terminal in cbreak/no-echo mode, and on `q` or Ctrl-C leaves the alternate screen, restores
the terminal and exits 0; it shows NOT RUNNING when the system goes away and picks up a
restarted one. Without a terminal it prints one frame (or `--json`); with nothing running,
one line and exit 3."""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import struct
import subprocess
import sys
import termios
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from protocol.client import ExecutionClient
from protocol.messages import OrderStatus
from tests.helpers import (
    REPO_ROOT,
    SUPERVISOR,
    SystemUnderTest,
    eventually,
    make_config,
    run_system,
    to_toml,
)
from tests.system_ops import SYMBOL, client, submit_when_open

pytestmark = pytest.mark.integration

VENUES = ("simA", "simB")
ACTORS = ("risk", "oms", "connector.simA", "connector.simB", "heartbeat")
# make the pty the child's controlling terminal (it runs in a new session), then exec top:
# Ctrl-C written to the pty then reaches it as SIGINT, as in an operator's terminal
_CTTY_EXEC = (
    "import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
    "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
)
_ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\x1b[()][A-Z0-9]")
ALT_SCREEN_ON, ALT_SCREEN_OFF = b"\x1b[?1049h", b"\x1b[?1049l"


class PtyTop:
    """`supervisor.py top` running in a pseudo-terminal of 40 x 140; the test holds both
    ends, so it reads the screen and the terminal's mode."""

    def __init__(self, sut: SystemUnderTest, *args: str) -> None:
        self.master, self.slave = os.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 140, 0, 0))
        self.initial_mode = termios.tcgetattr(self.slave)
        self.output = bytearray()
        argv = [str(SUPERVISOR), "top", "--interval", "0.3", *args, *sut.cli_args()]
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _CTTY_EXEC, *argv],
            cwd=REPO_ROOT,
            env={**sut.env, "TERM": "xterm-256color"},
            stdin=self.slave,
            stdout=self.slave,
            stderr=self.slave,
            start_new_session=True,
        )

    def drain(self) -> None:
        """Read what top wrote so far (it blocks on a full pty otherwise)."""
        readable = select.poll()  # not select(): the worker may hold fds past 1023
        readable.register(self.master, select.POLLIN)
        while readable.poll(0):
            chunk = os.read(self.master, 65536)
            if not chunk:
                return
            self.output += chunk

    def screen(self) -> str:
        """Everything written since `mark`, without escape sequences."""
        return _ANSI.sub(b"", bytes(self.output[self._mark :])).decode("utf-8", "replace")

    _mark = 0

    def mark(self) -> None:
        self.drain()
        self._mark = len(self.output)

    def wait_screen(self, check: Callable[[str], bool], timeout_s: float = 20.0) -> str:
        def shown() -> str | None:
            self.drain()
            assert self.proc.poll() is None, f"top exited {self.proc.returncode}: {self.screen()}"
            text = self.screen()
            return text if check(text) else None

        return eventually(shown, timeout_s, interval_s=0.05, message=lambda: self.screen()[-3000:])

    def mode(self) -> list[object]:
        return termios.tcgetattr(self.slave)

    def press(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def wait_exit(self, timeout_s: float = 10.0) -> int:
        def exited() -> bool:
            self.drain()
            return self.proc.poll() is not None

        eventually(exited, timeout_s, interval_s=0.02, message=lambda: self.screen()[-2000:])
        self.drain()
        return self.proc.returncode

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture(scope="module")
def system() -> Iterator[SystemUnderTest]:
    with run_system(venues=VENUES) as sut:
        yield sut


@pytest.fixture
def pty_top(system: SystemUnderTest) -> Iterator[Callable[..., PtyTop]]:
    started: list[PtyTop] = []

    def start(sut: SystemUnderTest = system, *args: str) -> PtyTop:
        top = PtyTop(sut, *args)
        started.append(top)
        return top

    yield start
    for top in started:
        top.close()


def _shows_the_system(text: str) -> bool:
    return all(a in text for a in ACTORS) and all(f"{v} " in text for v in VENUES)


def _in_cbreak(mode: list[object]) -> bool:
    lflag = mode[3]
    assert isinstance(lflag, int)
    return not lflag & (termios.ICANON | termios.ECHO) and bool(lflag & termios.ISIG)


def test_top_in_a_terminal_quits_on_q_and_restores_the_terminal(
    pty_top: Callable[..., PtyTop],
) -> None:
    """The screen shows every actor and venue, the kill-switch and intake; while it runs the
    terminal is in cbreak/no-echo mode; `q` ends it with exit 0 within a deadline, the
    alternate screen left, the cursor shown and the terminal's mode as it was."""
    top = pty_top()
    text = top.wait_screen(lambda t: _shows_the_system(t) and "q or Ctrl-C quits" in t)
    assert "kill-switch: off" in text and "intake: open" in text
    assert "Traceback" not in text
    eventually(lambda: _in_cbreak(top.mode()), 10.0)
    assert ALT_SCREEN_ON in top.output
    top.mark()
    top.press(b"q")
    assert top.wait_exit(timeout_s=10.0) == 0
    assert top.mode() == top.initial_mode
    tail = bytes(top.output[top._mark :])
    assert ALT_SCREEN_OFF in tail and b"\x1b[?25h" in tail  # alt screen left, cursor back
    assert "Traceback" not in top.screen()


def test_top_in_a_terminal_quits_on_ctrl_c_and_restores_the_terminal(
    pty_top: Callable[..., PtyTop],
) -> None:
    """Ctrl-C typed at the terminal (SIGINT from its line discipline): exit 0, no
    traceback, the terminal's mode restored, the alternate screen left."""
    top = pty_top()
    top.wait_screen(_shows_the_system)
    eventually(lambda: _in_cbreak(top.mode()), 10.0)
    top.mark()
    top.press(b"\x03")
    assert top.wait_exit(timeout_s=10.0) == 0
    assert top.mode() == top.initial_mode
    assert ALT_SCREEN_OFF in bytes(top.output[top._mark :])
    assert "Traceback" not in top.screen() and "KeyboardInterrupt" not in top.screen()


def test_top_without_a_terminal_prints_one_frame(system: SystemUnderTest) -> None:
    """stdout not a terminal: one plain frame (no escape codes) of every actor and venue,
    then exit 0; `--json` the same frame as data, with the orders submitted during its
    interval as a rate and their acks' latency."""
    out = system.cli("top", "--interval", "0.5")
    assert out.returncode == 0, out.stderr
    assert _shows_the_system(out.stdout) and "\x1b" not in out.stdout
    assert "kill-switch: off" in out.stdout and "submit->ack p50" in out.stdout

    stop = threading.Event()
    with client(system) as c:
        submit_when_open(c, VENUES[0], client_order_id="top-first")  # intake is open
        c.wait_for_status("top-first", {OrderStatus.ACCEPTED}, timeout_s=20.0)  # one ack
        flow = threading.Thread(target=_submit_until, args=(c, stop), daemon=True)
        flow.start()
        try:
            out = system.cli("top", "--json", "--interval", "2.0")
        finally:
            stop.set()
            flow.join(timeout=30)
    assert out.returncode == 0, out.stderr
    reply = json.loads(out.stdout)
    data = reply["data"]
    assert reply["status"] == "ok" and data["running"]
    assert [a["id"] for a in data["actors"]] == [a["id"] for a in system.status()["actors"]]
    assert all(a["state"] == "running" and a["rss_bytes"] > 0 for a in data["actors"])
    assert [v["name"] for v in data["venues"]] == list(VENUES)
    assert data["orders_per_s"] > 0 and data["venues"][0]["orders_per_s"] > 0
    assert data["latency"]["p50_s"] > 0 and data["latency"]["p99_s"] >= data["latency"]["p50_s"]


def _submit_until(c: ExecutionClient, stop: threading.Event) -> None:
    n = 0
    while not stop.is_set():
        n += 1
        c.submit(VENUES[0], SYMBOL, "BUY", "1", "LIMIT", price="95.00", client_order_id=f"t{n}")


def test_top_follows_the_system_going_away_and_coming_back(
    start_system: Callable[..., SystemUnderTest], pty_top: Callable[..., PtyTop]
) -> None:
    """The supervisor shuts down while top runs: the view says NOT RUNNING and top keeps
    running; a new supervisor on the same state dir shows up by itself; `q` still exits 0."""
    sut = start_system(venues=VENUES)
    top = pty_top(sut)
    top.wait_screen(lambda t: _shows_the_system(t) and f"supervisor pid {sut.proc.pid}" in t)
    top.mark()
    assert sut.stop() == 0
    top.wait_screen(lambda t: "NOT RUNNING" in t and "no supervisor running" in t)
    again = start_system(venues=VENUES, root=sut.root)
    assert again.proc is not None
    top.mark()
    top.wait_screen(lambda t: _shows_the_system(t) and f"supervisor pid {again.proc.pid}" in t)
    top.press(b"q")
    assert top.wait_exit() == 0
    assert top.mode() == top.initial_mode


def test_top_with_nothing_running_is_one_line_and_exit_3(short_tmp: Path) -> None:
    """No supervisor for the state dir: one line on stderr naming it, exit 3, no traceback
    (`--json`: the error envelope on stdout)."""
    config = short_tmp / "config.toml"
    config.write_text(to_toml(make_config()))
    dirs = ["--state-dir", str(short_tmp / "state"), "--runtime-dir", str(short_tmp / "rt")]
    argv = [sys.executable, str(SUPERVISOR), "top", "--config", str(config), *dirs]
    out = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 3
    assert out.stdout == ""
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and "no supervisor running" in lines[0], out.stderr
    out = subprocess.run([*argv, "--json"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert out.returncode == 3
    assert json.loads(out.stdout)["status"] == "error"


def test_top_into_a_closed_pipe_exits_0_without_a_traceback(system: SystemUnderTest) -> None:
    """`tradepulse top | head -1`: the reader is gone before the frame is written; top ends
    quietly (exit 0, nothing on stderr) instead of a BrokenPipeError traceback."""
    argv = [sys.executable, str(SUPERVISOR), "top", "--interval", "0.2", *system.cli_args()]
    proc = subprocess.Popen(
        argv, cwd=REPO_ROOT, env=system.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None
    proc.stdout.close()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    assert err == b""
