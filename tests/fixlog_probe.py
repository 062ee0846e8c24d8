"""Not collected by the suite (no test_ prefix): tests/test_fix_conformance.py runs it in a
pytest subprocess to prove that one non-conforming message in a FIX message log, anywhere
in the session's temp dir or in a short-path dir removed by its test, fails the whole
session (the conftest's session-finish hook), also when pytest-xdist workers ran the tests."""

from __future__ import annotations

import os
from pathlib import Path

from actors.connector.fix import codec as fc
from actors.connector.fix.msglog import OUT, MessageLog

# A PositionReport with LastRptRequested(912), which AP does not define (issue 11, 7)
BAD_AP = [(721, "PR-1"), (728, "0"), (715, "20260101"), (1, "SIM"), (581, "1"), (730, "0"),
          (731, "1"), (734, "0"), (912, "Y")]  # fmt: skip


def test_plant_a_bad_message(tmp_path: Path) -> None:
    if os.environ.get("TP_PLANT_BAD_FIX_MESSAGE") != "1":
        return
    _plant(tmp_path)


def test_plant_a_bad_message_in_a_removed_dir(short_tmp: Path) -> None:
    """`short_tmp` scans its dir when it removes it: in the process that ran the test (a
    worker's, under pytest-xdist)."""
    if os.environ.get("TP_PLANT_BAD_FIX_MESSAGE") != "removed":
        return
    _plant(short_tmp)


def _plant(root: Path) -> None:
    log = MessageLog(root / "state" / "venues" / "simA" / "fix" / "messages")
    header = [(49, b"SIMA"), (56, b"TRADEPULSE"), (34, b"2"), (52, b"20260101-00:00:00.000")]
    log.record(OUT, fc.encode("AP", header, [(t, v.encode()) for t, v in BAD_AP]))
    log.close()
