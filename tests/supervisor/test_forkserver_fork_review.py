"""Review of the forked fork server (branch forkfirst): a `run` whose program came from
stdin (`python - run ...`) still runs (it is not re-executed); without /proc it keeps its
credentials or exits 2; variables libraries read at import come from the base
environment; an fd the operator's process inherited never reaches the fork server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO_ROOT, make_config, to_toml

_FDS_PROBE = """
import json, os, sys, time
import supervisor
from actors.supervisor import forkserver_fork as ff
seen = []
original = ff.ForkedServer.__init__
def spy(self, expected, *rest):
    original(self, expected, *rest)
    deadline = time.monotonic() + 20  # until the child has retitled itself (fds closed)
    while not open(f"/proc/{self.proc.pid}/cmdline", "rb").read().startswith(b"trade"):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    fds = os.listdir(f"/proc/{self.proc.pid}/fd")
    seen.extend(os.readlink(f"/proc/{self.proc.pid}/fd/{fd}") for fd in fds)
ff.ForkedServer.__init__ = spy
code = supervisor.main(sys.argv[1:])
print(json.dumps({"code": code, "fds": seen}))
"""


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


def _no_proc_fd_probe(after_reexec_only: bool) -> str:
    """A `-c` program that runs `run` as if /proc were not mounted (readlink of
    /proc/self/fd/N fails), in every process or only in the re-execution."""
    when = "'TRADEPULSE_ENVIRON_FD' in os.environ" if after_reexec_only else "True"
    return f"""
import json, os, sys
if {when}:
    real = os.readlink
    def readlink(path, *args, **kwargs):
        if str(path).startswith("/proc/self/fd"):
            raise FileNotFoundError(path)
        return real(path, *args, **kwargs)
    os.readlink = readlink
import supervisor
from actors.supervisor import forkserver_fork
forkserver_fork.PROC_FD = "/nonexistent/proc/self/fd" if {when} else forkserver_fork.PROC_FD
code = supervisor.main(sys.argv[1:])
print(json.dumps([code, os.environ.get("TP_SIMA_PW")]))
"""


def _run_probe(program: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TP_SIMA_USER": "u-17", "TP_SIMA_PW": "pw-83d0"}
    return subprocess.run(
        [sys.executable, "-c", program, *_argv(tmp_path)], env=env, stdin=subprocess.DEVNULL,
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_without_proc_run_is_not_reexecuted_and_keeps_its_credentials(tmp_path: Path) -> None:
    """No readable /proc/self/fd: the re-execution could never find its memfd again, so
    `run` does not re-execute and keeps its whole environment (it lost its credentials)."""
    out = _run_probe(_no_proc_fd_probe(after_reexec_only=False), tmp_path)
    code, password = json.loads(out.stdout.strip().splitlines()[-1])
    assert code == 2, out.stderr
    assert password == "pw-83d0", out.stderr


def test_a_reexecution_that_cannot_read_its_environment_back_exits_2(tmp_path: Path) -> None:
    """Re-executed, then /proc unreadable: one stderr line naming the problem and exit 2,
    never a supervisor without its credentials."""
    out = _run_probe(_no_proc_fd_probe(after_reexec_only=True), tmp_path)
    code, password = json.loads(out.stdout.strip().splitlines()[-1])
    assert code == 2, out.stderr
    assert password is None
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "environment error: TRADEPULSE_ENVIRON_FD" in lines[0]
    assert "/nonexistent/proc/self/fd" in lines[0]


def test_the_reexecuted_supervisor_holds_no_memfd_once_its_environment_is_read(
    tmp_path: Path,
) -> None:
    """The memfd of the whole environment is closed once read back (not held for the life
    of the supervisor), and the environment is whole again."""
    program = (
        "import json, os, sys, supervisor\ncode = supervisor.main(sys.argv[1:])\n"
        "fds = [os.readlink(f'/proc/self/fd/{fd}') for fd in os.listdir('/proc/self/fd')\n"
        "       if os.path.exists(f'/proc/self/fd/{fd}')]\n"
        "print(json.dumps([code, os.environ.get('TP_SIMA_PW'), fds]))\n"
    )
    out = _run_probe(program, tmp_path)
    code, password, fds = json.loads(out.stdout.strip().splitlines()[-1])
    assert code == 2, out.stderr
    assert password == "pw-83d0"
    assert not [fd for fd in fds if "tradepulse-environ" in fd], fds


def test_a_variable_a_library_reads_at_import_comes_from_the_base_environment_only(
    tmp_path: Path,
) -> None:
    """docs/architecture.md: NO_COLOR (read by structlog when imported) is not a base
    variable, so the re-executed supervisor's structlog never saw it, though the
    supervisor's environment holds it again after the start."""
    program = (
        "import json, os, sys, supervisor\ncode = supervisor.main(sys.argv[1:])\n"
        "import structlog._config as sc\n"
        "print(json.dumps([code, os.environ.get('NO_COLOR'), sc._no_colors]))\n"
    )
    env = {**os.environ, "NO_COLOR": "1"}
    out = subprocess.run(
        [sys.executable, "-c", program, *_argv(tmp_path)], env=env, stdin=subprocess.DEVNULL,
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    code, no_color, no_colors = json.loads(out.stdout.strip().splitlines()[-1])
    assert code == 2, out.stderr
    assert no_color == "1"
    assert no_colors is False


def test_an_fd_the_supervisor_inherited_never_reaches_the_forked_fork_server(
    tmp_path: Path,
) -> None:
    """The operator's shell passes an fd open on a secrets file (not close-on-exec): the
    forked fork server (and so every actor) must not hold it, as the launched one did not
    (Popen's close_fds)."""
    secret = tmp_path / "secrets.env"
    secret.write_text("TP_SIMA_PW=pw-83d0\n")
    fd = os.open(secret, os.O_RDONLY)
    try:
        out = subprocess.run(
            [sys.executable, "-c", _FDS_PROBE, *_argv(tmp_path)], pass_fds=(fd,),
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    finally:
        os.close(fd)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["code"] == 2, out.stderr
    assert result["fds"], "the fork server was not forked"
    assert str(secret) not in result["fds"]


_ENVIRON_PROBE = """
import json, os, sys, time
import supervisor
from actors.supervisor import forkserver_fork as ff
blocks = []
original = ff.ForkedServer.__init__
def spy(self, expected, *rest):
    original(self, expected, *rest)
    deadline = time.monotonic() + 20  # until the child has retitled itself
    while not open(f"/proc/{self.proc.pid}/cmdline", "rb").read().startswith(b"trade"):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    blocks.append(open(f"/proc/{self.proc.pid}/environ", "rb").read().decode())
ff.ForkedServer.__init__ = spy
code = supervisor.main(sys.argv[1:])
blocks.append(open("/proc/self/environ", "rb").read().decode())
print(json.dumps({"code": code, "blocks": blocks}))
"""


def test_the_marker_is_in_no_environment_block_of_the_system(tmp_path: Path) -> None:
    """TRADEPULSE_ENVIRON_FD (the re-execution's memfd) shows in neither the supervisor's
    /proc/PID/environ nor the forked fork server's (whose block every actor shares)."""
    out = _run_probe(_ENVIRON_PROBE, tmp_path)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["code"] == 2, out.stderr
    assert len(result["blocks"]) == 2, "the fork server was not forked"
    for block in result["blocks"]:
        assert "TP_SIMA_USER" not in block  # the base environment (of the re-execution)
        assert "PATH=" in block
        assert "TRADEPULSE_ENVIRON_FD" not in block
