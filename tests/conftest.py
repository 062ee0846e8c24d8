"""Suite-wide fixtures: no test may leave a process behind, and systems are torn down.

The pytest process makes itself a child subreaper, so an actor orphaned by a killed
supervisor is re-parented to the test process (not to init) and the leak check below sees
it. Every test is also bounded by pytest-timeout (`timeout` in pyproject.toml).
"""

from __future__ import annotations

import ctypes
import shutil
import socket
import tempfile
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

import actors.runtime.logs
from tests import fixlogs, helpers
from tests.helpers import SystemUnderTest, kill_and_reap, reap_zombie_children

_PR_SET_CHILD_SUBREAPER = 36


def pytest_configure(config: pytest.Config) -> None:
    # actors run in this process by some tests configure structlog; cached loggers would
    # escape `structlog.testing.capture_logs` in every later test of the session
    actors.runtime.logs.CACHE_LOGGERS = False
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: orphans go to init, the check sees less
        pass


def _key(p: psutil.Process) -> tuple[int, float]:
    try:
        return (p.pid, p.create_time())
    except psutil.NoSuchProcess:
        return (p.pid, 0.0)


def _live_leftovers(baseline: set[tuple[int, float]]) -> list[psutil.Process]:
    """Live descendants not under a process that existed before the test (a wider-scoped
    fixture's); zombies are reaped, not counted."""
    reap_zombie_children()
    left: list[psutil.Process] = []
    for child in psutil.Process().children():
        if _key(child) in baseline:
            continue
        try:
            tree = [child, *child.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for p in tree:
            try:
                if p.status() != psutil.STATUS_ZOMBIE:
                    left.append(p)
            except psutil.NoSuchProcess:
                pass
    return left


@pytest.fixture(autouse=True)
def no_leftover_processes() -> Iterator[None]:
    """After each test: no process the test started may still run. Leftovers are killed
    and the test fails, naming them."""
    baseline = {_key(p) for p in psutil.Process().children()}
    yield
    leftovers = _live_leftovers(baseline)
    if not leftovers:
        return
    described = []
    for p in leftovers:
        try:
            described.append(f"{p.pid} {' '.join(p.cmdline())[:120]}")
        except psutil.Error:
            described.append(str(p.pid))
    kill_and_reap(p.pid for p in leftovers)
    reap_zombie_children()
    pytest.fail("test left processes running (killed now):\n  " + "\n  ".join(described))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    helpers.CREATED.clear()  # the systems of this test only (see makereport below)
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed test's report carries the notable log lines of every system it started
    (warnings, errors, actor/venue/reconcile/intake events), so a failure seen once, as in
    CI, can be read afterwards; passing tests keep nothing."""
    report: pytest.TestReport = yield
    if report.failed and helpers.CREATED:
        for n, sut in enumerate(helpers.CREATED):
            lines = sut.notable_lines()
            report.sections.append(
                (f"system {n} log ({len(lines)} notable lines)", "\n".join(lines))
            )
    return report


@pytest.fixture
def start_system() -> Iterator[Callable[..., SystemUnderTest]]:
    """`start_system(overrides=..., env=..., wait_ready=True)` starts a real supervisor;
    every system started is killed (-9, whole tree) at teardown."""
    systems: list[SystemUnderTest] = []

    def start(
        *, wait_ready: bool = True, timeout_s: float = 20.0, **kwargs: Any
    ) -> SystemUnderTest:
        sut = SystemUnderTest(**kwargs)
        systems.append(sut)
        return sut.start(wait_ready=wait_ready, timeout_s=timeout_s)

    yield start
    for sut in systems:
        sut.destroy()


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port some other program listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        yield s.getsockname()[1]


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A temp dir with a short path (ipc:// endpoints must stay under ~100 chars)."""
    path = Path(tempfile.mkdtemp(prefix="tp", dir="/tmp"))
    yield path
    fixlogs.collect(path)
    shutil.rmtree(path, ignore_errors=True)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """pytest-xdist's controller: a worker's FIX log scans join the session's verdict."""
    wire = getattr(node, "workeroutput", {}).get("fixlogs")
    if wire is not None:
        fixlogs.SESSION.add_wire(wire)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Every FIX message the connector or the simulator sent anywhere in the session must
    conform to FIX 4.4 (tests/fixlogs.py): the logs of pytest's temp dir are scanned here,
    those of removed state dirs were collected at their removal; one that does not fails
    the session."""
    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is not None and getattr(factory, "_basetemp", None) is not None:
        fixlogs.collect(factory.getbasetemp())
    result = fixlogs.SESSION
    worker_output = getattr(session.config, "workeroutput", None)
    if worker_output is not None:  # a pytest-xdist worker: its controller judges them all
        worker_output["fixlogs"] = result.to_wire()
        return
    if not (result.files or result.problems or result.systems):
        return
    ok, lines = fixlogs.verdict(result)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    for line in lines:
        if reporter is not None:
            reporter.write_line(line, red=not ok)
    if not ok and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
