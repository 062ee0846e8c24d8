"""Run a command under the unit's SystemCallFilter=, as systemd would install it:
`python syscall_filter_exec.py UNIT PROG ARGS`.

Reads the `SystemCallFilter=` lines of the unit (an allow list, then `~` deny lists), expands
the `@groups` with `systemd-analyze syscall-filter`, and loads a seccomp filter with
libseccomp's Python binding (Debian python3-seccomp, put in .tools/pyseccomp by
deploy/tools/fetch-pyseccomp.sh; PYSECCOMP_DEST overrides) that allows exactly those
syscalls and fails every other one with EPERM (`SystemCallErrorNumber=EPERM`); the filter
is kept across execve. Exit 97 with one stderr line where the binding is missing.
"""

from __future__ import annotations

import errno
import functools
import os
import re
import subprocess
import sys

UNSUPPORTED = 97


@functools.cache
def expand(group: str) -> frozenset[str]:
    """The syscall names of a `@group`, its subgroups expanded."""
    out = subprocess.run(
        ["systemd-analyze", "syscall-filter", "--no-pager", group],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    names: set[str] = set()
    for line in out.splitlines()[1:]:
        item = line.strip()
        if not item or item.startswith("#"):
            continue
        names |= expand(item) if item.startswith("@") else {item}
    return frozenset(names)


def allowed_syscalls(unit_text: str) -> set[str]:
    allow: set[str] = set()
    deny: set[str] = set()
    for value in re.findall(r"(?m)^SystemCallFilter=(.*)$", unit_text):
        target = deny if value.startswith("~") else allow
        for item in value.lstrip("~").split():
            target |= expand(item) if item.startswith("@") else {item}
    return allow - deny


def main() -> None:
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.path.insert(0, os.environ.get("PYSECCOMP_DEST", os.path.join(repo, ".tools", "pyseccomp")))
    try:
        import seccomp  # type: ignore[import-not-found]
    except ImportError:
        print(
            "syscall_filter_exec: no seccomp module (deploy/tools/fetch-pyseccomp.sh)",
            file=sys.stderr,
        )
        sys.exit(UNSUPPORTED)
    unit, argv = sys.argv[1], sys.argv[2:]
    with open(unit) as f:
        names = allowed_syscalls(f.read())
    flt = seccomp.SyscallFilter(defaction=seccomp.ERRNO(errno.EPERM))
    for name in sorted(names):
        try:
            flt.add_rule(seccomp.ALLOW, name)
        except (RuntimeError, ValueError, OSError):
            pass  # not a syscall of this architecture (e.g. the 32-bit variants)
    flt.load()
    os.execv(argv[0], argv)


if __name__ == "__main__":
    main()
