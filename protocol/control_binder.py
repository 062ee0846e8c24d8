"""Who answered on the control socket: the operator CLI takes a reply only from the
supervisor that runs on its runtime dir.

Any process of the supervisor's uid can remove `control.sock` from the runtime dir and bind
its own there (after the supervisor died, or racing a live one), then answer `ok` to
`kill-switch engage` or `stop connector.X` while nothing happened. So the supervisor
records itself, its pid and its start time (`/proc/<pid>/stat`, clock ticks since boot), in
`supervisor.identity` of its runtime dir before it binds anything (`write_identity`). Each
reply the CLI reads carries its connection's Peer-Address: on ipc, the kernel credentials of
the process that bound the socket (SO_PEERCRED, `localhost:<uid>:<gid>:<pid>`, which that
process cannot choose; `actors.runtime.zap` checks actors' peers the same way). `refusal`
takes a reply only if that pid is the recorded one and it is still the process recorded
(the same start time: pids come round, and a stranger given the dead supervisor's pid is
not the supervisor). The record is read before the request goes out: a process with the
recorded pid and start time after the reply lived throughout, so it had that pid when the
connection was made. A reply refused against that record is checked once more against the
record as it is after the reply, if it changed: the supervisor restarted while the CLI
waited (`systemctl restart`, a crash restarted by systemd or the kubelet), and the new one,
which recorded itself before it bound, got the request and carried it out; refusing its
answer (exit 4) called the supervisor an intruder. A record that names the binder, alive,
is what a same-uid process could as well write itself (below): the second read lets
nothing in that the first kept out.

A CLI outside the supervisor's pid namespace (on the host of its container, with the
runtime dir at hand) sees the host's pid of it: taken if its innermost pid (`NSpid`) and
start time are the recorded ones (they were refused as a stranger's, `not the supervisor
(pid 1, which has exited)`, and the runbook says to stop that pid: the supervisor). A CLI
inside a pid namespace the supervisor is not in (a container of its own) sees pid 0:
refused, saying so; run it where the supervisor runs (its host or container).

What it cannot stop: a same-uid process that rewrites the record on purpose (it could as
well ptrace the supervisor); the runtime dir is 0700, so no other user can.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

IDENTITY_FILE = "supervisor.identity"
_MAX_RECORD_BYTES = 4096  # a record is ~50 bytes


@dataclass(frozen=True, slots=True)
class Identity:
    """The supervisor of a runtime dir, as it recorded itself."""

    pid: int
    start_ticks: int


def identity_path(runtime_dir: Path) -> Path:
    return runtime_dir / IDENTITY_FILE


def start_ticks(pid: int) -> int | None:
    """When `pid` started (clock ticks since boot: /proc/<pid>/stat field 22); None if it is
    gone or unreadable."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        # the command name (field 2) may hold spaces and parentheses: split after its last ")"
        return int(stat[stat.rindex(b")") + 2 :].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def write_identity(runtime_dir: Path) -> None:
    """Record this process as the supervisor of `runtime_dir` (replaced whole: a reader
    never sees half of it). Call with the runtime dir's lock held, before binding."""
    ticks = start_ticks(os.getpid())
    if ticks is None:  # no /proc: nothing the CLI could check either
        raise OSError(f"cannot read /proc/{os.getpid()}/stat")
    path = identity_path(runtime_dir)
    tmp = path.with_name(f".{IDENTITY_FILE}.{os.getpid()}")
    tmp.write_text(json.dumps({"pid": os.getpid(), "start_ticks": ticks}) + "\n")
    os.replace(tmp, path)


def read_identity(runtime_dir: Path) -> Identity | None:
    """The recorded supervisor of `runtime_dir`; None if there is no readable record. Only
    a regular file is read, and only its start: a FIFO put in its place hung the CLI for
    good (`--timeout-s` never reached), a link to /dev/zero ate its memory."""
    try:
        fd = os.open(identity_path(runtime_dir), os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return None
            data = json.loads(os.read(fd, _MAX_RECORD_BYTES))
        finally:
            os.close(fd)
        pid, ticks = data["pid"], data["start_ticks"]
    except (OSError, ValueError, TypeError, KeyError):
        return None
    if type(pid) is not int or type(ticks) is not int or pid <= 0:
        return None
    return Identity(pid, ticks)


def binder_pid(address: str) -> int | None:
    """The pid of `localhost:<uid>:<gid>:<pid>` (libzmq's Peer-Address of an ipc connection
    with SO_PEERCRED); None for anything else."""
    parts = address.split(":")
    if len(parts) != 4 or parts[0] != "localhost":
        return None
    try:
        pid = int(parts[3])
    except ValueError:
        return None
    return pid if pid > 0 else None


def refusal(recorded: Identity | None, address: str, runtime_dir: Path) -> str | None:
    """None: the reply on the connection of Peer-Address `address` came from the recorded
    supervisor (`recorded`, read before the request went out). Otherwise the one line that
    says why it is refused (reads /proc)."""
    pid = binder_pid(address)
    if pid is None and address.startswith("localhost:") and address.endswith(":0"):
        return (  # the kernel's pid of a process this pid namespace cannot see
            "the control socket is bound by pid 0 here, a process outside this CLI's pid"
            " namespace: run the CLI where the supervisor runs (its host or container);"
            " refusing its answer"
        )
    if pid is None:
        return f"the control socket's answer has no peer credentials ({address!r}): refusing it"
    if recorded is None:
        where = identity_path(runtime_dir)
        return (
            f"the control socket is bound by pid {pid}, and no supervisor recorded itself in"
            f" {where}: refusing its answer"
        )
    if pid != recorded.pid and _pid_inside(pid) == recorded.pid:  # its container's host
        if start_ticks(pid) == recorded.start_ticks:
            return None  # the supervisor, as its own pid namespace numbers it
    alive = start_ticks(recorded.pid) == recorded.start_ticks
    if pid != recorded.pid:
        gone = "" if alive else ", which has exited"
        return (
            f"the control socket is bound by pid {pid}, not the supervisor"
            f" (pid {recorded.pid}{gone}): refusing its answer"
        )
    if not alive:
        return (
            f"the control socket is bound by pid {pid}, not the supervisor that had that pid"
            " (it has exited): refusing its answer"
        )
    return None


def _pid_inside(pid: int) -> int | None:
    """`pid`'s number in the innermost pid namespace it is in (`NSpid` of its status): its
    own pid in a container, seen from the host; None if it is gone or unreadable."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"NSpid:"):
                    return int(line.split()[-1])
    except (OSError, ValueError, IndexError):
        return None
    return None
