"""Test harness: the real venue-sim process started alone, and a FIX 4.4 client built on our
own `FixSession` over a real socket. Every wait is a condition with a deadline."""

from __future__ import annotations

import json
import math
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import simplefix  # type: ignore[import-untyped]

from actors.connector.fix import codec as fc
from actors.connector.fix.events import AppMessage, Disconnect, SessionEvent
from actors.connector.fix.session import FixSession
from actors.connector.fix.store import FixStore
from actors.venuesim.control import control_request
from protocol.config import SystemConfig, load_config
from protocol.messages import ControlReply
from protocol.paths import sim_port_file
from tests.helpers import REPO_ROOT, eventually, kill_and_reap, process_alive, run_python, to_toml
from tests.system_ops import inspect_venue
from tests.venuesim.conformance import assert_conforms

VENUE = "simA"
CLIENT_ID = "TRADEPULSE"
VENUE_ID = "SIMA"
D = Decimal


def sim_config(**sim: Any) -> dict[str, Any]:
    """One simulated venue with a still market (volatility 0): the market maker bids
    99.99 .. 99.95 and offers 100.01 .. 100.05, 100 each, around AAPL 100; MSFT 300."""
    table: dict[str, Any] = {
        "reference_prices": {"AAPL": "100.00", "MSFT": "300.00"},
        "tick_size": "0.01",
        "quote_qty": "100",
        "quote_levels": 5,
        "volatility_bps": 0.0,
        "liquidity_interval_s": 0.05,
    }
    table.update(sim)
    return {
        "system": {"name": "simtest", "log_level": "debug"},
        "venues": [
            {"name": VENUE, "target_comp_id": VENUE_ID, "sender_comp_id": CLIENT_ID,
             "heartbeat_s": 5, "sim": table},
        ],
    }  # fmt: skip


def field(msg: simplefix.FixMessage, tag: int) -> str | None:
    return fc.get_str(msg, tag)


class SimProcess:
    """`python -m actors.venuesim run` in a subprocess, with its JSON log captured."""

    def __init__(self, root: Path, config: dict[str, Any]) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.state_dir = root / "state"
        self.runtime_dir = root / "rt"
        self.config_path = root / "config.toml"
        self.config_path.write_text(to_toml(config))
        self.cfg: SystemConfig = load_config(
            self.config_path, state_dir=str(self.state_dir), runtime_dir=str(self.runtime_dir)
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.lines: list[dict[str, Any]] = []
        self.stderr: list[str] = []
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.pids: list[int] = []

    def cli_args(self) -> list[str]:
        return ["--config", str(self.config_path), "--state-dir", str(self.state_dir),
                "--runtime-dir", str(self.runtime_dir), "--venue", VENUE]  # fmt: skip

    def start(self, timeout_s: float = 15.0) -> SimProcess:
        assert self.proc is None or self.proc.poll() is not None
        mark = len(self.lines)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "actors.venuesim", "run", *self.cli_args()],
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.pids.append(self.proc.pid)
        for stream, sink in ((self.proc.stdout, self._on_line), (self.proc.stderr, self._on_err)):
            t = threading.Thread(target=self._pump, args=(stream, sink), daemon=True)
            t.start()
            self._threads.append(t)
        self.wait_event("actor_started", since=mark, timeout_s=timeout_s)
        return self

    @property
    def port(self) -> int:
        return int(sim_port_file(self.runtime_dir, VENUE).read_text())

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self, timeout_s: float = 10.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout_s)

    def destroy(self) -> None:
        kill_and_reap(p for p in self.pids if process_alive(p))
        if self.proc is not None:
            self.proc.wait(timeout=10)
        for t in self._threads:
            t.join(timeout=5)

    def control(self, command: str, value: object = None, timeout_s: float = 5.0) -> ControlReply:
        args = {} if value is None else {"value": value}
        return control_request(self.cfg, VENUE, command, args, timeout_s)

    def run_tool(
        self, argv: list[str], timeout_s: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        """Run `python ARGV` from the repository (a `tests.system_ops.Deployment`)."""
        return run_python(argv, timeout_s=timeout_s)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`python -m actors.venuesim ARGS`."""
        return self.run_tool(["-m", "actors.venuesim", *args], timeout_s=30)

    def inspect(self) -> dict[str, Any]:
        return inspect_venue(self, VENUE, timeout_s=30)

    # -- logs

    def _pump(self, stream: Any, sink: Callable[[str], None]) -> None:
        try:
            for raw in iter(stream.readline, b""):
                sink(raw.decode("utf-8", "replace").rstrip("\n"))
        except (OSError, ValueError):
            pass
        finally:
            stream.close()

    def _on_line(self, line: str) -> None:
        try:
            obj = json.loads(line)
        except ValueError:
            obj = {"event": "raw", "line": line}
        with self._lock:
            self.lines.append(obj if isinstance(obj, dict) else {"event": "raw", "line": line})

    def _on_err(self, line: str) -> None:
        with self._lock:
            self.stderr.append(line)

    def mark(self) -> int:
        with self._lock:
            return len(self.lines)

    def events(self, name: str, since: int = 0, **match: Any) -> list[dict[str, Any]]:
        with self._lock:
            lines = self.lines[since:]
        return [
            e
            for e in lines
            if e.get("event") == name and all(e.get(k) == v for k, v in match.items())
        ]

    def wait_event(
        self, name: str, since: int = 0, timeout_s: float = 10.0, **match: Any
    ) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            if (
                self.proc is not None
                and self.proc.poll() is not None
                and not self.events(name, since, **match)
            ):
                raise RuntimeError(f"venue sim exited {self.proc.returncode}: {self.describe()}")
            hits = self.events(name, since, **match)
            return hits[0] if hits else None

        return eventually(found, timeout_s, message=lambda: f"{name} {match}\n{self.describe()}")

    def describe(self) -> str:
        with self._lock:
            out = [json.dumps(x) for x in self.lines[-25:]]
            err = self.stderr[-25:]
        return "--- stdout\n" + "\n".join(out) + "\n--- stderr\n" + "\n".join(err)


class FixClient:
    """A blocking FIX 4.4 initiator for tests: our `FixSession` over a real TCP socket."""

    def __init__(self, port: int, store_dir: Path, *, heartbeat_s: int = 5,
                 sender: str = CLIENT_ID, target: str = VENUE_ID) -> None:  # fmt: skip
        self.port = port
        self.store = FixStore(store_dir, fsync=False)
        self.session = FixSession(
            sender_comp_id=sender, target_comp_id=target, store=self.store, initiator=True,
            heartbeat_s=heartbeat_s,
        )  # fmt: skip
        self.sock: socket.socket | None = None
        self.app: list[AppMessage] = []
        self.events: list[SessionEvent] = []
        self._cl = 0

    # -- connection

    def connect(
        self, *, reset: bool = False, wait: bool = True, timeout_s: float = 5.0
    ) -> FixClient:
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=timeout_s)
        self.sock.setblocking(False)
        self.session.logon(reset=reset)
        self._flush()
        if wait:
            self.wait(lambda: self.logged_on, timeout_s, "logon")
        return self

    @property
    def logged_on(self) -> bool:
        return self.session.state == "active"

    @property
    def connected(self) -> bool:
        return self.sock is not None

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
            self.session.connection_lost()

    def shutdown(self) -> None:
        self.close()
        self.store.close()

    # -- traffic

    def pump(self, wait_s: float = 0.02) -> None:
        """One turn: read what there is (waiting up to `wait_s`), timers, write."""
        events: list[SessionEvent] = []
        if self.sock is not None:
            readable = select.poll()  # not select(): the worker may hold fds past 1023
            readable.register(self.sock, select.POLLIN)
            if readable.poll(math.ceil(wait_s * 1000)):
                try:
                    data = self.sock.recv(1 << 16)
                except (BlockingIOError, InterruptedError):
                    data = None
                except OSError:
                    data = b""
                if data == b"":
                    self.events.append(Disconnect("peer closed"))
                    self.close()
                    return
                if data:
                    events += self.session.receive(data)
            events += self.session.tick()
        else:
            time.sleep(wait_s)
        for ev in events:
            self.events.append(ev)
            if isinstance(ev, AppMessage):
                self.app.append(ev)
                fields = {int(t): bytes(v).decode() for t, v in ev.msg.pairs}
                assert_conforms([(ev.msg_type, fields)])  # what FIX 4.4 requires of it
        self._flush()
        if any(isinstance(ev, Disconnect) for ev in events):
            self.close()

    def _flush(self) -> None:
        data = self.session.data_to_send()
        if self.sock is not None and data:
            self.sock.setblocking(True)
            try:
                self.sock.sendall(data)
            except OSError:
                pass
            finally:
                if self.sock is not None:
                    self.sock.setblocking(False)

    def wait(self, pred: Callable[[], Any], timeout_s: float = 5.0, what: str = "") -> Any:
        deadline = time.monotonic() + timeout_s
        while True:
            value = pred()
            if value:
                return value
            if time.monotonic() >= deadline:
                raise AssertionError(f"timed out waiting for {what or pred}; got {self.describe()}")
            self.pump()

    def send(self, msg_type: str, fields: Sequence[tuple[int, fc.Value]]) -> int:
        seq = self.session.send(msg_type, fields)
        self._flush()
        return seq

    def mark(self) -> int:
        return len(self.app)

    def wait_msgs(self, count: int, since: int = 0, timeout_s: float = 5.0,
                  msg_type: str | None = None) -> list[simplefix.FixMessage]:  # fmt: skip
        def got() -> list[simplefix.FixMessage] | None:
            msgs = [a.msg for a in self.app[since:] if msg_type is None or a.msg_type == msg_type]
            return msgs[:count] if len(msgs) >= count else None

        return self.wait(got, timeout_s, f"{count} x {msg_type or 'any'} since {since}")  # type: ignore[no-any-return]

    def quiet(self, since: int, duration_s: float = 0.3) -> list[simplefix.FixMessage]:
        """Pump for `duration_s` (to prove nothing more comes), return what arrived."""
        end = time.monotonic() + duration_s
        while time.monotonic() < end:
            self.pump()
        return [a.msg for a in self.app[since:]]

    def describe(self) -> str:
        tail = [f"{a.msg_type} {_brief(a.msg)}" for a in self.app[-10:]]
        return f"state={self.session.state} events={self.events[-5:]} app={tail}"

    # -- orders

    def next_cl(self, prefix: str = "C") -> str:
        self._cl += 1
        return f"{prefix}{self._cl}-{os.getpid()}-{time.monotonic_ns() % 10**6}"

    def order(self, cl: str, side: str = "1", qty: str = "10", price: str | None = None,
              symbol: str = "AAPL", tif: str | None = None) -> int:  # fmt: skip
        fields: list[tuple[int, fc.Value]] = [
            (11, cl),
            (55, symbol),
            (54, side),
            (60, fc.sending_time(time.time())),
            (38, qty),
            (40, "2" if price else "1"),
        ]
        if price:
            fields.append((44, price))
        if tif:
            fields.append((59, tif))
        return self.send("D", fields)


def _brief(msg: simplefix.FixMessage) -> str:
    keep = (11, 41, 17, 150, 39, 14, 151, 32, 31, 58, 103)
    return " ".join(f"{t}={field(msg, t)}" for t in keep if msg.get(t) is not None)
