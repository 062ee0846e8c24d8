"""An actor the machine keeps waiting is not killed as hung (actors/supervisor/hangs.py),
with real processes: the connector's main thread pinned to one core while a real-time
busy loop holds that core for 1.5 s. Its loop is silent past the 0.6 s hang limit, runnable
and using no CPU: the supervisor logs `actor_hang_deferred` (reason cpu) and keeps it; the
venue trades on with the same process. (On main before this, it was killed: `actor_hung`,
a restart and a new FIX logon.) A SIGSTOPped actor is still killed at the limit
(tests/integration/test_restarts.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

import pytest

from tests.helpers import SystemUnderTest
from tests.system_ops import client, submit_when_open

pytestmark = pytest.mark.integration

CONNECTOR = "connector.simA"
HOG_S = 1.5
HOG = f"""
import os, sys, time
os.sched_setaffinity(0, {{int(sys.argv[1])}})
try:
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
except PermissionError:
    sys.stdout.write("no-rt\\n"); sys.stdout.flush(); sys.exit(0)
sys.stdout.write("up\\n"); sys.stdout.flush()
end = time.monotonic() + {HOG_S}
while time.monotonic() < end:
    pass
"""


def test_a_connector_kept_from_a_core_is_not_killed_as_hung(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    sut = start_system(venues=("simA",))
    pid = sut.pid_of(CONNECTOR)
    core = min(os.sched_getaffinity(pid))
    since = sut.mark()
    os.sched_setaffinity(pid, {core})  # its main thread: the loop that heartbeats
    hog = subprocess.Popen([sys.executable, "-c", HOG, str(core)], stdout=subprocess.PIPE)
    try:
        assert hog.stdout is not None
        if hog.stdout.readline() == b"no-rt\n":
            pytest.skip("no real-time scheduling here (CAP_SYS_NICE)")
        assert hog.wait(timeout=30.0) == 0
    finally:
        hog.kill()
        hog.wait()
        assert hog.stdout is not None
        hog.stdout.close()
    deferred = sut.wait_event("actor_hang_deferred", since=since, child=CONNECTOR, timeout_s=5.0)
    assert deferred["reason"] == "cpu" and deferred["pid"] == pid
    assert sut.events("actor_hung", since=since) == []
    assert sut.pid_of(CONNECTOR) == pid  # the same process: no restart
    with client(sut) as c:
        order = submit_when_open(c, "simA", price="95.00")
        assert order.venue == "simA"
    assert sut.events("actor_exited", since=since) == []
