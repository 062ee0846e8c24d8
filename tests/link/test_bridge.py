"""The link's tables: only the allowed actors speak across it, and a remote actor's newer
epoch fences its older incarnation's messages (the stand-in DEALER is replaced)."""

from __future__ import annotations

import errno
import shutil
import tempfile
from pathlib import Path
from typing import Any, cast

import pytest
import zmq

from actors.link.bridge import (
    CORE_ACTORS,
    OWN_SOCKETS,
    Allowed,
    Bridges,
    check_link_size,
    link_tables,
    split_identity,
)
from protocol.config import VenueCfg, parse_config
from protocol.exceptions import ConfigError
from protocol.sockets import MAX_SOCKETS, Socket, connect_dealer, new_context
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
    an edge nothing; and room for the largest peer's bridges replaced at once (closed ones
    count until the reaper frees them). Measured on a live pair (eventfds of the link
    processes, 2 venues on edge-a): the core's link 8 sockets, the edge's 12, each
    OWN_SOCKETS - 4 or - 3 below these counts without the headroom."""
    venues = _venues(core=2, **{"edge-a": 3, "edge-b": 1})
    core = link_tables(venues, "core")
    assert core.peers == ["edge-a", "edge-b"] and core.bridges == 4 and core.headroom == 3
    assert core.sockets == 8 + 4 + 4 + 3
    edge = link_tables(venues, "edge-a")
    assert edge.peers == ["core"] and edge.bridges == 9 and len(edge.connectors) == 3
    assert edge.headroom == 9 and edge.sockets == 8 + 1 + 9 + 9 + 3


@pytest.mark.parametrize(("group", "most"), [("core", (MAX_SOCKETS - 8) // 3), ("edge-a", 35)])
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
    """`tradepulse run --host-group edge-a` with 36 venues on edge-a: one line, exit 2,
    before anything starts."""
    root = Path(tempfile.mkdtemp(prefix="tp", dir="/tmp"))  # ipc paths: short
    try:
        cfg = root / "big.toml"
        cfg.write_text(to_toml({"link": LINK, "venues": _placed(**{"edge-a": 36})}))
        dirs = ["--state-dir", str(root / "s"), "--runtime-dir", str(root / "r")]
        done = run_python([str(SUPERVISOR), "run", "--config", str(cfg), *dirs,
                           "--host-group", "edge-a"], timeout_s=30)  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)
    assert done.returncode == 2, done
    [line] = done.stderr.strip().splitlines()
    assert "36 venues on edge-a" in line and "place fewer venues" in line, line


def test_bridges_are_bounded_by_their_tables() -> None:
    """Only a pair the tables allow gets a bridge, so the limit (their count) is never
    reached; past it a bridge is refused (`too_many`, dropped and counted), not opened."""
    d = _Dealers()
    bridges = Bridges(d.open, d.close, 3)
    for i in range(3):
        assert not isinstance(bridges.dealer_for("oms", f"connector.v{i}:1".encode(), b"e"), str)
    assert bridges.dealer_for("oms", b"connector.extra:1", b"e") == "too_many"
    assert len(d.opened) == 3


def test_the_largest_edge_placement_survives_a_restart_of_the_core(tmp_path: Path) -> None:
    """The most venues an edge's link takes, with a real context (256 sockets): as many
    sockets open as the link holds (its own, the stand-in, dead-man peers, every bridge),
    then the core restarted (the OMS, risk and the heartbeat each with a new epoch): every
    bridge is replaced in one burst, the closed ones not yet reaped, and all open (before
    the headroom, 55 venues were admitted and the burst raised Too many open files)."""
    venues = _venues(**{"edge-a": 35})
    check_link_size(venues, "edge-a")
    tables = link_tables(venues, "edge-a")
    ctx = new_context()
    endpoint = f"ipc://{tmp_path}/c.sock"
    try:
        own = [ctx.socket(zmq.DEALER) for _ in range(OWN_SOCKETS - 3)]  # measured: 3 below
        others = [
            ctx.socket(zmq.DEALER) for _ in range(len(tables.exports) + len(tables.connectors))
        ]
        bridges = Bridges(
            lambda target, ident: connect_dealer(ctx, endpoint, ident.decode()),
            lambda sock: sock.close(linger=0),
            tables.bridges,
        )
        for epoch in (1, 2):
            for c in tables.connectors:
                for sender in CORE_ACTORS:
                    sock = bridges.dealer_for(c, f"{sender}:{epoch}".encode(), b"core")
                    assert not isinstance(sock, str), (epoch, c, sender, sock)
        assert len(bridges) == tables.bridges and len(own) + len(others) > 0
    finally:
        ctx.destroy(linger=0)


def test_a_bridge_that_cannot_open_is_a_drop_not_a_crash() -> None:
    """Should the context still run out of sockets (the reaper behind), the message is
    dropped (`open_failed`, counted by the link) and the next one tries again."""
    d = _Dealers()
    failing = [True]

    def open_dealer(target: str, identity: bytes) -> Socket:
        if failing[0]:
            raise zmq.ZMQError(errno.EMFILE)
        return d.open(target, identity)

    bridges = Bridges(open_dealer, d.close, 3)
    assert bridges.dealer_for("connector.v0", b"oms:1", b"core") == "open_failed"
    assert len(bridges) == 0
    failing[0] = False
    assert not isinstance(bridges.dealer_for("connector.v0", b"oms:1", b"core"), str)


class _RecordingContext:
    """A real context that keeps every socket it makes (to see that each is closed)."""

    def __init__(self) -> None:
        self.ctx = new_context()
        self.made: list[Socket] = []

    def socket(self, kind: int) -> Socket:
        sock = self.ctx.socket(kind)
        self.made.append(sock)
        return sock


@pytest.mark.parametrize("endpoint", ["ipc:///tmp/" + "x" * 200, "nosuch://transport"])
def test_a_bridge_whose_connect_fails_closes_its_socket(endpoint: str) -> None:
    """The DEALER made for a bridge whose connect fails (an ipc path too long, a bad
    endpoint) is closed at once, not left open against the context's sockets: the message
    is dropped (`open_failed`) and no socket is leaked."""
    rec = _RecordingContext()
    try:
        bridges = Bridges(
            lambda target, ident: connect_dealer(cast(Any, rec), endpoint, ident.decode()),
            lambda sock: sock.close(linger=0),
            3,
        )
        assert bridges.dealer_for("connector.v0", b"oms:1", b"core") == "open_failed"
        assert len(rec.made) == 1 and rec.made[0].closed
    finally:
        rec.ctx.destroy(linger=0)
