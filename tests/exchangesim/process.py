"""The real simulated-exchange process (`python -m actors.exchangesim run`), alone, with
its JSON log captured; every wait is a condition with a deadline."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from protocol.paths import sim_port_file
from tests.exchangesim.rig import API_KEY, SECRET
from tests.helpers import REPO_ROOT, eventually, kill_and_reap, process_alive, run_python, to_toml

VENUE = "binance-local"
KEY_ENV = "TP_TEST_XSIM_KEY"
SECRET_ENV = "TP_TEST_XSIM_SECRET"
CREDS = {KEY_ENV: API_KEY, SECRET_ENV: SECRET}


def exchange_config(**sim: Any) -> dict[str, Any]:
    table: dict[str, Any] = {
        "reference_prices": {"BTC/USDT": "50000", "ETH/USDT": "3000"},
        "tick_size": "0.01",
        "quote_qty": "2",
        "quote_levels": 5,
        "volatility_bps": 0.0,
        "liquidity_interval_s": 0.05,
    }
    table.update(sim)
    ccxt = {"api_key_env": KEY_ENV, "secret_env": SECRET_ENV, "symbols": ["BTC/USDT"]}
    return {
        "system": {"name": "xsimtest", "log_level": "debug"},
        "venues": [{"name": VENUE, "kind": "ccxt", "ccxt": ccxt, "sim": table}],
    }


class ExchangeProcess:
    def __init__(self, root: Path, config: dict[str, Any]) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.state_dir = root / "state"
        self.runtime_dir = root / "rt"
        self.config_path = root / "config.toml"
        self.config_path.write_text(to_toml(config))
        self.proc: subprocess.Popen[bytes] | None = None
        self.lines: list[dict[str, Any]] = []
        self.stderr: list[str] = []
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.pids: list[int] = []

    def cli_args(self) -> list[str]:
        return ["--config", str(self.config_path), "--state-dir", str(self.state_dir),
                "--runtime-dir", str(self.runtime_dir), "--venue", VENUE]  # fmt: skip

    def start(self, env: dict[str, str] | None = None, timeout_s: float = 20.0) -> None:
        mark = len(self.lines)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "actors.exchangesim", "run", *self.cli_args()],
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(CREDS if env is None else env)},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.pids.append(self.proc.pid)
        for stream, sink in ((self.proc.stdout, self._on_line), (self.proc.stderr, self._on_err)):
            t = threading.Thread(target=self._pump, args=(stream, sink), daemon=True)
            t.start()
            self._threads.append(t)
        if env is None or env == CREDS:
            self.wait_event("actor_started", since=mark, timeout_s=timeout_s)

    @property
    def port(self) -> int:
        return int(sim_port_file(self.runtime_dir, VENUE).read_text())

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self, timeout_s: float = 15.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout_s)

    def destroy(self) -> None:
        kill_and_reap(p for p in self.pids if process_alive(p))
        if self.proc is not None:
            self.proc.wait(timeout=10)
        for t in self._threads:
            t.join(timeout=5)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_python(["-m", "actors.exchangesim", *args], timeout_s=60)

    def inspect(self) -> dict[str, Any]:
        out = self.cli("inspect", *self.cli_args(), "--json")
        assert out.returncode == 0, out.stderr
        data: dict[str, Any] = json.loads(out.stdout)
        return data

    def control(self, command: str, value: object = None) -> dict[str, Any]:
        extra = [] if value is None else ["--value", str(value)]
        out = self.cli("control", *self.cli_args(), command, *extra, "--json")
        assert out.returncode == 0, out.stdout + out.stderr
        reply: dict[str, Any] = json.loads(out.stdout)
        return reply

    # -- logs

    def _pump(self, stream: Any, sink: Any) -> None:
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

    def events(self, name: str, since: int = 0) -> list[dict[str, Any]]:
        with self._lock:
            return [e for e in self.lines[since:] if e.get("event") == name]

    def wait_event(self, name: str, since: int = 0, timeout_s: float = 10.0) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            hits = self.events(name, since)
            if not hits and self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"exchange sim exited {self.proc.returncode}: {self.stderr}")
            return hits[0] if hits else None

        return eventually(found, timeout_s, message=lambda: f"{name}: {self.lines[-20:]}")
