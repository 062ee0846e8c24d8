"""The warm start with the venue up, as a real venue is (`oms`'s warm start, section 3).

In the embedded demo the simulated venue is one of the supervisor's children, so a kill -9
of the system kills it too, and the next start waits for it to load its own book (10,000
orders: ~0.1 s of its CPU, on the critical path) before the connector can log on. A real
venue is the outside world: our crash does not restart it. Here the venue runs alone
(`python -m actors.venuesim run`, on the system's state as the embedded one left it) on
the port it binds, started before the clock and up throughout; the system runs with the
same venue on that port without its `[venues.sim]` table (a connector only) and is killed
and started as in the embedded measurement. It still shares the host's 2 cores with the
system, and so still builds its 10,000 status reports on them, which a real venue would
not. Each pair ends with nothing of it running (`oms._venue_up_warm_starts`): the
embedded pair measured after it runs on a host as quiet as the venue-up pair did.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from tests.bench import oms
from tests.helpers import make_config
from tests.venuesim.rig import VENUE, SimProcess


def overrides(port: int, *, sim: bool) -> dict[str, Any]:
    """`oms._config()` with the venue on `port` (0: the sim picks one and publishes it);
    without its sim table unless `sim`."""
    cfg = copy.deepcopy(oms._config())
    venue = cfg["venues"][0] | {"port": port}
    if not sim:
        venue.pop("sim")
    cfg["venues"] = [venue]
    return cfg


def start_venue(root: Path, state_dir: Path) -> tuple[SimProcess, int]:
    """The venue alone, on `state_dir` (the system's: the embedded venue's book), its own
    runtime dir under `root`; returns it once it listens, and its port (the one it bound
    and published: no other process can take it between a probe and the bind)."""
    config = make_config(venues=(VENUE,), overrides=overrides(0, sim=True))
    venue = SimProcess(root / "venue", config)
    venue.state_dir = state_dir  # the book the embedded venue left, not an empty one
    try:
        return venue.start(), venue.port
    except BaseException:
        venue.destroy()  # not listening in time: never returned, so killed here
        raise


def warm_start(root: Path, how: str, port: int) -> tuple[dict[str, Any], oms.OmsSystem]:
    """`oms.warm_start` of the system whose venue (on `port`) runs alone and is up."""
    result, sut = oms.warm_start(root, how, overrides(port, sim=False))
    return result | {"venue": "up (run alone)"}, sut
