"""The link's tables: only the allowed actors speak across it, and a remote actor's newer
epoch fences its older incarnation's messages (the stand-in DEALER is replaced)."""

from __future__ import annotations

from typing import Any, cast

from actors.link.bridge import MAX_BRIDGES, Allowed, Bridges, split_identity
from protocol.sockets import Socket


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
    bridges = Bridges(d.open, d.close)
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


def test_bridges_are_bounded() -> None:
    d = _Dealers()
    bridges = Bridges(d.open, d.close)
    for i in range(MAX_BRIDGES):
        assert not isinstance(bridges.dealer_for("oms", f"connector.v{i}:1".encode(), b"e"), str)
    assert bridges.dealer_for("oms", b"connector.extra:1", b"e") == "too_many"
