"""`tradepulse top`: a live view of the running system, refreshed every `--interval` s.

On a terminal: a full-screen view (rich) until `q` or Ctrl-C (or SIGTERM / SIGHUP), with
the terminal in cbreak/no-echo mode while it runs and restored after (exit 0). If the
system goes away meanwhile the view says NOT RUNNING and keeps asking every interval, so
it picks a restarted system up by itself. When stdout is not a terminal (or a dumb one,
or `--once`, `--json`): one frame over one interval (two samples `--interval` apart, so
the rates and CPU % are real), then exit. Nothing answering at the start: one line, exit 3 (4: the
control socket answered from a process that is not the supervisor, its answer not shown).
What it shows and where it comes from: `actors.supervisor.topview`.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import sys
import termios
import time
import tty
from collections.abc import Mapping
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any, TextIO

from actors.supervisor.commands.base import OperatorCommand
from actors.supervisor.ctl import EXIT_NOT_SUPERVISOR, EXIT_OK, EXIT_UNAVAILABLE
from protocol.config import SystemConfig

if TYPE_CHECKING:  # imported when top runs: the CLI table loads without rich or prometheus
    from actors.supervisor.topview import Collector, Sample

MIN_INTERVAL_S = 0.1


def _interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not MIN_INTERVAL_S <= value <= 3600:
        raise argparse.ArgumentTypeError(f"{value} s is not within {MIN_INTERVAL_S}..3600")
    return value


class Top(OperatorCommand):
    """live view: actors, venues, order rate, latency, kill-switch, intake (q quits)"""

    name = "top"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--interval",
            type=_interval,
            default=1.0,
            metavar="S",
            help="seconds between refreshes, and the window of rates and latency (default 1)",
        )
        parser.add_argument(
            "--once",
            action="store_true",
            help="print one frame and exit, as when stdout is not a terminal",
        )

    def run(self, cfg: SystemConfig, ns: argparse.Namespace) -> int:
        from actors.supervisor.topview import Collector

        # a stalled supervisor must not freeze the view (or its q) for the whole --timeout-s
        collector = Collector(cfg, timeout_s=min(ns.timeout_s, max(1.0, 2 * ns.interval)))
        if ns.once or ns.json or not live_terminal(sys.stdout, os.environ):
            first = collector.collect()
            if first.status is None:
                return _unavailable(first, as_json=ns.json)
            try:
                return _one_frame(collector, first, ns.interval, as_json=ns.json)
            except KeyboardInterrupt:  # Ctrl-C while the frame waits
                return EXIT_OK
            except BrokenPipeError:  # `tradepulse top | head`: the reader had enough
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no flush error
                return EXIT_OK
        with _QuitSignals() as signals:  # from the first request on: Ctrl-C quits like `q`
            first = collector.collect()
            if first.status is None:
                return _unavailable(first, as_json=False)
            return _live(collector, first, ns.interval, signals)


def live_terminal(stream: TextIO, environ: Mapping[str, str]) -> bool:
    """Whether `stream` takes the live view: a terminal, and not a dumb one (TERM dumb or
    unknown: an editor's shell, a serial console), where rich draws no live display and
    the view was a blank screen until `q`; there it gets the one frame of a pipe."""
    return stream.isatty() and environ.get("TERM", "").lower() not in ("dumb", "unknown")


def _unavailable(first: Sample, *, as_json: bool) -> int:
    if as_json:
        print(json.dumps({"status": "error", "reason": first.error, "data": {}}))
    else:
        print(f"tradepulse: {first.error}", file=sys.stderr)
    return EXIT_NOT_SUPERVISOR if first.refused else EXIT_UNAVAILABLE


def _one_frame(collector: Collector, first: Sample, interval_s: float, *, as_json: bool) -> int:
    from rich.console import Console

    from actors.supervisor.topview import build_frame, render_text

    time.sleep(interval_s)  # the second sample closes the interval the rates cover
    frame = build_frame(first, collector.collect())
    if as_json:
        status = "ok" if frame.running else "error"
        print(json.dumps({"status": status, "reason": frame.error, "data": frame.to_json()}))
    else:
        print(render_text(frame, width=Console().width), end="")
    return EXIT_OK if frame.running else EXIT_UNAVAILABLE


def _live(collector: Collector, first: Sample, interval_s: float, signals: _QuitSignals) -> int:
    from rich.console import Console, Group
    from rich.live import Live
    from rich.text import Text

    from actors.supervisor.topview import FrameSequence, render

    frames = FrameSequence()
    with (
        _Keys(sys.stdin, signals) as keys,
        Live(
            console=Console(),
            screen=True,
            auto_refresh=False,
            redirect_stdout=False,
            redirect_stderr=False,
        ) as live,
    ):
        keys_help = Text("q or Ctrl-C quits", style="dim")
        live.update(Group(render(frames.next(first)), keys_help), refresh=True)
        while not keys.quit_within(interval_s):
            frame = frames.next(collector.collect())
            live.update(Group(render(frame), keys_help), refresh=True)
    return EXIT_OK


class _QuitSignals:
    """Ctrl-C (SIGINT), SIGTERM and SIGHUP while the view runs: each quits as `q` does, their
    handlers only put the signal on a wakeup pipe that `_Keys.quit_within` watches (at once
    while the view waits, after the request under way otherwise). Not a KeyboardInterrupt
    raised wherever the view is: raised in a finalizer (pyzmq's `Context.__del__` as each
    status request ends), Python prints "Exception ignored" and drops it: top went on."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __enter__(self) -> _QuitSignals:
        self.fd, self._write_fd = os.pipe()
        for fd in (self.fd, self._write_fd):
            os.set_blocking(fd, False)
        self._previous_fd = signal.set_wakeup_fd(self._write_fd)
        self._previous = {sig: signal.signal(sig, _noted) for sig in self.SIGNALS}
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        signal.set_wakeup_fd(self._previous_fd)
        os.close(self.fd)
        os.close(self._write_fd)

    def came(self) -> bool:
        """Whether one of them came (read off the pipe: each is seen once)."""
        try:
            return bool(set(os.read(self.fd, 256)) & set(self.SIGNALS))
        except BlockingIOError:
            return False


def _noted(signum: int, frame: FrameType | None) -> None:
    """The signal is on the wakeup pipe already (`_QuitSignals`)."""


class _Keys:
    """The operator's keys while the view runs: the terminal in cbreak mode without echo
    (Ctrl-C still signals), restored on exit. Without a terminal on stdin: no keys."""

    def __init__(self, stream: TextIO, signals: _QuitSignals) -> None:
        self._fd = stream.fileno() if stream.isatty() else None
        self._saved: list[Any] | None = None
        self._signals = signals

    def __enter__(self) -> _Keys:
        if self._fd is not None:
            self._saved = termios.tcgetattr(self._fd)
            tty.setcbreak(self._fd, termios.TCSANOW)  # no line buffering, no echo
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._fd is not None and self._saved is not None:
            termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved)

    def quit_within(self, timeout_s: float) -> bool:
        """Wait `timeout_s`; True as soon as `q` is pressed, the terminal closes or a quit
        signal comes (or came since the last wait)."""
        deadline = time.monotonic() + timeout_s
        watched = [self._signals.fd] + ([] if self._fd is None else [self._fd])
        while (left := deadline - time.monotonic()) > 0:
            try:
                ready, _, _ = select.select(watched, [], [], left)
                if self._signals.fd in ready and self._signals.came():
                    return True
                data = os.read(self._fd, 64) if self._fd in ready else None
            except OSError:  # the terminal hung up under us (EIO): nobody to show it to
                return True
            if data is not None and (not data or b"q" in data.lower()):
                return True
        return False
