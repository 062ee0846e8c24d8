from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.venues_sim_process.support import FixClient, SimProcess, sim_config


@pytest.fixture
def make_sim(short_tmp: Path) -> Iterator[Callable[..., SimProcess]]:
    """`make_sim(**sim_table_overrides)`: a started venue-sim process (killed at teardown)."""
    made: list[SimProcess] = []

    def make(**sim: Any) -> SimProcess:
        proc = SimProcess(short_tmp / f"v{len(made)}", sim_config(**sim))
        made.append(proc)
        return proc.start()

    yield make
    for proc in made:
        proc.destroy()


@pytest.fixture
def sim(make_sim: Callable[..., SimProcess]) -> SimProcess:
    return make_sim()


@pytest.fixture
def make_client(short_tmp: Path) -> Iterator[Callable[..., FixClient]]:
    """`make_client(sim, name="c", reset=True)`: a logged-on FIX client of `sim`."""
    made: list[FixClient] = []

    def make(sim: SimProcess, name: str = "c", *, reset: bool = True, **kw: Any) -> FixClient:
        client = FixClient(sim.port, short_tmp / f"client-{name}", **kw)
        made.append(client)
        return client.connect(reset=reset)

    yield make
    for client in made:
        client.shutdown()


@pytest.fixture
def client(sim: SimProcess, make_client: Callable[..., FixClient]) -> FixClient:
    return make_client(sim)
