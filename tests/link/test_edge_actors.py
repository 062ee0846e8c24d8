"""The actors of an edge as the core's link knows them (what the core may restart there,
what an edge's stops report may name) are the edge supervisor's own children."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from actors.link.actor import LinkActor
from actors.supervisor.restart_policy import LINK, child_specs
from protocol.config import load_config


def test_an_edges_actors_are_its_supervisors_children_a_guest_sim_none_of_its_own(
    tmp_path: Path,
) -> None:
    """simB's simulator runs in simA's process on edge-a (`runs_in`): the link lists
    venuesim.simA (for both) and no venuesim.simB, which no supervisor runs."""
    sim = '[venues.sim]\nreference_prices = { AAPL = "100" }\n'
    (tmp_path / "c.toml").write_text(
        '[link]\nbind = "tcp://*:7100"\nconnect = "tcp://core:7100"\nkeys_dir = "k"\n'
        f'[[venues]]\nname = "simA"\nhost_group = "edge-a"\n{sim}'
        f'[[venues]]\nname = "simB"\nhost_group = "edge-a"\n{sim}runs_in = "simA"\n'
        '[[venues]]\nname = "simC"\nhost_group = "edge-a"\n'
        f'[[venues]]\nname = "simD"\n{sim}'
    )
    cfg = load_config(tmp_path / "c.toml")
    actors = LinkActor._actors_of(SimpleNamespace(cfg=cfg), "edge-a")  # type: ignore[arg-type]
    assert actors == {s.id for s in child_specs(cfg, "edge-a") if s.id != LINK}
    assert actors == {"venuesim.simA", "connector.simA", "connector.simB", "connector.simC"}
