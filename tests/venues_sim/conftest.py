from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.venues_sim.support import Sim, sim_cfg


@pytest.fixture
def make_sim(tmp_path: Path) -> Iterator[Callable[..., Sim]]:
    """`make_sim(name="a", seed=7, **cfg_overrides)`: a venue on its own state dir."""
    made: list[Sim] = []

    def make(name: str = "a", seed: int = 7, **overrides: Any) -> Sim:
        sim = Sim(tmp_path / name, sim_cfg(**overrides), seed)
        made.append(sim)
        return sim

    yield make
    for sim in made:
        sim.close()


@pytest.fixture
def sim(make_sim: Callable[..., Sim]) -> Sim:
    return make_sim()
