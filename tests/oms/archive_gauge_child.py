"""Child process of tests/oms/test_archive_edges.py: `hang` = an OMS whose archive COMMIT hangs
for 200 s (fake clock), then kill -9 of itself; `fresh` = the restarted OMS (nothing stalls)."""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

from tests.oms.test_evictions import _book, _cancelled, _Clock
from tests.oms.test_exec_quarantine import _Host


def main(mode: str, state: Path) -> None:
    clock = _Clock()
    book, evictions, archive = _book(state, clock)
    host = _Host(state, book)
    if mode == "hang":
        release = threading.Event()
        evictions.writer.before_commit = lambda: None if release.wait(60.0) else None
        for i in range(4):
            _cancelled(host, f"o{i}")
        evictions.flush()
        clock.now += 200.0
        evictions.flush()  # the POLL_S timer's flush: gauge 200
        os.kill(os.getpid(), signal.SIGKILL)
    for i in range(4):  # the restarted OMS: archives fine
        _cancelled(host, f"n{i}")
    assert evictions.sync(10.0)
    evictions.flush()
    evictions.close(5.0)
    archive.close()


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
