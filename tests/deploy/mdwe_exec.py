"""Run a command under the kernel's MemoryDenyWriteExecute: `python mdwe_exec.py PROG ARGS`.

prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN) (Linux 6.3+) refuses writable+executable
mappings and making a mapping executable, kept across fork and execve: what systemd's
`MemoryDenyWriteExecute=yes` enforces (by this prctl where the kernel has it, by a seccomp
filter before). Exit 97 with one stderr line where the kernel does not support it.
"""

from __future__ import annotations

import ctypes
import os
import sys

PR_SET_MDWE = 65
PR_MDWE_REFUSE_EXEC_GAIN = 1
UNSUPPORTED = 97


def main() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
        print(f"mdwe_exec: PR_SET_MDWE failed: {os.strerror(ctypes.get_errno())}", file=sys.stderr)
        sys.exit(UNSUPPORTED)
    os.execv(sys.argv[1], sys.argv[1:])


if __name__ == "__main__":
    main()
