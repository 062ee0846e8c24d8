"""`python -m tests.chaos` under hostile arguments: a usage error (one line, exit 2) before
any system starts, never a soak that divides by zero or weighs faults by NaN and reports
an invariant violation (exit 1) after minutes."""

from __future__ import annotations

import pytest

from tests.chaos import __main__ as chaos


@pytest.mark.parametrize(
    "argv",
    [
        ["--clients", "0"],
        ["--clients", "1.5"],
        ["--rate", "0"],
        ["--duration-s", "nan"],
        ["--duration-s", "-5"],
        ["--fault-interval-s", "nan"],
        ["--kill-switch-at-s", "-1"],
        ["--reconcile-every-s", "inf"],
        ["--recovery-timeout-s", "0"],
        ["--settle-timeout-s", "inf"],
        ["--mix", "sigkill=nan"],
        ["--mix", "sigkill=inf"],
        ["--mix", "sigkill=abc"],
    ],
)
def test_a_bad_number_is_a_usage_error_before_any_run(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_run(*_: object) -> None:
        raise AssertionError("the soak started")

    monkeypatch.setattr(chaos, "run_chaos", no_run)
    with pytest.raises(SystemExit) as exc:
        raise SystemExit(chaos.main(argv))
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert argv[0] in err and "Traceback" not in err
