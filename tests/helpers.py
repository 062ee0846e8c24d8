"""Test helpers: wait for a condition with a deadline, and run the real system in a subprocess.

`SystemUnderTest` writes a small test config, starts `python supervisor.py run` as a real
process (isolated state and runtime dirs under a short /tmp path, metrics on a free port),
captures its JSON log lines, talks to it over the control socket, and on `destroy()` kills
every process it started. Nothing here sleeps to synchronise: every wait is a condition
with a deadline.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import psutil
import zmq

from protocol.config import SystemConfig, load_config
from protocol.control import ControlUnavailable, control_request
from protocol.messages import ControlReply
from tests.fixlogs import collect as collect_fix_logs

REPO_ROOT = Path(__file__).resolve().parent.parent
SUPERVISOR = REPO_ROOT / "supervisor.py"
T = TypeVar("T")


# --------------------------------------------------------------------------- waiting


def eventually(
    predicate: Callable[[], T | None],
    timeout_s: float = 10.0,
    *,
    interval_s: float = 0.01,
    ignore: tuple[type[BaseException], ...] = (AssertionError,),
    message: str | Callable[[], str] = "",
) -> T:
    """Call `predicate` until it returns something truthy (returned) or `timeout_s` passes.

    Exceptions in `ignore` count as "not yet"; the last one is reported on timeout.
    """
    deadline = time.monotonic() + timeout_s
    last: object = None
    while True:
        try:
            value = predicate()
            if value:
                return value
            last = value
        except ignore as exc:
            last = exc
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise AssertionError(
                f"condition not met within {timeout_s} s: {text or predicate!r}; last: {last!r}"
            )
        time.sleep(interval_s)


# --------------------------------------------------------------------------- processes


def run_python(
    argv: Sequence[str], env: Mapping[str, str] | None = None, timeout_s: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """Run `python ARGV` from the repository (stdin closed, output captured as text); the
    caller checks the exit code. `env` None: this process's environment."""
    return subprocess.run(
        [sys.executable, *argv],
        cwd=REPO_ROOT,
        env=None if env is None else dict(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def process_alive(pid: int) -> bool:
    """True while `pid` runs (a zombie counts as dead)."""
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def kill_and_reap(pids: Iterable[int], timeout_s: float = 5.0) -> list[int]:
    """SIGKILL each pid and wait until it is gone; reap those that are (or become, through
    the subreaper) our children. Returns the pids that were still alive when killed."""
    killed: list[int] = []
    pending = set(pids)
    for pid in pending:
        if process_alive(pid):
            killed.append(pid)
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.monotonic() + timeout_s
    while pending and time.monotonic() < deadline:
        for pid in list(pending):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
                if done:
                    pending.discard(pid)
            except ChildProcessError:  # not our child: dead (or a zombie its parent reaps)
                if not process_alive(pid):
                    pending.discard(pid)
        if pending:
            time.sleep(0.005)
    return killed


def freeze_tree(root: int) -> set[int]:
    """SIGSTOP `root` and all its descendants, listing them again until every one of them
    is seen stopped and a listing finds none new, twice in a row (a process that exits while
    the tree is listed can hide its child for one listing); returns the descendants' pids.
    Stopping the root alone is not enough: the supervisor's fork server answers a spawn
    request already sent and forks an actor after a single listing, which then outlives the
    kill of the tree. Nor is sending SIGSTOP: a process inside fork() when it is sent stops
    only when the call returns, with its child made after the listings (on a loaded machine
    a fork can outlast two of them), so a process counts as stopped when the kernel says so."""
    stopped: set[int] = set()
    try:
        top = psutil.Process(root)
        top.suspend()  # no restarts, no new spawn requests
    except psutil.NoSuchProcess:
        return stopped
    quiet = 0
    deadline = time.monotonic() + 10.0  # a process in uninterruptible sleep stops late
    while quiet < 2:
        try:
            found = {p.pid for p in top.children(recursive=True)}
        except psutil.NoSuchProcess:
            return stopped
        new = found - stopped
        for pid in new:
            try:
                os.kill(pid, signal.SIGSTOP)
            except ProcessLookupError:
                pass
        stopped |= new
        settling = time.monotonic() < deadline and not all(
            _is_stopped(pid) for pid in stopped | {root}
        )
        quiet = 0 if new or settling else quiet + 1
        if settling:
            time.sleep(0.001)
    return stopped


_STOPPED_OR_GONE = (psutil.STATUS_STOPPED, psutil.STATUS_TRACING_STOP, psutil.STATUS_ZOMBIE)


def _is_stopped(pid: int) -> bool:
    """True once `pid` is stopped by a signal, or gone (a zombie forks no more)."""
    try:
        return psutil.Process(pid).status() in _STOPPED_OR_GONE
    except psutil.NoSuchProcess:
        return True


def run_session(argv: list[str], timeout_s: float = 60.0) -> subprocess.CompletedProcess[bytes]:
    """Run `argv` from the repo (PYTHONPATH set) in a session of its own until it exits or
    `timeout_s` passes; then its whole process group is killed, so whatever it started is
    gone too. Its exit code and output (TimeoutExpired past the deadline)."""
    proc = subprocess.Popen(
        argv,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout_s)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def reap_zombie_children() -> list[int]:
    """Reap direct children that are already dead (orphans re-parented to the subreaper)."""
    reaped = []
    for child in psutil.Process().children():
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                os.waitpid(child.pid, os.WNOHANG)
                reaped.append(child.pid)
        except (psutil.NoSuchProcess, ChildProcessError):
            pass
    return reaped


# --------------------------------------------------------------------------- config


def _deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return (
            "{ " + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
        )
    return json.dumps(str(value))  # Decimal and friends travel as strings


def _toml_key(key: str) -> str:
    """A bare key where TOML allows one, else quoted ("BTC/USDT")."""
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, Mapping) for v in value)


def to_toml(data: Mapping[str, Any], _prefix: str = "") -> str:
    """A small TOML writer for test configs: tables, arrays of tables, scalars, inline maps."""
    lines: list[str] = []
    scalars = {
        k: v for k, v in data.items() if not isinstance(v, Mapping) and not _is_table_array(v)
    }
    for key, value in scalars.items():
        lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    for key, value in data.items():
        path = f"{_prefix}{key}"
        if isinstance(value, Mapping):
            lines += ["", f"[{path}]", to_toml(value, path + ".")]
        elif _is_table_array(value):
            for item in value:
                lines += ["", f"[[{path}]]", to_toml(item, path + ".")]
    return "\n".join(lines).strip("\n") + "\n"


def make_config(
    *,
    venues: Sequence[str] = ("simA", "simB"),
    sim: bool = True,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The config dict the integration tests run with: fast heartbeats, fast restarts."""
    base: dict[str, Any] = {
        "system": {"name": "test", "log_level": "info"},
        "supervisor": {
            "heartbeat_interval_s": 0.2,
            "hang_missed_intervals": 3,
            "start_timeout_s": 10.0,
            "shutdown_timeout_s": 2.0,
            "spawn": "forkserver",
            "restart": {
                "initial_s": 0.002,
                "factor": 2.0,
                "max_s": 1.0,
                "jitter": 0.2,
                "reset_after_s": 30.0,
                "max_restarts": 50,
                "window_s": 60.0,
            },
        },
        "metrics": {"host": "127.0.0.1", "port": 0},
        "heartbeat": {"log_every_n": 1},  # the tests read every beat's `heartbeat` line
        "venues": [
            {"name": name, "target_comp_id": name.upper()}
            | ({"sim": {"reference_prices": {"AAPL": "100.00"}}} if sim else {})
            for name in venues
        ],
    }
    return _deep_merge(base, overrides or {})


# --------------------------------------------------------------------------- the system


# the systems created since the current test began (the last 8: a bench or the chaos harness
# creates many outside pytest): a failed test's report shows their logs (tests/conftest.py)
CREATED: deque[SystemUnderTest] = deque(maxlen=8)


class SystemUnderTest:
    """One real supervisor process (and its actors) with an isolated state and runtime dir."""

    def __init__(
        self,
        *,
        venues: Sequence[str] = ("simA", "simB"),
        sim: bool = True,
        overrides: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
        root: Path | None = None,
        launcher: Sequence[str] = (),
        run_args: Sequence[str] = (),
    ) -> None:
        # ipc paths must stay under ~100 chars: a short dir in /tmp, not pytest's tmp_path
        self.root = root or Path(tempfile.mkdtemp(prefix="tp", dir="/tmp"))
        self._own_root = root is None
        self._sim = sim
        self.state_dir = self.root / "state"
        self.runtime_dir = self.root / "rt"
        self.config_path = self.root / "config.toml"
        self.config_path.write_text(
            to_toml(make_config(venues=venues, sim=sim, overrides=overrides))
        )
        self.cfg: SystemConfig = load_config(
            self.config_path, state_dir=str(self.state_dir), runtime_dir=str(self.runtime_dir)
        )
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.launcher = list(launcher)  # e.g. ["prlimit", "--nofile=64:4096", "--"]
        self.run_args = list(run_args)  # e.g. ["--intake", "paused"]: flags only `run` takes
        self.proc: subprocess.Popen[bytes] | None = None
        self.lines: list[dict[str, Any]] = []
        self.raw_lines: list[str] = []
        self.stderr_lines: list[str] = []
        self._cond = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._seen_pids: set[int] = set()
        CREATED.append(self)

    # ------------------------------------------------------------------ lifecycle

    def cli_args(self) -> list[str]:
        return [
            "--config", str(self.config_path),
            "--state-dir", str(self.state_dir),
            "--runtime-dir", str(self.runtime_dir),
        ]  # fmt: skip

    def start(self, *, wait_ready: bool = True, timeout_s: float = 20.0) -> SystemUnderTest:
        assert self.proc is None, "already started"
        self.proc = subprocess.Popen(
            [*self.launcher, sys.executable, str(SUPERVISOR), "run", *self.cli_args()]
            + ["--metrics-port", "0", *self.run_args],
            cwd=REPO_ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for stream, sink in (
            (self.proc.stdout, self._on_stdout),
            (self.proc.stderr, self._on_stderr),
        ):
            t = threading.Thread(target=self._pump, args=(stream, sink), daemon=True)
            t.start()
            self._threads.append(t)
        if wait_ready:
            self.wait_ready(timeout_s=timeout_s)
        return self

    def wait_ready(
        self, timeout_s: float = 20.0, *, actors: Iterable[str] | None = None
    ) -> dict[str, Any]:
        """Wait until every actor (or those named) is `running`; returns that status."""
        wanted = set(actors) if actors is not None else None

        def ready() -> dict[str, Any] | None:
            self._assert_running()
            st = self.status(timeout_s=2.0)
            rows = [a for a in st["actors"] if wanted is None or a["id"] in wanted]
            ok = rows and all(a["state"] == "running" and a["pid"] for a in rows)
            return st if ok else None

        return eventually(
            ready, timeout_s, interval_s=0.02, ignore=(ControlUnavailable,), message=self.describe
        )

    def wait_exit(self, timeout_s: float = 15.0) -> int:
        assert self.proc is not None
        try:
            code = self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"supervisor still running after {timeout_s} s\n{self.describe()}"
            ) from None
        self._join_pumps()
        return code

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 15.0) -> int:
        """Signal the supervisor and wait for its exit code."""
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.wait_exit(timeout_s)

    def destroy(self) -> None:
        """kill -9 the supervisor and everything under it, reap, remove the dirs."""
        if self.proc is not None and self.proc.poll() is None:
            pids = freeze_tree(self.proc.pid)
            kill_and_reap(pids | {p for p in self._seen_pids if process_alive(p)})
            self.proc.kill()
            self.proc.wait(timeout=10)
            reap_zombie_children()  # its dead children, re-parented to us (the subreaper)
        elif self.proc is not None:
            kill_and_reap(p for p in self._seen_pids if process_alive(p))
        if self.proc is not None:
            self._join_pumps()
        # FIX message logs on both sides are expected where a simulated FIX venue ran
        fix_sim = any(v.sim is not None and v.kind == "fix" for v in self.cfg.venues)
        collect_fix_logs(self.root, system=self.proc is not None and fix_sim)
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    # ------------------------------------------------------------------ control socket

    def control(self, command: str, timeout_s: float = 5.0, **args: Any) -> ControlReply:
        return control_request(self.cfg, command, args, timeout_s=timeout_s)

    def status(self, timeout_s: float = 5.0) -> dict[str, Any]:
        reply = self.control("status", timeout_s=timeout_s)
        assert reply.status == "ok", reply
        for a in reply.data["actors"]:
            if a["pid"]:
                self._seen_pids.add(a["pid"])
        return reply.data

    def actor(self, actor_id: str, status: dict[str, Any] | None = None) -> dict[str, Any]:
        st = status or self.status()
        for a in st["actors"]:
            if a["id"] == actor_id:
                return dict(a)
        raise KeyError(actor_id)

    def actor_ids(self) -> list[str]:
        return [a["id"] for a in self.status()["actors"]]

    def pid_of(self, actor_id: str) -> int:
        pid = self.actor(actor_id)["pid"]
        assert pid, f"{actor_id} has no pid"
        return int(pid)

    def epoch_of(self, actor_id: str) -> int:
        return int(self.actor(actor_id)["epoch"])

    def pids(self) -> dict[str, int | None]:
        return {a["id"]: a["pid"] for a in self.status()["actors"]}

    def cli(self, *args: str, timeout_s: float = 20.0) -> subprocess.CompletedProcess[str]:
        """Run `python supervisor.py ARGS --config ... --state-dir ... --runtime-dir ...`."""
        return self.run_tool([str(SUPERVISOR), *args, *self.cli_args()], timeout_s)

    def run_tool(
        self, argv: list[str], timeout_s: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        """Run `python ARGV` from the repository with this system's environment."""
        return run_python(argv, self.env, timeout_s)

    # ------------------------------------------------------------------ metrics

    def metrics_text(self, timeout_s: float = 5.0) -> str:
        url = self.status()["metrics_url"]
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:  # noqa: S310 - loopback
            return str(resp.read().decode())

    def metric(self, name: str, **labels: str) -> float | None:
        """The value of one sample (sum over samples matching `labels`), or None if absent."""
        return metric_value(self.metrics_text(), name, **labels)

    # ------------------------------------------------------------------ logs

    def _pump(self, stream: Any, sink: Callable[[str], None]) -> None:
        try:
            for raw in iter(stream.readline, b""):
                sink(raw.decode("utf-8", "replace").rstrip("\n"))
        except (OSError, ValueError):  # closed under us at teardown
            pass

    def _on_stdout(self, line: str) -> None:
        try:
            obj = json.loads(line)
        except ValueError:
            obj = None
        with self._cond:
            self.raw_lines.append(line)
            if isinstance(obj, dict):
                self.lines.append(obj)
            self._cond.notify_all()

    def _on_stderr(self, line: str) -> None:
        with self._cond:
            self.stderr_lines.append(line)

    def _join_pumps(self) -> None:
        for t in self._threads:
            t.join(timeout=5)
        for stream in (self.proc.stdout, self.proc.stderr) if self.proc else ():
            if stream is not None:
                stream.close()

    def mark(self) -> int:
        """A position in the log; pass it as `since=` to look only at later lines."""
        with self._cond:
            return len(self.lines)

    def events(
        self, name: str | None = None, *, since: int = 0, **match: Any
    ) -> list[dict[str, Any]]:
        with self._cond:
            lines = self.lines[since:]
        return [
            e
            for e in lines
            if (name is None or e.get("event") == name)
            and all(e.get(k) == v for k, v in match.items())
        ]

    def wait_event(
        self, name: str, timeout_s: float = 10.0, *, since: int = 0, **match: Any
    ) -> dict[str, Any]:
        """The first log event `name` (at or after `since`) whose fields equal `match`."""
        return self.wait_events(name, 1, timeout_s, since=since, **match)[0]

    def wait_events(
        self, name: str, count: int, timeout_s: float = 10.0, *, since: int = 0, **match: Any
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                found = self.events(name, since=since, **match)
                if len(found) >= count:
                    return found[:count]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
        raise AssertionError(
            f"{count} x {name} {match} not logged within {timeout_s} s (saw {len(found)})\n"
            + self.describe()
        )

    # ------------------------------------------------------------------ diagnostics

    def _assert_running(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(
                f"supervisor exited with code {self.proc.returncode}\n{self.describe()}"
            )

    def describe(self, tail: int = 30) -> str:
        with self._cond:
            out = self.raw_lines[-tail:]
            err = self.stderr_lines[-tail:]
        return "--- stdout tail\n" + "\n".join(out) + "\n--- stderr tail\n" + "\n".join(err)

    def notable_lines(self, limit: int = 200, per_event: int = 10, stderr: int = 40) -> list[str]:
        """The last `limit` log lines that tell what the system did: warnings and errors,
        and every event of actors, venues, reconciliation and intake (a failed test's
        report shows them, so a flake seen once in CI can be read afterwards). An event
        logged more than 2 x `per_event` times (one line per order) keeps its first and
        last `per_event` lines and a count of the rest, so a burst does not push its cause
        out of the `limit`. Then the last `stderr` lines of stderr, where every process of
        the system writes what is not a log event: a libzmq assertion before its SIGABRT,
        a fatal Python error."""
        with self._cond:
            raw = list(self.raw_lines)
            errs = self.stderr_lines[-stderr:] if stderr > 0 else []
        lines = [(line, event) for line in raw if (event := _notable_event(line)) is not None]
        total = Counter(event for _, event in lines if event)
        seen: Counter[str] = Counter()
        keep: list[str] = []
        for line, event in lines:
            seen[event] += 1
            n, of = seen[event], total[event]
            if not event or of <= 2 * per_event or n <= per_event or n > of - per_event:
                keep.append(line)
            elif n == per_event + 1:
                keep.append(f"... {of - 2 * per_event} more {event} lines ...")
        return keep[-limit:] + [f"[stderr] {line}" for line in errs]


_NOTABLE_LEVELS = frozenset({"warning", "error", "critical"})
_NOTABLE_WORDS = ("actor_", "venue", "reconcil", "intake", "kill_switch", "session")


def _notable_event(line: str) -> str | None:
    """The line's event if it is notable ("" for a line that is not a log event: a
    traceback, a print), else None."""
    try:
        obj = json.loads(line)
    except ValueError:
        return ""
    if not isinstance(obj, dict):
        return ""
    event = str(obj.get("event", ""))
    if obj.get("level") in _NOTABLE_LEVELS or any(w in event for w in _NOTABLE_WORDS):
        return event
    return None


@contextmanager
def run_system(
    *, wait_ready: bool = True, timeout_s: float = 20.0, **kwargs: Any
) -> Iterator[SystemUnderTest]:
    """`with run_system(overrides=..., env=...) as sut:` a started system, killed on exit
    (for scripts and benchmarks; tests use the `start_system` fixture)."""
    sut = SystemUnderTest(**kwargs)
    try:
        yield sut.start(wait_ready=wait_ready, timeout_s=timeout_s)
    finally:
        sut.destroy()


def event_time(event: Mapping[str, Any]) -> float:
    """A JSON log event's `ts` (ISO 8601) as seconds since the epoch."""
    return datetime.fromisoformat(str(event["ts"])).timestamp()


def metric_value(text: str, name: str, **labels: str) -> float | None:
    """Sum of the samples of `name` whose labels include `labels`; None if there are none."""
    from prometheus_client.parser import text_string_to_metric_families

    total: float | None = None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total = (total or 0.0) + sample.value
    return total


def raw_dealer(ctx: zmq.Context[zmq.Socket[bytes]], endpoint: str) -> zmq.Socket[bytes]:
    """A DEALER on `endpoint` that queues whatever a test or a benchmark pipelines (no HWM
    on either side) and is dropped at once when closed (LINGER 0)."""
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, 0)
    sock.setsockopt(zmq.RCVHWM, 0)
    sock.connect(endpoint)
    return sock
