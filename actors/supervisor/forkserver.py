"""The fork server: a preloaded interpreter that forks actor processes in ~ms.

A cold interpreter importing pydantic, structlog, zmq and prometheus_client takes ~170 ms;
forking this already-initialised process takes a few ms. The supervisor starts one fork
server and sends it spawn requests over a pipe; the fork server double-forks so that the
actor is re-parented to the supervisor (a child subreaper), which then sees its exit with
SIGCHLD and waitpid like any other child. The fork server itself never creates a ZeroMQ
context or a thread, so forking it is safe.

The fork server also loads the system config before it forks (`ConfigCache`), so an actor
starts with it instead of parsing and validating it again in its own memory: the parsed
config, and the pages the parse would touch (tomllib, pydantic's validators), stay shared
(issue 16: the parse made ~1.1 MiB of private dirty memory in every actor).

Protocol (pipes, one JSON object per line): first the setup `{"setup": {"env": {...},
"kinds": [...]}}` (the actors' base environment, which replaces the fork server's own, and
the actor kinds to preload; with it, over a Unix socket, the supervisor's fd 1 and 2, which
become the fork server's), answered `{"ready": PID}` once preloaded; the fork server is
launched before the supervisor knows them (`forkserver_launch`), and until the setup it
imports only what reads no environment (`warm`: never prometheus_client).
Then requests `{"args": {...ActorArgs...}, "env": {...}}` (`env`: variables the actor gets
on top of the base, e.g. a connector's credentials), answer `{"pid": N}` or `{"error":
"..."}`.
"""

from __future__ import annotations

import gc
import importlib
import importlib.abc
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Collection
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from actors.runtime.hardening import make_undumpable, set_parent_death_signal
from actors.runtime.logs import configure_logging
from actors.supervisor.malloc_fill import fill_holes
from actors.supervisor.memory_merge import set_memory_merge
from actors.supervisor.pool_fill import fill_free_blocks
from protocol import paths
from protocol.config import SystemConfig, load_config

if TYPE_CHECKING:  # imported after the setup: actors.runtime.actor loads prometheus_client
    from actors.runtime.actor import ActorArgs

_REPARENT_DEADLINE_S = 2.0
# what every actor imports and what reads no environment variable at import: loaded while
# the supervisor loads its config (before the setup); prometheus_client must not be here
WARM_MODULES = (
    "pydantic", "zmq", "structlog", "msgspec", "protocol.messages", "protocol.codec",
    "protocol.config", "actors.runtime.logs", "actors.runtime.timers", "actors.runtime.durable",
)  # fmt: skip
# and of the kinds the launcher expects (`forkserver_launch`: a guess, the setup decides),
# the parts of their modules that load no prometheus_client (~40% of their import time)
WARM_BY_KIND = {
    "oms": ("sqlite3", "actors.oms.order_book", "actors.oms.journal", "actors.oms.reconcile"),
    "risk": ("actors.risk.checks", "actors.risk.exposure"),
    "connector": ("simplefix", "actors.connector.fix.queries", "actors.connector.fix.store"),
    "venuesim": ("actors.venuesim.engine", "actors.venuesim.fixmap", "actors.venuesim.pump"),
}
_DEFERRED = "prometheus_client"  # reads PROMETHEUS_MULTIPROC_DIR at import


class _Defer(importlib.abc.MetaPathFinder):
    """Refuses `_DEFERRED` while installed: a warm module that needs it fails to import
    (and is imported after the setup, with the metrics dir), never loads it early."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> None:
        if name.partition(".")[0] == _DEFERRED:
            raise ImportError(f"{name}: not before the fork server's setup")


def warm(kinds: Collection[str], extra: Collection[str] = ()) -> None:
    """Before the setup: import `WARM_MODULES`, the warm modules of `kinds` and `extra`,
    never prometheus_client (a module that would load it is left for the preload)."""
    defer = _Defer()
    sys.meta_path.insert(0, defer)
    by_kind = (m for k in kinds for m in WARM_BY_KIND.get(k, ()))
    try:
        for module in (*WARM_MODULES, *by_kind, *extra):
            try:
                importlib.import_module(module)
            except ImportError:
                pass  # deferred, or gone: the preload imports what the actors need
    finally:
        sys.meta_path.remove(defer)


def preload(kinds: Collection[str] = ()) -> None:
    """Import the module of every actor kind in `kinds` (every kind when empty) so a forked
    child starts warm, then move every object made so far into the permanent generation
    (`gc.freeze()`): the collector of a forked actor then never visits (and so never
    writes the GC header of) the preloaded modules' objects, so their pages stay shared
    with the fork server instead of being copied into every busy actor, and a full
    collection has ~100k fewer objects to traverse. A kind left out (the simulated
    exchange and its aiohttp: ~0.1 s of every start) is imported by its child if spawned."""
    from actors.runtime.process import ACTOR_KINDS

    for kind, target in ACTOR_KINDS.items():
        if kinds and kind not in kinds:
            continue
        module = target.partition(":")[0]
        try:
            importlib.import_module(module)
        except ImportError:
            pass  # a kind not yet built; it fails at spawn with a clear error
    _freeze_heap(c_heap=True)


class ConfigCache:
    """The system config as an actor would load it (`load_config` of its `config_path` and
    overrides), parsed once in the fork server and handed to every actor forked with the
    same file content and overrides. The file is read at every spawn, so a changed config
    (a reload, a restart after an edit) is parsed again, as the actor itself would. A config
    that does not load gives None: the actor then loads it itself and reports the error as
    before. Parsing reads no environment (credentials are checked elsewhere), so the fork
    server's minimal environment gives the actor's result. `on_load` runs after each new
    parse, before the config is handed out (`_on_config`)."""

    def __init__(self, on_load: Callable[[SystemConfig], None] = lambda _cfg: None) -> None:
        self._key: tuple[object, ...] | None = None
        self._cfg: SystemConfig | None = None
        self._on_load = on_load

    def get(self, args: ActorArgs) -> SystemConfig | None:
        path = Path(args.config_path)
        try:
            with paths.open_regular(path) as fh:  # a FIFO: never waited on (the actor says)
                data = fh.read()
        except OSError:
            return None
        key = (args.config_path, data, args.state_dir, args.runtime_dir, args.metrics_port)
        if key == self._key:
            return self._cfg
        self._key, self._cfg = None, None
        try:
            cfg = load_config(
                path,
                state_dir=args.state_dir,
                runtime_dir=args.runtime_dir,
                metrics_port=args.metrics_port,
            )
            with paths.open_regular(path) as fh:
                unchanged = fh.read() == data
        except Exception:  # noqa: BLE001 - the actor loads it and reports what is wrong
            return None
        if not unchanged:  # edited while we parsed: which version we got is unknown
            return None
        self._on_load(cfg)  # first: a load whose hook failed is not handed out again
        self._key, self._cfg = key, cfg
        return cfg


def _freeze_heap(*, c_heap: bool = False) -> None:
    """What is garbage now is freed, its holes in the object pools filled (`pool_fill`: an
    actor's new objects then do not unshare the fork server's pages), with `c_heap` those
    of the C heap too (`malloc_fill`: the preload's; filled again after each config parse
    they made each parse grow the heap and the pool ballast), the rest moved to the
    permanent generation (see `preload`)."""
    gc.collect()
    if c_heap:
        fill_holes()
    fill_free_blocks()
    gc.freeze()


_merge_set: bool = False  # whether a config of ours opted this process in


def _on_config(cfg: SystemConfig) -> None:
    """A config newly loaded: the actors forked from now on are merged by the kernel or not
    as it says (`memory_merge`), logging is configured at its level (an actor's own
    `configure_logging` then finds it done), and it is frozen with the rest of the heap."""
    global _merge_set
    want = cfg.supervisor.memory_merge
    if want or _merge_set:  # false by default: an opt-in inherited (MemoryKSM=) is left alone
        if not set_memory_merge(want) and want:
            print(
                json.dumps(
                    {
                        "event": "memory_merge_unavailable",
                        "level": "warning",
                        "error": "prctl(PR_SET_MEMORY_MERGE) refused (Linux >= 6.4)",
                    }
                ),
                file=sys.stderr,
                flush=True,
            )
        _merge_set = want
    configure_logging(cfg.system.log_level)  # as each actor would: made once, shared
    _freeze_heap()


def _await_supervisor(intermediate_pid: int, supervisor_pid: int) -> bool:
    """Wait for the intermediate child's exit to re-parent us to the supervisor (a child
    subreaper). False at once when we were re-parented to anyone else: the supervisor died
    meanwhile (killed while a spawn was under way) and will never be our parent, so the
    orphan exits now instead of lingering `_REPARENT_DEADLINE_S`; False at the deadline."""
    deadline = time.monotonic() + _REPARENT_DEADLINE_S
    while (parent := os.getppid()) != supervisor_pid:
        if parent != intermediate_pid or time.monotonic() > deadline:
            return False
        time.sleep(0.0002)
    return True


def _child(
    args: ActorArgs,
    env: dict[str, str],
    pids: tuple[int, int],
    fds: tuple[int, int],
    cfg: SystemConfig | None = None,
) -> None:
    """Runs in the grandchild: wait to be re-parented, arm parent-death, run the actor.
    `pids`: the intermediate child's and the supervisor's."""
    from actors.runtime.process import run_actor

    intermediate_pid, supervisor_pid = pids
    for fd in fds:
        os.close(fd)
    os.environ.update(env)
    if not _await_supervisor(intermediate_pid, supervisor_pid):
        os._exit(71)
    set_parent_death_signal(signal.SIGKILL)
    if os.getppid() != supervisor_pid:  # the supervisor died before we armed it
        os._exit(71)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    code = 1
    try:
        code = run_actor(args, cfg)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - report and exit non-zero, never return to the server
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def spawn(
    args: ActorArgs,
    env: dict[str, str],
    supervisor_pid: int,
    fds: tuple[int, int],
    cfg: SystemConfig | None = None,
) -> int:
    """Double-fork `args` as an actor (with `cfg`, its config already loaded); returns the
    actor's pid."""
    r, w = os.pipe()
    mid = os.fork()
    if mid == 0:
        os.close(r)
        intermediate_pid = os.getpid()
        pid = os.fork()
        if pid == 0:
            os.close(w)
            os.setsid()  # own session and process group: the supervisor kills the group
            _child(args, env, (intermediate_pid, supervisor_pid), fds, cfg)
        os.write(w, str(pid).encode())
        os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 64):
        data += chunk
    os.close(r)
    os.waitpid(mid, 0)
    if not data:
        raise OSError("fork server: intermediate child died before reporting a pid")
    return int(data)


def _setup(line: str, fds_fd: int) -> list[str]:
    """Apply the setup line: the environment becomes the base it names; stdout and stderr
    become the two fds the supervisor sends over `fds_fd` (its own, by now the log
    capture's pipes); returns the kinds to preload."""
    setup: dict[str, Any] = json.loads(line)["setup"]
    os.environ.clear()
    os.environ.update({str(k): str(v) for k, v in setup["env"].items()})
    with socket.socket(fileno=fds_fd) as sock:
        _msg, fds, _flags, _addr = socket.recv_fds(sock, 1, 2)
    if len(fds) != 2:
        raise RuntimeError(f"fork server setup: expected stdout and stderr, got {len(fds)} fds")
    sys.stdout.flush()
    sys.stderr.flush()
    for target, fd in zip((1, 2), fds, strict=True):
        os.dup2(fd, target)
        os.close(fd)
    return [str(kind) for kind in setup["kinds"]]


def main() -> int:
    return serve(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:])


def serve(req_fd: int, resp_fd: int, fds_fd: int, expected: Collection[str]) -> int:
    """The fork server's life, launched (`main`) or forked from the supervisor
    (`forkserver_fork`): warm, wait for the setup, preload, then answer spawn requests."""
    make_undumpable()  # its pipes: /proc/<pid>/fd/N must not open to others (runtime.hardening)
    supervisor_pid = os.getppid()
    set_parent_death_signal(signal.SIGKILL)
    if os.getppid() != supervisor_pid:
        return 1
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor owns Ctrl-C
    warm(expected)
    reqs = os.fdopen(req_fd, "r", buffering=1)
    resp = os.fdopen(resp_fd, "w", buffering=1)
    first = reqs.readline()
    if not first:
        return 0  # the supervisor did not start after all (`spawn = "exec"`, a failed start)
    preload(_setup(first, fds_fd))
    from actors.runtime.actor import ActorArgs

    resp.write(json.dumps({"ready": os.getpid()}) + "\n")
    configs = ConfigCache(on_load=_on_config)
    for line in reqs:
        try:
            request = json.loads(line)
            env = {str(k): str(v) for k, v in request.get("env", {}).items()}
            args = ActorArgs(**request["args"])
            pid = spawn(args, env, supervisor_pid, (req_fd, resp_fd), configs.get(args))
            resp.write(json.dumps({"pid": pid}) + "\n")
        except Exception as exc:  # noqa: BLE001 - report to the supervisor, keep serving
            resp.write(json.dumps({"error": f"{type(exc).__name__}: {exc}"}) + "\n")
    return 0


def encode_request(args: ActorArgs, env: dict[str, str] | None = None) -> str:
    return json.dumps({"args": asdict(args), "env": env or {}}) + "\n"


if __name__ == "__main__":
    sys.exit(main())
