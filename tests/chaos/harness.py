"""One chaos run, start to report: start the system in a fresh short state dir, run the load
clients and the nemesis, stop, let the system settle, collect every view, check, report.

    report, out_dir = run_chaos(ChaosOptions(seed=7, duration_s=40))
"""

from __future__ import annotations

import ctypes
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tests import fixlogs
from tests.chaos import settle
from tests.chaos.busts import ESCALATION_EVENTS
from tests.chaos.checker import CheckResult, Observations, check
from tests.chaos.history import history_files, read_history
from tests.chaos.load import LoadSpec, exchange_funding, spec_json
from tests.chaos.nemesis import DEFAULT_MIX, EdgePlan, FaultPlanner, Nemesis, sim_hosts_of
from tests.chaos.report import (
    build_report,
    restarts_by_actor,
    summary_text,
    unexpected_exits,
    write_report,
)
from tests.chaos.system import ChaosSystem
from tests.chaos.topology import EDGE_GROUP, EdgeTopology, core_loss_cancel_s, link_report
from tests.chaos.venuectl import venue_fault
from tests.chaos.watchers import Monitor, Reconciler
from tests.helpers import REPO_ROOT

_PR_SET_CHILD_SUBREAPER = 36
SYMBOLS = {"AAPL": "100.00", "MSFT": "200.00"}
# the crypto exchange (a ccxt venue with its local exchange sim): its symbols, the lot the
# load's quantities are multiples of (LOT_SIZE steps, min notional 5 USDT: ~12 USDT a lot)
EXCHANGE_SYMBOLS = {"BTC/USDT": "60000.00", "ETH/USDT": "3000.00"}
EXCHANGE_LOTS = {"BTC/USDT": "0.0002", "ETH/USDT": "0.004"}
# the exchange sim's default starting balances: every base asset 1000, the quote 1,000,000
EXCHANGE_DEFAULT_BALANCES = {"BTC": "1000", "ETH": "1000", "USDT": "1000000"}
EXCHANGE_KEY_ENV, EXCHANGE_SECRET_ENV = "TP_CHAOS_CCXT_KEY", "TP_CHAOS_CCXT_SECRET"
# the exchange account's credentials, set by the harness for its processes (sim and connector)
EXCHANGE_ENV = {EXCHANGE_KEY_ENV: "k" * 64, EXCHANGE_SECRET_ENV: "s" * 64}
MINIMAL_DIALECT = {
    "serves_positions": False,
    "serves_mass_status": False,
    "empty_mass_status": "silent",
    "empty_mass_status_wait_s": 1.0,
}


@dataclass(frozen=True)
class ChaosOptions:
    seed: int = 1
    duration_s: float = 600.0
    clients: int = 8
    rate_per_s: float = 200.0  # operations per second over all clients (~half are submits)
    fault_interval_s: float = 2.0
    mix: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    kill_switch_at_s: float | None = None  # the nemesis engages the kill-switch then
    venues: tuple[str, ...] = ("simA", "simB")  # FIX venues, each with its venue simulator
    # ccxt venues, each with its local exchange (`actors.exchangesim`)
    exchanges: tuple[str, ...] = ("bx",)
    # the exchange account's starting balance per asset, over the sim's defaults (e.g. to
    # under-fund it on purpose); None: funded for the load (`load.exchange_funding`)
    exchange_balances: dict[str, str] | None = None
    # venues in the minimal dialect (no AN, no AF, silent on an empty AF), connector and
    # simulator alike: reconciled by H, positions from the connector's fill ledger
    minimal_venues: tuple[str, ...] = ()
    sweep: bool = True  # cancel every open order before checking
    recovery_timeout_s: float = 60.0
    settle_timeout_s: float = 120.0
    request_timeout_s: float = 5.0
    log_level: str = "info"
    # > 0: an operator reconciliation pass of each venue in turn this often, all through
    # the load (reconciliation under full load: nothing in flight may be resubmitted)
    reconcile_every_s: float = 0.0
    out_root: str = "var/chaos"
    keep_state: bool = False
    # "core": one supervisor; "core+edge": the FIX venues on an edge supervisor in its own
    # network namespace, linked to the core through a fault proxy (tests.chaos.topology)
    topology: str = "core"

    @property
    def edge_venues(self) -> tuple[str, ...]:
        """The venues placed on the edge (core+edge): the FIX venues; the ccxt venue stays
        on the core, so a partition of the edge leaves one venue trading throughout."""
        return self.venues if self.topology == "core+edge" else ()

    def config_overrides(self, link: dict[str, Any] | None = None) -> dict[str, Any]:
        """The system config for chaos: fast supervision, risk limits out of the way (the
        run tests recovery, not the limits), restart budgets that deliberate kills don't
        exhaust, venue outages of a few seconds tolerated without the kill-switch. `link`:
        the `[link]` table of a core+edge run (the edge's venues get its host group)."""
        big = "1000000000"
        placed = {"host_group": EDGE_GROUP}
        return {
            "system": {"name": "chaos", "log_level": self.log_level},
            "supervisor": {"restart": {"max_restarts": 1000, "window_s": 60.0, "max_s": 0.5}},
            "risk": {
                "max_order_qty": big,
                "max_order_notional": big,
                "max_position": big,
                "max_open_orders_per_venue": 1_000_000,
                "max_orders_per_s_per_venue": 1e6,
                "max_orders_per_s": 1e6,
                "price_band_pct": 50.0,
                "max_daily_loss": big,
                "breaches_to_engage": 1_000_000,
            },
            "heartbeat": {"interval_s": 1.0, "missing_intervals": 10, "divergence_beats": 5},
            "oms": {"outage_tolerance_s": 300.0},
            "venues": [
                {"name": v, "target_comp_id": v.upper(), "sim": {"reference_prices": SYMBOLS}}
                | ({"dialect": MINIMAL_DIALECT} if v in self.minimal_venues else {})
                | (placed if v in self.edge_venues else {})
                for v in self.venues
            ]
            + [_exchange_venue(x, self.exchange_start_balances()) for x in self.exchanges],
        } | ({"link": link} if link is not None else {})

    @property
    def all_venues(self) -> tuple[str, ...]:
        return (*self.venues, *self.exchanges)

    def exchange_start_balances(self) -> dict[str, str]:
        """The exchange sim's starting balances: `exchange_balances` over its defaults, or
        (None) enough for this run's load, `rate_per_s` x `duration_s` operations."""
        if self.exchange_balances is not None:
            return EXCHANGE_DEFAULT_BALANCES | self.exchange_balances
        ops = self.rate_per_s * self.duration_s
        return exchange_funding(EXCHANGE_SYMBOLS, EXCHANGE_LOTS, ops)


def _exchange_venue(name: str, balances: dict[str, str]) -> dict[str, Any]:
    """A ccxt venue on its local exchange: Binance spot, credentials from the environment
    (`EXCHANGE_ENV`), funded with `balances`; positions = base balance - its start."""
    bases = {symbol.split("/")[0] for symbol in EXCHANGE_SYMBOLS}
    return {
        "name": name,
        "kind": "ccxt",
        "ccxt": {
            "exchange": "binance",
            "api_key_env": EXCHANGE_KEY_ENV,
            "secret_env": EXCHANGE_SECRET_ENV,
            "symbols": sorted(EXCHANGE_SYMBOLS),
            "position_baseline": {a: q for a, q in balances.items() if a in bases},
        },
        # the exchange's default commission (Binance's 0.1% of the asset received): OMS,
        # risk and exchange must agree net of fees (`positions_equal`)
        "sim": {"reference_prices": dict(EXCHANGE_SYMBOLS), "balances": dict(balances)},
    }


def _subreaper() -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _start_clients(
    opts: ChaosOptions, system: ChaosSystem, out_dir: Path
) -> list[subprocess.Popen[bytes]]:
    procs = []
    per_client = opts.rate_per_s / opts.clients
    for i in range(opts.clients):
        spec = LoadSpec(
            client=i,
            seed=opts.seed,
            config_path=str(system.config_path),
            state_dir=str(system.state_dir),
            runtime_dir=str(system.runtime_dir),
            out_path=str(out_dir / "history" / f"client-{i}.jsonl"),
            venues=list(opts.venues),
            reference_prices=dict(SYMBOLS),
            exchanges=list(opts.exchanges),
            exchange_prices=dict(EXCHANGE_SYMBOLS),
            exchange_lots=dict(EXCHANGE_LOTS),
            rate_per_s=per_client,
            duration_s=opts.duration_s,
            request_timeout_s=opts.request_timeout_s,
        )
        log = (out_dir / f"client-{i}.log").open("wb")
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "tests.chaos.load", "--spec", spec_json(spec)],
                cwd=REPO_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        log.close()
    return procs


def _stop_clients(procs: list[subprocess.Popen[bytes]], deadline_s: float) -> list[str]:
    """Wait for the clients to finish; SIGTERM then SIGKILL stragglers. Returns problems."""
    problems = []
    end = time.monotonic() + deadline_s
    for p in procs:
        try:
            p.wait(timeout=max(0.1, end - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                problems.append(f"load client pid {p.pid} had to be killed")
        if p.returncode not in (0, -signal.SIGTERM):
            problems.append(f"load client pid {p.pid} exited with {p.returncode}")
    return problems


def _dump_views(out_dir: Path, obs: dict[str, Any]) -> None:
    """The collected views, for bug reports: OMS orders and positions, venue inspections."""
    views = out_dir / "views"
    views.mkdir(exist_ok=True)
    for name in ("oms_orders", "oms_positions", "risk_positions"):
        if obs.get(name) is not None:
            (views / f"{name}.json").write_text(json.dumps(obs[name], indent=1, default=str))
    for venue, data in (obs.get("venues") or {}).items():
        (views / f"venue-{venue}.json").write_text(json.dumps(data, indent=1, default=str))


def run_chaos(opts: ChaosOptions) -> tuple[dict[str, Any], Path]:
    _subreaper()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"-s{opts.seed}"
    out_dir = (REPO_ROOT / opts.out_root / stamp).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "options.json").write_text(json.dumps(asdict(opts), indent=2) + "\n")
    root = Path(tempfile.mkdtemp(prefix="tpc", dir="/tmp"))
    env = EXCHANGE_ENV if opts.exchanges else {}
    topo: EdgeTopology | None = None
    if opts.topology == "core+edge":
        topo = EdgeTopology(root).open()
        try:
            overrides = opts.config_overrides(link=topo.link_overrides())
            core_log = out_dir / "supervisor.log"
            system = ChaosSystem(root, overrides, core_log, env=env, launcher=topo.launcher("core"))
            system.edge = topo.edge_system(overrides, out_dir / "edge-supervisor.log", env)
        except BaseException:
            topo.close()
            raise
    else:
        system = ChaosSystem(root, opts.config_overrides(), out_dir / "supervisor.log", env=env)
    errors: list[str] = []
    notes: list[str] = []
    if opts.exchanges:
        funding = ", ".join(f"{a} {q}" for a, q in opts.exchange_start_balances().items())
        notes.append(f"exchange funding ({', '.join(opts.exchanges)}): {funding}")
    procs: list[subprocess.Popen[bytes]] = []
    nemesis: Nemesis | None = None
    monitor: Monitor | None = None
    reconciler: Reconciler | None = None
    ks_requested: list[int] = []
    started_ns = time.time_ns()
    load_ended_ns = started_ns
    try:
        if system.edge is not None:  # the core first: an edge's dead-man counts from its start
            system.start(wait_ready=False)
            system.edge.start(wait_ready=False)
            system.wait_healthy(opts.recovery_timeout_s)
        else:
            system.start(timeout_s=opts.recovery_timeout_s)
        started_ns = time.time_ns()
        procs = _start_clients(opts, system, out_dir)
        monitor = Monitor(system, keep={p.pid for p in procs})
        monitor.start()
        if opts.reconcile_every_s > 0:
            reconciler = Reconciler(system, opts.all_venues, opts.reconcile_every_s)
            reconciler.start()

        def engage() -> None:
            ks_requested.append(time.time_ns())
            system.control("kill-switch", action="engage", reason="chaos nemesis")

        planner = FaultPlanner(
            opts.seed,
            opts.fault_interval_s,
            opts.mix,
            opts.venues,
            hang_limit_s=0.6,
            exchanges=opts.exchanges,
            sim_hosts=sim_hosts_of(system.cfg.venues),
            edge=None
            if topo is None
            else EdgePlan(EDGE_GROUP, opts.edge_venues, core_loss_cancel_s()),
        )
        nemesis = Nemesis(
            system,
            planner,
            lambda v, k, p: venue_fault(system.side_of(v), v, k, p),
            recovery_timeout_s=opts.recovery_timeout_s,
            kill_switch_at_s=opts.kill_switch_at_s,
            engage_kill_switch=engage,
            edge=system.edge,
            link=topo,
        )
        nemesis.start()
        errors += _stop_clients(procs, opts.duration_s + 60.0)
        load_ended_ns = time.time_ns()
        if reconciler is not None:
            reconciler.stop()
            reconciler.join(timeout=15.0)
        nemesis.stop()
        nemesis.join(timeout=opts.recovery_timeout_s + 30.0)
        if nemesis.is_alive():
            errors.append("nemesis did not finish its last fault")
        if nemesis.crashed:
            errors.append(f"nemesis crashed: {nemesis.crashed}")
        _, collected = settle.settle_and_collect(system, opts, notes)
    except Exception as exc:  # noqa: BLE001 - a broken run still gets a report
        errors.append(f"harness: {type(exc).__name__}: {exc}")
        collected = {}
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        if monitor is not None:
            monitor.stop()
            monitor.join(timeout=5)
            errors += monitor.errors[:10]
    edge_shutdown = {"orphans": []}
    if system.edge is not None:  # the edge first (the core first would fire its dead-man)
        edge_shutdown = settle.shutdown_and_check(system.edge, errors)
    shutdown = settle.shutdown_and_check(system, errors)
    shutdown["orphans"] += edge_shutdown["orphans"]
    link_stats = topo.stats() if topo is not None else {}
    if topo is not None:  # nothing may be left in the namespaces after both shutdowns
        shutdown["orphans"] += [f"left in a namespace: {p}" for p in sorted(topo.pids())]
        topo.close()  # both namespaces, and any process left in them
    # every FIX message either side sent (on the edge's supervisor in core+edge)
    fix_root = system.edge.root if system.edge is not None else root
    conformance = fixlogs.collect(fix_root, system=True)
    errors += [f"FIX conformance: {p}" for p in conformance.problems[:10]]
    if not (conformance.files["connector"] and conformance.files["venue"]):
        errors.append("FIX conformance: a side's message log is missing")
    faults = nemesis.records if nemesis is not None else []
    lines = [*system.lines, *(system.edge.lines if system.edge is not None else [])]
    history = read_history(history_files(out_dir / "history"))
    obs_kwargs = dict(collected.get("observations", {}))
    obs_kwargs.update(
        history=history,
        orphans=[*obs_kwargs.get("orphans", []), *shutdown["orphans"]],
        kill_switch_samples=monitor.kill_switch if monitor else [],
        kill_switch_requested_ns=ks_requested[0] if ks_requested else None,
        protocol_errors=system.protocol_error_lines
        + (system.edge.protocol_error_lines if system.edge is not None else 0),
        unrecovered_faults=[
            f"{f.kind}:{f.target}#{f.index}" for f in faults if f.recovered_ns is None
        ],
        unexpected_exits=unexpected_exits(lines, faults),
        resubmits=settle.resubmits(system.lines),
        trade_busts=[f.detail["trade_bust"] for f in faults if "trade_bust" in f.detail],
        escalation_lines=[e for e in lines if e.get("event") in ESCALATION_EVENTS],
    )
    obs_kwargs.setdefault("oms_orders", [])
    obs_kwargs.setdefault("oms_positions", [])
    obs_kwargs.setdefault("venues", {})
    if not collected:
        obs_kwargs.setdefault("healthy_at_end", False)
        obs_kwargs.setdefault("unhealthy_detail", "run did not reach the check")
    final: CheckResult = check(Observations(**obs_kwargs))
    _dump_views(out_dir, obs_kwargs)
    restarts = restarts_by_actor(system.lines)
    if system.edge is not None:
        restarts |= {
            f"{EDGE_GROUP}/{k}": n for k, n in restarts_by_actor(system.edge.lines).items()
        }
    report = build_report(
        seed=opts.seed,
        options=asdict(opts),
        started_ns=started_ns,
        load_ended_ns=load_ended_ns,
        ended_ns=time.time_ns(),
        history=history,
        faults=faults,
        restarts=restarts,
        supervisor_restarts=len(system.supervisor_pids) - 1,
        check=final,
        harness_errors=errors,
        notes=notes + list(collected.get("notes", [])),
    )
    samples = monitor.kill_switch if monitor else []
    engaged = [ts for ts, on in samples if on]
    report["kill_switch"] = {
        "requested_at_s": round((ks_requested[0] - started_ns) / 1e9, 3) if ks_requested else None,
        "first_seen_engaged_at_s": round((engaged[0] - started_ns) / 1e9, 3) if engaged else None,
        "engaged_at_end": bool(samples and samples[-1][1]),
        "samples": len(samples),
    }
    report["log_counts"] = {
        f"{lvl}:{actor}:{ev}": n
        for (lvl, actor, ev), n in sorted(system.level_counts.items(), key=lambda kv: -kv[1])[:60]
    }
    report["reconciliation"] = {
        "operator_passes": reconciler.passes if reconciler else 0,
        "skipped_in_flight": reconciler.skipped_in_flight if reconciler else 0,
        "resubmits": len(obs_kwargs["resubmits"]),
    }
    if system.edge is not None:
        report["restarts"]["edge_supervisor"] = len(system.edge.supervisor_pids) - 1
        report["link"] = link_report(system, faults, link_stats, obs_kwargs)
    report["topology"] = opts.topology
    report["out_dir"] = str(out_dir)
    if opts.keep_state:  # in report.json too
        report["state_dir"] = str(root)
        if system.edge is not None:
            report["edge_state_dir"] = str(system.edge.root)
    write_report(report, out_dir)
    (out_dir / "summary.txt").write_text(summary_text(report) + "\n")
    try:
        from tests.chaos.plot import plot_timeline, restart_events

        plot_timeline(
            out_dir / "timeline.png",
            t0_ns=started_ns,
            history=history,
            faults=faults,
            restarts=restart_events(lines),
            title=f"chaos seed {opts.seed}: {'VALID' if report['valid'] else 'INVALID'}",
        )
    except Exception as exc:  # noqa: BLE001 - a failed plot must not hide the report
        report["harness_errors"].append(f"plot: {type(exc).__name__}: {exc}")
        write_report(report, out_dir)
    system.close_log()
    edge_root = None
    if system.edge is not None:
        system.edge.close_log()
        edge_root = system.edge.root
    if not opts.keep_state:
        shutil.rmtree(root, ignore_errors=True)
        if edge_root is not None:
            shutil.rmtree(edge_root, ignore_errors=True)
    return report, out_dir
