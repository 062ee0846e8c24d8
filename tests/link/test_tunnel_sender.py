"""At the core, every message on the link must come from the routing id of the host group
whose key the connection was accepted with: a key of edge-a cannot speak as edge-b."""

from __future__ import annotations

from typing import Any, cast

import zmq

from actors.link.actor import LinkActor
from protocol.curve_keys import LinkKeys


class _Frame:
    """A received frame: its bytes and the connection's User-Id (set by the ZAP answer)."""

    def __init__(self, data: bytes, user: str | None = None) -> None:
        self.bytes = data
        self._user = user

    def get(self, name: str) -> str | None:
        assert name == "User-Id"
        return self._user


def _core_link(*, curve: bool) -> tuple[LinkActor, list[tuple[str, str]]]:
    link = LinkActor.__new__(LinkActor)  # the routing check alone: no sockets, no loop
    dropped: list[tuple[str, str]] = []
    link.is_core = True
    link.keys = LinkKeys(b"p" * 40, b"s" * 40, {b"a" * 40: "edge-a"}) if curve else None
    link._up = {"edge-a": True, "edge-b": True}
    cast(Any, link)._dropped = lambda peer, reason: dropped.append((peer, reason))
    return link, dropped


def _msg(group: bytes, user: str | None) -> list[zmq.Frame]:
    return cast(list[zmq.Frame], [_Frame(group), _Frame(b"P", user)])


def test_curve_message_counts_only_from_the_group_its_key_was_accepted_for() -> None:
    link, dropped = _core_link(curve=True)
    assert link._peer_of(_msg(b"edge-a", "edge-a")) == "edge-a"
    assert link._peer_of(_msg(b"edge-b", "edge-a")) is None  # edge-a's key, edge-b's name
    assert link._peer_of(_msg(b"edge-a", None)) is None
    assert dropped == [("edge-b", "not_allowed"), ("edge-a", "not_allowed")]


def test_plaintext_message_counts_only_from_a_known_group() -> None:
    link, dropped = _core_link(curve=False)
    assert link._peer_of(_msg(b"edge-b", None)) == "edge-b"
    assert link._peer_of(_msg(b"core", None)) is None
    assert dropped == [("core", "not_allowed")]
