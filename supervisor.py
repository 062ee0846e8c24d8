"""TradePulse Live supervisor and operator CLI.

    tradepulse run --config FILE [--cold] [--intake paused] [--state-dir D] [--runtime-dir D]
        [--metrics-port P] [--host-group core|EDGE_GROUP]
    tradepulse status --config FILE [--json]
    tradepulse top [--interval S] [--once] --config FILE
    tradepulse restart ACTOR [--force] --config FILE
    tradepulse shutdown --config FILE
    tradepulse kill-switch engage|reset|status --reason "..." --config FILE
    tradepulse intake pause|resume|status [--venue V] [--reason "..."] --config FILE
    tradepulse stop ACTOR [--reason "..."] --config FILE
    tradepulse start ACTOR [--reason "..."] --config FILE
    tradepulse reconcile --venue V --dry-run --config FILE
    tradepulse journal inspect [--order-id ID] [--venue V] [--kind K] [--since T] [--until T]
    tradepulse orders [--open] [--venue V] [--symbol S] [--since T] [--limit N] --config FILE
    tradepulse fills [--venue V] [--symbol S] [--since T] [--limit N] --config FILE
    tradepulse positions [--venue V] [--compare desk.csv] --config FILE
    tradepulse fix log --venue V [--follow] [--since 10m|ISO] [--raw] --config FILE
    tradepulse fix seq --venue V [--next-in N] [--next-out M --reason "..."] --config FILE
    tradepulse preflight --config FILE [--json]
    tradepulse keys generate --out DIR [--name HOST_GROUP]
    tradepulse postmortem --out FILE.tar.gz [--since 2h] [--until T] [--max-bytes N] --config FILE
    tradepulse --version

`run` is the daemon (foreground); every other command talks to it over the control socket
in the runtime dir, except `journal inspect`, `fix log`, showing `fix seq` and `postmortem`,
which read the state dir (setting `fix seq` writes it when no supervisor runs), and
`preflight`, which checks what `run` needs. Exit codes: 0 ok, 1 failure, 2 bad config or
usage (or an environment `run` cannot start in: a dir it cannot create, the metrics port
taken), 3 state dir locked / system not running, or the link to the host group that runs
the actor down, 4 the control socket answered from a process that is not the supervisor
(its answer refused) (docs/runbook.md, "Exit codes").
"""

# ruff: noqa: E402 - the early Ctrl-C handler goes in before the other imports
from __future__ import annotations

import sys

from protocol import early_interrupt

early_interrupt.install_if_program(sys.argv[0])  # Ctrl-C: one line and 130, no traceback

import argparse
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

# only light imports here, up to `run`'s re-execution (protocol/start_env.py; the `actors`
# package imports structlog) and the fork server's start (supervisor/forkserver_fork.py)
from protocol import start_env
from protocol.cli_seconds import deadline_s
from protocol.paths import PRIVATE_UMASK, os_error

if TYPE_CHECKING:
    from protocol.config import SystemConfig


def _add_config_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default="deploy/config/demo.toml", help="system config (TOML)")
    p.add_argument("--state-dir", help="override system.state_dir")
    p.add_argument("--runtime-dir", help="override system.runtime_dir")
    p.add_argument("--metrics-port", type=int, help="override metrics.port (0: any free port)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--timeout-s", type=deadline_s, default=10.0, help="control request deadline")


def build_parser() -> argparse.ArgumentParser:
    """`run`, then one subcommand per operator command of the table."""
    from actors.supervisor.commands import TABLE

    parser = argparse.ArgumentParser(prog="tradepulse", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="cmd", required=True)
    _add_run(sub)
    for command in TABLE:
        p = sub.add_parser(command.name, help=command.help)
        command.add_arguments(p)
        _add_config_flags(p)
    return parser


class _Fallback(Exception):
    """The light parser of `run` does not take these arguments: the full parser decides."""


class _RunParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _Fallback(message)


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """`run` with arguments it takes (a start) is parsed by a parser of `run` alone, without
    importing every operator command (~0.15 s before the fork server's setup, in series);
    anything else, help and every error included, by the full parser: the same namespace,
    the same messages."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["run"] and not {"-h", "--help"} & set(args):
        light = _RunParser(prog="tradepulse")
        _add_run(light.add_subparsers(dest="cmd", required=True))
        try:
            return light.parse_args(args)
        except _Fallback:
            pass
    return build_parser().parse_args(args)


def _add_run(sub: Any) -> None:
    run = sub.add_parser("run", help="start the system in the foreground")
    _add_config_flags(run)
    run.add_argument("--cold", action="store_true", help="cold start (runbook): archive state")
    run.add_argument("--demo", action="store_true", help="run the demo order flow once ready")
    run.add_argument(
        "--intake",
        choices=("open", "paused"),
        default="open",
        help="paused: intake stays closed (a persisted global pause) until `intake resume`",
    )
    run.add_argument(
        "--host-group",
        default="core",
        help="the venues this supervisor runs: core (and risk, OMS, heartbeat) or an edge group",
    )


def _version() -> str:
    """The installed package's version, else the one in pyproject.toml beside this file."""
    from importlib import metadata

    try:
        return metadata.version("tradepulse-live")
    except metadata.PackageNotFoundError:
        import tomllib
        from pathlib import Path

        try:
            with (Path(__file__).resolve().parent / "pyproject.toml").open("rb") as fh:
                return str(tomllib.load(fh)["project"]["version"])
        except (OSError, tomllib.TOMLDecodeError, KeyError):
            return "unknown"


def _load(ns: argparse.Namespace) -> SystemConfig:
    from protocol.config import load_config

    return load_config(
        ns.config, state_dir=ns.state_dir, runtime_dir=ns.runtime_dir, metrics_port=ns.metrics_port
    )


def main(argv: Sequence[str] | None = None) -> int:
    os.umask(PRIVATE_UMASK)  # every file of the system (and of its actors) is ours alone
    early_interrupt.release()  # Ctrl-C: KeyboardInterrupt, handled below after cleanup
    try:
        return _start(argv)
    except KeyboardInterrupt:  # Ctrl-C: a command's request may have gone out already;
        # `run`: before the daemon took SIGINT (its children die with it: PDEATHSIG)
        print("tradepulse: interrupted", file=sys.stderr)
        return 130
    finally:  # launched or forked for `run` but not adopted: a failed start
        if (launch := sys.modules.get("actors.supervisor.forkserver_launch")) is not None:
            launch.discard()  # (not imported yet: there is none)


def _start(argv: Sequence[str] | None) -> int:
    ns = _parse(argv)  # argparse's reading of argv (prefixes, repeats): the file run loads
    run = ["run", "--config", ns.config, "--host-group", ns.host_group] if ns.cmd == "run" else []
    if run and (argv is None or list(argv) == sys.argv[1:]):  # re-executed: the same run
        start_env.reexec(run, os.environ)  # without credentials; returns if it did not
    from actors.runtime.fdlimit import MIN_TO_RUN, raise_fd_limit
    from actors.supervisor import forkserver_fork
    from actors.supervisor.exit_codes import EXIT_CONFIG

    soft, hard = raise_fd_limit()  # before any socket: operator connections cost fds
    if run and 0 <= soft < MIN_TO_RUN:  # libzmq aborts at EMFILE (SIGABRT); -1: unlimited
        limit = f"the open-file limit is {soft} (hard {hard}); run needs {MIN_TO_RUN} at least"
        print(f"tradepulse: environment error: {limit} (ulimit -n, LimitNOFILE=)", file=sys.stderr)
        return EXIT_CONFIG
    if run:  # the fork server forked after the shared imports (forkserver_fork)
        from protocol.exceptions import ConfigError

        try:
            forkserver_fork.start(run, os.environ)
        except ConfigError as exc:  # re-executed, its environment lost: never run without
            print(f"tradepulse: environment error: {exc}", file=sys.stderr)
            return EXIT_CONFIG
    return _main(ns)


def _main(ns: argparse.Namespace) -> int:
    from actors.link.bridge import check_link_size
    from actors.supervisor.exit_codes import EXIT_CONFIG, EXIT_FAILURE
    from actors.supervisor.restart_policy import placed_on
    from protocol.config import check_credentials, check_tls
    from protocol.curve_keys import link_keys
    from protocol.exceptions import ConfigError
    from protocol.link_config import check_host_group

    if ns.cmd != "run":
        from actors.supervisor.commands import BY_NAME

        if not BY_NAME[ns.cmd].needs_config:
            return BY_NAME[ns.cmd].run_offline(ns)
    try:
        cfg = _load(ns)
        if ns.cmd in ("run", "preflight"):  # preflight of a group run refuses: refused too
            check_host_group(ns.host_group, cfg.venues)  # core, or a group of a venue
        if ns.cmd == "run":
            local = placed_on(cfg, ns.host_group)  # the venues this supervisor runs
            check_credentials(local)  # a venue's Username/Password env var unset: exit 2
            check_tls(local)  # a TLS file missing, unreadable or not loading: exit 2
            link_keys(cfg.link, cfg.venues, ns.host_group)  # a key missing or open: exit 2
            check_link_size(cfg.venues, ns.host_group)  # more venues than one link holds
    except ConfigError as exc:
        print(f"tradepulse: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if ns.cmd == "run":
        return _run(cfg, ns)
    from actors.supervisor.ctl import EXIT_NOT_SUPERVISOR, print_failure
    from protocol.control import NotTheSupervisor

    try:
        return BY_NAME[ns.cmd].run(cfg, ns)
    except NotTheSupervisor as exc:  # every command that asks the control socket: one line,
        # `--json` an error envelope on stdout (as control_command prints it)
        return print_failure(exc, EXIT_NOT_SUPERVISOR, as_json=getattr(ns, "json", False))
    except BrokenPipeError:  # `orders | head`: the reader has what it wanted, not a failure
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no flush error
        return 0
    except OSError as exc:  # the environment (a state dir under a file, no permission)
        print(f"tradepulse {ns.cmd}: {os_error(exc)}", file=sys.stderr)
        return EXIT_FAILURE


def _run(cfg: SystemConfig, ns: argparse.Namespace) -> int:
    from actors.supervisor.environ import ActorEnv
    from actors.supervisor.exit_codes import EXIT_CONFIG, EXIT_FAILURE, EXIT_UNAVAILABLE
    from actors.supervisor.host import lock_state_dir, prepare_runtime_dir
    from actors.supervisor.preflight_checks import port_problem
    from actors.supervisor.restart_policy import child_specs
    from actors.supervisor.tasklimit import ThreadsRefused, tasks_problem
    from protocol.exceptions import ConfigError, StateDirLocked
    from protocol.link_config import CORE, bind_address

    actor_kinds = [spec.kind for spec in child_specs(cfg, ns.host_group)]
    if problem := tasks_problem(actor_kinds):  # else: libzmq aborts
        print(f"tradepulse: environment error: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        try:
            lock_state_dir(cfg)  # held (fd kept open) for the life of this process
        except OSError as exc:  # under a regular file, on a read-only file system...
            raise ConfigError("system.state_dir", f"cannot use it: {os_error(exc)}") from None
        try:
            prepare_runtime_dir(cfg)  # before anything imports prometheus_client
        except OSError as exc:
            raise ConfigError("system.runtime_dir", f"cannot use it: {os_error(exc)}") from None
        # before anything starts (a cold start's archive included); the bind itself
        # still says the same if the port is taken in between (host.start_metrics_server)
        if cfg.metrics.port and (problem := port_problem(cfg.metrics.host, cfg.metrics.port)):
            raise ConfigError("metrics.port", problem)
        link_bind = bind_address(cfg.link, cfg.venues) if ns.host_group == CORE else None
        if link_bind is not None and (problem := port_problem(*link_bind)):
            raise ConfigError("link.bind", problem)  # the core's link could never listen
        if ns.intake == "paused":  # written before the OMS starts, which then keeps it closed
            from actors.oms.intake_state import pause_at_start

            try:
                pause_at_start(cfg.state_path)
            except OSError as exc:
                print(f"tradepulse: cannot record the intake pause: {exc}", file=sys.stderr)
                return EXIT_FAILURE
        from actors.supervisor.logfiles import capture_logs
        from actors.supervisor.postmortem_watch import watch_kill_switch

        on_all_ready = None
        if ns.demo:
            from actors.supervisor.demo import demo_launcher

            on_all_ready = demo_launcher(
                ns.config, state_dir=ns.state_dir, runtime_dir=ns.runtime_dir
            )
        with capture_logs(cfg), watch_kill_switch(cfg, ns):  # log files; a bundle per engagement
            # the early fork server's setup, before the daemon's imports: the actors'
            # environment (the metrics dir now in it), their stdout and stderr (the capture's)
            from actors.supervisor import forkserver_launch

            kinds = {spec.kind for spec in child_specs(cfg, ns.host_group)}
            forkserver_launch.setup(ActorEnv(cfg, os.environ).base, kinds)
            from actors.supervisor.daemon import run_daemon

            return run_daemon(cfg, ns, on_all_ready=on_all_ready)
    except StateDirLocked as exc:
        print(f"tradepulse: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except ConfigError as exc:  # a dir another local user could tamper with, the port taken
        print(f"tradepulse: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except ThreadsRefused as exc:  # the host's task limit (its actors not started yet)
        print(f"tradepulse: environment error: {exc}", file=sys.stderr)
        return EXIT_CONFIG


if __name__ == "__main__":
    sys.exit(main())
