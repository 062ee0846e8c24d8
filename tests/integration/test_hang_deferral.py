"""An actor the machine keeps waiting is not killed as hung (actors/supervisor/hangs.py),
with real processes: the connector's main thread pinned to one core while a real-time
busy loop holds that core for 1.5 s. Its loop is silent past the 0.6 s hang limit, runnable
and using no CPU: the supervisor logs `actor_hang_deferred` (reason cpu) and keeps it; the
venue trades on with the same process. (On main before this, it was killed: `actor_hung`,
a restart and a new FIX logon.) A SIGSTOPped actor is still killed at the limit
(tests/integration/test_restarts.py)."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from tests.helpers import SystemUnderTest
from tests.rt_hog import hold_core
from tests.system_ops import client, submit_when_open

pytestmark = pytest.mark.integration

CONNECTOR = "connector.simA"
HOG_S = 1.5


def test_a_connector_kept_from_a_core_is_not_killed_as_hung(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    sut = start_system(venues=("simA",))
    pid = sut.pid_of(CONNECTOR)
    core = min(os.sched_getaffinity(pid))
    since = sut.mark()
    os.sched_setaffinity(pid, {core})  # its main thread: the loop that heartbeats
    hold_core(core, HOG_S)
    deferred = sut.wait_event("actor_hang_deferred", since=since, child=CONNECTOR, timeout_s=5.0)
    assert deferred["reason"] == "cpu" and deferred["pid"] == pid
    assert sut.events("actor_hung", since=since) == []
    assert sut.pid_of(CONNECTOR) == pid  # the same process: no restart
    with client(sut) as c:
        order = submit_when_open(c, "simA", price="95.00")
        assert order.venue == "simA"
    assert sut.events("actor_exited", since=since) == []
