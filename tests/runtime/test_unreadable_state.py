"""`actors.runtime.process.unreadable`: which OSErrors of an actor are a state file it can
never open (refused like a corrupt one, exit 65) and which stay a crash (restarted)."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from actors.runtime.process import unreadable


@pytest.mark.parametrize(
    "code", [errno.EISDIR, errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EINVAL]
)
def test_a_state_file_that_cannot_be_opened_is_refused(tmp_path: Path, code: int) -> None:
    path = tmp_path / "fix" / "simA" / "outbox.log"
    bad = unreadable(OSError(code, "nope", str(path)), tmp_path)
    assert bad is not None and bad.path == str(path) and bad.offset is None
    assert str(bad) == f"state file {path} unreadable: nope"


def test_other_errors_stay_crashes(tmp_path: Path) -> None:
    """A full disk or an I/O error may pass (restarted, as before); a file outside the
    state dir or an error naming no file is not the actor's state."""
    inside = str(tmp_path / "oms" / "snapshot.bin")
    assert unreadable(OSError(errno.ENOSPC, "full", inside), tmp_path) is None
    assert unreadable(OSError(errno.EIO, "I/O", inside), tmp_path) is None
    assert unreadable(OSError(errno.EACCES, "denied", "/etc/shadow"), tmp_path) is None
    assert unreadable(OSError(errno.EACCES, "denied"), tmp_path) is None
