"""A post-mortem bundle for every kill-switch engagement, written by a child process.

The kill-switch file is the truth (risk, the OMS path through risk, the supervisor's own
critical exits and an operator's engage with risk down all write it). A thread of the
supervisor (`PostmortemWatch`) looks at it every `_POLL_S` (one stat; the file is read only
when it changed); `postmortem_delay_s` after the switch goes from off to ENGAGED it starts
`python -m actors.supervisor.postmortem_watch ...`, which writes
`state_dir/postmortem/postmortem-<time>.tar.gz` (the range: `postmortem_window_s` before
the engagement until now), keeps the newest `postmortem_keep` bundles and logs
`postmortem_written` with the path (or `postmortem_failed`). One is written at a time: an
engagement while one is being written gets its bundle when that one is done. Neither the
thread nor the child can hold up the supervisor's loop: the thread only stats a file and
starts a process, and the tarring runs in another interpreter (no GIL shared, nice 10).
A switch already ENGAGED when the system starts is not a new engagement. At shutdown, a
bundle still due is started at once, and the supervisor waits up to `_EXIT_WAIT_S` for the
bundles being written.
"""

from __future__ import annotations

import argparse
import contextlib
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
from protocol import paths
from protocol.config import SystemConfig, load_config
from protocol.exceptions import ConfigError

_POLL_S = 0.25
_EXIT_WAIT_S = 10.0
_STALE_S = 3600.0
PREFIX, SUFFIX = "postmortem-", ".tar.gz"


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
    def __init__(self, cfg: SystemConfig, config_path: str) -> None:
        self._cfg = cfg
        self._config_path = os.path.abspath(config_path)
        self._ks = killswitch.KillSwitchWatcher(paths.kill_switch_path(cfg.state_path))
        first = self._ks.poll(force=True)
        engaged = first is not None and first.engaged
        self._trigger = EngagementTrigger(engaged, cfg.logging.postmortem_delay_s)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="postmortem-watch", daemon=True)
        self._children: list[subprocess.Popen[bytes]] = []
        self._log = structlog.get_logger().bind(actor="supervisor")
        self._errors = LogBudget(burst=1, window_s=60.0)

    def start(self) -> None:
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
        for child in self._children:
            try:
                child.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._log.warning("postmortem_abandoned", pid=child.pid)
                child.kill()
                child.wait()
        self._children.clear()

    def _busy(self) -> bool:
        """A bundle is being written (one at a time: an engagement meanwhile waits)."""
        self._children = [c for c in self._children if c.poll() is None]
        return bool(self._children)

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
        cfg = self._cfg
        millis = int(engaged_at * 1000) % 1000
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(engaged_at)) + f"{millis:03d}Z"
        out = paths.postmortem_dir(cfg.state_path) / f"{PREFIX}{stamp}{SUFFIX}"
        since_s = engaged_at - cfg.logging.postmortem_window_s
        argv = [sys.executable, "-m", __name__, self._config_path, str(cfg.state_path)]
        argv += [str(cfg.runtime_path), str(out), repr(since_s)]
        child = subprocess.Popen(
            argv, env=ActorEnv(cfg, os.environ).base, stdin=subprocess.DEVNULL
        )  # no credentials in its environment
        self._children.append(child)
        self._log.info("postmortem_started", path=str(out), pid=child.pid)


@contextlib.contextmanager
def watch_kill_switch(cfg: SystemConfig, ns: argparse.Namespace) -> Iterator[None]:
    """`run`: a bundle per engagement, unless `logging.postmortem_on_kill_switch` is off."""
    if not cfg.logging.postmortem_on_kill_switch:
        yield
        return
    watch = PostmortemWatch(cfg, ns.config)
    watch.start()
    try:
        yield
    finally:
        watch.close()


def prune(directory: Path, keep: int, *, now_s: float | None = None) -> list[Path]:
    """Remove all but the newest `keep` bundles (their names sort by time), and what a
    writer killed mid-way left (`.postmortem-*` staging dirs, `.*.tmp-*` files) over an
    hour old; returns the bundles removed."""
    bundles = sorted(p for p in directory.glob(f"{PREFIX}*{SUFFIX}") if p.is_file())
    gone = bundles[: max(len(bundles) - keep, 0)]
    for path in gone:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    stale_before = (time.time() if now_s is None else now_s) - _STALE_S
    for left in [*directory.glob(f".{PREFIX}*"), *directory.glob(".*.tmp-*")]:
        with contextlib.suppress(FileNotFoundError):
            if left.lstat().st_mtime >= stale_before:
                continue
            if left.is_dir():
                shutil.rmtree(left, ignore_errors=True)
            else:
                left.unlink()
    return gone


def main(argv: list[str]) -> int:
    """The child: CONFIG STATE_DIR RUNTIME_DIR OUT SINCE_S."""
    from actors.runtime.logs import configure_logging
    from actors.supervisor.postmortem import write_bundle

    os.umask(paths.PRIVATE_UMASK)
    # Ctrl-C or systemd's SIGTERM to the whole group: the supervisor owns shutdown, and
    # waits for this bundle (or kills it) as it exits
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.nice(10)  # reading a day of logs must not take CPU from the supervisor and actors
    config_path, state_dir, runtime_dir, out, since = argv
    try:
        cfg = load_config(config_path, state_dir=state_dir, runtime_dir=runtime_dir)
    except ConfigError as exc:  # changed on disk since the supervisor started
        print(f"tradepulse postmortem: config error: {exc}", file=sys.stderr)
        return 2
    configure_logging(cfg.system.log_level)
    log = structlog.get_logger().bind(actor="supervisor", helper="postmortem")
    target = Path(out)
    try:
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        manifest = write_bundle(
            cfg, target, float(since), time.time(), cfg.logging.postmortem_max_bytes
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
