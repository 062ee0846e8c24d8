"""A bad config or a broken environment that `run` does not refuse at start (found by an
adversarial pass over the promise of README "Exit codes": one stderr line naming the
problem, the documented exit code, never a traceback). Each test starts the real
supervisor; where it starts instead of refusing, the test waits for the evidence (an actor
crash-looping, the system up), stops it with SIGTERM and then fails on the exit code.
Cases that already behave are in tests/integration/test_broken_environment.py,
tests/adversarial/test_host.py and tests/adversarial/test_values.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from actors.oms.journal import SNAPSHOT_NAME
from protocol.control import ControlUnavailable
from protocol.paths import oms_dir
from tests.helpers import (
    REPO_ROOT,
    SUPERVISOR,
    SystemUnderTest,
    eventually,
    make_config,
    reap_zombie_children,
    run_python,
    to_toml,
)
from tests.integration.edge_support import free_port

pytestmark = pytest.mark.integration

SECRET = "s3cr3t-pw"
STARTED = -1000  # `_outcome`: run started (and was stopped by the test) instead of refusing


@pytest.fixture
def systems() -> Iterator[Callable[..., SystemUnderTest]]:
    """`systems(**SystemUnderTest kwargs)`: a system not started yet, destroyed at the end."""
    made: list[SystemUnderTest] = []

    def make(**kwargs: Any) -> SystemUnderTest:
        made.append(SystemUnderTest(**kwargs))
        return made[-1]

    yield make
    for sut in made:
        sut.destroy()


def _outcome(sut: SystemUnderTest, started: Callable[[], bool], timeout_s: float = 60) -> int:
    """Start `sut` and return its exit code: the one it exits with by itself, else (once
    `started()` says it runs anyway) `STARTED`, after a SIGTERM stop. Either way, every
    process it started is gone before this returns (an actor forked just before the
    supervisor died waits up to 2 s to be re-parented, then exits: waited for)."""
    before = {p.pid for p in psutil.Process().children()}
    sut.start(wait_ready=False)
    assert sut.proc is not None
    proc = sut.proc
    eventually(lambda: proc.poll() is not None or started(), timeout_s, interval_s=0.05)
    code = STARTED if proc.poll() is None else sut.wait_exit()
    if code == STARTED:
        sut.stop(signal.SIGTERM, timeout_s=30)

    def orphans_gone() -> bool:
        reap_zombie_children()
        return not [p for p in psutil.Process().children() if p.pid not in before
                    and p.status() != psutil.STATUS_ZOMBIE]  # fmt: skip

    eventually(orphans_gone, 10, interval_s=0.05, ignore=(AssertionError, psutil.Error))
    return code


def _one_line(sut: SystemUnderTest, code: int, actual: int, *names: str) -> str:
    """Exit `code`, exactly one stderr line naming each of `names`, no traceback."""
    text = "\n".join(sut.stderr_lines)[:3000]
    assert actual != STARTED, f"run started instead of refusing; stderr:\n{text}"
    assert "Traceback" not in text, f"exit {actual}, a traceback on stderr:\n{text}"
    assert actual == code, f"exit {actual}, not {code}; stderr:\n{text}"
    assert len(sut.stderr_lines) == 1, f"{len(sut.stderr_lines)} stderr lines:\n{text}"
    for name in names:
        assert name in sut.stderr_lines[0], sut.stderr_lines[0]
    return sut.stderr_lines[0]


def _crashed(sut: SystemUnderTest, child: str) -> Callable[[], bool]:
    return lambda: bool(sut.events("actor_exited", child=child) or sut.events("system_ready"))


def _run_raw(short_tmp: Path, config: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    """`run` over `config` written as it is (the tests' harness would refuse it itself)."""
    path = short_tmp / "config.toml"
    path.write_text(to_toml(config))
    argv = [str(SUPERVISOR), "run", "--config", str(path), "--state-dir", str(short_tmp / "st"),
            "--runtime-dir", str(short_tmp / "rt"), "--metrics-port", "0"]  # fmt: skip
    return run_python(argv, timeout_s=60)


def test_a_simulator_tick_size_of_zero_is_refused_at_start(short_tmp: Path) -> None:
    """`[venues.sim] tick_size = "0"` passed validation; the simulator then divided by it
    at setup and crash-looped (decimal.DivisionByZero, a traceback per restart on stderr).
    A bad value stops `run` with exit 2 naming the key."""
    config = make_config(venues=("simA",))
    config["venues"][0]["sim"]["tick_size"] = "0"
    proc = _run_raw(short_tmp, config)
    assert proc.returncode == 2, proc.stderr[-2000:]
    [line] = proc.stderr.splitlines()
    assert "config error" in line and "tick_size" in line, line


@pytest.mark.parametrize("limit", ["max_order_qty", "max_position", "max_daily_loss"])
def test_a_negative_risk_limit_is_refused_at_start(short_tmp: Path, limit: str) -> None:
    """A negative limit was taken as it is (every order refused, or a loss limit already
    breached at 0), and `reload` applied one live: refused at start with exit 2 naming it."""
    config = make_config(venues=("simA",), overrides={"risk": {limit: "-1"}})
    proc = _run_raw(short_tmp, config)
    assert proc.returncode == 2, proc.stderr[-2000:]
    [line] = proc.stderr.splitlines()
    assert "config error" in line and f"risk.{limit}" in line, line


def test_a_credential_with_an_soh_is_refused_at_start_and_never_printed(
    systems: Callable[..., SystemUnderTest],
) -> None:
    """A password variable holding an SOH (a paste error) passes the start checks; the
    connector then raises at its Logon, crash-loops, and every traceback prints the
    password in clear on stderr and into state/logs/tradepulse.log. It must be refused at
    start (exit 2, naming the variable), and its value never written anywhere."""
    venue: dict[str, Any] = {"name": "simA", "target_comp_id": "SIMA", "username_env": "TP_SR_USER"}
    venue |= {"password_env": "TP_SR_PW", "sim": {"reference_prices": {"AAPL": "100.00"}}}
    env = {"TP_SR_USER": "user", "TP_SR_PW": SECRET[:4] + "\x01" + SECRET[4:]}
    sut = systems(venues=("simA",), overrides={"venues": [venue]}, env=env)
    code = _outcome(sut, _crashed(sut, "connector.simA"))
    logs = sut.state_dir / "logs"
    written = [p.read_text(errors="replace") for p in logs.iterdir()] if logs.is_dir() else []
    outputs = {"stderr": "\n".join(sut.stderr_lines), "stdout": "\n".join(sut.raw_lines)}
    for where, text in [*outputs.items(), *(("log file", t) for t in written)]:
        assert SECRET[:4] not in text, f"the password is in the {where}"
    _one_line(sut, 2, code, "venues[simA].password_env", "TP_SR_PW")


def test_run_over_a_corrupt_oms_snapshot_exits_with_one_line_naming_it(
    systems: Callable[..., SystemUnderTest],
) -> None:
    """Runbook "Warm start": a corrupt journal refuses startup with JournalCorrupt naming
    file and offset. What happens: `run` starts, the OMS raises JournalCorrupt at setup
    and is restarted until its budget is spent (a traceback on stderr each time), then the
    supervisor engages the kill-switch for `oms_restart_intensity` and exits 1. Expected:
    exit 2 (never restarted: runbook "Exit codes") with one stderr line naming the file, no
    traceback."""
    restart = {"max_restarts": 3, "max_s": 0.05}
    sut = systems(venues=("simA",), overrides={"supervisor": {"restart": restart}})
    snapshot = oms_dir(sut.state_dir) / SNAPSHOT_NAME
    snapshot.parent.mkdir(parents=True)
    snapshot.write_bytes(b"\x09\xd7 not a snapshot " * 64)
    code = _outcome(sut, lambda: bool(sut.events("system_ready")))
    _one_line(sut, 2, code, str(snapshot), "corrupt")


def test_an_empty_state_dir_is_refused_and_the_working_dir_left_alone(short_tmp: Path) -> None:
    """`--state-dir ""` (or `system.state_dir = ""`, an unset variable in a template) is
    taken as the working dir: `run` tightens it to 0700 and fills it with state (from `/`
    under systemd, `/` itself). It must exit 2 naming system.state_dir, touching nothing."""
    config = short_tmp / "config.toml"
    config.write_text(to_toml(make_config(venues=("simA",))))
    cwd = short_tmp / "cwd"
    cwd.mkdir(mode=0o755)
    os.chmod(cwd, 0o755)
    argv = [sys.executable, str(SUPERVISOR), "run", "--config", str(config), "--state-dir", "",
            "--runtime-dir", str(short_tmp / "rt"), "--metrics-port", "0"]  # fmt: skip
    out, err = short_tmp / "stdout", short_tmp / "stderr"
    with out.open("wb") as fout, err.open("wb") as ferr:
        proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=fout, stderr=ferr,
                                env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})  # fmt: skip
        try:
            eventually(lambda: proc.poll() is not None or b'"system_ready"' in out.read_bytes(),
                       60, interval_s=0.05)  # fmt: skip
            code = proc.poll()
            if code is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    left = sorted(p.name for p in cwd.iterdir())
    mode = cwd.stat().st_mode & 0o777
    assert code == 2, f"run started in {cwd} (mode now {mode:o}, holding {left})"
    lines = err.read_text().splitlines()
    assert len(lines) == 1 and "system.state_dir" in lines[0], lines
    assert left == [] and mode == 0o755


def test_a_hard_open_file_limit_too_low_is_refused_with_one_line(
    systems: Callable[..., SystemUnderTest],
) -> None:
    """Under `prlimit --nofile=32:32` the supervisor dies of SIGABRT (libzmq's assertion on
    EMFILE, exit 134), nothing on stderr; the limit cannot be raised (the hard one), so
    `run` must refuse it at start: exit 2, one line naming the open-file limit."""
    sut = systems(venues=("simA",), launcher=["prlimit", "--nofile=32:32", "--"])
    code = _outcome(sut, lambda: bool(sut.events("system_ready")))
    line = _one_line(sut, 2, code)
    assert "open" in line.lower() and "limit" in line.lower(), line


def test_a_second_supervisor_on_the_same_runtime_dir_is_refused(
    systems: Callable[..., SystemUnderTest],
) -> None:
    """A copy of a config with only `state_dir` changed: the second `run` takes the other
    state dir's lock, then unlinks the first system's sockets in the shared runtime dir and
    binds its own. `status` for the first state dir then answers with the second system's
    actors, and once the second stops, the first (still running, still trading) is
    unreachable: `status` / `shutdown` say "no supervisor running". The second must be
    refused (exit 2 or 3, one line) and the first keep its sockets."""
    first = systems(venues=("simA",)).start()
    oms_pid = first.pid_of("oms")
    second = systems(venues=("simA",))
    second.runtime_dir = first.runtime_dir
    code = _outcome(second, lambda: bool(second.events("supervisor_started")))
    assert first.proc is not None and first.proc.poll() is None
    try:
        answered = first.pid_of("oms")
    except ControlUnavailable as exc:  # its sockets unlinked by the second
        pytest.fail(f"the first system runs but is unreachable ({exc}); second run: exit {code}")
    assert answered == oms_pid, "status of the first state dir answered by the second"
    assert code in (2, 3), f"second run: exit {code} (-1000: it started), {second.stderr_lines}"
    assert len(second.stderr_lines) == 1, second.stderr_lines


@pytest.mark.parametrize("cmd", ["run", "status", "preflight"])
def test_a_config_path_that_is_a_fifo_is_refused_not_waited_on(short_tmp: Path, cmd: str) -> None:
    """`--config` naming a FIFO (or /dev/stdin under a unit with no input) blocks in open()
    forever: no line, no exit. /dev/zero is the same bug without the block: read whole,
    ~3 GB RSS in 7 s, unbounded. The config must be a regular file, else exit 2 naming it."""
    fifo = short_tmp / "config.toml"
    os.mkfifo(fifo)
    argv = [str(SUPERVISOR), cmd, "--config", str(fifo), "--runtime-dir", str(short_tmp / "rt")]
    try:
        proc = run_python(argv, timeout_s=20)
    except subprocess.TimeoutExpired:  # run_python killed it (blocked before any fork)
        pytest.fail(f"`{cmd} --config FIFO` still waiting after 20 s")
    assert proc.returncode == 2, proc.stderr
    [line] = proc.stderr.splitlines()
    assert "config error" in line and str(fifo) in line, line


def test_ctrl_c_during_start_is_an_orderly_stop_not_a_traceback(short_tmp: Path) -> None:
    """README: Ctrl-C is an orderly shutdown. SIGINT while `run` is still starting (here: as
    soon as it has forked its fork server, ~0.1-0.4 s in) raises KeyboardInterrupt out of
    forkserver_fork.start: a traceback of 12-42 lines, exit -2 (or 1). Expected: exit 0 (or
    one line), no traceback, nothing left running."""
    config = short_tmp / "config.toml"
    config.write_text(to_toml(make_config(venues=("simA",))))
    argv = [sys.executable, str(SUPERVISOR), "run", "--config", str(config), "--state-dir",
            str(short_tmp / "state"), "--runtime-dir", str(short_tmp / "rt")]  # fmt: skip
    before = {p.pid for p in psutil.Process().children()}
    proc = subprocess.Popen(argv, cwd=REPO_ROOT, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        eventually(lambda: psutil.Process(proc.pid).children(), 30, interval_s=0.001)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)

    def orphans_gone() -> bool:
        reap_zombie_children()
        return not [p for p in psutil.Process().children() if p.pid not in before
                    and p.status() != psutil.STATUS_ZOMBIE]  # fmt: skip

    eventually(orphans_gone, 10, interval_s=0.05, ignore=(AssertionError, psutil.Error))
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err[:3000]
    assert proc.returncode == 0 or len(err.splitlines()) == 1, (proc.returncode, err[:3000])


def test_a_reload_of_a_config_that_became_a_fifo_does_not_hang_the_supervisor(
    systems: Callable[..., SystemUnderTest],
) -> None:
    """SIGHUP (runbook 18) with the config path now a FIFO: the supervisor's main thread
    blocks in open() (wchan wait_for_partner): the control socket answers nothing, SIGTERM
    is not acted on, no actor is supervised, until some process opens the FIFO to write.
    Expected: the reload refused (`config_reload_refused`), the supervisor answering."""
    sut = systems(venues=("simA",)).start()
    assert sut.proc is not None
    sut.config_path.unlink()
    os.mkfifo(sut.config_path)
    since = sut.mark()
    sut.proc.send_signal(signal.SIGHUP)
    try:
        eventually(lambda: sut.events("config_reload_refused", since=since), 20)
        assert sut.status(timeout_s=5)["actors"]
    finally:  # unblock a supervisor stuck in open(): a writer opens the FIFO
        try:
            fd = os.open(sut.config_path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # ENXIO: nobody is reading it, the supervisor is not stuck
            pass
        else:
            os.write(fd, to_toml(make_config(venues=("simA",))).encode())
            os.close(fd)
    assert sut.stop(signal.SIGTERM, timeout_s=30) == 0


def test_run_with_the_config_on_a_pipe_names_the_pipe_not_a_missing_field(
    short_tmp: Path,
) -> None:
    """`run --config <(envsubst < tmpl)` (a pipe, /dev/fd/N): the early re-execution reads
    the pipe to find the credential variables, the real load then reads it empty and says
    `config error: venues: Field required` about a config that has venues. Expected (as
    for a FIFO): exit 2, one line naming the pipe."""
    read, write = os.pipe()
    os.write(write, to_toml(make_config(venues=("simA",))).encode())
    os.close(write)
    argv = [sys.executable, str(SUPERVISOR), "run", "--config", f"/dev/fd/{read}", "--state-dir",
            str(short_tmp / "state"), "--runtime-dir", str(short_tmp / "rt")]  # fmt: skip
    try:
        proc = subprocess.run(argv, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=30, pass_fds=(read,), check=False)  # fmt: skip
    finally:
        os.close(read)
    assert "Field required" not in proc.stderr, proc.stderr
    assert proc.returncode == 2 and f"/dev/fd/{read}" in proc.stderr, proc.stderr


@pytest.mark.parametrize(("sub", "child"), [("oms", "oms"), ("fix", "connector.simA")])
def test_a_state_subdir_that_is_a_regular_file_is_refused_at_start(
    systems: Callable[..., SystemUnderTest], sub: str, child: str
) -> None:
    """README: a state dir that cannot be used (under a regular file) is exit 2 with one
    line. `state/oms` or `state/fix` a regular file passes the start checks (only the state
    dir itself is probed): the actor raises FileExistsError / NotADirectoryError at setup
    and crash-loops, a traceback per restart on stderr (22 in 14 s)."""
    sut = systems(venues=("simA",))
    sut.state_dir.mkdir(parents=True)
    (sut.state_dir / sub).write_text("a regular file")
    code = _outcome(sut, _crashed(sut, child))
    _one_line(sut, 2, code, str(sut.state_dir / sub))


def test_two_simulators_on_one_port_are_refused_at_start_not_crash_looped(
    systems: Callable[..., SystemUnderTest],
) -> None:
    """simA and simB (in simA's process, `runs_in`) set the same `port`: the config loaded,
    simB's bind failed (EADDRINUSE) and took the shared process down, restarted until the
    budget was spent, a traceback on stderr each time. `run` must exit 2 at once with one
    line naming both venues' keys and the port."""
    port = free_port()  # free, so that without the check simA binds it and simB cannot
    sut = systems(venues=("simA", "simB"))  # port 0 each: the harness loads it
    config = make_config(venues=("simA", "simB"))
    for venue in config["venues"]:
        venue["port"] = port
    config["venues"][1]["sim"]["runs_in"] = "simA"
    sut.config_path.write_text(to_toml(config))
    code = _outcome(sut, _crashed(sut, "venuesim.simA"))
    _one_line(sut, 2, code, "venues[simB].port", "venues[simA].port", f"port {port}")
