"""The CLI's deadlines (`--timeout-s` of every command, preflight's `--connect-timeout-s`)
are checked as they are parsed: a value that is no deadline is a usage error naming the
option (exit 2), never a traceback, an endless wait or a "no system running" (exit 3)."""

from __future__ import annotations

from pathlib import Path

import pytest

import supervisor


def _config(tmp_path: Path) -> str:
    """A venue to connect to (no simulator): preflight would try it with the deadline."""
    path = tmp_path / "tp.toml"
    path.write_text(
        f'[system]\nstate_dir = "{tmp_path / "state"}"\nruntime_dir = "{tmp_path / "rt"}"\n'
        '[[venues]]\nname = "lse"\nhost = "127.0.0.1"\nport = 1\n'
        'sender_comp_id = "TP"\ntarget_comp_id = "LSE"\n'
    )
    return str(path)


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "1e300", "ten"])
@pytest.mark.parametrize("option", ["status --timeout-s", "preflight --connect-timeout-s"])
def test_a_deadline_that_is_no_number_of_seconds_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, value: str
) -> None:
    """Before: `status --timeout-s 0` answered "no answer within 0.0 s", exit 3 (the system
    was running), `-1` waited forever, and NaN, inf or 1e300 (also as preflight's connect
    deadline) ended in a traceback, exit 1: a failure, which systemd restarts."""
    command, flag = option.split()
    with pytest.raises(SystemExit) as ended:
        supervisor.main([command, f"{flag}={value}", "--config", _config(tmp_path)])
    err = capsys.readouterr().err
    assert ended.value.code == 2 and "Traceback" not in err
    assert err.splitlines()[-1].startswith(f"tradepulse {command}: error: argument {flag}: ")


def test_a_deadline_in_range_is_taken() -> None:
    ns = supervisor.build_parser().parse_args(["status", "--timeout-s", "0.5"])
    assert ns.timeout_s == 0.5
    ns = supervisor.build_parser().parse_args(["preflight", "--connect-timeout-s", "86400"])
    assert ns.connect_timeout_s == 86400.0
