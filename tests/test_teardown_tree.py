"""Tearing a system down (`SystemUnderTest.destroy`) kills every process under the
supervisor, including one forked while the tree is being killed (the fork server answering
a spawn request the supervisor sent just before it was stopped)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import psutil

from tests.helpers import eventually, freeze_tree, kill_and_reap, reap_zombie_children

# a chain that keeps growing: each process forks the next one at once, then sleeps;
# bounded (200 processes, 30 s each) so that a failure cannot run away
_CHAIN = """
import os, time
for _ in range(200):
    if os.fork():
        time.sleep(30)
        os._exit(0)
time.sleep(30)
"""


def _live_in_group(pgid: int) -> list[int]:
    live = []
    for p in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(p.pid) == pgid and p.status() != psutil.STATUS_ZOMBIE:
                live.append(p.pid)
        except (ProcessLookupError, psutil.NoSuchProcess):
            pass
    return live


def test_a_tree_still_forking_is_stopped_whole_before_it_is_killed() -> None:
    """`freeze_tree` stops the root and every descendant, also those forked after its first
    listing, so killing what it returns leaves nothing: before, the root was stopped and
    its descendants listed once, and a descendant forked meanwhile outlived the kill
    (`test_a_guest_that_cannot_listen_is_named`: a stray `tradepulse-forkserver`)."""
    root = subprocess.Popen([sys.executable, "-c", _CHAIN], start_new_session=True)
    try:
        eventually(lambda: len(psutil.Process(root.pid).children(recursive=True)) >= 5, 10.0)
        kill_and_reap(freeze_tree(root.pid) | {root.pid})
        root.wait(timeout=5)
        reap_zombie_children()
        assert _live_in_group(root.pid) == []
    finally:  # whatever escaped: the whole group (orphans keep it), then their zombies
        try:
            os.killpg(root.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        root.wait(timeout=5)
        eventually(lambda: not _live_in_group(root.pid), 5.0)
        reap_zombie_children()
