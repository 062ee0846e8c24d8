"""A post-mortem bundle for every kill-switch engagement, written by a child process.

The kill-switch file is the truth (risk, the OMS path through risk, the supervisor's own
critical exits and an operator's engage with risk down all write it). A thread of the
supervisor (`PostmortemWatch`) looks at it every `_POLL_S` (one stat; the file is read only
when it changed); `postmortem_delay_s` after the switch goes from off to ENGAGED it starts
`python -m actors.supervisor.postmortem_watch ...`, which writes
`state_dir/postmortem/postmortem-<time>.tar.gz` (the range: `postmortem_window_s` before
the engagement until now), keeps the newest `postmortem_keep` bundles and logs
`postmortem_written` with the path (or `postmortem_failed`; a writer that dies without
saying so, killed or unable to start, is reported by the supervisor: `postmortem_failed`
with its exit code). The writer gets the RUNNING config (the supervisor's, as it started),
dumped to a private file next to the bundles, never the config file as it is on disk now.
One is written at a time: an engagement while one is being written gets its bundle when
that one is done. Neither the thread nor the child can hold up the supervisor's loop: the
thread only stats a file and starts a process, and the tarring runs in another interpreter
(no GIL shared, nice 10).
A switch already ENGAGED when the system starts is not a new engagement. At shutdown, a
bundle still due is started at once, and the supervisor waits up to `_EXIT_WAIT_S` for the
bundles being written.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import structlog

from actors.risk import killswitch
from actors.runtime.ratelog import LogBudget
from actors.supervisor.environ import ActorEnv
from actors.supervisor.running_config import running
from actors.supervisor.tasklimit import threads_refused_raise
from protocol import paths
from protocol.config import SystemConfig, parse_config
from protocol.exceptions import ConfigError

_POLL_S = 0.25
_EXIT_WAIT_S = 10.0
_STALE_S = 3600.0
PREFIX, SUFFIX = "postmortem-", ".tar.gz"
CONFIG_DUMP = ".config-"  # + stamp + .json: the running config, for the writer


class EngagementTrigger:
    """When a bundle is due: `delay_s` after the switch went from off to ENGAGED."""

    def __init__(self, engaged: bool, delay_s: float) -> None:
        self._engaged = engaged
        self._delay_s = delay_s
        self._due: tuple[float, float] | None = None  # (when due, engagement time)

    def observe(self, state: killswitch.KillSwitchState, now_s: float) -> None:
        if state.engaged and not self._engaged and self._due is None:
            engaged_at = state.ts_ns / 1e9 if state.ts_ns else time.time()
            self._due = (now_s + self._delay_s, engaged_at)
        self._engaged = state.engaged

    def take_due(self, now_s: float, *, force: bool = False) -> float | None:
        """The engagement time of a bundle due now (then no longer pending), else None."""
        if self._due is None or (now_s < self._due[0] and not force):
            return None
        engaged_at = self._due[1]
        self._due = None
        return engaged_at


class PostmortemWatch:
    def __init__(self, cfg: SystemConfig) -> None:
        self._cfg = cfg
        self._ks = killswitch.KillSwitchWatcher(paths.kill_switch_path(cfg.state_path))
        first = self._ks.poll(force=True)
        engaged = first is not None and first.engaged
        self._trigger = EngagementTrigger(engaged, cfg.logging.postmortem_delay_s)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="postmortem-watch", daemon=True)
        self._children: list[tuple[subprocess.Popen[bytes], Path]] = []
        # lazy: built at its first line, after the daemon configured JSON logging (a logger
        # bound here, before that, printed structlog's console lines on stdout)
        self._log = structlog.get_logger(actor="supervisor")
        self._errors = LogBudget(burst=1, window_s=60.0)

    def start(self) -> None:
        with threads_refused_raise("the kill-switch's post-mortem watch"):
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)
        deadline = time.monotonic() + _EXIT_WAIT_S
        self._wait_children(deadline)
        now = time.monotonic()
        with contextlib.suppress(Exception):  # an engagement since the thread's last look
            state = self._ks.poll()
            if state is not None:
                self._trigger.observe(state, now)
        engaged_at = self._trigger.take_due(now, force=True)
        if engaged_at is not None:
            self._spawn(engaged_at)
            self._wait_children(deadline)

    def _wait_children(self, deadline: float) -> None:
        for child, out in self._children:
            try:
                child.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._log.warning("postmortem_abandoned", pid=child.pid)
                child.kill()
                child.wait()
                continue
            self._reap(child, out)
        self._children.clear()

    def _busy(self) -> bool:
        """A bundle is being written (one at a time: an engagement meanwhile waits)."""
        running = []
        for child, out in self._children:
            if child.poll() is None:
                running.append((child, out))
            else:
                self._reap(child, out)
        self._children = running
        return bool(self._children)

    def _reap(self, child: subprocess.Popen[bytes], out: Path) -> None:
        """Say so when a writer failed: it may have died before it could log anything."""
        if child.returncode != 0:
            self._log.error(
                "postmortem_failed", path=str(out), pid=child.pid, exit_code=child.returncode
            )

    def _run(self) -> None:
        while not self._stop.wait(_POLL_S):
            try:
                now = time.monotonic()
                state = self._ks.poll()
                if state is not None:
                    self._trigger.observe(state, now)
                engaged_at = None if self._busy() else self._trigger.take_due(now)
                if engaged_at is not None:
                    self._spawn(engaged_at)
            except Exception as exc:  # noqa: BLE001 - the watch must outlive a bad moment
                if (skipped := self._errors.take()) is not None:
                    error = f"{type(exc).__name__}: {exc}"
                    self._log.error("postmortem_watch_failed", error=error, suppressed=skipped)

    def _spawn(self, engaged_at: float) -> None:
        cfg = running(self._cfg)  # as a reload left it, if one applied anything
        millis = int(engaged_at * 1000) % 1000
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(engaged_at)) + f"{millis:03d}Z"
        out = paths.postmortem_dir(cfg.state_path) / f"{PREFIX}{stamp}{SUFFIX}"
        since_s = engaged_at - cfg.logging.postmortem_window_s
        dump = write_config_dump(cfg, out.with_name(f"{CONFIG_DUMP}{stamp}.json"))
        argv = [sys.executable, "-m", __name__, str(dump), str(out), repr(since_s)]
        child = subprocess.Popen(
            argv, env=ActorEnv(cfg, os.environ).base, stdin=subprocess.DEVNULL
        )  # no credentials in its environment
        self._children.append((child, out))
        self._log.info("postmortem_started", path=str(out), pid=child.pid)


@contextlib.contextmanager
def watch_kill_switch(cfg: SystemConfig, ns: argparse.Namespace) -> Iterator[None]:
    """`run`: a bundle per engagement, unless `logging.postmortem_on_kill_switch` is off."""
    if not cfg.logging.postmortem_on_kill_switch:
        yield
        return
    watch = PostmortemWatch(cfg)
    watch.start()
    try:
        yield
    finally:
        watch.close()


def prune(directory: Path, keep: int, *, now_s: float | None = None) -> list[Path]:
    """Remove all but the newest `keep` bundles (their names sort by time), and what a
    writer killed mid-way left (`.postmortem-*` staging dirs, `.*.tmp-*` files, `.config-*`
    dumps) over an hour old; returns the bundles removed."""
    bundles = sorted(p for p in directory.glob(f"{PREFIX}*{SUFFIX}") if p.is_file())
    gone = bundles[: max(len(bundles) - keep, 0)]
    for path in gone:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    stale_before = (time.time() if now_s is None else now_s) - _STALE_S
    leftovers = [f".{PREFIX}*", ".*.tmp-*", f"{CONFIG_DUMP}*.json"]
    for left in [p for pattern in leftovers for p in directory.glob(pattern)]:
        with contextlib.suppress(FileNotFoundError):
            if left.lstat().st_mtime >= stale_before:
                continue
            if left.is_dir():
                shutil.rmtree(left, ignore_errors=True)
            else:
                left.unlink()
    return gone


def write_config_dump(cfg: SystemConfig, path: Path) -> Path:
    """`cfg` as JSON in `path` (0600; its directory 0700), for the writer."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(cfg.model_dump(mode="json"), fh)
    return path


def read_config_dump(path: Path) -> SystemConfig:
    """The config `write_config_dump` wrote (then removed); ConfigError."""
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigError("config", f"cannot read the running config {path}: {exc}") from None
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
    if not isinstance(data, dict):
        raise ConfigError("config", f"{path}: not a config object")
    return parse_config(data)


def main(argv: list[str]) -> int:
    """The child: CONFIG_DUMP OUT SINCE_S."""
    from actors.runtime.logs import configure_logging
    from actors.supervisor.postmortem import write_bundle

    os.umask(paths.PRIVATE_UMASK)
    # Ctrl-C or systemd's SIGTERM to the whole group: the supervisor owns shutdown, and
    # waits for this bundle (or kills it) as it exits
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.nice(10)  # reading a day of logs must not take CPU from the supervisor and actors
    dump, out, since = argv
    try:
        cfg = read_config_dump(Path(dump))
    except ConfigError as exc:  # the supervisor logs postmortem_failed with our exit code
        print(f"tradepulse postmortem: config error: {exc}", file=sys.stderr)
        return 2
    configure_logging(cfg.system.log_level)
    log = structlog.get_logger().bind(actor="supervisor", helper="postmortem")
    target = Path(out)
    try:
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        manifest = write_bundle(
            cfg,
            target,
            float(since),
            time.time(),
            cfg.logging.postmortem_max_bytes,
            config_source="the running supervisor's config (with live reloads), not the file",
        )
        removed = prune(target.parent, cfg.logging.postmortem_keep)
    except Exception as exc:  # noqa: BLE001 - said in the log, never a traceback
        log.error("postmortem_failed", path=out, error=f"{type(exc).__name__}: {exc}")
        return 1
    log.warning(
        "postmortem_written",
        path=out,
        bytes=target.stat().st_size,
        missing=[m["item"] for m in manifest["missing"]],
        pruned=len(removed),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
