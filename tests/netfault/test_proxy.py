"""The fault proxy on loopback (and once across a namespace pair): bytes forwarded both
ways and counted, delay measured, a stall holds then releases in order, a cut resets both
peers, refuse, and every thread joined by close()."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tests.netfault.netns import in_netns, net_pair, netns_unavailable
from tests.netfault.proxy import FaultProxy


@pytest.fixture
def server() -> Iterator[socket.socket]:
    srv = socket.create_server(("127.0.0.1", 0))
    srv.settimeout(10.0)
    yield srv
    srv.close()


def _connect(proxy: FaultProxy, server: socket.socket) -> tuple[socket.socket, socket.socket]:
    """(client side, server side) of one connection through the proxy."""
    client = socket.create_connection(("127.0.0.1", proxy.port), timeout=10.0)
    inner, _ = server.accept()
    inner.settimeout(10.0)
    return client, inner


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        assert chunk, f"closed after {len(out)} of {n} bytes"
        out += chunk
    return out


def _proxy_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("faultproxy")]


def test_forwards_both_ways_counts_bytes_and_close_joins_every_thread(
    server: socket.socket,
) -> None:
    """Bytes go through unchanged in both directions, a half close is passed on, the stats
    count the connection and the bytes, and close() (twice) leaves no thread behind."""
    proxy = FaultProxy(server.getsockname()).start()
    client, inner = _connect(proxy, server)
    client.sendall(b"hello " * 1000)
    assert _recv_exactly(inner, 6000) == b"hello " * 1000
    inner.sendall(b"world")
    assert _recv_exactly(client, 5) == b"world"
    client.shutdown(socket.SHUT_WR)
    assert inner.recv(10) == b""  # the client's FIN reached upstream
    assert proxy.stats == {
        "connections": 1, "cuts": 0, "bytes_up": 6000, "bytes_down": 5, "refused": 0,
    }  # fmt: skip
    assert _proxy_threads()
    proxy.close()
    proxy.close()
    assert not _proxy_threads()
    client.close()
    inner.close()


def test_delay_holds_each_direction_and_keeps_order(server: socket.socket) -> None:
    """With 100 ms + up to 50 ms of jitter, a round trip takes at least 200 ms; 50
    messages sent back to back arrive in order, none earlier than the delay."""
    with FaultProxy(server.getsockname()) as proxy:
        client, inner = _connect(proxy, server)
        proxy.set_delay(0.1, 0.05)
        t0 = time.monotonic()
        client.sendall(b"ping")
        assert _recv_exactly(inner, 4) == b"ping"
        one_way = time.monotonic() - t0
        inner.sendall(b"pong")
        assert _recv_exactly(client, 4) == b"pong"
        rtt = time.monotonic() - t0
        assert one_way >= 0.1 and rtt >= 0.2, (one_way, rtt)
        assert rtt < 3.0, rtt  # held, not lost
        t0 = time.monotonic()
        for i in range(50):
            client.sendall(b"%03d" % i)
        got = _recv_exactly(inner, 150)
        assert time.monotonic() - t0 >= 0.1
        assert got == b"".join(b"%03d" % i for i in range(50))
        proxy.set_delay(0.0)
        client.sendall(b"fast")
        assert _recv_exactly(inner, 4) == b"fast"
        client.close()
        inner.close()


def test_stall_holds_every_byte_then_releases_them_in_order(server: socket.socket) -> None:
    """While stalled nothing crosses (the connection stays open); lifted, everything
    held arrives in order, both ways."""
    with FaultProxy(server.getsockname()) as proxy:
        client, inner = _connect(proxy, server)
        proxy.stall(True)
        for i in range(20):
            client.sendall(b"u%02d" % i)
            inner.sendall(b"d%02d" % i)
        inner.settimeout(0.5)
        with pytest.raises(TimeoutError):
            inner.recv(100)
        client.settimeout(0.5)
        with pytest.raises(TimeoutError):
            client.recv(100)
        assert proxy.stats["bytes_up"] == proxy.stats["bytes_down"] == 0
        assert proxy.open_connections == 1
        proxy.stall(False)
        inner.settimeout(10.0)
        client.settimeout(10.0)
        assert _recv_exactly(inner, 60) == b"".join(b"u%02d" % i for i in range(20))
        assert _recv_exactly(client, 60) == b"".join(b"d%02d" % i for i in range(20))
        client.close()
        inner.close()


def test_cut_resets_both_peers_and_new_connections_still_work(server: socket.socket) -> None:
    """cut() resets every open connection (both peers see ECONNRESET, not a clean EOF) and
    returns how many; a connection made afterwards forwards again."""
    with FaultProxy(server.getsockname()) as proxy:
        pairs = [_connect(proxy, server) for _ in range(2)]
        assert proxy.cut() == 2
        for client, inner in pairs:
            for sock in (client, inner):
                with pytest.raises(ConnectionResetError):
                    sock.recv(10)
                sock.close()
        assert proxy.stats["cuts"] == 2 and proxy.open_connections == 0
        client, inner = _connect(proxy, server)
        client.sendall(b"again")
        assert _recv_exactly(inner, 5) == b"again"
        assert proxy.cut() == 1
        client.close()
        inner.close()


def test_refuse_closes_new_connections_at_once(server: socket.socket) -> None:
    """Refusing: a new connection is accepted and closed before anything is forwarded
    (upstream never sees it); off again, connections are forwarded."""
    with FaultProxy(server.getsockname()) as proxy:
        proxy.refuse(True)
        client = socket.create_connection(("127.0.0.1", proxy.port), timeout=10.0)
        assert client.recv(10) == b""
        client.close()
        assert proxy.stats["refused"] == 1 and proxy.stats["connections"] == 0
        server.settimeout(0.3)
        with pytest.raises(TimeoutError):
            server.accept()
        server.settimeout(10.0)
        proxy.refuse(False)
        client, inner = _connect(proxy, server)
        inner.sendall(b"ok")
        assert _recv_exactly(client, 2) == b"ok"
        client.close()
        inner.close()


def test_an_unreachable_upstream_resets_the_client() -> None:
    """Nothing listens upstream: the client's connection is reset, not left hanging."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connections are refused
        with FaultProxy(("127.0.0.1", port)) as proxy:
            with pytest.raises(ConnectionResetError):  # at connect, if the reset came first
                client = socket.create_connection(("127.0.0.1", proxy.port), timeout=10.0)
                try:
                    client.recv(10)
                finally:
                    client.close()


@pytest.mark.skipif(netns_unavailable() is not None, reason=str(netns_unavailable()))
def test_listens_inside_a_namespace_and_reaches_the_other_over_the_veth() -> None:
    """netns=edge: the proxy listens on the edge's 127.0.0.1 (a client there reaches it)
    and connects to a server on the core's address; with the veth down a new connection
    is reset, and bytes sent on an open one arrive once the link is up again."""
    with net_pair() as pair:
        srv = in_netns(pair.core_ns, lambda: socket.create_server((pair.core_ip, 0)))
        srv.settimeout(10.0)
        with FaultProxy((pair.core_ip, srv.getsockname()[1]), netns=pair.edge_ns) as proxy:
            port = proxy.port
            client = in_netns(
                pair.edge_ns, lambda: socket.create_connection(("127.0.0.1", port), timeout=10)
            )
            inner, peer = srv.accept()
            assert peer[0] == pair.edge_ip  # it came over the veth
            client.sendall(b"across")
            assert _recv_exactly(inner, 6) == b"across"
            pair.link_down()
            client.sendall(b"held")
            with pytest.raises(ConnectionResetError):  # the proxy could not reach the core
                fresh = in_netns(
                    pair.edge_ns, lambda: socket.create_connection(("127.0.0.1", port), timeout=10)
                )
                try:
                    fresh.recv(10)
                finally:
                    fresh.close()
            pair.link_up()
            inner.settimeout(30.0)
            assert _recv_exactly(inner, 4) == b"held"
            for s in (client, inner):
                s.close()
        srv.close()
