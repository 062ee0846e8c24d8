"""Review of the forked fork server (branch forkfirst): a `run` whose program came from
stdin (`python - run ...`) still runs (it is not re-executed)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO_ROOT, make_config, to_toml


def _config(tmp_path: Path) -> str:
    venue = {"name": "simA", "username_env": "TP_SIMA_USER", "password_env": "TP_SIMA_PW"}
    path = tmp_path / "config.toml"
    path.write_text(to_toml(make_config(venues=("simA",), overrides={"venues": [venue]})))
    return str(path)


def _argv(tmp_path: Path) -> list[str]:
    return ["run", "--config", _config(tmp_path), "--state-dir", str(tmp_path / "s"),
            "--runtime-dir", str(tmp_path), "--host-group", "nosuch"]  # fmt: skip


def test_run_with_its_program_on_stdin_still_runs(tmp_path: Path) -> None:
    """`python - run ...` (the program on stdin: a heredoc or ssh launcher): the re-execution
    cannot read the program again, so `run` must not re-execute (the branch re-executes
    an empty program: nothing runs, exit 0)."""
    program = "import sys, supervisor\nprint('main returned', supervisor.main())\n"
    out = subprocess.run(
        [sys.executable, "-", *_argv(tmp_path)], input=program,
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert "main returned 2" in out.stdout, (out.returncode, out.stdout, out.stderr)


def test_run_whose_program_is_a_pipe_still_runs(tmp_path: Path) -> None:
    """`python <(cat start.py) run ...` (/dev/fd/N, a pipe read once): not re-executed."""
    program = "import sys, supervisor\nprint('main returned', supervisor.main())\n"
    read_fd, write_fd = os.pipe()
    os.write(write_fd, program.encode())
    os.close(write_fd)
    try:
        out = subprocess.run(
            [sys.executable, f"/dev/fd/{read_fd}", *_argv(tmp_path)], pass_fds=(read_fd,),
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        )  # fmt: skip
    finally:
        os.close(read_fd)
    assert "main returned 2" in out.stdout, (out.returncode, out.stdout, out.stderr)
