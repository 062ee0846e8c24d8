"""The link's tables: only the allowed actors speak across it, and a remote actor's newer
epoch fences its older incarnation's messages (the stand-in DEALER is replaced)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any, cast

import pytest

from actors.link.bridge import (
    Allowed,
    Bridges,
    check_link_size,
    link_tables,
    split_identity,
)
from protocol.config import VenueCfg, parse_config
from protocol.exceptions import ConfigError
from protocol.sockets import MAX_SOCKETS, Socket
from tests.helpers import SUPERVISOR, run_python, to_toml


class _Dealers:
    """Hand-written stand-ins for the DEALERs the link opens and closes."""

    def __init__(self) -> None:
        self.opened: list[tuple[str, bytes]] = []
        self.closed: list[Any] = []

    def open(self, target: str, identity: bytes) -> Socket:
        self.opened.append((target, identity))
        return cast(Socket, object())

    def close(self, sock: Socket) -> None:
        self.closed.append(sock)


def test_split_identity_reads_actor_and_epoch_and_refuses_the_malformed() -> None:
    assert split_identity(b"connector.simA:1700000000001") == ("connector.simA", 1700000000001)
    assert split_identity(b"oms") is None
    assert split_identity(b"oms:") is None
    assert split_identity(b":12") is None
    assert split_identity(b"oms:12a") is None


def test_allowed_refuses_other_targets_and_senders() -> None:
    core_side = Allowed(["connector.simA"], ["oms"])
    assert core_side.refusal("oms", "connector.simA") is None
    assert core_side.refusal("risk", "connector.simA") is not None  # not served across
    assert core_side.refusal("oms", "connector.simB") is not None  # another group's venue
    assert core_side.refusal("oms", "risk") is not None  # an edge cannot speak as risk


def test_a_newer_epoch_replaces_the_dealer_and_fences_the_older_one() -> None:
    d = _Dealers()
    bridges = Bridges(d.open, d.close, 8)
    first = bridges.dealer_for("connector.simA", b"oms:100", b"core")
    assert not isinstance(first, str)
    assert bridges.dealer_for("connector.simA", b"oms:100", b"core") is first  # reused
    assert bridges.route_of(first) == ("connector.simA", b"oms:100", b"core")
    newer = bridges.dealer_for("connector.simA", b"oms:200", b"core")
    assert not isinstance(newer, str) and newer is not first
    assert d.closed == [first] and bridges.route_of(first) is None
    assert bridges.dealer_for("connector.simA", b"oms:100", b"core") == "stale_epoch"
    assert bridges.dealer_for("connector.simA", b"oms", b"core") == "bad_identity"
    other = bridges.dealer_for("connector.simA", b"risk:50", b"core")  # another actor
    assert not isinstance(other, str)
    assert len(bridges) == 2
    bridges.close()
    assert len(bridges) == 0 and set(map(id, d.closed)) == {id(first), id(newer), id(other)}


LINK = {"bind": "tcp://127.0.0.1:7100", "connect": "tcp://127.0.0.1:7100", "allow_plaintext": True}


def _placed(**groups: int) -> list[dict[str, str]]:
    """`n` venues on each group: v0..."""
    names = (f"v{i}" for i in range(10_000))
    return [{"name": next(names), "host_group": g} for g, n in groups.items() for _ in range(n)]


def _venues(**groups: int) -> list[VenueCfg]:
    return parse_config({"link": LINK, "venues": _placed(**groups)}).venues


def test_the_tables_count_the_bridges_and_sockets_a_link_can_hold() -> None:
    """The core: one bridge per venue on an edge (its connector -> the OMS) and a stand-in
    each; an edge: three per venue of its own (the OMS, risk, the heartbeat -> its
    connector), a dead-man peer each and one stand-in (the OMS); other edges' venues cost
    an edge nothing. Measured on a live pair (eventfds of the link processes, 2 venues on
    edge-a): the core's link 8 sockets, the edge's 12, each OWN_SOCKETS - 4 or - 3 below
    these counts."""
    venues = _venues(core=2, **{"edge-a": 3, "edge-b": 1})
    core = link_tables(venues, "core")
    assert core.peers == ["edge-a", "edge-b"] and core.bridges == 4
    assert core.sockets == 8 + 4 + 4
    edge = link_tables(venues, "edge-a")
    assert edge.peers == ["core"] and edge.bridges == 9 and len(edge.connectors) == 3
    assert edge.sockets == 8 + 1 + 9 + 3


@pytest.mark.parametrize(("group", "most"), [("core", (MAX_SOCKETS - 8) // 2), ("edge-a", 61)])
def test_a_placement_too_big_for_one_link_is_refused_at_start(group: str, most: int) -> None:
    """The most venues one link serves (the core: on all edges; an edge: its own) pass;
    one more is a ConfigError naming the count and the limit, never a link that fails at
    its 257th socket and is restarted into the same failure."""
    on = "edge-a" if group == "core" else group
    check_link_size(_venues(**{on: most}), group)
    too_many = _venues(**{on: most + 1})
    with pytest.raises(ConfigError, match=f"{most + 1} venues on .* more than the 256"):
        check_link_size(too_many, group)


def test_run_refuses_a_placement_too_big_for_its_link_with_exit_2() -> None:
    """`tradepulse run --host-group edge-a` with 62 venues on edge-a: one line, exit 2,
    before anything starts."""
    root = Path(tempfile.mkdtemp(prefix="tp", dir="/tmp"))  # ipc paths: short
    try:
        cfg = root / "big.toml"
        cfg.write_text(to_toml({"link": LINK, "venues": _placed(**{"edge-a": 62})}))
        dirs = ["--state-dir", str(root / "s"), "--runtime-dir", str(root / "r")]
        done = run_python([str(SUPERVISOR), "run", "--config", str(cfg), *dirs,
                           "--host-group", "edge-a"], timeout_s=30)  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)
    assert done.returncode == 2, done
    [line] = done.stderr.strip().splitlines()
    assert "62 venues on edge-a" in line and "place fewer venues" in line, line


def test_bridges_are_bounded_by_their_tables() -> None:
    """Only a pair the tables allow gets a bridge, so the limit (their count) is never
    reached; past it a bridge is refused (`too_many`, dropped and counted), not opened."""
    d = _Dealers()
    bridges = Bridges(d.open, d.close, 3)
    for i in range(3):
        assert not isinstance(bridges.dealer_for("oms", f"connector.v{i}:1".encode(), b"e"), str)
    assert bridges.dealer_for("oms", b"connector.extra:1", b"e") == "too_many"
    assert len(d.opened) == 3
