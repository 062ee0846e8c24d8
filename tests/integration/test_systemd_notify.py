"""sd_notify through the real supervisor, against a datagram socket the test binds (as systemd
does for `Type=notify`): READY=1 only once every actor is running, STATUS= lines as the
system changes (venues up, the kill-switch), WATCHDOG=1 from the loop at half of
WATCHDOG_USEC, STOPPING=1 at shutdown; actors never inherit the socket; a socket nobody
listens on is counted, not fatal."""

from __future__ import annotations

import os
import signal
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import SystemUnderTest, eventually

pytestmark = pytest.mark.integration

WATCHDOG_USEC = 2_000_000  # pings expected every 1 s


class NotifyListener:
    """systemd's side: a bound AF_UNIX datagram socket; each datagram's lines, in order."""

    def __init__(self) -> None:
        self.name = f"@tp-notify-{uuid.uuid4().hex[:12]}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + self.name[1:])
        self.sock.settimeout(0.1)
        self.datagrams: list[list[str]] = []
        self.hooks: list[Callable[[list[str]], None]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            lines = data.decode().split("\n")
            for hook in self.hooks:
                hook(lines)
            with self._lock:
                self.datagrams.append(lines)

    def lines(self) -> list[str]:
        with self._lock:
            return [line for d in self.datagrams for line in d]

    def count(self, line: str) -> int:
        return self.lines().count(line)

    def statuses(self) -> list[str]:
        return [line[len("STATUS=") :] for line in self.lines() if line.startswith("STATUS=")]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[NotifyListener]:
    lst = NotifyListener()
    yield lst
    lst.close()


def _environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)


def test_ready_status_watchdog_and_stopping_reach_the_notify_socket(
    start_system: Callable[..., SystemUnderTest], listener: NotifyListener
) -> None:
    """READY=1 arrives once, when `status` shows every actor running; its STATUS line and the
    later ones say the venues are up and intake is open; the kill-switch engaged by an
    operator shows in STATUS; WATCHDOG=1 keeps arriving about every second (half of
    WATCHDOG_USEC = 2 s); SIGTERM sends STOPPING=1 and the supervisor exits 0. No actor has
    NOTIFY_SOCKET in its environment."""
    env = {"NOTIFY_SOCKET": listener.name, "WATCHDOG_USEC": str(WATCHDOG_USEC)}
    sut_box: list[SystemUnderTest] = []
    at_ready: list[list[str]] = []

    def on_datagram(lines: list[str]) -> None:  # the actors' states when READY=1 came in
        if "READY=1" in lines and sut_box:
            at_ready.append([a["state"] for a in sut_box[0].status(timeout_s=5.0)["actors"]])

    listener.hooks.append(on_datagram)
    sut = start_system(env=env, wait_ready=False)
    sut_box.append(sut)
    eventually(lambda: listener.count("READY=1") == 1, 30.0, message=sut.describe)
    st = sut.wait_ready()
    eventually(lambda: at_ready, 10.0)
    assert at_ready[0] and set(at_ready[0]) == {"running"}, at_ready
    ready_at = listener.lines().index("READY=1")
    assert listener.lines()[ready_at + 1].startswith("STATUS=ready: ")
    eventually(
        lambda: "ready: 2/2 venues up, intake open" in listener.statuses(), 20.0,
        message=lambda: f"{listener.statuses()}\n{sut.describe()}",
    )  # fmt: skip
    for actor in st["actors"]:
        assert "NOTIFY_SOCKET" not in _environ_of(actor["pid"]), actor["id"]
        assert "WATCHDOG_USEC" not in _environ_of(actor["pid"]), actor["id"]

    pings = listener.count("WATCHDOG=1")
    eventually(lambda: listener.count("WATCHDOG=1") >= pings + 3, 10.0)

    done = sut.cli("kill-switch", "engage", "--reason", "desk halt for sd_notify test")
    assert done.returncode == 0, done.stderr
    eventually(
        lambda: any(
            s.startswith("kill-switch ENGAGED: desk halt for sd_notify test; 2/2 venues up")
            for s in listener.statuses()
        ),
        10.0,
        message=lambda: str(listener.statuses()),
    )

    # `systemctl reload` is SIGHUP: RELOADING=1 (with MONOTONIC_USEC), then READY=1 again
    # once the reload is done (here: the config unchanged)
    assert listener.count("RELOADING=1") == 0
    assert sut.proc is not None
    os.kill(sut.proc.pid, signal.SIGHUP)
    eventually(lambda: listener.count("READY=1") == 2, 10.0, message=lambda: str(listener.lines()))
    lines = listener.lines()
    reloading = lines.index("RELOADING=1")
    assert any(line.startswith("MONOTONIC_USEC=") for line in lines[reloading:])
    assert reloading < len(lines) - 1 - lines[::-1].index("READY=1")  # READY after RELOADING

    assert listener.count("STOPPING=1") == 0
    assert sut.stop() == 0
    assert listener.count("STOPPING=1") == 1
    assert listener.count("READY=1") == 2


def test_a_notify_socket_nobody_listens_on_is_counted_not_fatal(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """NOTIFY_SOCKET names a socket that is gone: the system starts and runs all the same;
    the failed datagrams are counted (tradepulse_sd_notify_failures_total) and logged
    (`sd_notify_failed`), once a minute, not per datagram."""
    env = {"NOTIFY_SOCKET": f"@tp-nobody-{uuid.uuid4().hex[:12]}", "WATCHDOG_USEC": "400000"}
    sut = start_system(env=env)
    sut.wait_event("sd_notify_failed", 10.0)
    eventually(lambda: (sut.metric("tradepulse_sd_notify_failures_total") or 0) >= 5, 10.0)
    assert sut.stop() == 0
    assert len(sut.events("sd_notify_failed")) == 1  # in the complete log
