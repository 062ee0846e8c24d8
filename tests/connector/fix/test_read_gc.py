"""The FIX adapter reads a turn's bytes with the cyclic collector paused (a warm start's
mass status: 10,000 reports pile up as held VenueOrders, which the collector's passes
would traverse again and again), and the collector is on again after the turn."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.connector.fix.adapter import FixAdapter
from actors.connector.fix.events import SessionEvent
from tests.connector.fix.test_adapter import Harness


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(tmp_path)
    yield harness
    harness.close()


def _spy_receive(adapter: FixAdapter) -> list[bool]:
    """Record, at each `session.receive`, whether the cyclic collector was on."""
    seen: list[bool] = []
    receive = adapter.session.receive

    def spy(data: bytes) -> list[SessionEvent]:
        seen.append(gc.isenabled())
        return receive(data)

    adapter.session.receive = spy  # type: ignore[method-assign]
    return seen


def test_a_turns_fix_reading_runs_without_cyclic_collections(h: Harness) -> None:
    """Every read of the venue's bytes (here the Logon's answer) happens with the
    collector off; it is on again once the turn's reading is done."""
    assert gc.isenabled()
    adapter = h.adapter()
    seen = _spy_receive(adapter)
    ups = len(h.listener.ups)
    adapter.connect()
    h.loop.run_until(lambda: len(h.listener.ups) > ups)
    assert seen and not any(seen)
    assert gc.isenabled()


def test_the_collector_is_on_again_when_a_turns_reading_raises(h: Harness) -> None:
    """A read that fails does not leave the collector off."""
    adapter = h.adapter()
    calls: list[bool] = []

    def broken(_data: bytes) -> list[SessionEvent]:
        calls.append(gc.isenabled())
        raise RuntimeError("boom")

    adapter.session.receive = broken  # type: ignore[method-assign]
    adapter.connect()
    with pytest.raises(RuntimeError, match="boom"):
        h.loop.run_until(lambda: bool(calls), timeout_s=5.0)
    assert calls == [False]
    assert gc.isenabled()
