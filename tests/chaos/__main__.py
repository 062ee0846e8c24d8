"""Run a chaos soak: the real system under client load while a seeded nemesis kills, stops
and disconnects things; then check every invariant and write var/chaos/<timestamp>/
(report.json, summary.txt, timeline.png, supervisor.log, history/).

    python -m tests.chaos --duration-s 600                 # make chaos
    python -m tests.chaos --duration-s 60 --seed 3 --mix sigkill=1,supervisor_kill=1
    python -m tests.chaos --duration-s 600 --minimal-dialect simB   # simB without AF / AN
    python -m tests.chaos --duration-s 60 --no-exchange    # the FIX venues only, no bx
    python -m tests.chaos --duration-s 180 --topology core+edge   # simA, simB on an edge
    python -m tests.chaos --duration-s 90 --exchange-balances USDT=20000   # bx under-funded

Venues: simA and simB (FIX, each with its venue simulator) and bx (ccxt, Binance spot on
its local exchange, `actors.exchangesim`).

Exit code 0 when the run is valid, 1 when an invariant was violated (or the harness broke).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from protocol.sim_config import SimCfg
from tests.chaos.harness import ChaosOptions, run_chaos
from tests.chaos.nemesis import ALL_FAULTS, parse_mix
from tests.chaos.report import summary_text


def build_parser() -> argparse.ArgumentParser:
    d = ChaosOptions()
    p = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__.split("\n\n")[0])
    p.add_argument("--duration-s", type=_positive, default=d.duration_s, help="load duration")
    p.add_argument(
        "--seed", type=int, default=d.seed, help="reproduces the load and fault schedule"
    )
    p.add_argument("--clients", type=_count, default=d.clients, help="load client processes")
    p.add_argument(
        "--rate", type=_positive, default=d.rate_per_s, help="operations/s over all clients"
    )
    p.add_argument(
        "--fault-interval-s",
        type=_non_negative,
        default=d.fault_interval_s,
        help="mean gap between faults (0: no faults)",
    )
    p.add_argument(
        "--mix",
        default="default",
        help=f"fault weights, e.g. sigkill=3,drop_session=1; kinds: {', '.join(ALL_FAULTS)}",
    )
    p.add_argument(
        "--kill-switch-at-s",
        type=_non_negative,
        default=None,
        help="the nemesis engages the kill-switch this long into the run",
    )
    p.add_argument(
        "--minimal-dialect",
        action="append",
        default=[],
        metavar="VENUE",
        help="run VENUE (simA / simB) in the minimal FIX dialect: no AN, no AF, silent on "
        "an empty AF (repeatable)",
    )
    p.add_argument(
        "--no-exchange",
        action="store_true",
        help="FIX venues only: no ccxt venue (bx) on its local exchange",
    )
    p.add_argument(
        "--exchange-balances",
        type=_balances,
        default=None,
        metavar="ASSET=QTY,...",
        help="the exchange's starting balances, e.g. USDT=20000 to under-fund it (assets not "
        "named: the sim's defaults); default: funded for the run's load",
    )
    p.add_argument(
        "--topology",
        choices=["core", "core+edge"],
        default=d.topology,
        help="core: one supervisor; core+edge: the FIX venues on an edge supervisor in its own "
        "network namespace, the link through a fault proxy, link faults in the nemesis (root)",
    )
    p.add_argument("--no-sweep", action="store_true", help="leave open orders resting at the end")
    p.add_argument(
        "--reconcile-every-s",
        type=_non_negative,
        default=d.reconcile_every_s,
        help="run an operator reconciliation pass (each venue in turn) this often all through "
        "the load: reconciliation under full load (0: off)",
    )
    p.add_argument("--recovery-timeout-s", type=_positive, default=d.recovery_timeout_s)
    p.add_argument("--settle-timeout-s", type=_positive, default=d.settle_timeout_s)
    p.add_argument(
        "--log-level", default=d.log_level, choices=["debug", "info", "warning", "error"]
    )
    p.add_argument("--out-root", default=d.out_root, help="reports go to OUT_ROOT/<timestamp>/")
    p.add_argument("--keep-state", action="store_true", help="keep the state dir for inspection")
    p.add_argument(
        "--json", action="store_true", help="print the JSON report instead of the summary"
    )
    return p


def _number(text: str, *, zero: bool) -> float:
    """A finite number above 0 (or at 0, `zero`). Unchecked, `--clients 0` or `--rate 0`
    divided by zero, and a negative or NaN duration or interval ran, after the system's
    start, into a run reported as an invariant violation (exit 1), not a usage error."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(value) and (value > 0 or (zero and value == 0))):
        raise argparse.ArgumentTypeError(f"{text!r}: a finite number {'>=' if zero else '>'} 0")
    return value


def _positive(text: str) -> float:
    return _number(text, zero=False)


def _non_negative(text: str) -> float:
    return _number(text, zero=True)


def _count(text: str) -> int:
    value = _positive(text)
    if value != int(value):
        raise argparse.ArgumentTypeError(f"{text!r}: a whole number > 0")
    return int(value)


def _balances(text: str) -> dict[str, str]:
    """`USDT=20000,BTC=5` -> {"USDT": "20000", "BTC": "5"}, validated as the sim's config
    validates `[venues.sim] balances` (asset names, non-negative decimals)."""
    pairs = [item.partition("=") for item in text.split(",") if item.strip()]
    if not pairs or any(not sep for _, sep, _ in pairs):
        raise argparse.ArgumentTypeError(f"{text!r}: expected ASSET=QTY[,ASSET=QTY...]")
    raw = {asset.strip(): qty.strip() for asset, _, qty in pairs}
    try:
        cfg = SimCfg(balances=raw)  # type: ignore[arg-type]  # pydantic parses the strings
    except ValidationError as exc:
        problems = "; ".join(f"{e['loc'][-1]}: {e['msg']}" for e in exc.errors())
        raise argparse.ArgumentTypeError(problems) from None
    return {asset: str(qty) for asset, qty in cfg.balances.items()}


def options_from_args(ns: argparse.Namespace) -> ChaosOptions:
    try:
        mix = parse_mix(ns.mix)
    except ValueError as exc:
        raise ValueError(f"--mix: {exc}") from None
    unknown = sorted(set(ns.minimal_dialect) - set(ChaosOptions().venues))
    if unknown:
        raise ValueError(f"--minimal-dialect: no venue {', '.join(unknown)}")
    if ns.fault_interval_s <= 0:
        mix = {}
    return ChaosOptions(
        seed=ns.seed,
        duration_s=ns.duration_s,
        clients=ns.clients,
        rate_per_s=ns.rate,
        fault_interval_s=ns.fault_interval_s if ns.fault_interval_s > 0 else 1e9,
        mix=mix,
        kill_switch_at_s=ns.kill_switch_at_s,
        minimal_venues=tuple(ns.minimal_dialect),
        exchanges=() if ns.no_exchange else ChaosOptions().exchanges,
        exchange_balances=ns.exchange_balances,
        sweep=not ns.no_sweep,
        reconcile_every_s=ns.reconcile_every_s,
        recovery_timeout_s=ns.recovery_timeout_s,
        settle_timeout_s=ns.settle_timeout_s,
        log_level=ns.log_level,
        out_root=ns.out_root,
        keep_state=ns.keep_state,
        topology=ns.topology,
    )


def main(argv: Sequence[str] | None = None) -> int:
    ns = build_parser().parse_args(argv)
    try:
        opts = options_from_args(ns)
    except ValueError as exc:
        print(f"python -m tests.chaos: {exc}", file=sys.stderr)
        return 2
    report, out_dir = run_chaos(opts)
    if ns.json:
        import json

        print(json.dumps(report, indent=2, default=str))
    else:
        print(summary_text(report))
        print(f"report: {out_dir}/report.json  timeline: {out_dir}/timeline.png")
    return 0 if report["valid"] else 1


if __name__ == "__main__":
    sys.exit(main())
