"""Adversarial replay of issue 15, section 1 ("one peer must not freeze an actor"), one test
per finding, against the real system (a supervisor and its actor processes). This module is
the index; the unit tests live beside the code they test:

- a peer that sends requests and never reads the replies froze the OMS (hang-killed) and the
  supervisor's control socket: `test_a_client_that_never_reads_replies_...` and
  `test_an_operator_that_never_reads_replies_...` here; tests/runtime/test_sends.py (a
  request to a peer whose queue is full fails at once, a reply to a full or gone requester
  is dropped and counted).
- a 100 MB frame was received whole before the 4 MiB check:
  `test_a_100_mb_frame_is_refused_by_the_transport_...` here.
- a control request nested 1,010 deep crashed the supervisor (RecursionError in the JSON log
  renderer): `test_a_control_request_nested_1010_deep_...` here;
  tests/protocol/test_decode_depth.py (decode bounds depth; the log renderer never raises).
- ~31 client connections under a low fd limit made libzmq abort the OMS (EMFILE):
  `test_200_client_connections_under_a_low_fd_limit_...` here.

Found later (twelfth session): 1,100 idle operator connections broke the supervisor's
shutdown (`select()` of an fd past 1023): `test_a_thousand_idle_operator_connections_...`.
"""

from __future__ import annotations

import os
import resource
import signal
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import msgpack
import pytest
import zmq

from protocol.codec import Sender
from protocol.messages import GetOrder
from tests.helpers import SystemUnderTest, eventually
from tests.system_ops import client

pytestmark = pytest.mark.integration

FLOOD = 130_000  # past the 100,000-message high-water mark of the OMS's replies to one peer
CONTROL_FLOOD = 120_000
IDLE_CONNECTIONS = 1_100  # the supervisor's fds past select()'s 1,023


@contextmanager
def _sockets(endpoint: str, count: int = 1) -> Iterator[list[zmq.Socket[bytes]]]:
    """`count` raw DEALERs that hold at most one reply each and read none (a slow reader)."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    socks = []
    try:
        for _ in range(count):
            sock = ctx.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.RCVHWM, 1)
            sock.setsockopt(zmq.RCVBUF, 4096)
            sock.setsockopt(zmq.SNDHWM, 0)  # queue our whole flood on our side
            sock.connect(endpoint)
            socks.append(sock)
        yield socks
    finally:
        for sock in socks:
            sock.close(0)
        ctx.term()


def _flood(sock: zmq.Socket[bytes], frame: bytes, count: int) -> None:
    """Queue `count` copies of `frame` on our side (unbounded: never blocks)."""
    for _ in range(count):
        sock.send(frame, copy=False)


def _raw_control(command: Any, msg_id: str = "hostile:1") -> bytes:
    env = {"v": 1, "type": "control_request", "sender": "hostile", "epoch": 1, "seq": 1,
           "id": msg_id, "corr": "", "ts_ns": 1, "body": {"command": command}}  # fmt: skip
    return bytes(msgpack.packb(env, use_bin_type=True))


def _restarts(sut: SystemUnderTest) -> dict[str, int]:
    return {a["id"]: a["restarts"] for a in sut.status()["actors"]}


def _dropped(sut: SystemUnderTest, actor: str) -> float:
    return sut.metric("tradepulse_replies_dropped_total", actor=actor, reason="hwm") or 0.0


def _peak_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")


def _oms_serves(sut: SystemUnderTest) -> None:
    with client(sut, timeout_s=10.0) as c:
        c.list_orders()


def test_a_client_that_never_reads_replies_does_not_freeze_the_oms(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """A raw client sends 130,000 requests to the OMS and never reads a reply: once its
    queue is full the OMS drops its replies (counted: replies_dropped{reason="hwm"}) instead
    of blocking its loop; another client is served meanwhile, and nothing is hang-killed."""
    sut = start_system()
    oms_pid, restarts = sut.pid_of("oms"), _restarts(sut)
    frame = Sender("hostile", 1).encode(GetOrder(client_order_id="nope"))[0]
    with _sockets(sut.cfg.client_endpoint) as (sock,):
        _flood(sock, frame, FLOOD)
        # the flood reached the high-water mark, or (before the fix) the OMS froze and was
        # replaced by the supervisor
        eventually(
            lambda: _dropped(sut, "oms") > 0 or _restarts(sut) != restarts, 90.0, interval_s=0.5
        )
        assert _restarts(sut) == restarts
        _oms_serves(sut)
    assert sut.pid_of("oms") == oms_pid
    sut.wait_event("reply_dropped", actor="oms", reason="hwm")


def test_an_operator_that_never_reads_replies_does_not_freeze_the_supervisor(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """A raw operator floods the control socket with requests and never reads: the
    supervisor drops its replies (counted) and keeps going: `status` answers, an actor
    killed with SIGKILL is seen and restarted, the other actors are not restarted."""
    sut = start_system()
    restarts = _restarts(sut)
    frame = _raw_control({"command": "no-such-command"})
    with _sockets(sut.cfg.control_endpoint) as (sock,):
        _flood(sock, frame, CONTROL_FLOOD)
        eventually(lambda: _dropped(sut, "supervisor") > 0, 90.0, interval_s=0.5)
        victim = "risk"
        pid = sut.pid_of(victim)
        os.kill(pid, signal.SIGKILL)
        eventually(lambda: sut.actor(victim)["state"] == "running" and sut.pid_of(victim) != pid)
    after = _restarts(sut)
    assert after[victim] == restarts[victim] + 1
    assert {k: v for k, v in after.items() if k != victim} == {
        k: v for k, v in restarts.items() if k != victim
    }


def test_a_100_mb_frame_is_refused_by_the_transport_and_the_oms_keeps_serving(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """Three 100 MB frames sent to the OMS are refused by libzmq from their header
    (ZMQ_MAXMSGSIZE), never buffered: the OMS's peak resident memory grows by less than
    50 MB, and it keeps serving with the same pid."""
    sut = start_system()
    oms_pid = sut.pid_of("oms")
    _oms_serves(sut)
    before_kib = _peak_rss_kib(oms_pid)
    huge = b"\x00" * (100 * 1024 * 1024)
    mark = sut.mark()
    with _sockets(sut.cfg.client_endpoint) as (sock,):
        dropped = sock.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        for _ in range(3):
            sock.send(huge, copy=False)
        # the OMS dropped our connection at the frame's header, or (before the fix) took the
        # frame whole and refused it at decode
        eventually(lambda: dropped.poll(0) or sut.events("bad_message", since=mark), 60.0)
        sock.disable_monitor()
        dropped.close(0)
    _oms_serves(sut)
    grown_mb = (_peak_rss_kib(oms_pid) - before_kib) / 1024
    assert grown_mb < 50, f"OMS peak RSS grew by {grown_mb:.0f} MB"
    assert sut.pid_of("oms") == oms_pid


def test_a_control_request_nested_1010_deep_is_refused_and_the_supervisor_keeps_running(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """A control request whose command is a map nested 1,010 deep is answered with a clear
    error (nested too deep); the supervisor keeps running and serving `status`."""
    sut = start_system()
    nested: Any = "x"
    for _ in range(1010):
        nested = {"command": nested}
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(sut.cfg.control_endpoint)
        sock.send(_raw_control(nested))
        assert sock.poll(10_000), "no answer from the supervisor"
        reply = msgpack.unpackb(sock.recv())
    finally:
        sock.close(0)
        ctx.term()
    assert reply["body"]["status"] == "error"
    assert "nested deeper than" in reply["body"]["reason"]
    assert sut.proc is not None and sut.proc.poll() is None
    assert sut.status()["actors"]


def test_200_client_connections_under_a_low_fd_limit_do_not_abort_the_oms(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """Started with a soft open-file limit of 64 (hard 4096), every actor raises its soft
    limit at start: 200 client connections that each send a request do not make libzmq
    abort the OMS (EMFILE); it keeps its pid and serves another client."""
    sut = start_system(launcher=["prlimit", "--nofile=64:4096", "--"])
    oms_pid, restarts = sut.pid_of("oms"), _restarts(sut)
    frame = Sender("many", 1).encode(GetOrder(client_order_id="nope"))[0]
    with _sockets(sut.cfg.client_endpoint, 200) as socks:
        for sock in socks:
            sock.send(frame)
        for sock in socks:
            assert sock.poll(10_000), "a connection got no reply"
        _oms_serves(sut)
    assert sut.pid_of("oms") == oms_pid
    assert _restarts(sut) == restarts


def test_200_operator_connections_under_a_low_fd_limit_do_not_abort_the_supervisor(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """The same for the supervisor's control socket: it raises its own soft limit at start
    (found by review: it did not, and 200 connections made libzmq abort it, taking every
    actor with it)."""
    sut = start_system(launcher=["prlimit", "--nofile=64:4096", "--"])
    assert sut.proc is not None
    frame = _raw_control({"command": "status"})
    with _sockets(sut.cfg.control_endpoint, 200) as socks:
        for sock in socks:
            sock.send(frame)
        for sock in socks:
            assert sock.poll(10_000), "a connection got no reply"
    assert sut.proc.poll() is None
    assert sut.actor("oms")["state"] == "running"


def test_a_thousand_idle_operator_connections_do_not_break_the_shutdown(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """1,100 operator connections that never speak hold as many of the supervisor's fds;
    a SIGTERM then still stops every actor in order and exits 0. Found while looking at the
    suite's workers: the shutdown waited for each actor with `select()`, which refuses an
    fd past 1023 (ValueError): the supervisor died with a traceback at its first actor,
    and the others were killed, not stopped."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = IDLE_CONNECTIONS + 512
    conns: list[socket.socket] = []
    try:
        if soft < want:  # ours (one fd a connection), and the supervisor's, inherited
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want)))  # root: CI
        sut = start_system(venues=("simA",))
        assert sut.proc is not None
        actors = set(sut.actor_ids())
        path = sut.cfg.control_endpoint.removeprefix("ipc://")
        for _ in range(IDLE_CONNECTIONS):
            conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            conn.connect(path)
            conns.append(conn)
        pid = sut.proc.pid
        eventually(lambda: len(os.listdir(f"/proc/{pid}/fd")) > IDLE_CONNECTIONS, 20.0)
        mark = sut.mark()
        assert sut.stop(timeout_s=30.0) == 0, sut.describe()
        stops = sut.events("actor_stopped", since=mark, actor="supervisor")
        stopped = {e.get("child") for e in stops}
        assert stopped == actors, sut.describe()
        assert not [line for line in sut.stderr_lines if "Traceback" in line]
    finally:
        for conn in conns:
            conn.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
