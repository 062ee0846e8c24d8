"""net_pair(): two namespaces joined by a veth whose addresses exist only inside them; a
process started with the launcher lives there; everything is gone on exit, also when the
body raised; namespaces of a dead test process are removed on entry."""

from __future__ import annotations

import socket
import subprocess

import pytest

from tests.helpers import eventually, process_alive
from tests.netfault.netns import NETNS_DIR, in_netns, net_pair, netns_unavailable

pytestmark = pytest.mark.skipif(netns_unavailable() is not None, reason=str(netns_unavailable()))


def _host_addresses() -> str:
    return subprocess.run(
        ["ip", "-o", "addr"], capture_output=True, text=True, check=True, timeout=10
    ).stdout


def test_a_pair_joins_two_namespaces_and_is_gone_on_exit() -> None:
    """The core's address answers from the edge's namespace over the veth; neither address
    exists in the host's namespace; a process started with the launcher is in pids() and
    is killed, and both namespaces deleted, when the pair ends."""
    with net_pair() as pair:
        assert (NETNS_DIR / pair.core_ns).exists() and (NETNS_DIR / pair.edge_ns).exists()
        host = _host_addresses()
        assert pair.core_ip not in host and pair.edge_ip not in host
        srv = in_netns(pair.core_ns, lambda: socket.create_server((pair.core_ip, 0)))
        port = srv.getsockname()[1]
        client = in_netns(
            pair.edge_ns, lambda: socket.create_connection((pair.core_ip, port), timeout=10)
        )
        inner, peer = srv.accept()
        assert peer[0] == pair.edge_ip
        for s in (client, inner, srv):
            s.close()
        proc = subprocess.Popen([*pair.launcher("edge"), "sleep", "600"])
        eventually(lambda: proc.pid in pair.pids(), 10.0)
        assert pair.launcher("core") == ["ip", "netns", "exec", pair.core_ns]
    assert proc.wait(timeout=10) == -9  # killed
    assert not (NETNS_DIR / pair.core_ns).exists() and not (NETNS_DIR / pair.edge_ns).exists()


def test_link_down_cuts_the_route_and_link_up_restores_it() -> None:
    """link_down: a connect from the edge to the core fails at once (no route); link_up:
    it works again."""
    with net_pair() as pair:
        srv = in_netns(pair.core_ns, lambda: socket.create_server((pair.core_ip, 0)))
        port = srv.getsockname()[1]

        def connect() -> socket.socket:
            return socket.create_connection((pair.core_ip, port), timeout=10)

        pair.link_down()
        with pytest.raises(OSError):
            in_netns(pair.edge_ns, connect)
        pair.link_up()
        client = eventually(lambda: in_netns(pair.edge_ns, connect), 10.0, ignore=(OSError,))
        client.close()
        srv.close()


def test_cleanup_runs_when_the_body_raises_and_stale_pairs_are_removed() -> None:
    """A body that raises still leaves no process and no namespace; a namespace named after
    a test process that no longer runs is deleted by the next net_pair()."""
    with pytest.raises(RuntimeError, match="boom"), net_pair() as pair:
        proc = subprocess.Popen([*pair.launcher("core"), "sleep", "600"])
        eventually(lambda: proc.pid in pair.pids(), 10.0)
        raise RuntimeError("boom")
    assert proc.wait(timeout=10) == -9
    assert not (NETNS_DIR / pair.core_ns).exists()

    dead = subprocess.Popen(["true"])
    dead.wait(timeout=10)
    assert not process_alive(dead.pid)
    stale = f"tp{dead.pid}c0"
    subprocess.run(["ip", "netns", "add", stale], check=True, timeout=10)
    try:
        with net_pair():
            assert not (NETNS_DIR / stale).exists()
    finally:
        if (NETNS_DIR / stale).exists():
            subprocess.run(["ip", "netns", "delete", stale], check=False, timeout=10)
