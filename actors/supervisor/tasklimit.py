"""`run` on a host whose task limit (a cgroup's `pids.max`: systemd `TasksMax=`, a
container's pids limit) leaves too few threads and processes for the system to start.

Each thread counts as a task. The supervisor needs 9 (itself, its log capture's three
threads, the post-mortem watch, libzmq's reaper and I/O threads, the metrics server, the
fork server) and each actor at least 3 (itself and libzmq's two); the OMS 2 more, its order
archive's writer thread and the archived-ids rebuild at start (`actors.oms.archive_writer`,
`archived_ids`), which a count at rest does not show: with them left out, a limit the check
passed refused the writer at the first terminal order to archive, and the OMS held every
order in memory from then on (`order_archive_write_failed: can't start new thread`, each
retry). Started under less, it
failed wherever the next thread was refused: Python's `RuntimeError: can't start new
thread` ended in a traceback (`supervisor_crashed` in the log file, exit 1; at the log
capture's first thread not even that: its pipes already under fd 1 and 2, exit 1 silently),
and libzmq, refused its I/O thread, aborts the process (`Resource temporarily unavailable
(src/thread.cpp:241)`, SIGABRT), which no Python code can catch. So `run` checks first
(`tasks_problem`: every pids cgroup the process is in, up to the hierarchy's root; exit 2,
one line), and a Python thread still refused at start (the limit reached meanwhile, or one
no cgroup shows: `ulimit -u` for a non-root uid) is `ThreadsRefused`: one line, exit 2 too.
What stays out of reach: a limit reached between the check and libzmq's thread start still
aborts the supervisor; an actor that libzmq aborts at start is restarted as any crash.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from protocol.exceptions import TradePulseError

SUPERVISOR_TASKS = 9  # counted on a running system (/proc/<pid>/task): see the module
ACTOR_TASKS = 3
EXTRA_TASKS = {"oms": 2}  # threads an actor kind starts on top (see the module), by kind
_HINT = "pids.max of the service's cgroup, systemd TasksMax=, ulimit -u"


class ThreadsRefused(TradePulseError):
    """The host refused a thread `run` needs to start (exit 2: the same start fails the same
    way until an operator raises the limit)."""


def thread_refused(exc: BaseException) -> bool:
    """Python's error for a thread the kernel refused (EAGAIN from clone)."""
    return isinstance(exc, RuntimeError) and "can't start new thread" in str(exc)


@contextmanager
def threads_refused_raise(what: str) -> Iterator[None]:
    """Inside: a refused thread start is `ThreadsRefused` naming `what` needed it."""
    try:
        yield
    except RuntimeError as exc:
        if not thread_refused(exc):
            raise
        raise ThreadsRefused(
            f"cannot start a thread ({what}): the host's task limit is reached ({_HINT})"
        ) from None


def _pids_dirs(cgroup: str, mountinfo: str) -> list[Path]:
    """The pids cgroup dirs of this process, innermost first, up to its hierarchy's root as
    mounted (`/proc/self/cgroup`, `/proc/self/mountinfo`; v1 `pids` or v2)."""
    mounts: dict[str, tuple[str, str]] = {}  # "v1" / "v2" -> (mount point, mounted root)
    for line in mountinfo.splitlines():
        fields, _, tail = line.partition(" - ")
        parts, extra = fields.split(), tail.split()
        if len(parts) < 5 or len(extra) < 3:
            continue
        if extra[0] == "cgroup2":
            mounts.setdefault("v2", (parts[4], parts[3]))
        elif extra[0] == "cgroup" and "pids" in extra[2].split(","):
            mounts.setdefault("v1", (parts[4], parts[3]))
    found: list[Path] = []
    for line in cgroup.splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        kind = "v2" if hierarchy == "0" and not controllers else None
        kind = "v1" if "pids" in controllers.split(",") else kind
        if kind is None or kind not in mounts:
            continue
        point, root = mounts[kind]
        rel = os.path.relpath(path, root) if path.startswith(root) else "."
        top = Path(point)
        here = (top / rel).resolve() if rel != "." else top
        while True:
            found.append(here)
            if here == top or top not in here.parents:
                break
            here = here.parent
    return found


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _our_tasks() -> int:
    """This process's threads and its direct children (the fork server, forked already)."""
    tasks = os.listdir("/proc/self/task")
    children = 0
    for tid in tasks:
        children += len((_read(Path(f"/proc/self/task/{tid}/children")) or "").split())
    return len(tasks) + children


def tasks_needed(kinds: Sequence[str]) -> int:
    """The tasks the supervisor and actors of `kinds` (one per actor) run at once, at most."""
    extra = sum(EXTRA_TASKS.get(kind, 0) for kind in kinds)
    return SUPERVISOR_TASKS + ACTOR_TASKS * len(kinds) + extra


def tasks_problem(kinds: Sequence[str]) -> str | None:
    """None if every pids cgroup this process is in leaves room for the supervisor and
    actors of `kinds`; else the one line that says which limit and how much is needed."""
    try:
        dirs = _pids_dirs(
            _read(Path("/proc/self/cgroup")) or "", _read(Path("/proc/self/mountinfo")) or ""
        )
    except (OSError, ValueError):
        return None
    need = tasks_needed(kinds)
    extras = "".join(
        f", {n} more for the {kind}" for kind, n in EXTRA_TASKS.items() if kind in kinds
    )
    ours = _our_tasks()
    for d in dirs:
        limit, current = _read(d / "pids.max"), _read(d / "pids.current")
        if limit is None or current is None or not limit.isdigit() or not current.isdigit():
            continue  # "max" (none), or not a pids dir
        others = max(0, int(current) - ours)
        if int(limit) - others < need:
            return (
                f"the task limit of cgroup {d} is {limit} (pids.max), {others} in use by other"
                f" processes; run needs {need} (the supervisor {SUPERVISOR_TASKS},"
                f" {ACTOR_TASKS} for each of its {len(kinds)} actors{extras}): raise it ({_HINT})"
            )
    return None
