"""The simulated exchange's command line.

    python -m actors.exchangesim run --config FILE --venue NAME [--state-dir D]
            [--runtime-dir R] [--seed N] [--commission RATE]
        run the exchange alone (outside a supervisor) until SIGTERM / SIGINT; the key and
        secret come from the variables [venues.ccxt] api_key_env / secret_env name
    python -m actors.exchangesim inspect --config FILE --venue NAME [--state-dir D] [--json]
        every order the exchange accepted (client ids, status, fills), every new order it
        refused (client id, code, message), every trade, the balances (read-only; works
        while the exchange runs or after it died)
    python -m actors.exchangesim control --config FILE --venue NAME COMMAND [--value V]
            [--state-dir D] [--runtime-dir R] [--json]
        COMMAND: status, or a fault: timeout_after_accept, http_5xx, rate_limit, drop_ws,
        delay_trade_events_ms, delay_create_ms, duplicate_trade_events, clock_skew_ms,
        timestamps_us, garble_events, html_answer, clear

Exit codes: 0 ok, 1 error (the exchange answered no, no state to inspect, or `run` while
it already runs), 2 bad usage, config or credentials (a state or runtime dir it cannot
use, a log that is not a regular file), 3 the exchange is not running.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from actors.exchangesim.faults import FAULT_KINDS
from protocol import control as ctl
from protocol.config import SystemConfig, VenueCfg, load_config
from protocol.exceptions import StateDirLocked, TradePulseError
from protocol.paths import PRIVATE_UMASK, check_sim_dirs

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_UNAVAILABLE = 0, 1, 2, 3


def main(argv: Sequence[str] | None = None) -> int:
    os.umask(PRIVATE_UMASK)
    ns = _parser().parse_args(argv)
    try:
        cfg = load_config(ns.config, state_dir=ns.state_dir, runtime_dir=ns.runtime_dir)
        try:
            vcfg = cfg.venue(ns.venue)
        except KeyError:
            print(f"venue {ns.venue!r} is not in {ns.config}", file=sys.stderr)
            return EXIT_USAGE
        if vcfg.ccxt is None or vcfg.sim is None:
            print(f"venue {ns.venue!r} is not a ccxt venue with [venues.sim]", file=sys.stderr)
            return EXIT_USAGE
        if ns.command == "inspect":
            return _inspect(cfg, vcfg, as_json=ns.json)
        if ns.command == "run":
            return _run(ns, cfg, vcfg)
        return _control(cfg, ns.venue, ns.fault, ns.value, as_json=ns.json)
    except StateDirLocked as exc:
        print(f"exchangesim: {exc} (is the exchange already running?)", file=sys.stderr)
        return EXIT_ERROR
    except TradePulseError as exc:
        print(f"exchangesim: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m actors.exchangesim",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the exchange alone")
    ctl_p = sub.add_parser("control", help="set a fault or ask the status")
    ins = sub.add_parser("inspect", help="print the exchange's persisted state")
    for sp in (run, ctl_p, ins):
        sp.add_argument("--config", required=True)
        sp.add_argument("--state-dir")
        sp.add_argument("--runtime-dir")
        sp.add_argument("--venue", required=True)
    run.add_argument("--epoch", type=int, default=None)
    run.add_argument("--seed", type=int, default=None, help="random walk seed")
    run.add_argument(
        "--commission", type=_rate, default=None, help="commission rate (default 0.001)"
    )
    ctl_p.add_argument("fault", choices=("status", *FAULT_KINDS), metavar="COMMAND")
    ctl_p.add_argument("--value")
    ctl_p.add_argument("--json", action="store_true")
    ins.add_argument("--json", action="store_true")
    return p


def _rate(text: str) -> str:
    """argparse `type=`: a commission rate as `[venues.sim] commission_rate` takes it, at
    least 0 and below 1. Unchecked, "abc" was dropped for the default without a word, and
    "-5" or "nan" were charged on every trade."""
    try:
        rate = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (rate.is_finite() and 0 <= rate < 1):
        raise argparse.ArgumentTypeError(f"{text!r}: a rate is at least 0 and below 1")
    return text


def _run(ns: argparse.Namespace, cfg: SystemConfig, vcfg: VenueCfg) -> int:
    from actors.exchangesim.actor import ExchangeSimActor, credentials
    from actors.exchangesim.store import open_store
    from actors.runtime.actor import ActorArgs

    creds = credentials(vcfg, dict(os.environ))
    if isinstance(creds, str):
        print(creds, file=sys.stderr)
        return EXIT_USAGE
    check_sim_dirs(lambda: open_store(cfg.state_path, ns.venue).close(), cfg.runtime_path)
    extra: dict[str, Any] = {"standalone": True}
    if ns.seed is not None:
        extra["seed"] = ns.seed
    if ns.commission is not None:
        extra["commission"] = ns.commission
    args = ActorArgs(
        actor_id=f"exchangesim.{ns.venue}",
        kind="exchangesim",
        epoch=ns.epoch if ns.epoch is not None else int(time.time()),
        config_path=ns.config,
        state_dir=ns.state_dir,
        runtime_dir=ns.runtime_dir,
        venue=ns.venue,
        supervisor_pid=None,
        extra=extra,
    )
    return ExchangeSimActor(args, cfg).run()


def _inspect(cfg: SystemConfig, vcfg: VenueCfg, *, as_json: bool) -> int:
    from actors.exchangesim.store import has_state, inspect, state_dir

    if not has_state(cfg.state_path, vcfg.name):
        print(f"exchangesim: no state for venue {vcfg.name!r}", file=sys.stderr)
        return EXIT_ERROR
    assert vcfg.sim is not None
    try:
        data = inspect(cfg.state_path, vcfg.name, vcfg.sim)
    except OSError as exc:  # a log that is a directory, a FIFO, unreadable
        where = state_dir(cfg.state_path, vcfg.name)
        print(f"exchangesim: cannot read {where}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    if as_json:
        print(json.dumps(data, indent=1))
        return EXIT_OK
    print(f"book {data['book_id']}  liquidity step {data['step']}")
    print(
        f"{'ClientOrderId':<36} {'Id':>6} {'Symbol':<10} {'Side':<4} {'Type':<6} "
        f"{'Qty':>14} {'Price':>14} {'Status':<16} {'Filled':>14}"
    )
    for o in data["orders"]:
        print(
            f"{o['client_order_id']:<36} {o['order_id']:>6} {o['symbol']:<10} {o['side']:<4} "
            f"{o['type']:<6} {o['qty']:>14} {o['price'] or '-':>14} {o['status']:<16} "
            f"{o['filled_qty']:>14}"
        )
    if data["refusals"]:
        print(f"\nrefused new orders ({len(data['refusals'])}):")
        for r in data["refusals"]:
            print(f"  {r['client_order_id']:<36} {r['symbol']:<10} {r['code']}  {r['msg']}")
    print(f"\n{'Asset':<8} {'Free':>22} {'Locked':>22}")
    for asset, b in data["balances"].items():
        print(f"{asset:<8} {b['free']:>22} {b['locked']:>22}")
    return EXIT_OK


def _control(
    cfg: SystemConfig, venue: str, command: str, value: str | None, *, as_json: bool
) -> int:
    args = {} if value is None else {"value": value}
    try:
        reply = ctl.control_request(cfg, command, args, 5.0, target=f"exchangesim.{venue}")
    except ctl.ControlUnavailable as exc:
        print(f"exchangesim: {exc}", file=sys.stderr)
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
