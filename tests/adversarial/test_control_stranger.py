"""The operator CLI takes an answer on the control socket only from the supervisor.

A same-uid process that removed `control.sock` from the runtime dir and bound its own
(`tests/adversarial/control_stranger.py`: it answers every command with a well-formed `ok`)
had the CLI print success for `kill-switch engage` or `stop connector.simA` while nothing
happened, exit 0. Now each reply's binder (its connection's Peer-Address, SO_PEERCRED) must
be the supervisor that recorded itself in the runtime dir (`protocol/control_binder.py`):
anything else is one stderr line naming the binder's pid and the supervisor's, exit 4,
never the stranger's answer. Unit tests of the decision: tests/protocol/test_control_binder.py.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from actors.supervisor.exit_codes import EXIT_NOT_SUPERVISOR
from protocol import control, paths
from protocol.control_binder import Identity, identity_path, read_identity, start_ticks
from tests.helpers import REPO_ROOT, SystemUnderTest, eventually

pytestmark = pytest.mark.integration


def _listener_pid(path: Path) -> int | None:
    """The pid that bound the unix socket at `path` (SO_PEERCRED of a connection to it)."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
        cred = probe.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return None
    finally:
        probe.close()
    return int(struct.unpack("3i", cred)[0])


@contextmanager
def _stranger(sut: SystemUnderTest, *, record: bool = False) -> Iterator[subprocess.Popen[str]]:
    """A process that is not the supervisor nor one of its children, bound at the control
    socket (checked by the kernel's word: the socket file's listener is its pid). `record`:
    it records itself as the runtime dir's supervisor first, as a supervisor does."""
    endpoint = sut.cfg.endpoint(paths.CONTROL)
    argv = [sys.executable, "-m", "tests.adversarial.control_stranger", endpoint]
    argv += ["record"] if record else []
    proc = subprocess.Popen(argv, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        file = paths.socket_file(sut.cfg.runtime_path, paths.CONTROL)
        eventually(lambda: _listener_pid(file) == proc.pid or proc.poll() is not None, 10.0)
        assert proc.poll() is None, "the stranger did not start"
        yield proc
    finally:
        proc.kill()
        proc.communicate(timeout=5)


def _answered(stranger: subprocess.Popen[str]) -> list[str]:
    """What the stranger answered `ok` to (it is killed here)."""
    stranger.kill()
    out, _ = stranger.communicate(timeout=5)
    return out.split()[1::2]


def _refused(result: subprocess.CompletedProcess[str]) -> str:
    """The one stderr line of a refused answer (exit 4, nothing on stdout)."""
    assert result.returncode == EXIT_NOT_SUPERVISOR, (
        result.returncode,
        result.stdout,
        result.stderr,
    )
    assert result.stdout == "" and "Traceback" not in result.stderr, result
    [line] = result.stderr.splitlines()
    assert line.startswith("tradepulse: the control socket is bound by pid"), line
    assert line.endswith("refusing its answer"), line
    return line


def test_the_cli_takes_no_answer_from_a_stranger_at_a_live_supervisors_control_socket(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """The supervisor answers `status` (accepted); then a stranger takes the control socket
    over and answers `ok` to `kill-switch engage`, `stop`, `positions` and `top`'s status
    (each helper path of the CLI: control_command, `--json`, a command with its own request,
    the live view): each is
    refused with the stranger's pid and the supervisor's, exit 4; the system never saw
    them (nothing in the audit log, where every acting command is recorded)."""
    sut = start_system(venues=("simA",))
    assert sut.proc is not None
    accepted = sut.cli("status")
    assert accepted.returncode == 0, accepted.stderr
    with _stranger(sut) as stranger:
        expected = f"bound by pid {stranger.pid}, not the supervisor (pid {sut.proc.pid})"
        engage = sut.cli("kill-switch", "engage", "--reason", "desk drill")
        assert expected in _refused(engage)
        stop = sut.cli("stop", "connector.simA", "--reason", "drill", "--json")
        assert stop.returncode == EXIT_NOT_SUPERVISOR, stop
        assert '"status": "error"' in stop.stdout and expected in stop.stdout, stop.stdout
        assert expected in _refused(sut.cli("positions"))
        assert expected in _refused(sut.cli("top", "--once"))
        answered = _answered(stranger)
    assert answered == ["kill-switch", "stop", "positions", "status"]  # each forged `ok`
    assert sut.proc.poll() is None
    assert not paths.audit_log_path(sut.state_dir).exists()  # `status` alone reached it


def _dead_identity(sut: SystemUnderTest) -> int:
    """Record, as the runtime dir's supervisor, a process that has exited; its pid."""
    proc = subprocess.Popen(["sleep", "60"])
    ticks = start_ticks(proc.pid)
    proc.send_signal(signal.SIGKILL)
    proc.wait(5)
    path = identity_path(sut.cfg.runtime_path)
    path.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
    path.write_text(f'{{"pid": {proc.pid}, "start_ticks": {ticks}}}\n')
    return proc.pid


@pytest.mark.parametrize("record", ["dead", "none"])
def test_the_cli_refuses_a_stranger_at_the_socket_of_a_supervisor_gone(record: str) -> None:
    """No supervisor runs (it died, or none ever ran on this runtime dir) and a stranger
    bound the control socket: `stop connector.simA` is refused, exit 4, naming the stranger
    and the exited supervisor, or the missing record."""
    sut = SystemUnderTest(venues=("simA",))
    try:
        paths.socket_file(sut.cfg.runtime_path, paths.CONTROL).parent.mkdir(mode=0o700)
        dead = _dead_identity(sut) if record == "dead" else None
        with _stranger(sut) as stranger:
            line = _refused(sut.cli("stop", "connector.simA", "--reason", "drill"))
            if dead is not None:
                assert (
                    f"pid {stranger.pid}, not the supervisor (pid {dead}, which has exited)" in line
                )
            else:
                assert f"pid {stranger.pid}, and no supervisor recorded itself" in line
            assert _answered(stranger) == ["stop"]
    finally:
        sut.destroy()


def test_the_answer_of_a_supervisor_restarted_while_the_cli_waits_is_taken(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The supervisor restarts (`systemctl restart`, a crash restarted by systemd or the
    kubelet) after the CLI read its record and before the request reached it: the new
    supervisor, recorded in the runtime dir under its lock, gets the request and answers.
    That answer was refused as a stranger's (`bound by pid B, not the supervisor (pid A,
    which has exited)`, exit 4: an intrusion to the runbook, and the command carried out
    all the same); now the record is read again and the answer taken."""
    sut = SystemUnderTest(venues=("simA",))
    restarted: list[int] = []
    try:
        sut.cfg.runtime_path.mkdir(mode=0o700)
        with ExitStack() as stack:
            first = stack.enter_context(_stranger(sut, record=True))

            def read_then_restart(runtime_dir: Path) -> Identity | None:
                recorded = read_identity(runtime_dir)
                if not restarted:  # the first read, before the request goes out
                    first.kill()
                    first.wait(5)
                    restarted.append(stack.enter_context(_stranger(sut, record=True)).pid)
                return recorded

            monkeypatch.setattr(control, "read_identity", read_then_restart)
            reply = control.control_request(sut.cfg, "status", timeout_s=10.0)
            assert (reply.status, reply.reason) == ("ok", "status done"), reply
            assert read_identity(sut.cfg.runtime_path) == Identity(
                restarted[0], start_ticks(restarted[0]) or -1
            )
    finally:
        sut.destroy()


@pytest.mark.parametrize(
    "argv",
    [
        ("positions", "--json"),
        ("fix", "seq", "--venue", "simA", "--next-in", "5", "--reason", "drill", "--json"),
    ],
    ids=["positions", "fix-seq"],
)
def test_a_refused_answer_is_an_error_envelope_under_json(argv: tuple[str, ...]) -> None:
    """`--json` and a stranger at the control socket: like `stop --json`, one error envelope
    on stdout naming the stranger, exit 4. The commands that send their own requests
    (`positions`, `fix seq` setting) printed a plain stderr line and nothing on stdout,
    where a script reading the envelope found no JSON."""
    sut = SystemUnderTest(venues=("simA",))
    try:
        paths.socket_file(sut.cfg.runtime_path, paths.CONTROL).parent.mkdir(mode=0o700)
        with _stranger(sut) as stranger:
            result = sut.cli(*argv)
            assert result.returncode == EXIT_NOT_SUPERVISOR, result
            assert result.stderr == "", result.stderr
            envelope = json.loads(result.stdout)
            assert envelope["status"] == "error" and envelope["data"] == {}, envelope
            assert f"bound by pid {stranger.pid}, and no supervisor" in envelope["reason"]
    finally:
        sut.destroy()


@pytest.mark.parametrize("record", ["fifo", "dev-zero"])
def test_a_record_that_is_no_file_is_no_record_and_the_cli_keeps_its_deadline(
    record: str,
) -> None:
    """A same-uid stranger at the control socket put a FIFO, or a link to /dev/zero, where
    the supervisor's record goes: the CLI waited on the FIFO for good (its `--timeout-s`
    never reached) or read /dev/zero until its memory ran out. Now that is no record: exit 4
    within the deadline, naming the stranger."""
    sut = SystemUnderTest(venues=("simA",))
    try:
        paths.socket_file(sut.cfg.runtime_path, paths.CONTROL).parent.mkdir(mode=0o700)
        path = identity_path(sut.cfg.runtime_path)
        with _stranger(sut) as stranger:
            if record == "fifo":
                os.mkfifo(path)
            else:
                path.symlink_to("/dev/zero")
            line = _refused(sut.cli("status", "--timeout-s", "2", timeout_s=20.0))
            assert f"pid {stranger.pid}, and no supervisor recorded itself" in line
    finally:
        sut.destroy()


UNSHARE = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"]


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root's unshare"
)
def test_across_pid_namespaces_the_supervisor_is_known_and_a_stranger_not_accused() -> None:
    """The supervisor in a pid namespace of its own (a container: it records pid 1), the
    CLI on its host with the runtime dir at hand: the CLI sees the host's pid of it and
    refused its answer as a stranger's (`bound by pid H, not the supervisor (pid 1, which has
    exited)`, and the runbook says to stop pid H: the supervisor). Now its answer is taken
    (its innermost pid and start time are the recorded ones). A CLI in a pid namespace of
    its own sees the binder as pid 0: refused, saying so, not `no peer credentials`."""
    sut = SystemUnderTest(venues=("simA",))
    endpoint = sut.cfg.endpoint(paths.CONTROL)
    file = paths.socket_file(sut.cfg.runtime_path, paths.CONTROL)
    argv = [sys.executable, "-m", "tests.adversarial.control_stranger", endpoint, "record"]
    try:
        file.parent.mkdir(mode=0o700)
        contained = subprocess.Popen([*UNSHARE, *argv], cwd=REPO_ROOT, stdout=subprocess.PIPE)
        try:
            eventually(
                lambda: _listener_pid(file) is not None or contained.poll() is not None, 10.0
            )
            assert contained.poll() is None, "the contained supervisor did not start"
            assert json.loads(identity_path(sut.cfg.runtime_path).read_text())["pid"] == 1
            taken = sut.cli("status", "--json", "--timeout-s", "5")
            assert taken.returncode == 0, taken
            assert json.loads(taken.stdout)["reason"] == "status done"  # its answer
        finally:
            contained.kill()
            contained.communicate(timeout=5)
        with _stranger(sut, record=True):
            inside = [*UNSHARE, sys.executable, str(REPO_ROOT / "supervisor.py")]
            cli = [*inside, "status", "--timeout-s", "5", *sut.cli_args()]
            result = subprocess.run(
                cli, cwd=REPO_ROOT, env=sut.env, capture_output=True, text=True, timeout=30
            )
            line = _refused(result)
            assert "pid 0 here, a process outside this CLI's pid namespace" in line, line
    finally:
        sut.destroy()
