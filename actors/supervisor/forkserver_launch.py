"""Launching the fork server before the supervisor's own imports, so that the two overlap.

A start is in series: the supervisor's interpreter and imports (~0.45 s: pydantic, the
config, zmq, the control plane), then the fork server's (~0.45 s: the same libraries and
every actor module), then the first spawn. `tradepulse run` therefore launches the fork
server first thing (`launch_early`, this module imports nothing heavy), with the part of
the environment it can already tell; the fork server imports the libraries every actor
needs while the supervisor loads its config. The supervisor then sends the setup (`setup`):
the actors' base environment, which now holds `PROMETHEUS_MULTIPROC_DIR` (prometheus_client
reads it at import, so the fork server imports no actor module before the setup), the
actor kinds to preload, and the supervisor's stdout and stderr as they are by then (the log
capture's pipes: the fork server was launched before they existed).
`actors.supervisor.spawner` adopts the launched process (`adopt`).

The early environment is the actors' base (`environ.BASE_VARS`, `BASE_PREFIXES`) without
`PROMETHEUS_MULTIPROC_DIR` and without every variable the config file names under a key
ending in `_env` (a venue's credentials, read from the raw TOML: pydantic is not loaded
yet). Once the config is loaded, `setup` checks that the early environment is a part of the
base the config yields (`ActorEnv`); if not (a credential named elsewhere, say), the early
process is killed and the spawner starts one as before. With `supervisor.spawn = "exec"`
it is killed unused.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Protocol

from protocol.start_env import config_of as config_of
from protocol.start_env import credential_names as credential_names
from protocol.start_env import early_environ as early_environ
from protocol.start_env import option as _option

SETUP_KEY = "setup"  # the first request line: {"setup": {"env": {...}, "kinds": [...]}}


class ServerProc(Protocol):
    """What the spawner uses of the fork server's process (a `Popen`, or a forked child:
    `forkserver_fork.ForkedChild`)."""

    @property
    def pid(self) -> int: ...
    def poll(self) -> int | None: ...
    def wait(self, timeout: float | None = None) -> int: ...
    def kill(self) -> None: ...


class ForkServerProcess:
    """The fork server process and its two pipes (the protocol: `actors.supervisor.forkserver`)."""

    proc: ServerProc

    def __init__(self, env: Mapping[str, str], expected: Collection[str] = ()) -> None:
        """`expected`: the actor kinds it is likely to preload (it imports part of their
        modules before the setup, `forkserver.warm`)."""
        self.env = dict(env)  # what it was started with (its /proc environment block)
        self.setup_sent: tuple[dict[str, str], tuple[str, ...]] | None = None
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        self._fds, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "actors.supervisor.forkserver"]
                + [str(req_r), str(resp_w), str(theirs.fileno()), *sorted(expected)],
                env=self.env,
                pass_fds=(req_r, resp_w, theirs.fileno()),
                stdin=subprocess.DEVNULL,
            )
        except BaseException:
            for fd in (req_r, req_w, resp_r, resp_w):
                os.close(fd)
            self._fds.close()
            raise
        finally:
            theirs.close()
        os.close(req_r)
        os.close(resp_w)
        self.resp = os.fdopen(resp_r, "r")
        self.req = os.fdopen(req_w, "w", buffering=1)

    def setup(self, env: Mapping[str, str], kinds: Collection[str]) -> None:
        """Send the actors' base environment and the kinds to preload (once), and this
        process's fd 1 and 2 as they are now (the log capture's pipes, `logfiles`), which
        become the fork server's and so every actor's stdout and stderr."""
        if self.setup_sent is None:
            self.setup_sent = (dict(env), tuple(sorted(kinds)))
            body = {"env": self.setup_sent[0], "kinds": list(self.setup_sent[1])}
            self.req.write(json.dumps({SETUP_KEY: body}) + "\n")
            socket.send_fds(self._fds, [b"1"], [1, 2])
            self._fds.close()

    def read(self) -> dict[str, Any]:
        line = self.resp.readline()
        if not line:
            raise RuntimeError("fork server exited")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def kill(self) -> None:
        """Kill it (it holds nothing yet) and reap it; close the pipes."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for f in (self.req, self.resp, self._fds):
            try:
                f.close()
            except OSError:
                pass


_early: ForkServerProcess | None = None


def launch_early(argv: Sequence[str], environ: Mapping[str, str]) -> ForkServerProcess | None:
    """For `run` (the first argument): launch the fork server now; None for anything else,
    or when it could not be launched (the spawner then starts one as before)."""
    global _early
    if not argv or argv[0] != "run" or _early is not None:
        return None
    env = early_environ(environ, config_of(argv))
    if env is None:
        return None
    try:
        _early = ForkServerProcess(env, expected_kinds(argv))
    except OSError:
        return None
    return _early


def adopt_forked(server: ForkServerProcess) -> None:
    """`server` (forked by `forkserver_fork`) is the early fork server, set up and adopted
    as a launched one would be."""
    global _early
    if _early is not None:
        server.kill()
        return
    _early = server


def expected_kinds(argv: Sequence[str]) -> tuple[str, ...]:
    """The actor kinds a `run` of `argv` likely preloads (its host group's; a guess)."""
    core = (_option(argv, "--host-group") or "core") == "core"
    return ("oms", "risk", "connector", "venuesim") if core else ("connector", "venuesim")


def setup(base: Mapping[str, str], kinds: Collection[str]) -> None:
    """Once the config is loaded and the runtime dir prepared: send the early fork server
    its setup, or kill it when its environment is not a part of `base`."""
    global _early
    if _early is None:
        return
    if not _early.env.items() <= dict(base).items():
        discard()
        return
    try:
        _early.setup(base, kinds)
    except OSError:  # it died meanwhile: the spawner starts another
        discard()


def adopt(base: Mapping[str, str], kinds: Collection[str]) -> ForkServerProcess | None:
    """The early fork server for a spawner of `base` and `kinds` (set up now if it was not);
    None when there is none or it does not match (then it is killed)."""
    global _early
    setup(base, kinds)
    proc, _early = _early, None
    if proc is None:
        return None
    if proc.setup_sent != (dict(base), tuple(sorted(kinds))):
        proc.kill()
        return None
    return proc


def discard() -> None:
    """Kill an early fork server nobody adopted (a start that failed, `spawn = "exec"`)."""
    global _early
    proc, _early = _early, None
    if proc is not None:
        proc.kill()
