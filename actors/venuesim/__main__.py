"""The simulated venue's command line.

    python -m actors.venuesim run --config FILE --venue NAME [--state-dir D] [--runtime-dir R]
        run the venue alone (outside a supervisor) until SIGTERM / SIGINT
    python -m actors.venuesim inspect --state-dir D --venue NAME [--json]
        every order the venue ever received, its fills and exec ids, positions (read-only;
        works while the venue runs or after it died)
    python -m actors.venuesim control --config FILE [--state-dir D] [--runtime-dir R]
            --venue NAME COMMAND [--value V] [--json]
        COMMAND: status, or a fault: drop_session, hang, delay_exec_ms, duplicate_exec,
        reorder_exec, reject_next, disconnect_after, refuse_logons_s, swallow_fills,
        swallow_cancels, clear

Exit codes: 0 ok, 1 error (the venue answered no, no state to inspect, or `run` while the
venue already runs), 2 bad usage or config (a state or runtime dir it cannot use, a log
that is not a regular file), 3 the venue is not running.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from actors.venuesim.control import VenueSimUnavailable, control_request
from actors.venuesim.faults import FAULT_KINDS
from protocol.cli_seconds import deadline_s
from protocol.config import SystemConfig, load_config
from protocol.exceptions import StateDirLocked, TradePulseError
from protocol.paths import PRIVATE_UMASK, check_sim_dirs, venue_state_dir
from protocol.sim_config import sim_guests

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_UNAVAILABLE = 0, 1, 2, 3


def main(argv: Sequence[str] | None = None) -> int:
    os.umask(PRIVATE_UMASK)
    parser = _parser()
    ns = parser.parse_args(argv)
    try:
        if ns.command == "inspect":
            return _inspect(Path(ns.state_dir), ns.venue, as_json=ns.json)
        cfg = load_config(ns.config, state_dir=ns.state_dir, runtime_dir=ns.runtime_dir)
        try:
            vcfg = cfg.venue(ns.venue)
        except KeyError:
            print(f"venue {ns.venue!r} is not in {ns.config}", file=sys.stderr)
            return EXIT_USAGE
        if ns.command == "run":
            if vcfg.sim is None:
                print(f"venue {ns.venue!r} has no [venues.sim] table", file=sys.stderr)
                return EXIT_USAGE
            if vcfg.sim.runs_in:
                host = vcfg.sim.runs_in
                print(f"venue {ns.venue!r} runs in the simulator process of venue {host!r}: "
                      f"run --venue {host}", file=sys.stderr)  # fmt: skip
                return EXIT_USAGE
            return _run(ns, cfg)
        return _control(cfg, ns.venue, ns.fault, ns.value, as_json=ns.json, timeout_s=ns.timeout_s)
    except StateDirLocked as exc:
        print(f"venuesim: {exc} (is the venue already running?)", file=sys.stderr)
        return EXIT_ERROR
    except TradePulseError as exc:
        print(f"venuesim: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m actors.venuesim",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the venue alone")
    ctl = sub.add_parser("control", help="set a fault or ask the status")
    for sp in (run, ctl):
        sp.add_argument("--config", required=True)
        sp.add_argument("--state-dir")
        sp.add_argument("--runtime-dir")
        sp.add_argument("--venue", required=True)
    run.add_argument("--epoch", type=int, default=None)
    run.add_argument("--seed", type=int, default=None, help="random walk seed")
    ctl.add_argument("fault", choices=("status", *FAULT_KINDS), metavar="COMMAND")
    ctl.add_argument("--value")
    ctl.add_argument("--json", action="store_true")
    ctl.add_argument("--timeout-s", type=deadline_s, default=5.0)
    ins = sub.add_parser("inspect", help="print the venue's persisted state")
    ins.add_argument("--state-dir", required=True)
    ins.add_argument("--venue", required=True)
    ins.add_argument("--json", action="store_true")
    return p


# ---------------------------------------------------------------------- run


def _run(ns: argparse.Namespace, cfg: SystemConfig) -> int:
    from actors.runtime.actor import ActorArgs
    from actors.venuesim.actor import VenueSimActor
    from actors.venuesim.store import SimStore

    def open_states() -> None:  # its own venue's and those it runs
        for venue in (ns.venue, *sim_guests(cfg.venues, ns.venue)):
            SimStore.open(venue_state_dir(cfg.state_path, venue)).close()

    check_sim_dirs(open_states, cfg.runtime_path)
    extra: dict[str, Any] = {"standalone": True}
    if ns.seed is not None:
        extra["seed"] = ns.seed
    args = ActorArgs(
        actor_id=f"venuesim.{ns.venue}",
        kind="venuesim",
        epoch=ns.epoch if ns.epoch is not None else int(time.time()),
        config_path=ns.config,
        state_dir=ns.state_dir,
        runtime_dir=ns.runtime_dir,
        venue=ns.venue,
        supervisor_pid=None,
        extra=extra,
    )
    return VenueSimActor(args, cfg).run()


# ---------------------------------------------------------------------- inspect


def _inspect(state_dir: Path, venue: str, *, as_json: bool) -> int:
    from actors.venuesim.store import LOG_NAME, inspect

    root = venue_state_dir(state_dir, venue)
    if not (root / LOG_NAME).exists():
        print(f"venuesim: no state for venue {venue!r} in {root}", file=sys.stderr)
        return EXIT_ERROR
    try:
        data = inspect(root)
    except OSError as exc:  # a log that is a directory, a FIFO, unreadable
        print(f"venuesim: cannot read {root / LOG_NAME}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    if as_json:
        print(json.dumps(data, indent=1))
    else:
        print(format_inspection(data))
    return EXIT_OK


def format_inspection(data: dict[str, Any]) -> str:
    """A readable table of `store.inspect()` output."""
    lines = [
        f"book {data['book_id']}  last exec {data['last_exec_id'] or '-'}  "
        f"liquidity step {data['step']}",
        "",
        f"{'ClOrdID':<24} {'OrderID':<20} {'Symbol':<8} {'Side':<5} {'Type':<7} "
        f"{'Qty':>10} {'Price':>10} {'Status':<17} {'CumQty':>10} {'AvgPx':>12} Fills",
    ]
    for o in data["orders"]:
        lines.append(
            f"{o['cl_ord_id']:<24} {o['order_id']:<20} {o['symbol']:<8} {o['side'] or '?':<5} "
            f"{o['ord_type'] or '?':<7} {o['order_qty']:>10} {o['price'] or '-':>10} "
            f"{o['status']:<17} {o['cum_qty']:>10} {_short(o['avg_px']):>12} {len(o['fills'])}"
        )
    if not data["orders"]:
        lines.append("(no orders)")
    if data.get("rejects"):
        lines += ["", "Rejected without an order:"]
        lines += [f"  {r['cl_ord_id']:<24} {r['exec_id']}  {r['text']}" for r in data["rejects"]]
    lines += ["", f"{'Symbol':<8} {'NetQty':>12} {'AvgPx':>14} {'Bought':>12} {'Sold':>12}"]
    for symbol, p in data["positions"].items():
        lines.append(
            f"{symbol:<8} {p['net_qty']:>12} {_short(p['avg_px']):>14} "
            f"{p['bought_qty']:>12} {p['sold_qty']:>12}"
        )
    if not data["positions"]:
        lines.append("(no positions)")
    return "\n".join(lines)


def _short(px: str) -> str:
    return px if len(px) <= 12 else px[:12]


# ---------------------------------------------------------------------- control


def _control(
    cfg: SystemConfig, venue: str, command: str, value: str | None, *, as_json: bool,
    timeout_s: float,
) -> int:  # fmt: skip
    args = {} if value is None else {"value": value}
    try:
        reply = control_request(cfg, venue, command, args, timeout_s)
    except VenueSimUnavailable as exc:
        if as_json:
            print(json.dumps({"status": "error", "reason": str(exc), "data": {}}))
        else:
            print(f"venuesim: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    if as_json:
        print(json.dumps(reply.model_dump(exclude={"type"}), default=str))
    else:
        print(f"{reply.status}: {reply.reason}" if reply.reason else reply.status)
        for key, val in reply.data.items():
            print(f"  {key}: {json.dumps(val, default=str)}")
    return EXIT_OK if reply.status == "ok" else EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
