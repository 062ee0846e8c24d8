"""Adversarial replay of issue 15, section 4 ("same-host peers are not all equal"), one test
per finding, against the real system. The attacker is the test process: same uid, but not
the supervisor nor one of its children. This module is the index; the unit tests live
beside the code they test:

- any same-uid process sent PlaceOrder straight to a connector (placed at the venue, no
  risk check, no journal): `test_a_foreign_process_cannot_place_an_order_at_a_connector`
  here; tests/runtime/test_zap.py (the connection gate's decision, and a real ZAP round
  trip: a process that is not ours is refused before any frame of it is read),
  tests/runtime/test_senders.py (the allowed-sender table: orders only from the OMS).
- a forged ExecReport to the OMS was booked: `test_a_forged_execution_is_not_booked` here
  (refused on the internal socket at connect, and by type on the client endpoint).
- spoofed liveness heartbeats hid a frozen risk from the supervisor:
  `test_spoofed_heartbeats_do_not_keep_a_frozen_risk_alive` here; the supervisor also
  takes an actor's messages only from the pid it spawned as that actor
  (actors/supervisor/actor_link.py; tests/supervisor/test_actor_link.py).
- the switch was engaged at risk with any `source`:
  `test_a_foreign_process_cannot_engage_the_switch_at_risk` here;
  tests/risk/test_actor.py `test_an_engagement_whose_source_is_not_its_sender_is_refused`
  (a system actor cannot engage as another: a connector as "operator", the OMS as
  "heartbeat").
- the client-facing endpoint is separate from the internal ones: the client library uses
  `client.sock`, which takes client requests only
  (tests/integration/test_bad_messages.py: garbage there is counted and survived; garbage to
  an internal socket never arrives).

Review fixes (the merged gate, re-attacked):

- a same-uid process reopened the fork server's request pipe through /proc/<pid>/fd/N and
  had it spawn a process of its choosing as a child of the supervisor (and could read a
  connector's venue password in /proc/<pid>/environ):
  `test_no_process_of_the_system_opens_its_fds_or_environ_to_the_same_uid` here (fork
  server and exec spawn; the system and the prober run as root without capabilities, so
  the check is the same-uid one).
- only the bind side was gated: a stranger that bound its own ROUTER at risk's socket
  file took the OMS's risk checks (and could answer APPROVED):
  `test_an_actor_takes_no_answer_from_a_stranger_bound_at_a_peers_socket` here (each
  message a connecting socket receives is checked for who bound its connection; ZAP on
  connecting sockets, the first fix, aborted the process on a late answer:
  tests/runtime/test_zap_reconnect.py).
- the kill-switch source came from the envelope's claimed sender (an engagement with no
  `source` from the OMS's connection, claiming "heartbeat", was recorded as the
  heartbeat's): tests/risk/test_actor.py
  `test_a_message_whose_envelope_sender_is_not_its_connection_is_refused`,
  tests/runtime/test_senders.py `test_the_envelope_sender_must_be_the_connections_actor`.
- `client.sock` handed a client's route over to any newer connection with its routing id:
  `test_a_stranger_reusing_a_clients_routing_id_does_not_take_its_replies` here.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal

import psutil
import pytest
import zmq

from protocol.codec import Sender, decode, encode
from protocol.domain import ErrorCode, OrderStatus, OrdType, Side
from protocol.messages import (
    ActorHeartbeat,
    ExecReport,
    GetOrder,
    KillSwitchCommand,
    Message,
    PlaceOrder,
    RequestRejected,
    RiskCheck,
    RiskChecks,
    RiskVerdict,
    RiskVerdicts,
)
from tests.helpers import SystemUnderTest, eventually
from tests.system_ops import (
    client,
    kill_switch,
    submit_when_open,
    venue_order,
    venue_orders,
    venue_status,
)

pytestmark = pytest.mark.integration


@contextmanager
def _stranger(endpoint: str, identity: str) -> Iterator[zmq.Socket[bytes]]:
    """A DEALER of the test process (not one of the system's) with a chosen routing id."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.ROUTING_ID, identity.encode())
    sock.connect(endpoint)
    try:
        yield sock
    finally:
        sock.close(0)
        ctx.term()


def _send(sock: zmq.Socket[bytes], sender: str, epoch: int, body: Message) -> None:
    """Queue `body` without blocking (a refused DEALER has no peer: a send would wait)."""
    try:
        sock.send_multipart(encode(Sender(sender, epoch).envelope(body)), zmq.NOBLOCK)
    except zmq.Again:
        pass


def _refused(sut: SystemUnderTest, actor: str) -> float:
    return sut.metric("tradepulse_peers_refused_total", actor=actor) or 0.0


def test_a_foreign_process_cannot_place_an_order_at_a_connector(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """A same-uid process connects to the connector's socket with routing id "oms" and
    sends PlaceOrder: the connection is refused at connect (counted, `peer_refused` with
    its pid) and the venue never gets the order; an order through the client still trades
    (the positive control, before and after)."""
    sut = start_system()
    with client(sut) as c:
        before = submit_when_open(c, "simA", client_order_id="control-1")
        eventually(lambda: venue_status(sut, "simA", before.cl_ord_id) == "ACCEPTED", 10.0)
        oms_epoch = sut.actor("oms")["epoch"]
        forged = PlaceOrder(cl_ord_id="forged-1", symbol="AAPL", side=Side.BUY, qty=Decimal(5),
                            order_type=OrdType.LIMIT, price=Decimal("96.00"))  # fmt: skip
        with _stranger(sut.actor("connector.simA")["endpoints"]["router"], "oms") as sock:
            _send(sock, "oms", oms_epoch, forged)
            eventually(
                lambda: (
                    _refused(sut, "connector.simA") > 0
                    or venue_order(sut, "simA", "forged-1") is not None
                ),
                10.0,
            )
        assert venue_order(sut, "simA", "forged-1") is None
        refused = sut.wait_event("peer_refused", actor="connector.simA")
        assert refused["pid"] == os.getpid()
        after = submit_when_open(c, "simA", client_order_id="control-2")
        eventually(lambda: venue_status(sut, "simA", after.cl_ord_id) == "ACCEPTED", 10.0)
    assert venue_order(sut, "simA", "forged-1") is None


def test_a_forged_execution_is_not_booked(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """A fill for a live order, forged by a same-uid process: sent to the OMS's internal
    socket as "connector.simA", the connection is refused; sent to the client endpoint, it
    is refused by type (NOT_ALLOWED, counted). The order stays unfilled and the position
    unchanged."""
    sut = start_system()
    with client(sut) as c:
        order = submit_when_open(c, "simA", client_order_id="victim-1")
        c.wait_for_status("victim-1", {OrderStatus.ACCEPTED})
        positions = c.positions()
        fill = ExecReport(
            venue="simA", exec_id="forged-E1", kind="fill", cl_ord_id=order.cl_ord_id,
            symbol="AAPL", side=Side.BUY, order_qty=Decimal(10), last_qty=Decimal(10),
            last_px=Decimal("95.00"), cum_qty=Decimal(10), avg_px=Decimal("95.00"),
            ord_status=OrderStatus.FILLED,
        )  # fmt: skip
        epoch = sut.actor("connector.simA")["epoch"]
        with _stranger(sut.actor("oms")["endpoints"]["router"], f"connector.simA:{epoch}") as s:
            _send(s, "connector.simA", epoch, fill)
            eventually(lambda: _refused(sut, "oms") > 0 or c.get_order("victim-1").cum_qty, 10.0)
        with _stranger(sut.cfg.client_endpoint, f"connector.simA:{epoch}") as s:
            _send(s, "connector.simA", epoch, fill)
            assert s.poll(10_000), "no answer on the client endpoint"
            reply = decode(s.recv_multipart()).body
        assert isinstance(reply, RequestRejected) and reply.code is ErrorCode.NOT_ALLOWED
        assert sut.metric("tradepulse_messages_refused_total", actor="oms", type="exec_report")
        got = c.get_order("victim-1")
        assert got.status is OrderStatus.ACCEPTED and got.cum_qty == 0
        assert c.positions() == positions


def test_spoofed_heartbeats_do_not_keep_a_frozen_risk_alive(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """Risk is frozen (SIGSTOP) while a same-uid process sends heartbeats in its name (its
    id and epoch) to the supervisor's actor socket: that connection is refused, so the
    supervisor sees risk's heartbeats stop and kills it as hung, and a new risk comes up."""
    sut = start_system()
    sup = sut.cfg.supervisor_endpoint
    risk = sut.actor("risk")
    mark = sut.mark()
    with _stranger(sup, "risk") as sock:
        os.kill(risk["pid"], signal.SIGSTOP)
        try:

            def hung() -> bool:
                _send(sock, "risk", risk["epoch"], ActorHeartbeat(loop_lag_s=0.0))
                return bool(sut.events("actor_hung", since=mark, child="risk"))

            eventually(hung, 15.0, interval_s=0.05)
        finally:
            # (killed as hung meanwhile: the status can still name it for a moment)
            with contextlib.suppress(ProcessLookupError):
                os.kill(risk["pid"], signal.SIGCONT)
    assert _refused(sut, "supervisor") > 0
    eventually(
        lambda: (
            sut.actor("risk")["pid"] not in (None, risk["pid"])
            and sut.actor("risk")["state"] == "running"
        ),
        15.0,
    )


def test_a_foreign_process_cannot_engage_the_switch_at_risk(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """A same-uid process sends KillSwitchCommand(engage, source "operator") to risk, under
    the OMS's routing id: the connection is refused and the switch stays off."""
    sut = start_system()
    epoch = sut.actor("oms")["epoch"]
    cmd = KillSwitchCommand(action="engage", reason="forged", source="operator")
    with _stranger(sut.actor("risk")["endpoints"]["router"], f"oms:{epoch}") as sock:
        _send(sock, "oms", epoch, cmd)
        eventually(lambda: _refused(sut, "risk") > 0 or kill_switch(sut)["engaged"], 10.0)
        assert not sock.poll(0)
    assert kill_switch(sut)["engaged"] is False
    assert not sut.events("kill_switch", actor="risk")


# ---------------------------------------------------------------- review fixes (section 4)

# As root every /proc check is passed by capability; run the system and the prober as root
# without any capability, which is what a same-uid process of a non-root deployment is.
_NO_CAPS = ["setpriv", "--inh-caps=-all", "--bounding-set=-all", "--"] if os.geteuid() == 0 else []
_PROBE = """
import sys
for pid in sys.argv[1:]:
    got = []
    for name in ("environ", "fd/0"):
        try:
            open(f"/proc/{pid}/{name}", "rb").close()
            got.append("open")
        except OSError as exc:
            got.append(type(exc).__name__)
    print(pid, *got)
"""


def _probe_proc(pids: list[int]) -> dict[int, list[str]]:
    """What a same-uid process of the host can open of each pid's /proc environ and fds."""
    out = subprocess.run(
        [*_NO_CAPS, sys.executable, "-c", _PROBE, *map(str, pids)],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout  # fmt: skip
    return {int(line.split()[0]): line.split()[1:] for line in out.splitlines()}


@pytest.mark.parametrize("spawn", ["forkserver", "exec"])
def test_no_process_of_the_system_opens_its_fds_or_environ_to_the_same_uid(
    start_system: Callable[..., SystemUnderTest], spawn: str
) -> None:
    """A same-uid process could reopen the fork server's request pipe through
    /proc/<forkserver>/fd/N (and have it spawn a "child of the supervisor") and read a
    connector's venue password in /proc/<pid>/environ. The supervisor, the fork server and
    every actor (forked or exec-spawned) are non-dumpable: both are refused; a process of
    the same uid that is not ours is the control (it opens its own kind's files)."""
    sut = start_system(overrides={"supervisor": {"spawn": spawn}}, launcher=_NO_CAPS)
    assert sut.proc is not None
    sup = psutil.Process(sut.proc.pid)
    ours = [sup.pid, *(p.pid for p in sup.children())]
    assert any("forkserver" in " ".join(psutil.Process(p).cmdline()) for p in ours) == (
        spawn == "forkserver"
    )
    assert {sut.pid_of("connector.simA"), sut.pid_of("oms")} <= set(ours)
    control = subprocess.Popen([*_NO_CAPS, sys.executable, "-c", "import sys; sys.stdin.read()"],
                               stdin=subprocess.PIPE)  # fmt: skip
    try:
        eventually(lambda: psutil.Process(control.pid).name().startswith("python"), 10.0)
        got = _probe_proc([*ours, control.pid])
    finally:
        control.communicate(b"", timeout=10)
    assert got[control.pid] == ["open", "open"]
    assert {pid: got[pid] for pid in ours} == {
        pid: ["PermissionError", "PermissionError"] for pid in ours
    }


def test_an_actor_takes_no_answer_from_a_stranger_bound_at_a_peers_socket(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """A same-uid process removes risk's socket file, binds its own ROUTER there and kills
    risk: the OMS's DEALER to risk reconnects to the stranger's socket, and the stranger
    answers each risk check it gets with a forged approval. The OMS checks who bound the
    connection each message came on (the binder's pid, as for who connects) and takes none
    of them (`peer_refused` with the stranger's pid, counted): no order of the forged
    approvals reaches the venue. (It is not kept from reading the checks: a connecting
    socket asks no ZAP question, protocol.sockets.connect_dealer.)"""
    sut = start_system()
    with client(sut) as c:
        submit_when_open(c, "simA", client_order_id="control-1")
        endpoint = sut.actor("risk")["endpoints"]["router"]
        ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        stranger = ctx.socket(zmq.ROUTER)
        stranger.setsockopt(zmq.LINGER, 0)
        forged: list[str] = []

        def forge() -> bool:
            """Answer what came with approvals; True once the OMS counted a refusal after
            one was sent."""
            while stranger.poll(0):
                identity, *frames = stranger.recv_multipart()
                env = decode(frames)
                checks = env.body.checks if isinstance(env.body, RiskChecks) else [env.body]
                ids = [x.client_order_id for x in checks if isinstance(x, RiskCheck)]
                verdicts = [RiskVerdict(client_order_id=i, approved=True) for i in ids]
                if verdicts:
                    forged.extend(ids)
                    body = verdicts[0] if len(verdicts) == 1 else RiskVerdicts(verdicts=verdicts)
                    answer = Sender("risk", env.epoch).encode(body, corr_id=env.msg_id)
                    stranger.send_multipart([identity, *answer])
            return bool(forged) and _refused(sut, "oms") > 0

        try:
            os.unlink(endpoint.removeprefix("ipc://"))
            stranger.bind(endpoint)
            os.kill(sut.pid_of("risk"), signal.SIGKILL)
            with contextlib.suppress(Exception):  # its risk check goes to the stranger
                c.submit("simA", "AAPL", "BUY", "10", "LIMIT", price="95.00",
                         client_order_id="victim-1", timeout_s=5.0)  # fmt: skip
            eventually(forge, 15.0)
            # a forged approval is refused or taken as it is read: none was taken
            orders = venue_orders(sut, "simA")
            assert len(orders) == 1, orders  # control-1 alone
        finally:
            stranger.close(0)
            ctx.term()
    refused = sut.wait_event("peer_refused", actor="oms")
    assert refused["pid"] == os.getpid()


def test_a_stranger_reusing_a_clients_routing_id_does_not_take_its_replies(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """A process connects to `client.sock` with the routing id of a connected client (the
    endpoint used to hand the route over to the newer connection): it gets none of the
    client's replies, nor any of its own, and the client's requests are still answered."""
    sut = start_system()
    with client(sut, timeout_s=5.0) as c:
        c.list_orders()  # connected, its routing id in use
        identity = c._sock.getsockopt(zmq.ROUTING_ID)
        assert isinstance(identity, bytes)
        with _stranger(sut.cfg.client_endpoint, identity.decode()) as sock:
            monitor = sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)
            try:
                assert monitor.poll(10_000), "the stranger never connected"
            finally:
                sock.disable_monitor()
                monitor.close(0)
            _send(sock, "stranger", 1, GetOrder(client_order_id="x"))
            for _ in range(3):
                c.list_orders()
            assert not sock.poll(500)
