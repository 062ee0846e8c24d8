"""The simulated exchange's command line under hostile arguments: one line naming the
problem and its documented exit code (2: bad usage, config or credentials), never a
traceback nor a silent default."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.exchangesim.__main__ import main
from tests.helpers import REPO_ROOT

DEMO = str(REPO_ROOT / "deploy" / "config" / "demo.toml")
VENUE = "binance-local"  # the demo's ccxt venue, with its [venues.sim]


@pytest.mark.parametrize("rate", ["abc", "-5", "nan", "1", "Infinity"])
def test_run_refuses_a_commission_that_is_no_rate(
    rate: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--commission abc` ran the exchange at the default rate without a word, and -5 or
    nan were charged on every trade; now argparse refuses it (the config's bounds)."""
    argv = ["run", "--config", DEMO, "--venue", VENUE, "--state-dir", str(tmp_path / "st"),
            "--runtime-dir", str(tmp_path / "rt"), f"--commission={rate}"]  # fmt: skip
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "argument --commission" in err and "Traceback" not in err
    assert not (tmp_path / "st").exists()  # nothing written


@pytest.mark.parametrize("which", ["--state-dir", "--runtime-dir"])
def test_run_in_a_dir_it_cannot_use_is_one_config_line(
    which: str, short_tmp: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A state or runtime dir under a regular file (or on a read-only file system) was a
    NotADirectoryError / OSError traceback, exit 1; now one line naming the key, exit 2."""
    monkeypatch.setenv("TP_DEMO_BINANCE_KEY", "k")
    monkeypatch.setenv("TP_DEMO_BINANCE_SECRET", "s")
    blocker = short_tmp / "file"
    blocker.write_text("")
    dirs = {"--state-dir": str(short_tmp / "st"), "--runtime-dir": str(short_tmp / "rt")}
    dirs[which] = str(blocker / "under")
    argv = ["run", "--config", DEMO, "--venue", VENUE]
    assert main([*argv, *(arg for pair in dirs.items() for arg in pair)]) == 2
    err = capsys.readouterr().err
    key = "state_dir" if which == "--state-dir" else "runtime_dir"
    assert err.startswith(f"exchangesim: system.{key}: cannot use it: ")
    assert "Not a directory" in err and err.count("\n") == 1


def test_inspect_of_a_log_that_is_a_directory_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`inspect` of an exchange whose log is a directory was an IsADirectoryError
    traceback; now one line naming the dir, exit 2."""
    where = tmp_path / "venues" / VENUE / "exchange"
    (where / "venue.log").mkdir(parents=True)
    argv = ["inspect", "--config", DEMO, "--venue", VENUE, "--state-dir", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == f"exchangesim: cannot read {where}: it is a directory\n"
