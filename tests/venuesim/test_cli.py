"""The venue simulator's command line under hostile arguments: one line naming the problem
and its documented exit code (2: bad usage or config), never a traceback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from actors.venuesim.__main__ import main
from tests.helpers import REPO_ROOT

DEMO = str(REPO_ROOT / "deploy" / "config" / "demo.toml")
NOT_REGULAR = "not a regular file (a pipe, a FIFO or a device)"


@pytest.mark.parametrize("timeout", ["nan", "inf", "1e308", "-1", "0"])
def test_control_refuses_a_deadline_that_is_no_deadline(
    timeout: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`control --timeout-s nan` (or 1e308) ended in a ValueError traceback, exit 1, when
    the venue ran; now argparse refuses it as the supervisor's `--timeout-s` is refused."""
    argv = ["control", "--config", DEMO, "--state-dir", str(tmp_path), "--venue", "simA",
            "status", "--timeout-s", timeout]  # fmt: skip
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "argument --timeout-s" in err and "Traceback" not in err


@pytest.mark.parametrize("which", ["--state-dir", "--runtime-dir"])
def test_run_in_a_dir_it_cannot_use_is_one_config_line(
    which: str, short_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A state or runtime dir under a regular file (or on a read-only file system) was a
    NotADirectoryError / OSError traceback, exit 1; now one line naming the key, exit 2,
    before anything binds."""
    blocker = short_tmp / "file"
    blocker.write_text("")
    dirs = {"--state-dir": str(short_tmp / "st"), "--runtime-dir": str(short_tmp / "rt")}
    dirs[which] = str(blocker / "under")
    argv = ["run", "--config", DEMO, "--venue", "simA"]
    assert main([*argv, *(arg for pair in dirs.items() for arg in pair)]) == 2
    err = capsys.readouterr().err
    key = "state_dir" if which == "--state-dir" else "runtime_dir"
    assert err.startswith(f"venuesim: system.{key}: cannot use it: ") and "Not a directory" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize("kind", ["dir", "fifo"])
def test_inspect_of_a_log_that_is_no_file_is_one_line(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`inspect` of a venue whose log is a directory was an IsADirectoryError traceback;
    a FIFO there hung it for good. Now: one line naming the file, exit 2."""
    log = tmp_path / "venues" / "simA" / "venue.log"
    log.parent.mkdir(parents=True)
    if kind == "dir":
        log.mkdir()
    else:
        os.mkfifo(log)
    assert main(["inspect", "--state-dir", str(tmp_path), "--venue", "simA"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"venuesim: cannot read {log}: ") and err.count("\n") == 1


def test_run_on_a_log_that_is_no_file_names_the_file(
    short_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`run` with a FIFO in the venue log's place said only 'system.state_dir: cannot use
    it: not a regular file (...)', not which of the dir's files; now the line names it."""
    log = short_tmp / "st" / "venues" / "simA" / "venue.log"
    log.parent.mkdir(parents=True)
    os.mkfifo(log)
    argv = ["run", "--config", DEMO, "--venue", "simA", "--state-dir", str(short_tmp / "st"),
            "--runtime-dir", str(short_tmp / "rt")]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == f"venuesim: system.state_dir: cannot use it: {log}: {NOT_REGULAR}\n"
