"""The FIX 4.4 conformance table (tests/venuesim/conformance.py) and its run over every
message log of the test session (tests/fixlogs.py, the conftest's session-finish hook):
it knows every MsgType either side sends, catches what a validating engine rejects, sees
only what a side sent, and a planted non-conforming message fails the session."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.connector.fix import codec as fc
from actors.connector.fix.adapter import INITIATOR_APP_MSG_TYPES
from actors.connector.fix.msglog import IN, OUT, MessageLog
from tests import fixlogs
from tests.helpers import REPO_ROOT, run_python
from tests.venuesim.conformance import ALLOWED, REQUIRED, message_problems

HEADER = [(49, b"US"), (56, b"VENUE"), (34, b"3"), (52, b"20260101-00:00:00.000")]
# what each side sends (the simulator: the answers of actors/venuesim/fixmap.py)
CONNECTOR_SENDS = {"0", "1", "2", "3", "4", "5", "A", "D", "F", "G", "H", "AF", "AN", "q", "j"}
VENUE_SENDS = {"0", "1", "2", "3", "4", "5", "A", "8", "9", "r", "AP", "j"}


@pytest.fixture
def planted() -> Iterator[Path]:
    """A dir outside pytest's temp dir, removed at the end: the bad messages planted in it
    must not fail this very session's own scan."""
    path = Path(tempfile.mkdtemp(prefix="tpfix"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _msg(msg_type: str, body: list[tuple[int, str]]) -> bytes:
    return fc.encode(msg_type, HEADER, [(t, v.encode()) for t, v in body])


def test_the_table_covers_every_msg_type_either_side_sends() -> None:
    for msg_type in CONNECTOR_SENDS | VENUE_SENDS | INITIATOR_APP_MSG_TYPES:
        assert msg_type in REQUIRED and msg_type in ALLOWED, msg_type


def test_what_a_validating_engine_rejects_is_caught() -> None:
    good = _msg("H", [(11, "c-1"), (790, "S-1"), (55, "AAPL"), (54, "1")])
    assert message_problems(good) == []
    assert message_problems(_msg("H", [(11, "c-1")])) == [
        "required tag 54 missing",
        "required tag 55 missing",
    ]
    ap = [(721, "P"), (728, "0"), (715, "20260101"), (1, "A"), (581, "1"), (730, "0"),
          (731, "1"), (734, "0")]  # fmt: skip
    assert message_problems(_msg("AP", ap)) == []
    assert message_problems(_msg("AP", [*ap, (912, "Y")])) == ["tag 912 not defined for AP"]
    order = [(11, "c"), (54, "X"), (60, "t"), (40, "2"), (55, "A"), (38, "1")]
    assert message_problems(_msg("D", order)) == ["Side(54) 'X' is no FIX 4.4 value"]
    assert message_problems(_msg("0", [(112, "a"), (112, "b")])) == [
        "tag 112 appears more than once"
    ]
    broken = _msg("0", [])[:-4] + b"000\x01"
    assert message_problems(broken) == ["CheckSum(10) wrong"]
    assert message_problems(_msg("ZZ", [])) == ["MsgType ZZ is not in the conformance table"]


def test_the_scan_checks_what_each_side_sent_only(planted: Path) -> None:
    """OUT entries of the connector's and the simulator's logs are checked; IN entries
    (the peer's, or a test playing one) are not; a redacted Logon is not a bad checksum."""
    ours = MessageLog(planted / "fix" / "simA" / "messages")
    ours.record(OUT, _msg("A", [(98, "0"), (108, "30"), (554, "secret")]))
    ours.record(IN, _msg("8", [(37, "o")]))  # the peer's problem, in its own log
    ours.record(IN, b"8=FIX.4.4\x01garbage", "garbled:not_tag_value")
    ours.close()
    theirs = MessageLog(planted / "venues" / "simA" / "fix" / "messages")
    theirs.record(OUT, _msg("8", [(37, "o"), (17, "e"), (150, "0"), (39, "0"), (54, "1"),
                                  (151, "1"), (14, "0"), (6, "0")]))  # fmt: skip
    theirs.close()
    result = fixlogs.scan(planted)
    assert dict(result.files) == {"connector": 1, "venue": 1}
    assert dict(result.messages) == {"connector": 1, "venue": 1}
    (problem,) = result.problems
    assert problem.startswith("venue ") and "required tag 55 missing" in problem
    ok, lines = fixlogs.verdict(result)
    assert not ok and "1 non-conforming messages" in lines[1]


def test_a_deviation_allowed_for_a_dialect_forgives_that_problem_only(planted: Path) -> None:
    """A dialect test's marker (`fixlogs.allow`) forgives the listed problem of the listed
    MsgType in the logs below it, nothing else: an H without 55/54 passes, one that also
    carries a tag H does not have fails, and so does a D without 55."""
    for problem in ("required tag 54 missing", "required tag 55 missing"):
        fixlogs.allow(planted, "H", problem)
    log = MessageLog(planted / "t" / "fix" / "simA" / "messages")
    log.record(OUT, _msg("H", [(11, "c-1"), (790, "S-1")]))
    log.record(OUT, _msg("H", [(11, "c-2"), (912, "Y")]))
    log.record(OUT, _msg("D", [(11, "c"), (54, "1"), (60, "t"), (40, "1"), (38, "1")]))
    log.close()
    problems = fixlogs.scan(planted / "t").problems
    assert len(problems) == 2
    assert "35=H" in problems[0] and "c-2" in problems[0]
    assert "tag 912 not defined for H" in problems[0] and "55 missing" not in problems[0]
    assert "35=D" in problems[1] and "required tag 55 missing" in problems[1]


def test_systems_that_left_no_log_of_a_side_fail_the_verdict() -> None:
    result = fixlogs.Scan(systems=1)
    result.files["connector"] = 3
    ok, lines = fixlogs.verdict(result)
    assert not ok and "never seen" in lines[-1]


def test_a_planted_bad_message_fails_the_whole_session(planted: Path) -> None:
    """A pytest session whose only test writes one non-conforming AP to a simulator's
    message log passes its test, yet exits 1 naming the message."""
    env = {**os.environ, "TP_PLANT_BAD_FIX_MESSAGE": "1"}
    args = ["-m", "pytest", "-q", "-p", "no:cacheprovider", "--basetemp", str(planted / "b")]
    out = run_python([*args, str(REPO_ROOT / "tests" / "fixlog_probe.py")], env, 120)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "2 passed" in out.stdout
    assert "1 non-conforming messages" in out.stdout and "tag 912 not defined for AP" in out.stdout
    quiet = run_python(args[:-2] + [str(REPO_ROOT / "tests" / "fixlog_probe.py")], None, 120)
    assert quiet.returncode == 0, quiet.stdout + quiet.stderr


def test_a_bad_message_seen_by_an_xdist_worker_fails_the_session(planted: Path) -> None:
    """`make test` runs on pytest-xdist workers: a non-conforming message a worker's test
    scanned (in a dir it removed, outside the shared temp dir) still fails the session at
    the controller, which prints the verdict."""
    env = {**os.environ, "TP_PLANT_BAD_FIX_MESSAGE": "removed"}
    args = ["-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2"]
    args += ["--basetemp", str(planted / "b"), str(REPO_ROOT / "tests" / "fixlog_probe.py")]
    out = run_python(args, env, 120)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "2 passed" in out.stdout
    assert "1 non-conforming messages" in out.stdout and "tag 912 not defined for AP" in out.stdout


def test_a_line_a_kill_cut_short_is_not_a_message_and_the_next_writer_starts_a_line(
    planted: Path,
) -> None:
    """A kill -9 can end the log's write between pages (a short write): the last line is
    cut inside a message the side had sent whole. The scan counts it as cut short instead
    of failing the session; the next incarnation's log starts on a line of its own, so its
    first message is checked (a merged line would have failed as one bad message)."""
    directory = planted / "venues" / "simA" / "fix" / "messages"
    good = _msg("8", [(37, "o"), (17, "e"), (150, "0"), (39, "0"), (55, "A"), (54, "1"),
                      (151, "1"), (14, "0"), (6, "0")])  # fmt: skip
    first = MessageLog(directory)
    first.record(OUT, good)
    first.close()
    whole = (directory / "messages.log").read_bytes()
    (directory / "messages.log").write_bytes(whole + whole[: len(whole) - 20])  # cut short
    second = MessageLog(directory)
    second.record(OUT, good)
    second.close()
    result = fixlogs.scan(planted)
    assert result.problems == [] and result.torn == 1 and result.messages["venue"] == 2
    ok, lines = fixlogs.verdict(result)
    assert ok and "1 log lines cut short by a kill" in lines[0]
    assert not fixlogs.cut_short(good[:-7] + b"999\x01")  # the trailer's there: checked
    assert fixlogs.cut_short(good[: len(good) - 30])
    assert not fixlogs.cut_short(good.replace(b"\x0110=", b"\x0199="))  # whole body, no 10
