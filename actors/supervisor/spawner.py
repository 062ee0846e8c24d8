"""Starting actor processes: through the preloaded fork server, or by exec of a fresh
interpreter; each with only the environment it needs (see supervisor environ)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Collection
from typing import Protocol

from actors.runtime.actor import ActorArgs
from actors.supervisor import forkserver_launch
from actors.supervisor.environ import ActorEnv
from actors.supervisor.forkserver import encode_request
from protocol.config import SystemConfig


class Spawner(Protocol):
    def spawn(self, args: ActorArgs) -> int: ...
    def close(self) -> None: ...


class ExecSpawner:
    """`python -m actors ...` in a new session (its own process group)."""

    def __init__(self, env: ActorEnv) -> None:
        self._env = env
        self._procs: dict[int, subprocess.Popen[bytes]] = {}

    def spawn(self, args: ActorArgs) -> int:
        from actors.__main__ import to_argv

        proc = subprocess.Popen(
            [sys.executable, "-m", "actors", *to_argv(args)],
            env=self._env.full(args),
            start_new_session=True,
            stdin=subprocess.DEVNULL,
        )
        self._procs[proc.pid] = proc
        proc.returncode = 0  # the supervisor reaps with waitpid; keep Popen from doing it too
        return proc.pid

    def close(self) -> None:
        self._procs.clear()


class ForkServerSpawner:
    """Talks to `actors.supervisor.forkserver` over two pipes; spawns take a few milliseconds."""

    def __init__(self, env: ActorEnv, kinds: Collection[str] = ()) -> None:
        """`kinds`: the actor kinds to preload (every kind when empty). The fork server
        `run` launched early (`forkserver_launch`) if it matches, else a new one."""
        self._env = env
        server = forkserver_launch.adopt(env.base, kinds)
        if server is None:  # none launched early (tests, `tradepulse` as a library), or killed
            server = forkserver_launch.ForkServerProcess(env.base)  # no credentials
            server.setup(env.base, kinds)
        self._server = server
        self.proc = server.proc
        hello = server.read()
        if "ready" not in hello:
            raise RuntimeError(f"fork server failed to start: {hello}")

    def spawn(self, args: ActorArgs) -> int:
        self._server.req.write(encode_request(args, self._env.extra(args)))
        answer = self._server.read()
        if "pid" not in answer:
            raise RuntimeError(
                f"fork server could not spawn {args.actor_id}: {answer.get('error')}"
            )
        pid = answer["pid"]
        if not isinstance(pid, int):
            raise RuntimeError(f"fork server answered a bad pid: {pid!r}")
        return pid

    def close(self) -> None:
        try:
            self._server.req.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._server.resp.close()


def make_spawner(cfg: SystemConfig, kinds: Collection[str] = ()) -> Spawner:
    """A spawner of the configured kind (`supervisor.spawn`), preloading the actor `kinds`
    this supervisor runs (every kind when empty); each actor gets the part of this
    process's environment it needs."""
    env = ActorEnv(cfg, os.environ)
    if cfg.supervisor.spawn == "forkserver":
        return ForkServerSpawner(env, kinds)
    forkserver_launch.discard()  # `run` launched one early, before it read the config
    return ExecSpawner(env)
