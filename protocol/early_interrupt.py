"""Ctrl-C before the supervisor's `main` takes it: one line and the documented exit code
130, never the traceback of an import it cut short.

`supervisor.py` imports this first and, when it is the program (`install_if_program`),
calls `install` before its other imports: `_early` from then on, and a SIGINT that a
re-execution held pending (`hold`) is let through to it. `main` then hands SIGINT back to
Python (`release`: KeyboardInterrupt, which `main` turns into the same line and 130 after
its cleanup). `start_env.reexec` holds SIGINT blocked across its `execve`: the new
interpreter's start (before `install` runs again) would otherwise die of it or print a
traceback; blocked, it stays pending until then.
"""

from __future__ import annotations

import os
import signal

MESSAGE = b"tradepulse: interrupted\n"
EXIT_INTERRUPTED = 130


def _early(_signum: int, _frame: object) -> None:
    os.write(2, MESSAGE)
    os._exit(EXIT_INTERRUPTED)  # nothing is started yet: nothing to clean up


PROGRAMS = frozenset({"supervisor.py", "tradepulse"})  # `python supervisor.py`, the script


def install_if_program(argv0: str) -> None:
    """`install` when this process is the supervisor's command line, not a process that
    imports `supervisor` (a test, a tool): theirs keep Python's KeyboardInterrupt."""
    if os.path.basename(argv0) in PROGRAMS:
        install()


def install() -> None:
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        return  # ignored by whoever started us: left as it was
    signal.signal(signal.SIGINT, _early)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def hold() -> None:
    """Block SIGINT (across an `execve`: the next `install` lets it through)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})


def release() -> None:
    """Python's own handling from here on (KeyboardInterrupt) where `install` took it;
    SIGINT not blocked."""
    if signal.getsignal(signal.SIGINT) is _early:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
