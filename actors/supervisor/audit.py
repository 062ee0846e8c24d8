"""Who ran which operator command: the identity, the `operator_command` log line, the audit log.

Identity: the kernel's credentials of the process connected to the control socket. On an
ipc connection libzmq stamps every received message with the connection's peer address,
`localhost:<uid>:<gid>:<pid>`, taken from SO_PEERCRED when the connection was accepted; the
connecting process cannot choose it (`actors.runtime.zap`). The control plane reads it from
each request (`zmq.Frame.get("Peer-Address")`) and fills `ControlRequest.operator` from it,
replacing whatever the client sent. The user name is `pwd.getpwuid(uid)`, cached per uid.
Under systemd operators run the CLI as the service account (`sudo -u tradepulse`), so the
uid names the account, not the person: the login uid (`/proc/<pid>/loginuid`, set by
pam_loginuid at login and kept across sudo) is recorded too, `login_uid` / `login_user`
(None / "" when unset: no login session).

Every command is logged once with its result (`operator_command`: command, args, uid, user,
pid, reason, result; at debug for the read-only views, which `top` polls every second) and
counted (`tradepulse_operator_commands_total{command,result}`).
Each command that acts (not the read-only views: status, exposure, `... status`) is also
appended to the audit log, `<state_dir>/audit/operator.jsonl`: one JSON object a line,
fdatasync'd before the reply goes out, file 0600 in a 0700 dir, rotated at `max_bytes`
to `operator.jsonl.1` (the oldest of `keep` files dropped). A record that cannot be
written (a full disk) is counted (`tradepulse_audit_write_failures_total`) and logged
`audit_write_failed` (rate-limited); the command itself is never refused for it (an
operator must always be able to engage the kill-switch).
"""

from __future__ import annotations

import functools
import json
import os
import pwd
import time
from pathlib import Path
from typing import Any

import structlog

from actors.runtime import metrics
from actors.runtime.durable import fsync_dir, write_all
from actors.runtime.ratelog import LogBudget
from actors.runtime.zap import parse_peer_address
from protocol.commands import Command, OperatorId

MAX_BYTES = 8 << 20  # per file
KEEP_FILES = 5  # the current file included
_LOGINUID_UNSET = 4294967295  # (uid_t)-1
_READ_ONLY = frozenset({"status", "exposure", "orders", "fills", "positions", "top"})


def operator_from_peer(peer_address: str | None) -> OperatorId:
    """The operator behind a control connection's peer address (uid, user, pid); all
    unknown when the address carries no credentials."""
    cred = parse_peer_address(peer_address or "")
    if cred is None:
        return OperatorId()
    login = login_uid(cred.pid)
    return OperatorId(
        uid=cred.uid, user=user_name(cred.uid), pid=cred.pid,
        login_uid=login, login_user="" if login is None else user_name(login),
    )  # fmt: skip


def parse_loginuid(text: str) -> int | None:
    """The content of `/proc/<pid>/loginuid`; None when unset (4294967295: no login
    session, e.g. a systemd service or a container) or not a number."""
    try:
        value = int(text.strip())
    except ValueError:
        return None
    return None if value < 0 or value >= _LOGINUID_UNSET else value


def login_uid(pid: int) -> int | None:
    """The login uid of process `pid` (set by pam_loginuid at login, inherited and kept
    across sudo / su); None if unset or unreadable (the process is gone)."""
    try:
        with open(f"/proc/{pid}/loginuid", encoding="ascii") as f:
            return parse_loginuid(f.read(32))
    except OSError:
        return None


@functools.lru_cache(maxsize=256)
def user_name(uid: int) -> str:
    """The uid's login name; the number itself when the passwd database has none. Cached
    (bounded) per uid: `top` asks every second and an NSS lookup (LDAP) can be slow."""
    try:
        return pwd.getpwuid(uid).pw_name[:64]
    except (KeyError, OverflowError):
        return str(uid)


def is_read_only(command: Command) -> bool:
    """A view that changes nothing: not worth an audit record (`top` asks every second)."""
    return command.command in _READ_ONLY or getattr(command, "action", None) == "status"


def operator_fields(operator: OperatorId | None) -> dict[str, Any]:
    """The identity as log / audit fields."""
    op = operator or OperatorId()
    return {
        "uid": op.uid, "user": op.user, "pid": op.pid, "via": op.via,
        "login_uid": op.login_uid, "login_user": op.login_user,
    }  # fmt: skip


class AuditLog:
    """The append-only audit file with its rotation. Owned by the control plane."""

    def __init__(
        self,
        path: Path,
        log: structlog.typing.FilteringBoundLogger,
        *,
        max_bytes: int = MAX_BYTES,
        keep: int = KEEP_FILES,
    ) -> None:
        self.path = path
        self._log = log
        self._max_bytes = max_bytes
        self._keep = max(1, keep)
        self._failed_log = LogBudget()

    def command(
        self,
        command: Command,
        operator: OperatorId | None,
        status: str,
        detail: str,
        **extra: Any,
    ) -> None:
        """One operator command with its result: logged, counted, and (unless read-only)
        appended to the audit file."""
        args = command.model_dump(mode="json", exclude={"command"})
        reason = args.get("reason", "")
        who = operator_fields(operator)
        metrics.OPERATOR_COMMANDS.labels(command=command.command, result=status).inc()
        read_only = is_read_only(command)
        emit = self._log.debug if read_only else self._log.info  # `top` asks every second
        emit(
            "operator_command", command=command.command, args=args, reason=reason,
            result=status, detail=detail[:200], **who, **extra,
        )  # fmt: skip
        if read_only:
            return
        self.append(
            {"command": command.command, "args": args, **who, "reason": reason,
             "result": status, "detail": detail[:1000], **extra}
        )  # fmt: skip

    def append(self, record: dict[str, Any]) -> bool:
        """Append one record (with its `ts`) durably; False if it could not be written."""
        now = time.time()
        stamp = (
            time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
        )
        line = json.dumps({"ts": stamp, **record}, default=str, separators=(",", ":")) + "\n"
        try:
            self._write(line.encode())
        except OSError as exc:
            metrics.AUDIT_WRITE_FAILURES.inc()
            if (skipped := self._failed_log.take()) is not None:
                self._log.error(
                    "audit_write_failed", path=str(self.path), error=str(exc), suppressed=skipped
                )
            return False
        return True

    def _write(self, data: bytes) -> None:
        directory = self.path.parent
        if not directory.is_dir():
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            fsync_dir(directory.parent)
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            size = 0
        if size and size + len(data) > self._max_bytes:
            self._rotate()
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
        fd = os.open(self.path, flags, 0o600)
        try:
            write_all(fd, data)
            os.fdatasync(fd)
        finally:
            os.close(fd)
        if not size:  # a new file: its directory entry too
            fsync_dir(directory)

    def _rotate(self) -> None:
        """operator.jsonl -> .1 -> .2 ...; the oldest beyond `keep` files is removed."""
        oldest = self._numbered(self._keep - 1)
        if self._keep == 1:
            self.path.unlink(missing_ok=True)
            return
        oldest.unlink(missing_ok=True)
        for n in range(self._keep - 2, 0, -1):
            src = self._numbered(n)
            if src.exists():
                os.replace(src, self._numbered(n + 1))
        os.replace(self.path, self._numbered(1))
        fsync_dir(self.path.parent)

    def _numbered(self, n: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{n}")
