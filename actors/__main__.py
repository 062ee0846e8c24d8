"""Run one actor process: `python -m actors --kind oms --id oms --epoch 1 --config FILE`.

The supervisor normally forks actors from its preloaded fork server; this entry point is
the `exec` spawn mode and the way to run an actor by hand.
"""

from __future__ import annotations

import argparse
import errno
import json
import sys
from collections.abc import Sequence
from typing import Any

import zmq

from actors.runtime.actor import ActorArgs
from actors.runtime.process import ACTOR_KINDS, run_actor
from actors.supervisor.exit_codes import EXIT_CONFIG
from protocol.exceptions import ConfigError


def parse_args(argv: Sequence[str] | None = None) -> ActorArgs:
    p = argparse.ArgumentParser(prog="python -m actors", description=__doc__)
    p.add_argument("--kind", required=True, choices=sorted(ACTOR_KINDS))
    p.add_argument("--id", required=True, dest="actor_id")
    p.add_argument("--epoch", type=int, required=True)
    p.add_argument("--config", required=True)
    p.add_argument("--state-dir")
    p.add_argument("--runtime-dir")
    p.add_argument("--metrics-port", type=int)
    p.add_argument("--venue")
    p.add_argument("--cold", action="store_true")
    p.add_argument("--supervisor-pid", type=int)
    p.add_argument("--host-group")
    p.add_argument("--extra", type=_json_object, default={}, help="JSON object of extra settings")
    ns = p.parse_args(argv)
    return ActorArgs(
        actor_id=ns.actor_id,
        kind=ns.kind,
        epoch=ns.epoch,
        config_path=ns.config,
        state_dir=ns.state_dir,
        runtime_dir=ns.runtime_dir,
        metrics_port=ns.metrics_port,
        cold=ns.cold,
        venue=ns.venue,
        supervisor_pid=ns.supervisor_pid,
        host_group=ns.host_group,
        extra=ns.extra,
    )


def _json_object(text: str) -> dict[str, Any]:
    """argparse `type=`: `--extra` as a JSON object ('{bad' or '[1]' was a traceback)."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"not JSON of an object: {text!r}")
    return value


def to_argv(args: ActorArgs) -> list[str]:
    argv = [
        "--kind", args.kind, "--id", args.actor_id, "--epoch", str(args.epoch),
        "--config", args.config_path, "--extra", json.dumps(args.extra),
    ]  # fmt: skip
    for flag, value in (
        ("--state-dir", args.state_dir),
        ("--runtime-dir", args.runtime_dir),
        ("--metrics-port", args.metrics_port),
        ("--venue", args.venue),
        ("--supervisor-pid", args.supervisor_pid),
        ("--host-group", args.host_group),
    ):
        if value is not None:
            argv += [flag, str(value)]
    if args.cold:
        argv.append("--cold")
    return argv


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run_actor(args)
    except ConfigError as exc:  # run by hand with a config that does not load: one line
        print(f"{args.actor_id}: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except zmq.ZMQError as exc:  # by hand before a supervisor made the runtime dir: the ipc
        if exc.errno != errno.ENOENT:  # bind found no dir (a ZMQError traceback, exit 1)
            raise
        print(f"{args.actor_id}: config error: system.runtime_dir: {exc.strerror}", file=sys.stderr)
        return EXIT_CONFIG


if __name__ == "__main__":
    sys.exit(main())
