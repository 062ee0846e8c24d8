"""The connection gate of every internal ROUTER: only the system's own processes connect.

Any process of the same uid can connect to an ipc:// socket in the runtime dir (the dir is
0700, which keeps out other users only). On an ipc connection libzmq puts the connecting
process's kernel credentials (SO_PEERCRED) in the peer address, `localhost:<uid>:<gid>:<pid>`,
which the connecting process cannot choose. A ROUTER with a ZAP domain asks the ZAP handler
of its own context (a ROUTER bound at `ZAP_ENDPOINT` before it binds) about each new
connection, once; the handler here answers in the process's own loop (no thread):

- accepted: same uid, and the pid is one of `trusted` (the supervisor) or its parent is
  (the supervisor's children: every actor, fork-server ones included, since they are
  re-parented to the supervisor before they run);
- refused: anything else, counted (`tradepulse_peers_refused_total{actor}`) and logged
  rate-limited (`peer_refused`, with pid and uid). libzmq drops the connection before any
  frame of it is delivered.

`admit` is the decision (pure but for reading /proc); `ZapGate` the socket side.

The other way, who BOUND what a process connects to (the supervisor's socket, each
`Peer`'s, the link's bridges, the OMS's event stream risk reads): not by ZAP, which libzmq
cannot do safely on a connecting socket (protocol.sockets.connect_dealer: an answer can
reach a later connection, aborting the process or admitting a later binder). Each message
such a socket receives carries its
connection's Peer-Address, the binder's kernel credentials: `from_binders` passes on only
messages whose binder `decide` admits, and drops, counts and logs (`peer_refused`) the
others. A stranger that took over a peer's socket file can read what is sent to it, but
nothing it answers is taken. A verdict is kept per address only while the process judged
lives (a pidfd of it, polled as each message is read): the address names a pid, and pids
come round again (pid_max can be 32,768), so a stranger that got a dead peer's pid and bound
its endpoint would otherwise be taken for that peer.

The link between hosts (`actors.link`) binds a tcp ROUTER in `LINK_DOMAIN`: its requests go
to the gate's `link` decision (mechanism and credentials: a CURVE client's public key) and
an accepted peer gets a User-Id (its host group), which libzmq puts on its messages.
"""

from __future__ import annotations

import os
import select
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass

import structlog
import zmq

from actors.runtime import metrics
from actors.runtime.ratelog import LogBudget
from protocol.sockets import Context, Socket, drain

ZAP_ENDPOINT = "inproc://zeromq.zap.01"  # fixed by the ZAP RFC (27/ZAP)
ZAP_DOMAIN = b"tradepulse"
LINK_DOMAIN = b"tradepulse-link"  # the tcp link between hosts (actors/link): CURVE keys
_VERSION = b"1.0"
# binders' verdicts kept (one per live binder's address, each holding a pidfd); then forgotten
_MAX_BINDERS = 64


@dataclass(frozen=True, slots=True)
class PeerCred:
    """The kernel's credentials of the process at the other end of an ipc connection."""

    uid: int
    gid: int
    pid: int


def parse_peer_address(address: str) -> PeerCred | None:
    """`localhost:<uid>:<gid>:<pid>` (libzmq, ipc with SO_PEERCRED); None for anything else
    (another transport, or a platform without peer credentials)."""
    parts = address.split(":")
    if len(parts) != 4 or parts[0] != "localhost":
        return None
    try:
        uid, gid, pid = (int(p) for p in parts[1:])
    except ValueError:
        return None
    return PeerCred(uid, gid, pid) if pid > 0 else None


def parent_pid(pid: int) -> int | None:
    """The parent of `pid` (/proc/<pid>/status PPid); None if it is gone or unreadable."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"PPid:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def admit(
    cred: PeerCred | None,
    *,
    uid: int,
    trusted: Collection[int],
    parent_of: Callable[[int], int | None] = parent_pid,
) -> str | None:
    """None: a process of the system (same uid; a trusted pid or a child of one). Otherwise
    why the connection is refused."""
    if cred is None:
        return "no peer credentials"
    if cred.uid != uid:
        return f"uid {cred.uid} is not ours ({uid})"
    if cred.pid in trusted:
        return None
    ppid = parent_of(cred.pid)
    if ppid is not None and ppid in trusted:
        return None
    return f"pid {cred.pid} (parent {ppid}) is not one of the system's processes"


def guard(ctx: Context) -> Socket:
    """The ZAP handler socket of `ctx`; bind it before any guarded ROUTER binds."""
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.bind(ZAP_ENDPOINT)
    return sock


class ZapGate:
    """Answers the ZAP requests of one process's guarded ROUTERs with `decide(cred)` (None:
    accept). Register `sock` in the loop and call `on_readable`."""

    def __init__(
        self, ctx: Context, actor_id: str, decide: Callable[[PeerCred | None], str | None]
    ) -> None:
        self.sock = guard(ctx)
        self._decide = decide
        # `LINK_DOMAIN`: (mechanism, credentials) -> (user id, None) or ("", why refused)
        self.link: Callable[[bytes, list[bytes]], tuple[str, str | None]] | None = None
        self._refused = metrics.PEERS_REFUSED.labels(actor=actor_id)
        self._log = structlog.get_logger().bind(actor=actor_id)
        self._budget = LogBudget()
        self._binders: dict[str, str | None] = {}  # Peer-Address -> why refused (None: ours)
        self._pidfds: dict[int, str] = {}  # a kept verdict's pidfd -> its address
        self._exits = select.poll()  # the pidfds: readable once their process has exited

    def on_readable(self) -> None:
        for frames in drain(self.sock, 100):
            # [routing id, b"", version, request id, domain, address, identity, mechanism, ...]
            if len(frames) < 8 or frames[2] != _VERSION:
                continue  # not a ZAP request: libzmq never sends one
            address = frames[5].decode(errors="replace")
            cred = parse_peer_address(address)
            user = ""
            if frames[4] == LINK_DOMAIN:
                cred = None  # a tcp peer: judged by its key, never by a process
                user, reason = (
                    ("", "no link") if self.link is None else self.link(frames[7], frames[8:])
                )
            else:
                reason = self._decide(cred)
            code, text = (b"200", b"OK") if reason is None else (b"400", b"not a system process")
            reply = [frames[0], b"", _VERSION, frames[3], code, text, user.encode(), b""]
            try:
                self.sock.send_multipart(reply, zmq.NOBLOCK)
            except zmq.ZMQError:
                pass  # the connection is gone already
            if reason is not None:
                self._refuse(address, cred, reason)

    def from_binders(self, messages: Iterable[list[zmq.Frame]]) -> Iterator[list[bytes]]:
        """The messages (as read, frames with their metadata, from a socket this process
        CONNECTED) that came from a process of the system, as bytes; one from a binder
        `decide` refuses is dropped, counted and logged as a refused connection is.

        A kept verdict is used only if its process had not exited when the message was
        already read (the poll after the read): a process that lives keeps its pid, so the
        message's binder is the process judged."""
        binders, exits = self._binders, self._exits
        for raw in messages:
            try:
                address = str(raw[0].get("Peer-Address"))
            except zmq.ZMQError:  # no such property: not a connection with credentials
                address = ""
            if gone := exits.poll(0):  # a judged binder is gone: its pid may be anyone's now
                self._forget([fd for fd, _event in gone])
            reason = binders[address] if address in binders else self._judge(address)
            if reason is None:
                yield [frame.bytes for frame in raw]
            else:
                self._refuse(address, parse_peer_address(address), reason)

    def _judge(self, address: str) -> str | None:
        """`decide` on the binder at `address`; the verdict kept while that process lives
        (its pidfd, opened before the decision, so that the pidfd's process is the one
        judged). Not kept when it is gone already, or pidfds are not to be had."""
        cred = parse_peer_address(address)
        if cred is None:  # no process to judge (no kernel credentials): refused at once
            return self._decide(None)
        try:
            pidfd = os.pidfd_open(cred.pid)
        except OSError:  # gone (then refused: not a child of ours), or no pidfds here
            return self._decide(cred)
        reason = self._decide(cred)
        if len(self._pidfds) >= _MAX_BINDERS:
            self._forget(list(self._pidfds))
        self._binders[address] = reason
        self._pidfds[pidfd] = address
        self._exits.register(pidfd, select.POLLIN)
        if gone := self._exits.poll(0):  # exited meanwhile: the verdict for this message only
            self._forget([fd for fd, _event in gone])
        return reason

    def _forget(self, pidfds: list[int]) -> None:
        for fd in pidfds:
            self._exits.unregister(fd)
            os.close(fd)
            self._binders.pop(self._pidfds.pop(fd), None)

    def _refuse(self, address: str, cred: PeerCred | None, reason: str) -> None:
        self._refused.inc()
        if (skipped := self._budget.take()) is not None:
            self._log.warning(
                "peer_refused",
                address=address[:64],
                pid=cred.pid if cred else None,
                uid=cred.uid if cred else None,
                reason=reason,
                suppressed=skipped,
            )
