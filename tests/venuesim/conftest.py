"""Fixtures of the venue-sim tests, two harnesses under distinct names:

- `sim` / `make_sim`: the in-process engine on its own state dir (`support.Sim`, a fake
  clock, no process, no socket);
- `sim_process` / `make_sim_process`: the real venue-sim process (`rig.SimProcess`), and
  `client` / `make_client`: a logged-on FIX client of it (`rig.FixClient`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.venuesim.rig import FixClient, SimProcess, sim_config
from tests.venuesim.support import Sim, sim_cfg

# --------------------------------------------------------------------------- in-process engine


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


# --------------------------------------------------------------------------- real process


@pytest.fixture
def make_sim_process(short_tmp: Path) -> Iterator[Callable[..., SimProcess]]:
    """`make_sim_process(**sim_table_overrides)`: a started venue-sim process (killed at
    teardown)."""
    made: list[SimProcess] = []

    def make(**sim: Any) -> SimProcess:
        proc = SimProcess(short_tmp / f"v{len(made)}", sim_config(**sim))
        made.append(proc)
        return proc.start()

    yield make
    for proc in made:
        proc.destroy()


@pytest.fixture
def sim_process(make_sim_process: Callable[..., SimProcess]) -> SimProcess:
    return make_sim_process()


@pytest.fixture
def make_client(short_tmp: Path) -> Iterator[Callable[..., FixClient]]:
    """`make_client(sim_process, name="c", reset=True)`: a logged-on FIX client of it."""
    made: list[FixClient] = []

    def make(sim: SimProcess, name: str = "c", *, reset: bool = True, **kw: Any) -> FixClient:
        client = FixClient(sim.port, short_tmp / f"client-{name}", **kw)
        made.append(client)
        return client.connect(reset=reset)

    yield make
    for client in made:
        client.shutdown()


@pytest.fixture
def client(sim_process: SimProcess, make_client: Callable[..., FixClient]) -> FixClient:
    return make_client(sim_process)
