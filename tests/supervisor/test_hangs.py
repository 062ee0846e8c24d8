"""Hang verdicts (actors/supervisor/hangs.py): past the hang limit an actor whose main
thread waits on the disk (D) or for a core (R, little CPU used) is not killed until
`hang_deferral_max_s`; a stopped (T), asleep (S) or spinning (R, CPU used) one is killed at
the limit as before. Driven on a simulated clock with the thread's samples scripted; the
/proc reading itself on real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable

import pytest

from actors.runtime import metrics
from actors.supervisor.child import Child
from actors.supervisor.hangs import HangJudge, ThreadSample, main_thread
from actors.supervisor.restart_policy import ChildSpec
from protocol.config import RestartCfg, SupervisorCfg
from tests.helpers import eventually
from tests.log_stub import RecordingLog
from tests.rt_hog import hold_core

LIMIT_S = 0.6  # 0.2 x 3, the defaults
PID = 4242


def _run(
    thread: Callable[[float], ThreadSample | None],
    *,
    until_s: float = 8.0,
    cfg: SupervisorCfg | None = None,
    child_id: str = "connector.simA",
) -> tuple[list[float], RecordingLog]:
    """A child silent from t=0, checked every 0.1 s (as the supervisor does) until
    `until_s`; `thread(t)` is its main thread at t. The times it was killed, and the log."""
    cfg = cfg or SupervisorCfg()
    clock = [0.0]
    child = Child(ChildSpec(child_id, "connector"), RestartCfg())
    child.spawned(PID, 1, 0.0)
    child.ready(0.0, {})
    log, kills = RecordingLog(), []
    judge = HangJudge(
        log,
        sample=lambda pid: thread(clock[0]) if pid == PID else None,
        clock=lambda: clock[0],
        kill=lambda pid: kills.append(clock[0]),
    )
    for tick in range(1, int(until_s * 10) + 1):
        clock[0] = round(tick * 0.1, 1)
        judge.check([child], clock[0], cfg)
    return kills, log


def _steady(state: str, cpu_per_s: float) -> Callable[[float], ThreadSample]:
    return lambda t: ThreadSample(state, cpu_per_s * t)


@pytest.mark.parametrize(
    ("state", "cpu_per_s", "why"),
    [("T", 0.0, "stopped"), ("S", 0.0, "asleep in a call"), ("R", 0.9, "spinning")],
)
def test_a_frozen_or_spinning_actor_is_hung_at_the_limit(
    state: str, cpu_per_s: float, why: str
) -> None:
    kills, log = _run(_steady(state, cpu_per_s))
    assert kills == [0.7], why  # the first check past 0.6 s, once
    assert log.events("actor_hang_deferred") == []
    (hung,) = log.events("actor_hung")
    assert hung["heartbeat_age_s"] == 0.7 and hung["thread_state"] == state


def test_an_actor_waiting_on_the_disk_is_deferred_then_hung_past_the_max() -> None:
    """The connector killed under load here was in fsync (D); with a disk that never
    answers it is killed past `hang_deferral_max_s`, logged deferred once."""
    kills, log = _run(_steady("D", 0.0))
    assert kills == [5.1]
    (deferred,) = log.events("actor_hang_deferred")
    assert deferred["reason"] == "disk" and deferred["heartbeat_age_s"] == 0.7


def test_an_actor_waiting_for_a_core_is_deferred() -> None:
    """Runnable but given a fiftieth of a core (an overloaded machine), or just woken from
    the disk: not spinning (a healthy turn uses milliseconds)."""
    kills, log = _run(_steady("R", 0.02), until_s=3.0)
    assert kills == []
    assert [e["reason"] for e in log.events("actor_hang_deferred")] == ["cpu"]


def _starved_until(woke_s: float, cpu_s: float = 0.01) -> Callable[[float], ThreadSample]:
    """Runnable and kept from its core from t=0 (the kernel counts the wait when it ends),
    then, at `woke_s`, a turn of `cpu_s` and asleep in its poll."""

    def thread(t: float) -> ThreadSample:
        if t < woke_s:
            return ThreadSample("R", 0.0, waited_s=2.0)
        return ThreadSample("S", cpu_s, waited_s=2.0 + woke_s)

    return thread


def test_an_actor_asleep_after_waiting_for_a_core_is_deferred() -> None:
    """CI: a connector kept from its core by a real-time loop had 10 ms of it at 0.85 s (the
    kernel's fair server), beat and went back to its poll (S); judged asleep, it was killed
    at 1.1 s before its heartbeat came (on main before this: killed at 1.1)."""
    kills, log = _run(_starved_until(1.0))
    assert kills == [5.1]  # in this run its heartbeat never comes
    assert [e["reason"] for e in log.events("actor_hang_deferred")] == ["cpu"]


@pytest.mark.parametrize(
    ("waited_s", "cpu_s", "why"),
    [(0.1, 0.0, "waited less than a quarter of the limit"), (2.0, 0.2, "burnt 0.2 s of CPU")],
)
def test_an_actor_asleep_without_a_long_wait_or_after_a_long_turn_is_hung(
    waited_s: float, cpu_s: float, why: str
) -> None:
    kills, log = _run(lambda t: ThreadSample("S", 0.0 if t < 0.5 else cpu_s, waited_s * t))
    assert kills == [0.7], why
    assert log.events("actor_hung")[0]["thread_state"] == "S"


def test_disk_then_cpu_is_logged_once_per_reason() -> None:
    """fsync (D) for 1 s, then runnable and waiting for a core: one line per reason."""
    kills, log = _run(lambda t: ThreadSample("D" if t < 1.0 else "R", 0.0), until_s=3.0)
    assert kills == []
    assert [e["reason"] for e in log.events("actor_hang_deferred")] == ["disk", "cpu"]


def test_an_actor_that_burns_a_quarter_of_the_limit_in_its_silence_is_hung() -> None:
    """An eighth of a core, steadily: 0.15 s of CPU without a heartbeat by 1.65 s (from its
    first sample at 0.4 s) is a turn too long, not a wait for a core."""
    kills, log = _run(_steady("R", 0.12), until_s=3.0)
    assert kills == [1.7]
    assert [e["reason"] for e in log.events("actor_hang_deferred")] == ["cpu"]


def test_a_deferred_actor_that_starts_spinning_is_hung() -> None:
    kills, _ = _run(lambda t: ThreadSample("D" if t < 1.0 else "R", max(t - 1.0, 0.0)))
    assert kills == [1.2]  # 0.2 s of CPU in the last 0.3: spinning


def test_no_deferral_when_the_max_is_zero() -> None:
    kills, log = _run(_steady("D", 0.0), cfg=SupervisorCfg(hang_deferral_max_s=0))
    assert kills == [0.7] and log.events("actor_hang_deferred") == []


def test_an_unreadable_thread_is_judged_as_before() -> None:
    kills, _ = _run(lambda t: None)
    assert kills == [0.7]


def test_deferrals_are_counted_by_reason() -> None:
    counter = metrics.ACTOR_HANG_DEFERRALS.labels(actor="connector.hangs", reason="disk")
    before = counter._value.get()  # noqa: SLF001
    _run(_steady("D", 0.0), until_s=2.0, child_id="connector.hangs")
    assert counter._value.get() - before == 1  # noqa: SLF001


def test_main_thread_reads_real_processes() -> None:
    """State and CPU time of a real process's main thread, also one whose name holds
    spaces and a parenthesis; None once it is gone."""
    code = (
        "import sys, time\nopen('/proc/self/comm', 'w').write('a) b (c')\n"
        "sys.stdout.write('up\\n'); sys.stdout.flush()\n"
    )
    spin = subprocess.Popen(
        [sys.executable, "-c", code + "while True: pass"], stdout=subprocess.PIPE
    )
    sleeper = subprocess.Popen(
        [sys.executable, "-c", code + "time.sleep(60)"], stdout=subprocess.PIPE
    )
    try:
        for p in (spin, sleeper):
            assert p.stdout is not None and p.stdout.readline() == b"up\n"
        eventually(lambda: (s := main_thread(spin.pid)) is not None and s.cpu_s > 0.05, 10.0)
        sample = main_thread(spin.pid)
        assert sample is not None and sample.state == "R"
        eventually(lambda: (s := main_thread(sleeper.pid)) is not None and s.state == "S", 10.0)
        os.kill(sleeper.pid, signal.SIGSTOP)
        eventually(lambda: (s := main_thread(sleeper.pid)) is not None and s.state == "T", 10.0)
    finally:
        for p in (spin, sleeper):
            p.kill()
            p.wait()
            assert p.stdout is not None
            p.stdout.close()
    assert main_thread(spin.pid) is None


def test_main_thread_reads_the_wait_for_a_core_of_a_real_process() -> None:
    """A process that wakes every 10 ms, kept from its core 0.5 s by a real-time loop: its
    run-queue wait grows by most of that once it has its core again."""
    if not os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/schedstat"):
        pytest.skip("no schedstat here (a kernel without CONFIG_SCHED_INFO)")
    core = min(os.sched_getaffinity(0))
    code = (
        f"import os, sys, time\nos.sched_setaffinity(0, {{{core}}})\n"
        "sys.stdout.write('up\\n'); sys.stdout.flush()\nwhile True: time.sleep(0.01)"
    )
    victim = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        assert victim.stdout is not None and victim.stdout.readline() == b"up\n"
        before = main_thread(victim.pid)
        assert before is not None and before.waited_s is not None
        hold_core(core, 0.5)
        eventually(
            lambda: (
                (s := main_thread(victim.pid)) is not None
                and s.waited_s is not None
                and s.waited_s - before.waited_s >= 0.3
            ),
            10.0,
        )
    finally:
        victim.kill()
        victim.wait()
        assert victim.stdout is not None
        victim.stdout.close()
