"""The cyclic collector is off inside `collections_paused()` and back as it was after."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from actors.runtime.gcpause import collections_paused


@pytest.fixture
def collector_on() -> Iterator[None]:
    gc.enable()
    yield
    gc.enable()


@pytest.mark.usefixtures("collector_on")
def test_no_collection_runs_inside_and_the_collector_is_back_after() -> None:
    """Allocating well past the generation-0 threshold inside the block starts no pass."""
    passes: list[str] = []

    def count(phase: str, _info: dict[str, int]) -> None:
        passes.append(phase)

    gc.callbacks.append(count)
    try:
        with collections_paused():
            held = [[i] for i in range(50 * gc.get_threshold()[0])]
            inside = list(passes)
        assert gc.isenabled()
    finally:
        gc.callbacks.remove(count)
    assert inside == [] and len(held) > 0


@pytest.mark.usefixtures("collector_on")
def test_the_collector_comes_back_when_the_block_raises() -> None:
    with pytest.raises(RuntimeError), collections_paused():
        raise RuntimeError("replay failed")
    assert gc.isenabled()


@pytest.mark.usefixtures("collector_on")
def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    with collections_paused():
        pass
    assert not gc.isenabled()
