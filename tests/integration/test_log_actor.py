"""Every JSON log line of a running system names the process that wrote it (`actor`), also
the lines of module loggers that bind nothing: the kill-switch file's `kill_switch` lines
(`actors.risk.killswitch`), read by the supervisor and every actor, had no `actor` but in
risk. Here the file is unreadable at start, so each reader logs it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from actors.risk import killswitch
from tests.helpers import SystemUnderTest, eventually

pytestmark = pytest.mark.integration


@pytest.fixture
def sut() -> Iterator[SystemUnderTest]:
    system = SystemUnderTest()
    path = killswitch.kill_switch_path(system.state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not a kill-switch file\n" * 8)
    try:
        system.start()
        yield system
    finally:
        system.destroy()


def test_every_line_names_its_actor_even_a_module_loggers(sut: SystemUnderTest) -> None:
    def readers() -> set[str] | None:
        seen = {str(e.get("actor")) for e in sut.events("kill_switch", action="state_unreadable")}
        return seen if {"supervisor", "risk", "oms"} <= seen else None

    eventually(readers, 15.0, message=lambda: sut.describe())
    nameless = [e for e in sut.events() if not e.get("actor")]
    assert not nameless, nameless[:5]
