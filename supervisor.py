"""TradePulse Live supervisor and operator CLI.

    tradepulse run --config FILE [--cold] [--intake paused] [--state-dir D] [--runtime-dir D]
        [--metrics-port P]
    tradepulse status --config FILE [--json]
    tradepulse restart ACTOR [--force] --config FILE
    tradepulse shutdown --config FILE
    tradepulse kill-switch engage|reset|status --reason "..." --config FILE
    tradepulse intake pause|resume|status [--venue V] [--reason "..."] --config FILE
    tradepulse stop ACTOR [--reason "..."] --config FILE
    tradepulse start ACTOR --config FILE
    tradepulse reconcile --venue V --dry-run --config FILE
    tradepulse journal inspect --config FILE
    tradepulse fix log --venue V [--follow] [--since 10m|ISO] [--raw] --config FILE
    tradepulse fix seq --venue V [--next-in N] [--next-out M --reason "..."] --config FILE

`run` is the daemon (foreground); every other command talks to it over the control socket
in the runtime dir, except `journal inspect`, `fix log` and showing `fix seq`, which read
the state dir (setting `fix seq` writes it when no supervisor runs). Exit codes: 0 ok,
1 failure, 2 bad config or usage, 3 state dir locked / system not running.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from actors.runtime.fdlimit import raise_fd_limit
from actors.supervisor.ctl import EXIT_CONFIG, EXIT_FAILURE, EXIT_UNAVAILABLE
from protocol.config import SystemConfig, check_credentials, check_tls, load_config
from protocol.exceptions import ConfigError, StateDirLocked
from protocol.paths import PRIVATE_UMASK


def _add_config_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default="deploy/config/demo.toml", help="system config (TOML)")
    p.add_argument("--state-dir", help="override system.state_dir")
    p.add_argument("--runtime-dir", help="override system.runtime_dir")
    p.add_argument("--metrics-port", type=int, help="override metrics.port (0: any free port)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--timeout-s", type=float, default=10.0, help="control request deadline")


def build_parser() -> argparse.ArgumentParser:
    """`run`, then one subcommand per operator command of the table."""
    from actors.supervisor.commands import TABLE

    parser = argparse.ArgumentParser(prog="tradepulse", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
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
    for command in TABLE:
        p = sub.add_parser(command.name, help=command.help)
        command.add_arguments(p)
        _add_config_flags(p)
    return parser


def _load(ns: argparse.Namespace) -> SystemConfig:
    return load_config(
        ns.config, state_dir=ns.state_dir, runtime_dir=ns.runtime_dir, metrics_port=ns.metrics_port
    )


def main(argv: Sequence[str] | None = None) -> int:
    os.umask(PRIVATE_UMASK)  # every file of the system (and of its actors) is ours alone
    raise_fd_limit()  # before any socket: operator connections cost fds (EMFILE aborts)
    parser = build_parser()
    ns = parser.parse_args(argv)
    try:
        cfg = _load(ns)
        if ns.cmd == "run":
            check_credentials(cfg)  # a venue's Username/Password env var unset: exit 2
            check_tls(cfg)  # a TLS file missing, unreadable or not loading: exit 2
    except ConfigError as exc:
        print(f"tradepulse: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if ns.cmd == "run":
        return _run(cfg, ns)
    from actors.supervisor.commands import BY_NAME

    return BY_NAME[ns.cmd].run(cfg, ns)


def _run(cfg: SystemConfig, ns: argparse.Namespace) -> int:
    from actors.supervisor.host import lock_state_dir, prepare_runtime_dir

    try:
        lock_state_dir(cfg)  # held (fd kept open) for the life of this process
    except StateDirLocked as exc:
        print(f"tradepulse: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    try:
        prepare_runtime_dir(cfg)  # before anything imports prometheus_client
    except ConfigError as exc:  # a runtime dir another local user could tamper with
        print(f"tradepulse: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if ns.intake == "paused":  # written before the OMS starts, which then keeps it closed
        from actors.oms.intake_state import pause_at_start

        try:
            pause_at_start(cfg.state_path)
        except OSError as exc:
            print(f"tradepulse: cannot record the intake pause: {exc}", file=sys.stderr)
            return EXIT_FAILURE
    from actors.supervisor.daemon import run_daemon

    on_all_ready = None
    if ns.demo:
        from actors.supervisor.demo import demo_launcher

        on_all_ready = demo_launcher(ns.config, state_dir=ns.state_dir, runtime_dir=ns.runtime_dir)
    return run_daemon(cfg, ns, on_all_ready=on_all_ready)


if __name__ == "__main__":
    sys.exit(main())
