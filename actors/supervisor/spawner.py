"""Starting actor processes: through the preloaded fork server, or by exec of a fresh
interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Literal, Protocol

from actors.runtime.actor import ActorArgs
from actors.supervisor.forkserver import encode_request


class Spawner(Protocol):
    def spawn(self, args: ActorArgs) -> int: ...
    def close(self) -> None: ...


class ExecSpawner:
    """`python -m actors ...` in a new session (its own process group)."""

    def __init__(self, env: dict[str, str]) -> None:
        self._env = env
        self._procs: dict[int, subprocess.Popen[bytes]] = {}

    def spawn(self, args: ActorArgs) -> int:
        from actors.__main__ import to_argv

        proc = subprocess.Popen(
            [sys.executable, "-m", "actors", *to_argv(args)],
            env=self._env,
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

    def __init__(self, env: dict[str, str]) -> None:
        req_r, self._req_w = os.pipe()
        self._resp_r, resp_w = os.pipe()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "actors.supervisor.forkserver", str(req_r), str(resp_w)],
            env=env,
            pass_fds=(req_r, resp_w),
            stdin=subprocess.DEVNULL,
        )
        os.close(req_r)
        os.close(resp_w)
        self._resp = os.fdopen(self._resp_r, "r")
        self._req = os.fdopen(self._req_w, "w", buffering=1)
        hello = self._read()
        if "ready" not in hello:
            raise RuntimeError(f"fork server failed to start: {hello}")

    def _read(self) -> dict[str, object]:
        line = self._resp.readline()
        if not line:
            raise RuntimeError("fork server exited")
        answer: dict[str, object] = json.loads(line)
        return answer

    def spawn(self, args: ActorArgs) -> int:
        self._req.write(encode_request(args))
        answer = self._read()
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
            self._req.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def make_spawner(how: Literal["forkserver", "exec"]) -> Spawner:
    """A spawner of the configured kind (`supervisor.spawn`), with this environment."""
    env = dict(os.environ)
    return ForkServerSpawner(env) if how == "forkserver" else ExecSpawner(env)
