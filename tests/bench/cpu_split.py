"""User and kernel CPU of one `bench-quick` run, every process it starts summed
(`python -m tests.bench.cpu_split`): how much of the CPU an order costs is interpreter work
and how much the kernel's (syscalls: zmq, fdatasync, TCP). Reads `/proc/PID/stat` of the
run's process tree every 0.3 s and keeps each process's last reading, so a process that
lived less than 0.3 s is missed (the system's actors live through the whole run)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

POLL_S = 0.3


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            found += [int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
    except OSError:
        pass  # gone meanwhile
    return found


def _tree(root: int) -> set[int]:
    todo, seen = [root], set()
    while todo:
        pid = todo.pop()
        if pid not in seen:
            seen.add(pid)
            todo += _children(pid)
    return seen


def _times(pid: int) -> tuple[int, int] | None:
    """(utime, stime) in clock ticks, None if the process is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    return int(fields[11]), int(fields[12])


def main() -> int:
    out = Path("var/bench/cpu_split.txt")
    out.parent.mkdir(parents=True, exist_ok=True)
    with (out.parent / "cpu_split_quick.out").open("w") as log:
        run = subprocess.Popen([sys.executable, "-m", "tests.bench.quick"], stdout=log,
                               stderr=subprocess.STDOUT)  # fmt: skip
        last: dict[int, tuple[int, int]] = {}
        while run.poll() is None:
            for pid in _tree(run.pid):
                if (t := _times(pid)) is not None:
                    last[pid] = t
            time.sleep(POLL_S)  # a sampling interval, not a synchronisation
    tick = os.sysconf("SC_CLK_TCK")
    user = sum(u for u, _ in last.values()) / tick
    kernel = sum(k for _, k in last.values()) / tick
    line = (f"processes {len(last)}: user {user:.2f} s, kernel {kernel:.2f} s, "
            f"kernel {100 * kernel / max(user + kernel, 1e-9):.1f} % (bench-quick exit "
            f"{run.returncode})")  # fmt: skip
    out.write_text(line + "\n")
    print(line)
    return run.returncode


if __name__ == "__main__":
    sys.exit(main())
