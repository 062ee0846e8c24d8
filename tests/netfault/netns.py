"""Two network namespaces joined by a veth pair, made and removed by a test.

`net_pair()` builds namespaces `tp<pid>c<n>` (the core's side) and `tp<pid>e<n>` (the
edge's), brings `lo` up in each, and joins them by a veth pair whose two ends are created
directly inside the namespaces (nothing appears in the host's namespace) with a /30 of
10.201.<n>.0 on it. Processes are started inside with `pair.launcher(side)` (`ip netns exec
NS ...`); a thread of the test process enters one with `in_netns(ns, fn)` (setns applies to
the calling thread only). On exit, also when the body raised, every process left in either
namespace is killed and both are deleted; namespaces left by a test process that died
(its pid in the name no longer runs) are removed on entry.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000
PREFIX = "tp"
_NAME = re.compile(rf"^{PREFIX}(\d+)[ce]\d+$")
_CORE_DEV, _EDGE_DEV = "tpcore", "tpedge"  # the veth's ends, one inside each namespace
_counter = itertools.count()
_libc = ctypes.CDLL(None, use_errno=True)
T = TypeVar("T")


def netns_unavailable() -> str | None:
    """Why namespaces cannot be used here (not root, no `ip`), or None. Tests skip with it --
    but on this machine and in CI (root) they must run."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "no `ip` (iproute2) on PATH"
    if not Path("/proc/self/ns/net").exists():
        return "no network namespaces in this kernel"
    return None


def _ip(*args: str, timeout_s: float = 10.0) -> None:
    out = subprocess.run(
        ["ip", *args], capture_output=True, text=True, timeout=timeout_s, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: exit {out.returncode}: {out.stderr.strip()}")


def _ns_inode(ns: str) -> int | None:
    try:
        return (NETNS_DIR / ns).stat().st_ino
    except OSError:
        return None


def pids_in(ns: str) -> set[int]:
    """Processes whose network namespace is `ns` (what `ip netns pids` shows)."""
    inode = _ns_inode(ns)
    if inode is None:
        return set()
    found: set[int] = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.stat(f"/proc/{entry}/ns/net").st_ino == inode:
                found.add(int(entry))
        except OSError:  # gone meanwhile, or a kernel thread
            pass
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie has left its namespace behind already; it counts as dead
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return False


def _kill_all(namespaces: tuple[str, ...], timeout_s: float = 10.0) -> None:
    """SIGKILL every process in the namespaces until none is left (a zombie counts as gone:
    its parent reaps it, a Popen of the test its own child, which keeps its exit status)."""
    deadline = time.monotonic() + timeout_s
    while True:
        pids = {p for ns in namespaces for p in pids_in(ns)} - {os.getpid()}
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if not [p for p in pids if _alive(p)] or time.monotonic() > deadline:
            return
        time.sleep(0.01)


def _delete(ns: str) -> None:
    _kill_all((ns,))
    try:
        _ip("netns", "delete", ns)
    except RuntimeError:
        if _ns_inode(ns) is not None:
            raise  # still there: a real failure (not another test process's removal)


def remove_stale() -> list[str]:
    """Delete the namespaces of test processes that no longer run; returns their names."""
    removed = []
    names = os.listdir(NETNS_DIR) if NETNS_DIR.is_dir() else []
    for ns in names:
        m = _NAME.match(ns)
        if m is not None and not _alive(int(m.group(1))):
            _delete(ns)
            removed.append(ns)
    return removed


@dataclass(frozen=True)
class NetPair:
    core_ns: str
    edge_ns: str
    core_ip: str
    edge_ip: str

    def launcher(self, side: Literal["core", "edge"]) -> list[str]:
        """The command prefix that runs a program inside that side's namespace."""
        return ["ip", "netns", "exec", self.core_ns if side == "core" else self.edge_ns]

    def link_down(self) -> None:
        """A partition: both ends of the veth down (addresses stay; tcp sees silence)."""
        _ip("-n", self.core_ns, "link", "set", _CORE_DEV, "down")
        _ip("-n", self.edge_ns, "link", "set", _EDGE_DEV, "down")

    def link_up(self) -> None:
        _ip("-n", self.core_ns, "link", "set", _CORE_DEV, "up")
        _ip("-n", self.edge_ns, "link", "set", _EDGE_DEV, "up")

    def pids(self) -> set[int]:
        """Processes living in either namespace."""
        return pids_in(self.core_ns) | pids_in(self.edge_ns)


@contextmanager
def net_pair() -> Iterator[NetPair]:
    """Two namespaces (lo up in each) joined by a veth pair with addresses only inside them.
    On exit -- also when the body raised -- kills every process left in them, deletes both
    namespaces (the veth goes with them). Stale namespaces of dead test processes (name
    prefix with a pid that no longer exists) are removed on entry."""
    remove_stale()
    n = next(_counter)
    subnet = n % 250 + 1  # addresses live inside the pair's namespaces only: no clash
    pair = NetPair(
        core_ns=f"{PREFIX}{os.getpid()}c{n}",
        edge_ns=f"{PREFIX}{os.getpid()}e{n}",
        core_ip=f"10.201.{subnet}.1",
        edge_ip=f"10.201.{subnet}.2",
    )
    made: list[str] = []
    try:
        for ns in (pair.core_ns, pair.edge_ns):
            _ip("netns", "add", ns)
            made.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
        _ip("link", "add", "name", _CORE_DEV, "netns", pair.core_ns, "type", "veth",
            "peer", "name", _EDGE_DEV, "netns", pair.edge_ns)  # fmt: skip
        for ns, dev, ip in ((pair.core_ns, _CORE_DEV, pair.core_ip),
                            (pair.edge_ns, _EDGE_DEV, pair.edge_ip)):  # fmt: skip
            _ip("-n", ns, "addr", "add", f"{ip}/30", "dev", dev)
            _ip("-n", ns, "link", "set", dev, "up")
        yield pair
    finally:
        errors = []
        for ns in made:
            try:
                _delete(ns)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                errors.append(str(exc))
        if errors:
            raise RuntimeError("; ".join(errors))


def in_netns(ns: str, fn: Callable[[], T], timeout_s: float = 10.0) -> T:
    """Run `fn` in a new thread of this process that has entered namespace `ns` and return
    its result (or raise its exception). A socket made there stays in `ns` and can be used
    from any thread."""
    box: list[T] = []
    err: list[BaseException] = []

    def run() -> None:
        try:
            enter_netns(ns)
            box.append(fn())
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            err.append(exc)

    t = threading.Thread(target=run, name=f"in-netns-{ns}", daemon=True)
    t.start()
    t.join(timeout_s)
    if t.is_alive():
        raise TimeoutError(f"in_netns({ns}) still running after {timeout_s} s")
    if err:
        raise err[0]
    return box[0]


def enter_netns(ns: str) -> None:
    """Move the calling thread (only it) into network namespace `ns`."""
    fd = os.open(NETNS_DIR / ns, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns({ns}): {os.strerror(errno)}")
    finally:
        os.close(fd)
