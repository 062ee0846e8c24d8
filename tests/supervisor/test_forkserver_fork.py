"""The fork server forked from the supervisor (`actors.supervisor.forkserver_fork`): `run`
re-executes itself without credentials, forks the fork server after the shared imports,
then gets its whole environment back; the forked process reads as the fork server in
/proc/PID/cmdline and is waited for like a `Popen`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from actors.supervisor import forkserver_fork as ff
from tests.helpers import REPO_ROOT, make_config, to_toml

_PROBE = """
import json, os, sys, time
import supervisor
from actors.supervisor import forkserver_fork as ff
forked = []
original = ff.ForkedServer.__init__
def spy(self, expected, *rest):
    block = open("/proc/self/environ", "rb").read()
    forked.append({"environ": dict(os.environ), "block": block.decode(), "pid": os.getpid()})
    original(self, expected, *rest)
    deadline = time.monotonic() + 20  # until the child has retitled itself
    while not (title := open(f"/proc/{self.proc.pid}/cmdline", "rb").read()).startswith(b"trade"):
        assert time.monotonic() < deadline, title
        time.sleep(0.01)
    forked[-1]["title"] = title.rstrip(b"\\0").split(b"\\0")[:3]
    links = []
    for fd in os.listdir(f"/proc/{self.proc.pid}/fd"):
        try:  # one it closes meanwhile (it closes what it inherited) is not held
            links.append(os.readlink(f"/proc/{self.proc.pid}/fd/{fd}"))
        except FileNotFoundError:
            pass
    forked[-1]["fds"] = links
    forked[-1]["stdin"] = os.readlink(f"/proc/{self.proc.pid}/fd/0")
ff.ForkedServer.__init__ = spy
code = supervisor.main(sys.argv[1:])
print(json.dumps({"code": code, "forked": [
    {**f, "title": [t.decode() for t in f["title"]]} for f in forked],
    "environ": dict(os.environ), "pid": os.getpid(), "argv": sys.argv[1:]}))
"""


def test_run_forks_without_credentials_and_gets_its_whole_environment_back(
    tmp_path: Path,
) -> None:
    """A venue's credentials and an unrelated secret in the supervisor's environment: when
    it forks the fork server, neither is in its os.environ nor in its environment block
    (re-executed: same pid, same arguments), and the fork server holds no fd of the memfd
    that keeps the rest, nor the supervisor's stdin (/dev/null, as launched); after the
    fork the supervisor has its whole environment again, without the marker; the fork
    server's command line names it."""
    venue = {"name": "simA", "username_env": "TP_SIMA_USER", "password_env": "TP_SIMA_PW"}
    config = tmp_path / "config.toml"
    config.write_text(to_toml(make_config(venues=("simA",), overrides={"venues": [venue]})))
    secrets = {"TP_SIMA_USER": "u-41c7", "TP_SIMA_PW": "pw-83d0", "DEPLOY_TOKEN": "tok-5e21"}
    env = {**os.environ, **secrets, "ODD": "caf\xe9 \x01"}
    argv = ["run", "--config", str(config), "--state-dir", str(tmp_path / "s"),
            "--runtime-dir", str(tmp_path), "--host-group", "nosuch"]  # fmt: skip
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, *argv], input="",  # stdin: a pipe
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["code"] == 2, out.stderr
    (forked,) = result["forked"]
    assert forked["pid"] == result["pid"] and result["argv"] == argv
    for value in secrets.values():
        assert value not in forked["block"] and value not in forked["environ"].values()
    assert forked["environ"]["PATH"] == env["PATH"]
    assert forked["title"] == ["tradepulse-forkserver", "-m", "actors.supervisor.forkserver"]
    assert result["environ"] == env  # whole again, no marker
    assert not [fd for fd in forked["fds"] if "memfd" in fd]  # the whole environment's
    assert forked["stdin"] == "/dev/null"  # not the supervisor's terminal


def test_a_marker_that_names_no_memfd_of_ours_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    """An inherited variable of the marker's name (fd 0 here) is dropped, never read as an
    environment to restore."""
    monkeypatch.setenv(ff.MARKER, "0")
    assert ff._marker_fd() is None
    assert ff.MARKER not in os.environ


@pytest.mark.parametrize("junk", ["²", "9" * 5000])
def test_a_marker_that_is_no_number_int_takes_is_ignored(
    monkeypatch: pytest.MonkeyPatch, junk: str
) -> None:
    """A marker variable of junk: "²" (a digit to `str.isdigit`) or 5000 digits made
    `int()` raise, and `run` ended in a ValueError traceback, exit 1, before its start."""
    monkeypatch.setenv(ff.MARKER, junk)
    assert ff._marker_fd() is None
    assert ff.MARKER not in os.environ


def test_a_forked_child_is_polled_waited_and_killed_like_a_popen() -> None:
    """poll is None while it runs; kill, then wait gives -SIGKILL; a child some other
    waitpid reaped first reads as exited (-1), never raises."""
    pid = os.fork()
    if pid == 0:
        signal.pause()
        os._exit(0)
    child = ff.ForkedChild(pid)
    assert child.poll() is None
    with pytest.raises(subprocess.TimeoutExpired):
        child.wait(timeout=0.05)
    child.kill()
    assert child.wait(timeout=10) == -signal.SIGKILL
    pid = os.fork()
    if pid == 0:
        os._exit(3)
    os.waitpid(pid, 0)  # the daemon's waitpid(-1), say
    assert ff.ForkedChild(pid).wait(timeout=1) == -1


def test_retitle_shows_the_title_in_the_command_line() -> None:
    """The argv area is overwritten: /proc/PID/cmdline reads the title's words (cut to the
    area's size)."""
    code = (
        "import sys\n"
        "from actors.supervisor.forkserver_fork import _retitle\n"
        "_retitle('one\\0two')\n"
        "print(open('/proc/self/cmdline', 'rb').read().rstrip(b'\\0').split(b'\\0'))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, "padding" * 4],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().replace("b'", '"').replace("'", '"')) == ["one", "two"]


def test_the_shared_modules_are_the_supervisors_and_an_actors_and_load_no_prometheus(
    tmp_path: Path,
) -> None:
    """Every module the supervisor imports before the fork besides the fork server's warm
    list loads without prometheus_client (which reads the metrics dir, not known before the
    fork, at import), and is one the supervisor's daemon imports anyway and one the fork
    server's preload imports (else the list is stale: private memory in one of them)."""
    missing = "print(*sorted(set(ff.SHARED_MODULES) - set(sys.modules)))\n"
    head = "import sys\nfrom actors.supervisor import forkserver as fs, forkserver_fork as ff\n"
    probes = {
        "warm": "fs.warm((), ff.SHARED_MODULES)\nprint('prometheus_client' in sys.modules)\n",
        "supervisor": "import supervisor\nfrom actors.supervisor import daemon\n",
        "preload": "fs.preload()\n",
    }
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for name, probe in probes.items():
        out = subprocess.run(
            [sys.executable, "-c", head + probe + missing],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, env=env,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        expected = "False\n\n" if name == "warm" else "\n"
        assert out.stdout == expected, (name, out.stdout)


def test_the_process_that_re_executes_imports_no_actors_package() -> None:
    """`run` re-executes itself before importing the `actors` package (whose import loads
    structlog: ~0.05 s of CPU the re-executed process would pay again)."""
    code = "import sys, supervisor\nprint('actors' in sys.modules, 'structlog' in sys.modules)\n"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]


_CTRL_C_IN_THE_FORK = """
import json, os, signal, sys
import psutil
import supervisor
fired = []
def ctrl_c():  # the operator's Ctrl-C, landing while os.fork runs its at-fork hooks
    if not fired:
        fired.append(os.getpid())
        os.kill(os.getpid(), signal.SIGINT)
os.register_at_fork(after_in_parent=ctrl_c)
code = supervisor.main(sys.argv[1:])
children = [p.pid for p in psutil.Process().children()]
print(json.dumps({"code": code, "fired": fired, "children": children}))
"""


def test_ctrl_c_while_the_fork_server_is_forked_stops_the_start(short_tmp: Path) -> None:
    """SIGINT that comes while the supervisor forks its fork server (here: sent by an
    at-fork hook, the window where logging's hook used to swallow it as "Exception
    ignored", and the supervisor went on starting): the start stops with one line, exit
    130, the fork server killed and reaped."""
    config = short_tmp / "config.toml"
    config.write_text(to_toml(make_config(venues=("simA",))))
    argv = ["run", "--config", str(config), "--state-dir", str(short_tmp / "state"),
            "--runtime-dir", str(short_tmp / "rt")]  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-c", _CTRL_C_IN_THE_FORK, *argv], stdin=subprocess.DEVNULL,
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        out, err = proc.communicate(timeout=30)  # it started the system instead: never
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    result = json.loads(out.strip().splitlines()[-1])
    assert result["fired"], err  # the re-executed supervisor forked (`reexec`, `start`)
    assert (result["code"], err) == (130, "tradepulse: interrupted\n")
    assert result["children"] == []  # the fork server: discarded


def test_ctrl_c_before_the_fork_server_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    """SIGINT while `run` still parses its arguments and imports (before the re-execution
    and the fork server; here: sent from the parser): one line, exit 130, no traceback."""
    code = (
        "import os, signal, sys\n"
        "import supervisor\n"
        "parse = supervisor._parse\n"
        "def ctrl_c(argv):\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    return parse(argv)\n"
        "supervisor._parse = ctrl_c\n"
        "sys.exit(supervisor.main(sys.argv[1:]))\n"
    )
    argv = ["run", "--config", str(tmp_path / "none.toml")]
    out = subprocess.run(
        [sys.executable, "-c", code, *argv], stdin=subprocess.DEVNULL,
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert (out.returncode, out.stderr) == (130, "tradepulse: interrupted\n")
