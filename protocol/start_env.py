"""The environment `run` starts with, before anything heavy is imported.

Light on purpose (no `actors` package: it imports structlog): `supervisor.py` re-executes
itself from here before its own imports (`reexec`), so the process that only re-executes
costs an interpreter start and this module. What an actor's environment may hold
(`BASE_VARS`, `BASE_PREFIXES`: `actors.supervisor.environ`), the variables the raw config
names as credentials, the early environment of a fork server started before the config is
loaded (`early_environ`: `actors.supervisor.forkserver_launch`, `forkserver_fork`).
"""

from __future__ import annotations

import os
import sys
import tomllib
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from protocol import early_interrupt
from protocol.paths import open_regular

# no base variable, and the re-execution blanks it in its environment block
# (`forkserver_fork._blank_marker`): /proc/PID/environ of no process of the system shows it
MARKER = "TRADEPULSE_ENVIRON_FD"
MEMFD_NAME = "tradepulse-environ"
LATE_VARS = frozenset({"PROMETHEUS_MULTIPROC_DIR"})  # set by the supervisor after the launch

BASE_VARS = frozenset(
    {"PATH", "HOME", "LANG", "LANGUAGE", "TZ", "USER", "LOGNAME", "TMPDIR", "TERM"}
    | {"PROMETHEUS_MULTIPROC_DIR"}  # the multiprocess metrics dir (set by the supervisor)
    # the host's TLS trust store and loader settings: a connector with TLS and no ca_file
    # verifies against the system CAs these point to; a shared-library Python needs its path
    | {"SSL_CERT_FILE", "SSL_CERT_DIR", "OPENSSL_CONF", "LD_LIBRARY_PATH", "LD_PRELOAD"}
)
BASE_PREFIXES = ("PYTHON", "LC_", "TP_")


def base_environ(environ: Mapping[str, str], secret: Collection[str]) -> dict[str, str]:
    """The base variables of `environ`, none of those named in `secret`."""
    return {
        name: value
        for name, value in environ.items()
        if (name in BASE_VARS or name.startswith(BASE_PREFIXES)) and name not in secret
    }


def credential_names(config_path: str) -> set[str]:
    """Every string the raw TOML holds under a key ending in `_env`, at any depth (the
    variables a venue names as its credentials); raises OSError / TOMLDecodeError."""
    with open_regular(config_path) as fh:  # a pipe read here would be empty for the load
        doc = tomllib.load(fh)
    names: set[str] = set()
    stack: list[Any] = [doc]
    while stack:
        item = stack.pop()
        pairs = item.items() if isinstance(item, dict) else enumerate(item)
        for key, value in pairs:
            if isinstance(value, dict | list):
                stack.append(value)
            elif isinstance(key, str) and key.endswith("_env") and isinstance(value, str):
                names.add(value)
    return names


def early_environ(environ: Mapping[str, str], config_path: str) -> dict[str, str] | None:
    """The environment an early fork server may have before the config is loaded; None when
    the config file cannot be read (then nothing starts early)."""
    try:
        secret = credential_names(config_path)
    except (OSError, ValueError, RecursionError):  # ValueError: not TOML, not UTF-8
        return None
    return base_environ(environ, secret | LATE_VARS)


def config_of(argv: Sequence[str]) -> str:
    """The config file `run`'s `argv` names (its default without one)."""
    return option(argv, "--config") or "deploy/config/demo.toml"


def reexec(argv: Sequence[str], environ: Mapping[str, str]) -> None:
    """Execute this interpreter's command line again with only the early environment and
    the marker naming a memfd with the whole one (`actors.supervisor.forkserver_fork` forks
    the fork server, then reads it back); returns only when it could not, when this
    process is the re-execution (the marker is set), or when its program could not be read
    again (`python - run`: the launched fork server then)."""
    if MARKER in environ or not _replayable(sys.argv[0]):
        return
    env = early_environ(environ, config_of(argv))
    if env is None:
        return
    try:
        fd = os.memfd_create(MEMFD_NAME, 0)  # close-on-exec off: 0, no MFD_CLOEXEC
    except (OSError, AttributeError):
        return
    if not memfd_readable(fd):  # no /proc: the re-execution could not find it again
        os.close(fd)
        return
    try:
        os.write(fd, b"\0".join(k + b"=" + v for k, v in os.environb.items()))
        env[MARKER] = str(fd)  # the last variable of the block (`_blank_marker`)
        sys.stdout.flush()
        sys.stderr.flush()
        early_interrupt.hold()  # a Ctrl-C during the new interpreter's start: pending
        os.execve(sys.executable, [*sys.orig_argv], env)
    except OSError:
        early_interrupt.release()
        os.close(fd)


def memfd_readable(fd: int) -> bool:
    """Whether `fd` is `reexec`'s memfd, as /proc/self/fd shows it (how the re-execution
    finds it again)."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}").startswith(f"/memfd:{MEMFD_NAME} ")
    except OSError:
        return False


def _replayable(program: str) -> bool:
    """Whether executing the command line again runs the same program: `-c` (in argv), a
    module or a regular file; not one already read (`-`, a pipe, /dev/stdin, /dev/fd/N)."""
    if program == "-c":
        return True
    if program in ("", "-") or program.startswith(("/dev/", "/proc/")):
        return False
    return os.path.isfile(program)


def option(argv: Sequence[str], name: str) -> str | None:
    """The value of `--name V` or `--name=V` in `argv` (argparse's two spellings)."""
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg[len(name) + 1 :]
    return None
