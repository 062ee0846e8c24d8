"""`python -m tests.bench --out FILE`: a results file it could not write is refused before
any section runs (one line, exit 2), not found after them in a traceback that loses the
run's results."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench import __main__ as bench


def _no_section_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse() -> dict[str, object]:
        raise AssertionError("a section ran")

    monkeypatch.setattr(bench, "discover", lambda: {"pure": type("M", (), {"run": refuse})})


@pytest.mark.parametrize("where", ["dir", "under_a_file"])
def test_an_out_it_cannot_write_is_refused_before_any_section_runs(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _no_section_runs(monkeypatch)
    (tmp_path / "file").write_text("")
    out = tmp_path if where == "dir" else tmp_path / "file" / "results.json"
    assert bench.main(["--only", "pure", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("--out: ") and str(out) in err and err.count("\n") == 1
