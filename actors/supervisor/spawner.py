"""Starting actor processes: through the preloaded fork server, or by exec of a fresh
interpreter; each with only the environment it needs (see supervisor environ)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Collection, Mapping
from typing import Any, Protocol

from actors.runtime.actor import ActorArgs
from actors.supervisor import forkserver_launch
from actors.supervisor.environ import ActorEnv
from actors.supervisor.forkserver import encode_request
from actors.supervisor.restart_policy import ChildSpec
from protocol.config import SystemConfig


class Spawner(Protocol):
    def spawn(self, args: ActorArgs) -> int: ...
    def close(self) -> None: ...
    def discard(self) -> None: ...  # after a failed spawn: released at once


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

    def discard(self) -> None:
        self.close()  # nothing of its own runs: each actor is its own process


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
        try:
            hello = server.read()
        except BaseException:
            self.discard()
            raise
        if "ready" not in hello:
            self.discard()
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

    def close(self, timeout_s: float = 2.0) -> None:
        """Ask it to end (its request pipe closed); killed if it has not after `timeout_s`."""
        try:
            self._server.req.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._server.resp.close()

    def discard(self) -> None:
        """A fork server that failed: killed now (it may be wedged), not waited for."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.close(timeout_s=1.0)


def actor_args(
    spec: ChildSpec, epoch: int, config_path: str, cold: bool, overrides: Mapping[str, Any]
) -> ActorArgs:
    """What incarnation `epoch` of `spec` is started with (`overrides`: the supervisor's
    command-line overrides, which every actor takes)."""
    return ActorArgs(
        actor_id=spec.id,
        kind=spec.kind,
        epoch=epoch,
        config_path=config_path,
        cold=cold,
        venue=spec.venue,
        supervisor_pid=os.getpid(),
        # a venue sim runs the venues it was started with, whatever the file says now
        extra={"guests": list(spec.guests)} if spec.kind == "venuesim" else {},
        **overrides,
    )


class SpawnFailed(Exception):
    """No process could be started: the spawner failed, and a new one too (or could not be
    made)."""


class Spawning:
    """The supervisor's spawner, replaced when a spawn fails (the fork server died or
    answered an error): the failed one is discarded (a fork server killed, none left
    running) and the spawn tried once on a new one. When that fails as well (the host
    refuses forks: its pid or memory limit), `SpawnFailed`; the next spawn makes a new
    spawner first. `on_replaced(actor id, error)`: the first failure, before the retry."""

    def __init__(
        self, make: Callable[[], Spawner], on_replaced: Callable[[str, str], None]
    ) -> None:
        self._make, self._on_replaced = make, on_replaced
        self._spawner: Spawner | None = make()  # at start: a failure is the supervisor's

    def spawn(self, args: ActorArgs) -> int:
        if self._spawner is not None:
            try:
                return self._spawner.spawn(args)
            except (OSError, RuntimeError) as exc:
                self._on_replaced(args.actor_id, str(exc))
                self._discard()
        try:
            self._spawner = self._make()
            return self._spawner.spawn(args)
        except (OSError, RuntimeError) as exc:
            self._discard()
            raise SpawnFailed(str(exc)) from exc

    def close(self) -> None:
        if self._spawner is not None:
            self._spawner.close()
            self._spawner = None

    def _discard(self) -> None:
        spawner, self._spawner = self._spawner, None
        if spawner is not None:
            spawner.discard()


def make_spawner(cfg: SystemConfig, kinds: Collection[str] = ()) -> Spawner:
    """A spawner of the configured kind (`supervisor.spawn`), preloading the actor `kinds`
    this supervisor runs (every kind when empty); each actor gets the part of this
    process's environment it needs."""
    env = ActorEnv(cfg, os.environ)
    if cfg.supervisor.spawn == "forkserver":
        return ForkServerSpawner(env, kinds)
    forkserver_launch.discard()  # `run` launched one early, before it read the config
    return ExecSpawner(env)
