"""After the load: let the system settle, collect every view of the truth, shut down.

Settling: the system healthy again; then (by default) every open order cancelled through
the client, so nothing rests at a venue and positions stop moving; then wait until the OMS
agrees with the venues or the deadline passes (executions still in flight when the load
stopped are given time to arrive; what still differs at the deadline is a finding).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import psutil

from actors.oms.order_book import OrderBook
from protocol.client import ExecutionClient, Timeout
from protocol.exceptions import TradePulseError
from tests.chaos.checker import CheckResult, Observations, check
from tests.chaos.history import Entry, history_files, read_history
from tests.chaos.system import ChaosSystem, reap_foreign_zombies
from tests.chaos.venuectl import risk_positions
from tests.helpers import kill_and_reap
from tests.system_ops import journal_records

if TYPE_CHECKING:
    from tests.chaos.harness import ChaosOptions

CONVERGENCE = (
    "oms_equals_venue",
    "fills_applied_exactly_once",
    "positions_equal",
    "final_state_or_honest_unknown",
    "acked_order_at_venue_exactly_once",
)
T = TypeVar("T")
_PENDING = {"PENDING_RISK", "PENDING_SUBMIT", "PENDING_CANCEL", "PENDING_REPLACE"}


def resubmits(lines: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The OMS's `order_resubmitted` events among the log events kept (`ChaosSystem.lines`)."""
    return [e for e in lines if e.get("event") == "order_resubmitted"]


def settle_check(
    obs: Mapping[str, Any],
    history: Sequence[Entry],
    lines: Iterable[Mapping[str, Any]],
    *,
    sweep: bool,
) -> CheckResult:
    """The checker on the views collected while settling, judged as the final check judges
    them: with the OMS's resubmits so far (an order an exchange refused, whose answer was
    lost, resubmitted on the exchange's word that it has no such order and accepted: two
    sends, and a legitimate one; without the resubmits the settle never converges)."""
    return check(
        Observations(
            history=history, open_orders_allowed=not sweep, resubmits=resubmits(lines), **obs
        )
    )


def has_converged(result: CheckResult) -> bool:
    """Nothing is still on its way: the invariants a late execution could still fix hold."""
    return all(result.invariants[k].violations == 0 for k in CONVERGENCE)


def _sweep(client: ExecutionClient, deadline: float) -> int:
    """Cancel every live order until none is open (or only honest UNKNOWNs remain)."""
    cancelled = 0
    while time.monotonic() < deadline:
        open_orders = client.list_orders(open_only=True)
        live = [o for o in open_orders if o.status.value in ("ACCEPTED", "PARTIALLY_FILLED")]
        waiting = [o for o in open_orders if o.status.value in _PENDING]
        if not live and not waiting:
            return cancelled
        for o in live:
            try:
                client.cancel(o.client_order_id, timeout_s=5.0)
                cancelled += 1
            except TradePulseError:
                pass  # filled meanwhile, or a cancel already pending
        time.sleep(0.5)
    return cancelled


def _wait_no_pending(client: ExecutionClient, deadline: float) -> None:
    while time.monotonic() < deadline:
        if not [o for o in client.list_orders(open_only=True) if o.status.value in _PENDING]:
            return
        time.sleep(0.5)


def _patiently(call: Callable[[], list[T]], attempts: int = 3) -> list[T]:
    """A read that may outlive an OMS incarnation: ask again after a Timeout."""
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except Timeout:
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")


def collect(system: ChaosSystem, client: ExecutionClient, *, journal: bool) -> dict[str, Any]:
    # one venue at a time: each answer holds every order the OMS ever had at that venue
    orders = [
        o.model_dump(mode="json")
        for v in system.venues
        for o in _patiently(partial(client.list_orders, v))
    ]
    positions = [p.model_dump(mode="json") for p in _patiently(client.positions)]
    venues = {v: system.ground_truth(v) for v in system.venues}
    st = system.try_status(timeout_s=5.0)
    healthy = st is not None and system.healthy(st)
    oms_info: dict[str, Any] = {}
    if st is not None:
        oms_info = next((a.get("info") or {} for a in st["actors"] if a["id"] == "oms"), {})
    unmatched_logged = len(system.events("unmatched_fill"))
    risk, risk_error = risk_positions(system.cfg)
    return {
        "oms_orders": orders,
        "oms_positions": positions,
        "venues": venues,
        "journal": journal_records(system) if journal else None,
        "risk_positions": risk,
        "risk_positions_error": risk_error,
        "healthy_at_end": healthy,
        "unhealthy_detail": "" if healthy else _describe(st),
        "unmatched_fills": max(int(oms_info.get("unmatched_fills", 0) or 0), unmatched_logged),
    }


def _describe(st: dict[str, Any] | None) -> str:
    if st is None:
        return "supervisor not answering"
    bad = [f"{a['id']}={a['state']}" for a in st["actors"] if a["state"] != "running"]
    venues = {v: s.get("state") for v, s in st["venues"].items()}
    oms: Any = next((a.get("info") for a in st["actors"] if a["id"] == "oms"), {})
    return f"actors {bad or 'all running'}; venues {venues}; oms {oms}"


def journal_views(
    records: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The OMS's durable orders and positions, replayed from `journal inspect` output (the
    latest snapshot, then every record after it): what a restarted OMS would know."""
    book = OrderBook()
    for r in records:
        if r.get("kind") == "snapshot":
            book = OrderBook.from_dict(r["data"])
        elif r.get("kind") == "record":
            book.apply_record(r["data"])
    orders = [o.view().model_dump(mode="json") for o in book.orders()]
    positions = [p.view().model_dump(mode="json") for p in book.positions()]
    return orders, positions


def _collect_any(system: ChaosSystem, client: ExecutionClient, notes: list[str]) -> dict[str, Any]:
    """The final views, through the client; from the journal when the OMS does not answer."""
    try:
        return collect(system, client, journal=True)
    except Timeout:
        obs = collect_without_oms(system)
        notes.append(
            "the OMS did not answer list_orders: its orders and positions were "
            "replayed from its journal"
        )
        return obs


def collect_without_oms(system: ChaosSystem) -> dict[str, Any]:
    records = journal_records(system)
    orders, positions = journal_views(records)
    st = system.try_status(timeout_s=5.0)
    risk, risk_error = risk_positions(system.cfg)
    return {
        "oms_orders": orders,
        "oms_positions": positions,
        "venues": {v: system.ground_truth(v) for v in system.venues},
        "journal": records,
        "risk_positions": risk,
        "risk_positions_error": risk_error,
        "healthy_at_end": False,
        "unhealthy_detail": "OMS not answering; " + _describe(st),
        "unmatched_fills": len(system.events("unmatched_fill")),
    }


def settle_and_collect(
    system: ChaosSystem, opts: ChaosOptions, notes: list[str]
) -> tuple[CheckResult | None, dict[str, Any]]:
    t0 = time.monotonic()
    try:
        system.wait_healthy(opts.recovery_timeout_s)
        notes.append(f"healthy {time.monotonic() - t0:.1f} s after the load stopped")
    except AssertionError:
        notes.append(f"NOT healthy {opts.recovery_timeout_s:.0f} s after the load stopped")
    history = read_history(history_files(Path(system.log_path).parent / "history"))
    # one send per request (no resend while the OMS builds a large answer), a long deadline
    client = ExecutionClient(system.cfg, name="chaos-settle", retry_interval_s=30.0, timeout_s=30.0)
    result: CheckResult | None = None
    try:
        deadline = time.monotonic() + opts.settle_timeout_s
        try:
            if opts.sweep:
                n = _sweep(client, deadline)
                notes.append(f"sweep cancelled {n} open orders")
            else:
                _wait_no_pending(client, deadline)
            while True:
                obs = collect(system, client, journal=False)
                result = settle_check(obs, history, system.lines, sweep=opts.sweep)
                converged = has_converged(result)
                if converged or time.monotonic() >= deadline:
                    break
                time.sleep(1.0)
            notes.append(
                f"settled in {time.monotonic() - t0:.1f} s "
                f"({'converged' if converged else 'NOT converged'})"
            )
        except Timeout:
            notes.append("the OMS stopped answering while the run settled")
        obs = _collect_any(system, client, notes)
    finally:
        client.close()
    sides = [system] if system.edge is None else [system, system.edge]
    zombies = [z for side in sides for z in side.zombies()]
    if zombies:  # a child that just exited is a zombie until its parent reaps it
        time.sleep(1.0)
        zombies = [z for side in sides for z in side.zombies() if z in zombies]
    orphans = [o for side in sides for o in side.orphans(load_pids=set())]
    obs.update(orphans=orphans, zombies=zombies, open_orders_allowed=not opts.sweep)
    return result, {"observations": obs}


def shutdown_and_check(system: ChaosSystem, errors: list[str]) -> dict[str, list[str]]:
    """Orderly shutdown; afterwards no process of this deployment may remain."""
    orphans: list[str] = []
    if system.proc is not None and system.proc.poll() is None:
        try:
            code = system.stop(signal.SIGTERM, timeout_s=60.0)
            if code != 0:
                errors.append(f"supervisor exited with code {code} on shutdown")
        except AssertionError as exc:
            errors.append(f"shutdown: {str(exc)[:300]}")
            system.destroy()
    elif system.proc is not None:
        errors.append(f"supervisor was not running at the end (exit code {system.proc.returncode})")
    deadline = time.monotonic() + 5.0
    left: list[psutil.Process] = system.ours()
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = system.ours()
    for p in left:
        try:
            orphans.append(f"after shutdown: {p.pid} {' '.join(p.cmdline())[:100]}")
        except psutil.Error:
            continue
    if left:
        kill_and_reap(p.pid for p in left)
    reap_foreign_zombies(set())
    return {"orphans": orphans}
