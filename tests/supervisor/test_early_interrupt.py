"""Ctrl-C before `main` takes SIGINT (`protocol.early_interrupt`): while `supervisor.py`
still imports, and while a re-executed `run` starts its new interpreter (`start_env.reexec`
holds SIGINT pending across the `execve`): one line and exit 130, never the traceback of
an import cut short (seen in the first ~0.1 s of `run`: `KeyboardInterrupt` out of
`importlib`). A SIGINT that arrives while it is blocked, as one held across the
re-execution is, must be let through to the handler, not lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO_ROOT, run_python


def test_a_ctrl_c_held_until_the_supervisor_starts_is_one_line_and_130(short_tmp: Path) -> None:
    """`run` started with SIGINT blocked and one already pending (as `reexec` leaves it
    across the `execve`): the supervisor's first statement lets it through."""
    env = {**os.environ, "TP_DEMO_BINANCE_KEY": "k" * 64, "TP_DEMO_BINANCE_SECRET": "s" * 64}
    argv = [sys.executable, "supervisor.py", "run", "--config", "deploy/config/demo.toml",
            "--state-dir", str(short_tmp / "s"), "--runtime-dir", str(short_tmp / "r"),
            "--metrics-port", "0"]  # fmt: skip

    def pending_ctrl_c() -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        os.kill(os.getpid(), signal.SIGINT)  # pending until the supervisor lets it through

    proc = subprocess.Popen(
        argv, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True, preexec_fn=pending_ctrl_c,
    )  # fmt: skip
    try:
        out, err = proc.communicate(timeout=30)  # it started the system instead: never
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=10)
    assert (proc.returncode, err) == (130, "tradepulse: interrupted\n"), out[-2000:]


def test_a_ctrl_c_while_held_across_the_reexecution_is_let_through(short_tmp: Path) -> None:
    """`early_interrupt.hold` then `install`, as `reexec` and the new interpreter do: the
    SIGINT sent between them is the handler's (one line, 130), not lost, not a traceback."""
    code = (
        "import os, signal, time\n"
        "from protocol import early_interrupt\n"
        "early_interrupt.install_if_program('x/tradepulse')  # the console script's name\n"
        "early_interrupt.hold()\n"
        "os.kill(os.getpid(), signal.SIGINT)\n"
        "print('held', flush=True)\n"
        "early_interrupt.install()\n"
        "time.sleep(10)\n"
        "print('lost')\n"
    )
    out = run_python(["-c", code], timeout_s=30)
    assert (out.returncode, out.stdout, out.stderr) == (130, "held\n", "tradepulse: interrupted\n")


def test_a_process_that_imports_the_supervisor_keeps_pythons_ctrl_c() -> None:
    """A test or a tool importing `supervisor` (not its program) keeps KeyboardInterrupt:
    the early handler's hard exit is the supervisor command line's only."""
    code = (
        "import os, signal, sys\n"
        "import supervisor\n"
        "try:\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "except KeyboardInterrupt:\n"
        "    print('KeyboardInterrupt')\n"
    )
    out = run_python(["-c", code], timeout_s=30)
    assert (out.returncode, out.stdout, out.stderr) == (0, "KeyboardInterrupt\n", "")


def test_a_sigint_ignored_by_whoever_started_the_supervisor_stays_ignored() -> None:
    """`install` and `release` leave an ignored SIGINT (SIG_IGN, inherited) as it was."""
    code = (
        "import signal\n"
        "from protocol import early_interrupt\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "early_interrupt.install_if_program('supervisor.py')\n"
        "first = signal.getsignal(signal.SIGINT) is signal.SIG_IGN\n"
        "early_interrupt.release()\n"
        "print(first, signal.getsignal(signal.SIGINT) is signal.SIG_IGN)\n"
    )
    out = run_python(["-c", code], timeout_s=30)
    assert (out.returncode, out.stdout) == (0, "True True\n"), out.stderr
