"""The connection gate of internal ROUTERs (actors.runtime.zap): who is one of the system's
processes, and a real ZAP round trip over ipc with the kernel's peer credentials."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq

from actors.runtime.zap import (
    ZAP_DOMAIN,
    PeerCred,
    ZapGate,
    admit,
    parent_pid,
    parse_peer_address,
)
from protocol.sockets import Context, bind_router, connect_dealer, drain, new_context
from tests.helpers import REPO_ROOT

SUP = 1000
PARENTS = {2001: SUP, 2002: 1, 2003: 2001}


def _admit(cred: PeerCred | None, uid: int = 0) -> str | None:
    return admit(cred, uid=uid, trusted={SUP}, parent_of=PARENTS.get)


def test_peer_address_is_parsed_only_in_its_ipc_credentials_form() -> None:
    assert parse_peer_address("localhost:0:0:4242") == PeerCred(0, 0, 4242)
    assert parse_peer_address("localhost:1000:100:7") == PeerCred(1000, 100, 7)
    for other in ("127.0.0.1", "localhost:0:0", "localhost:a:0:1", "host:0:0:1", "",
                  "localhost:0:0:0"):  # fmt: skip
        assert parse_peer_address(other) is None, other


def test_the_supervisor_and_its_children_are_admitted() -> None:
    assert _admit(PeerCred(0, 0, SUP)) is None
    assert _admit(PeerCred(0, 0, 2001)) is None  # a child of the supervisor


def test_strangers_grandchildren_other_users_and_no_credentials_are_refused() -> None:
    assert _admit(PeerCred(0, 0, 2002)) is not None  # same uid, another parent
    assert _admit(PeerCred(0, 0, 2003)) is not None  # a child's child: not spawned by us
    assert _admit(PeerCred(0, 0, 9999)) is not None  # gone: no parent to read
    assert "uid" in (_admit(PeerCred(1, 0, SUP)) or "")  # right pid, another user
    assert _admit(None) == "no peer credentials"


def test_parent_pid_reads_proc() -> None:
    assert parent_pid(os.getpid()) == os.getppid()
    assert parent_pid(2**22 + 12345) is None


_CONNECT = """
import sys, zmq
ctx = zmq.Context(); s = ctx.socket(zmq.DEALER); s.setsockopt(zmq.LINGER, 0)
s.setsockopt(zmq.ROUTING_ID, b"oms:1"); s.connect(sys.argv[1]); s.send(b"hello")
sys.stdin.read()  # until the test closes our stdin
"""


@pytest.fixture
def endpoint(tmp_path: Path) -> Iterator[str]:
    yield f"ipc://{tmp_path}/gate.sock"


def _recording_gate(ctx: Context, trusted: set[int]) -> tuple[ZapGate, list[str]]:
    """A gate admitting what `admit` does for `trusted`; the refusals, as they come."""
    refusals: list[str] = []

    def decide(cred: PeerCred | None) -> str | None:
        reason = admit(cred, uid=os.getuid(), trusted=trusted)
        if reason is not None:
            refusals.append(reason)
        return reason

    return ZapGate(ctx, "test", decide), refusals


def _serve(trusted: set[int], endpoint: str) -> tuple[list[bytes] | None, float]:
    """A gate trusting `trusted` and a guarded ROUTER; a child process connects and sends.
    Returns what the ROUTER received (None: nothing) and the refusals counted."""
    ctx = new_context()
    gate, refusals = _recording_gate(ctx, trusted)
    router = bind_router(ctx, endpoint, zap_domain=ZAP_DOMAIN)
    child = subprocess.Popen([sys.executable, "-c", _CONNECT, endpoint], cwd=REPO_ROOT,
                             stdin=subprocess.PIPE)  # fmt: skip
    got: list[bytes] | None = None
    try:
        poller = zmq.Poller()
        poller.register(gate.sock, zmq.POLLIN)
        poller.register(router, zmq.POLLIN)
        deadline = time.monotonic() + 20.0
        while got is None and not refusals and time.monotonic() < deadline:
            for sock, _ in poller.poll(100):
                if sock is gate.sock:
                    gate.on_readable()
                else:
                    got = router.recv_multipart()
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(10)
        ctx.destroy(linger=0)
    return got, len(refusals)


def test_a_child_of_a_trusted_process_is_let_in(endpoint: str) -> None:
    got, refused = _serve({os.getpid()}, endpoint)
    assert got == [b"oms:1", b"hello"] and refused == 0


def test_a_process_that_is_not_ours_is_refused_before_any_frame_is_read(endpoint: str) -> None:
    """The test process trusts only a pid that is not the connecting process's parent:
    the connection is refused at the ZAP handshake and its frame never reaches the ROUTER."""
    got, refused = _serve({1}, endpoint)
    assert refused >= 1 and got is None


_ECHO = """
import sys, zmq
ctx = zmq.Context(); r = ctx.socket(zmq.ROUTER); r.setsockopt(zmq.LINGER, 0)
r.bind(sys.argv[1]); print("bound", flush=True)
r.send_multipart(r.recv_multipart())
sys.stdin.read()  # until the test closes our stdin
"""


def _from_binder(trusted: set[int], endpoint: str) -> tuple[list[list[bytes]], int]:
    """A child process binds a ROUTER that echoes; a DEALER of ours (no ZAP: a connecting
    socket) sends to it. Returns what `from_binders` passes on of the echo, and the
    refusals counted."""
    ctx = new_context()
    gate, refusals = _recording_gate(ctx, trusted)
    child = subprocess.Popen([sys.executable, "-c", _ECHO, endpoint], cwd=REPO_ROOT,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)  # fmt: skip
    try:
        assert child.stdout is not None and child.stdout.readline() == b"bound\n"
        sock = connect_dealer(ctx, endpoint, "oms:1")
        sock.send(b"hello")
        assert sock.poll(20_000), "no echo"
        passed = list(gate.from_binders(drain(sock, 10, frames=True)))
    finally:
        assert child.stdin is not None and child.stdout is not None
        child.stdin.close()
        child.wait(10)
        child.stdout.close()
        ctx.destroy(linger=0)
    return passed, len(refusals)


def test_a_message_from_a_binder_of_the_system_is_passed_on(endpoint: str) -> None:
    assert _from_binder({os.getpid()}, endpoint) == ([[b"hello"]], 0)


def test_a_message_from_a_binder_that_is_not_ours_is_dropped_and_counted(endpoint: str) -> None:
    """A connecting socket asks no ZAP question (protocol.sockets.connect_dealer): who
    bound the far end is judged on each message, from its connection's credentials."""
    assert _from_binder({1}, endpoint) == ([], 1)
