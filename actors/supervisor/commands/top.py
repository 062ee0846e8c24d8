"""`tradepulse top`: a live view of the running system, refreshed every `--interval` s.

On a terminal: a full-screen view (rich) until `q` or Ctrl-C (or SIGTERM / SIGHUP), with
the terminal in cbreak/no-echo mode while it runs and restored after (exit 0). If the
system goes away meanwhile the view says NOT RUNNING and keeps asking every interval, so
it picks a restarted system up by itself. When stdout is not a terminal (or `--once`,
`--json`): one frame over one interval (two samples `--interval` apart, so the rates and
CPU % are real), then exit. Nothing answering at the start: one line, exit 3.
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
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any, TextIO

from actors.supervisor.commands.base import OperatorCommand
from actors.supervisor.ctl import EXIT_OK, EXIT_UNAVAILABLE
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
        first = collector.collect()
        if first.status is None:
            if ns.json:
                print(json.dumps({"status": "error", "reason": first.error, "data": {}}))
            else:
                print(f"tradepulse: {first.error}", file=sys.stderr)
            return EXIT_UNAVAILABLE
        try:
            if ns.once or ns.json or not sys.stdout.isatty():
                return _one_frame(collector, first, ns.interval, as_json=ns.json)
            return _live(collector, first, ns.interval)
        except KeyboardInterrupt:  # Ctrl-C before the view was up, or while one frame waits
            return EXIT_OK
        except BrokenPipeError:  # `tradepulse top | head`: the reader had enough
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no flush error
            return EXIT_OK


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


def _live(collector: Collector, first: Sample, interval_s: float) -> int:
    from rich.console import Console, Group
    from rich.live import Live
    from rich.text import Text

    from actors.supervisor.topview import FrameSequence, render

    frames = FrameSequence()
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        with (
            _Keys(sys.stdin) as keys,
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
    except KeyboardInterrupt:  # Ctrl-C, SIGTERM, SIGHUP: the views above are closed
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return EXIT_OK


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


class _Keys:
    """The operator's keys while the view runs: the terminal in cbreak mode without echo
    (Ctrl-C still interrupts), restored on exit. Without a terminal on stdin: no keys."""

    def __init__(self, stream: TextIO) -> None:
        self._fd = stream.fileno() if stream.isatty() else None
        self._saved: list[Any] | None = None

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
        """Wait `timeout_s`; True as soon as `q` is pressed (or the terminal closes)."""
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            if self._fd is None:
                time.sleep(left)
                return False
            try:
                ready, _, _ = select.select([self._fd], [], [], left)
                data = os.read(self._fd, 64) if ready else None
            except OSError:  # the terminal hung up under us (EIO): nobody to show it to
                return True
            if data is not None and (not data or b"q" in data.lower()):
                return True
        return False
