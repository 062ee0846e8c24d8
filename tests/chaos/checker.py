"""The checker: pure invariant checks over what the clients saw (the history), what the OMS
says (orders, positions, journal) and what each venue actually holds (its inspection).

No processes and no sockets: `check(Observations(...))` is unit-tested with hand-made
inputs (tests/chaos/test_checker.py). Each invariant reports its number of violations and
a few examples; the run is valid when no invariant has a violation.

Matching OMS orders to venue orders uses the OMS's deterministic ClOrdID scheme: the
harness's client order ids are venue-safe, so a venue order's first ClOrdID (its chain's
head) is the client order id; cancel / replace requests append `.c{n}` / `.r{n}`.
Adopted orders are `ext:{venue}:{ClOrdID}` at the OMS.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from typing import Any

from tests.chaos.busts import as_booked, check_busts, counted_escalations, engage_explained
from tests.chaos.history import Entry, summarize_submits
from tests.chaos.sends import check_acked, check_resubmits

AT_VENUE_STATUSES = frozenset(
    {
        "ACCEPTED",
        "PARTIALLY_FILLED",
        "FILLED",
        "CANCELLED",
        "EXPIRED",
        "PENDING_CANCEL",
        "PENDING_REPLACE",
    }
)
FINAL_STATUSES = frozenset({"FILLED", "CANCELLED", "REJECTED", "EXPIRED"})
OPEN_STATUSES = frozenset({"ACCEPTED", "PARTIALLY_FILLED"})
PX_TOLERANCE = Decimal("0.000001")
MAX_EXAMPLES = 10

INVARIANTS = (
    "no_acked_order_lost",
    "acked_order_at_venue_exactly_once",
    "no_duplicate_cl_ord_id",
    "no_unrequested_venue_order",
    "final_state_or_honest_unknown",
    "oms_equals_venue",
    "fills_applied_exactly_once",
    "busts_applied_exactly_once",
    "positions_equal",
    "actors_up_at_end",
    "no_orphans_or_zombies",
    "kill_switch_persistent",
    "kill_switch_only_when_asked",
    "no_protocol_errors",
    "no_unmatched_fills",
    "every_fault_recovered",
    "no_unexpected_actor_exits",
    "no_inflight_resubmit",
)


@dataclass
class Invariant:
    name: str
    violations: int = 0
    examples: list[str] = field(default_factory=list)
    skipped: bool = False
    note: str = ""

    def fail(self, example: str) -> None:
        self.violations += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(example)

    def to_dict(self) -> dict[str, Any]:
        return {
            "violations": self.violations,
            "examples": self.examples,
            "skipped": self.skipped,
            "note": self.note,
        }


@dataclass(frozen=True)
class Observations:
    """Everything the checker looks at, collected by the harness after the run settled."""

    history: Sequence[Entry]
    oms_orders: Sequence[Mapping[str, Any]]  # OrderView dumps (json mode)
    oms_positions: Sequence[Mapping[str, Any]]  # PositionView dumps
    venues: Mapping[str, Mapping[str, Any]]  # venue -> its inspection output
    journal: Sequence[Mapping[str, Any]] | None = None  # `journal inspect --json` lines
    risk_positions: Sequence[Mapping[str, Any]] | None = None  # None: not collected
    risk_positions_error: str = ""  # risk did not answer GetPositions (a violation)
    healthy_at_end: bool = True
    unhealthy_detail: str = ""
    orphans: Sequence[str] = ()
    zombies: Sequence[str] = ()
    kill_switch_samples: Sequence[tuple[int, bool]] = ()  # (ts_ns, engaged), in time order
    kill_switch_requested_ns: int | None = None  # when the nemesis engaged it, if it did
    protocol_errors: int = 0
    injected_protocol_errors: int = 0
    unmatched_fills: int = 0
    open_orders_allowed: bool = False  # no end-of-run cancel sweep: resting orders are fine
    unrecovered_faults: Sequence[str] = ()  # faults after which the system never got healthy
    unexpected_exits: Sequence[str] = ()  # actor exits the nemesis did not cause (crashes)
    resubmits: Sequence[Mapping[str, Any]] = ()  # the OMS's `order_resubmitted` log events
    # the nemesis's busts and corrections the venue carried out, in order (`tests.chaos.busts`)
    trade_busts: Sequence[Mapping[str, Any]] = ()
    # the OMS's `trade_bust_unknown_fill` and the heartbeat's `kill_switch_requested` events
    escalation_lines: Sequence[Mapping[str, Any]] = ()


@dataclass
class CheckResult:
    invariants: dict[str, Invariant]
    stats: dict[str, Any]

    @property
    def valid(self) -> bool:
        return all(inv.violations == 0 for inv in self.invariants.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "stats": self.stats,
            "invariants": {k: v.to_dict() for k, v in self.invariants.items()},
        }


def _dec(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _same_px(a: Any, b: Any) -> bool:
    x, y = _dec(a), _dec(b)
    if x is None or y is None:
        return x == y or (x or Decimal(0)) == (y or Decimal(0))
    return abs(x - y) <= PX_TOLERANCE * max(Decimal(1), abs(x))


def _same_qty(a: Any, b: Any) -> bool:
    return (_dec(a) or Decimal(0)) == (_dec(b) or Decimal(0))


@dataclass(frozen=True)
class _VenueOrder:
    venue: str
    data: Mapping[str, Any]

    @property
    def head(self) -> str:
        chain = self.data.get("cl_ord_ids") or [self.data.get("cl_ord_id", "")]
        return str(chain[0])


def _index_venues(venues: Mapping[str, Mapping[str, Any]]) -> dict[str, list[_VenueOrder]]:
    """Venue orders by the head of their ClOrdID chain (the client order id)."""
    by_head: dict[str, list[_VenueOrder]] = defaultdict(list)
    for name, data in venues.items():
        for o in data.get("orders", []):
            vo = _VenueOrder(name, o)
            by_head[vo.head].append(vo)
    return by_head


def _oms_key(order: Mapping[str, Any]) -> str:
    """The venue chain head an OMS order corresponds to."""
    coid = str(order["client_order_id"])
    if order.get("external") or coid.startswith("ext:"):
        return coid.split(":", 2)[2] if coid.count(":") >= 2 else str(order.get("cl_ord_id", ""))
    return coid


def check(obs: Observations) -> CheckResult:
    inv = {name: Invariant(name) for name in INVARIANTS}
    submits = summarize_submits(obs.history)
    oms = {str(o["client_order_id"]): o for o in obs.oms_orders}
    oms_by_key = {_oms_key(o): o for o in obs.oms_orders}
    # a bust escalated as designed (`tests.chaos.busts.counted_escalations`): judged as
    # such once; every comparison after it takes the OMS's holding the fill as the venue's
    limits = counted_escalations(obs.trade_busts, obs.journal, obs.escalation_lines, oms_by_key)
    bad = inv["busts_applied_exactly_once"]
    check_busts(bad, obs.trade_busts, obs.venues, obs.journal, oms_by_key, limits)
    asked = engage_explained(obs.escalation_lines, limits, obs.kill_switch_requested_ns)
    obs = replace(obs, venues=as_booked(obs.venues, limits), kill_switch_requested_ns=asked)
    by_head = _index_venues(obs.venues)

    for o in obs.oms_orders:
        if o.get("external") and _oms_key(o) in oms:
            inv["oms_equals_venue"].fail(
                f"{o['client_order_id']}: adopted, but the OMS has {_oms_key(o)}"
            )
    check_acked(inv, obs, submits, oms, by_head)
    _check_venue_side(inv, obs, submits, oms_by_key)
    _check_final(inv, obs, submits, oms)
    _check_oms_vs_venue(inv, obs.oms_orders, by_head)
    _check_fills(inv, obs, oms, by_head)
    _check_positions(inv, obs)
    _check_runtime(inv, obs)

    status_counts = Counter(str(o["status"]) for o in obs.oms_orders)
    stats = {
        "submits": dict(Counter(s.result for s in submits.values())),
        "oms_orders": len(obs.oms_orders),
        "oms_orders_by_status": dict(sorted(status_counts.items())),
        "venue_orders": {v: len(d.get("orders", [])) for v, d in obs.venues.items()},
        "venue_duplicate_rejects": {
            v: sum(1 for r in d.get("rejects", []) if r.get("ord_rej_reason") == 6)
            for v, d in obs.venues.items()
        },
        "venue_refusals": {
            v: sum(1 for r in d.get("rejects", []) if r.get("ord_rej_reason") != 6)
            for v, d in obs.venues.items()
        },
        "trade_busts": dict(Counter(str(b["command"]) for b in obs.trade_busts)),
        "external_orders": sum(1 for o in obs.oms_orders if o.get("external")),
        "unknown_orders": status_counts.get("UNKNOWN", 0),
        "unknown_examples": [
            f"{o['client_order_id']}@{o['venue']}: {o.get('reason', '')}"
            for o in obs.oms_orders
            if o["status"] == "UNKNOWN"
        ][:MAX_EXAMPLES],
    }
    return CheckResult(inv, stats)


def _check_venue_side(
    inv: dict[str, Invariant],
    obs: Observations,
    submits: Mapping[str, Any],
    oms_by_key: Mapping[str, Any],
) -> None:
    for name, data in obs.venues.items():
        owner: dict[str, str] = {}
        for o in data.get("orders", []):
            vo = _VenueOrder(name, o)
            for cl in o.get("cl_ord_ids") or [vo.head]:
                if cl in owner and owner[cl] != o.get("order_id"):
                    inv["no_duplicate_cl_ord_id"].fail(
                        f"{name}: ClOrdID {cl} on orders {owner[cl]} and {o.get('order_id')}"
                    )
                owner[cl] = str(o.get("order_id"))
            s = submits.get(vo.head)
            if s is None:
                inv["no_unrequested_venue_order"].fail(
                    f"{name}: order {o.get('order_id')} ClOrdID {vo.head} "
                    "was never submitted by a client"
                )
            elif s.result == "refused" and not s.ever_unanswered:
                inv["no_unrequested_venue_order"].fail(
                    f"{name}: {vo.head} reached the venue though its submit was refused ({s.error})"
                )
            if vo.head not in oms_by_key:
                inv["oms_equals_venue"].fail(
                    f"{name}: venue order {o.get('order_id')} ({vo.head}, {o.get('status')}) "
                    "unknown to the OMS"
                )
        # an exchange takes a client id again once its first order is finished: a second
        # order under it is a second send, unless the OMS resubmitted it on the exchange's
        # word that it never saw it (then `no_inflight_resubmit` judges the resubmit)
        resubmitted = {str(e.get("cl_ord_id")) for e in obs.resubmits if e.get("venue") == name}
        for cl in data.get("duplicate_client_ids", []):
            if cl not in resubmitted:
                inv["no_duplicate_cl_ord_id"].fail(f"{name}: client id {cl} on several orders")


def _check_final(
    inv: dict[str, Invariant], obs: Observations, submits: Mapping[str, Any], oms: Mapping[str, Any]
) -> None:
    allowed = FINAL_STATUSES | (OPEN_STATUSES if obs.open_orders_allowed else frozenset())
    for coid, order in oms.items():
        status = str(order["status"])
        if status in allowed:
            continue
        if status == "UNKNOWN" and order.get("reason"):
            continue
        why = "UNKNOWN without a reason" if status == "UNKNOWN" else f"still {status}"
        origin = "" if coid in submits else " (not in the history)"
        inv["final_state_or_honest_unknown"].fail(f"{coid}: {why}{origin}")


def _check_oms_vs_venue(
    inv: dict[str, Invariant],
    orders: Iterable[Mapping[str, Any]],
    by_head: Mapping[str, list[_VenueOrder]],
) -> None:
    for order in orders:
        key = _oms_key(order)
        at = [vo for vo in by_head.get(key, []) if vo.venue == order["venue"]]
        status = str(order["status"])
        coid = order["client_order_id"]
        if not at:
            if status in AT_VENUE_STATUSES:
                inv["oms_equals_venue"].fail(
                    f"{coid}: OMS {status}, no such order at {order['venue']}"
                )
            continue
        v = at[0].data
        diffs = []
        if status != v.get("status"):
            diffs.append(f"status {status} != {v.get('status')}")
        if not _same_qty(order.get("cum_qty"), v.get("cum_qty")):
            diffs.append(f"cum_qty {order.get('cum_qty')} != {v.get('cum_qty')}")
        if not _same_px(order.get("avg_px"), v.get("avg_px")):
            diffs.append(f"avg_px {order.get('avg_px')} != {v.get('avg_px')}")
        if status not in ("REJECTED", "UNKNOWN") and not _same_qty(
            order.get("qty"), v.get("order_qty")
        ):
            diffs.append(f"qty {order.get('qty')} != {v.get('order_qty')}")
        if diffs:
            inv["oms_equals_venue"].fail(f"{coid}@{order['venue']}: " + "; ".join(diffs))


def _check_fills(
    inv: dict[str, Invariant],
    obs: Observations,
    oms: Mapping[str, Any],
    by_head: Mapping[str, list[_VenueOrder]],
) -> None:
    bad = inv["fills_applied_exactly_once"]
    for name, data in obs.venues.items():
        seen: set[str] = set()
        for o in data.get("orders", []):
            fills = o.get("fills", [])
            for f in fills:
                if f["exec_id"] in seen:
                    bad.fail(f"{name}: venue exec id {f['exec_id']} appears twice")
                seen.add(f["exec_id"])
            total = sum((Decimal(str(f["qty"])) for f in fills), Decimal(0))
            if fills and total != Decimal(str(o.get("cum_qty", "0"))):
                bad.fail(f"{name}: {o.get('order_id')} fills sum {total} != cum {o.get('cum_qty')}")
    for order in oms.values():
        at = [vo for vo in by_head.get(_oms_key(order), []) if vo.venue == order["venue"]]
        venue_cum = sum(
            (Decimal(str(f["qty"])) for vo in at for f in vo.data.get("fills", [])), Decimal(0)
        )
        if not _same_qty(order.get("cum_qty"), venue_cum):
            bad.fail(
                f"{order['client_order_id']}: OMS cum {order.get('cum_qty')} "
                f"!= venue fills {venue_cum}"
            )
    if obs.journal is None:
        bad.note = "journal not inspected"
        return
    # replay the journal's view of fills: the latest snapshot's orders (cum qty, exec ids),
    # then every fill record after it; each exec id once per order, sums equal to the OMS.
    # Judged: the orders the journal holds whole (all before any snapshot; then those in
    # the latest snapshot or new after it); the older terminal orders a snapshot leaves out
    # are in the OMS's archive (`actors.oms.order_archive`), not in the journal
    base: dict[str, Decimal] = defaultdict(Decimal)
    seen_ids: dict[str, set[str]] = defaultdict(set)
    whole: set[str] | None = None  # None: no snapshot, every order is whole
    for r in obs.journal:
        if r.get("kind") == "snapshot":
            whole = set()
            base.clear()
            seen_ids.clear()
            for o in (r.get("data") or {}).get("orders", []):
                coid = str(o["client_order_id"])
                whole.add(coid)
                base[coid] = _dec(o.get("cum_qty")) or Decimal(0)
                seen_ids[coid] = set(o.get("exec_ids") or ())
            continue
        rec = r.get("data") or {}
        if whole is not None and r.get("kind") == "record" and rec.get("kind") == "new":
            whole.add(str((rec.get("order") or {}).get("client_order_id")))
        if r.get("kind") == "record" and rec.get("kind") in ("fill", "trade_bust"):
            coid, exec_id = str(rec["id"]), str(rec["exec_id"])
            if exec_id in seen_ids[coid]:
                bad.fail(f"{coid}: exec {exec_id} journalled twice")
            seen_ids[coid].add(exec_id)
            if rec["kind"] == "fill":
                base[coid] += Decimal(str(rec["qty"]))
            else:  # a venue's bust of fill `ref` (a correction: booked on its new terms)
                base[coid] += Decimal(str(rec.get("new_qty", "0"))) - Decimal(str(rec["qty"]))
    for coid, order in oms.items():
        if whole is not None and coid not in whole:
            continue  # archived: its fills were compacted out of the journal
        if not order.get("external") and not _same_qty(
            order.get("cum_qty"), base.get(coid, Decimal(0))
        ):
            bad.fail(
                f"{coid}: journal fills sum {base.get(coid, 0)} != OMS cum {order.get('cum_qty')}"
            )


def _positions(rows: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], Decimal]:
    out: dict[tuple[str, str], Decimal] = {}
    for p in rows:
        out[(str(p["venue"]), str(p["symbol"]))] = _dec(p.get("qty")) or Decimal(0)
    return out


def _check_positions(inv: dict[str, Invariant], obs: Observations) -> None:
    bad = inv["positions_equal"]
    oms = _positions(obs.oms_positions)
    venue: dict[tuple[str, str], Decimal] = {}
    for name, data in obs.venues.items():
        for sym, p in (data.get("positions") or {}).items():
            venue[(name, sym)] = _dec(p.get("net_qty")) or Decimal(0)
    for key in sorted(set(oms) | set(venue)):
        a, b = oms.get(key, Decimal(0)), venue.get(key, Decimal(0))
        if a != b:
            bad.fail(f"{key[0]}/{key[1]}: OMS {a} != venue {b}")
    if obs.risk_positions_error:
        bad.fail(f"risk's positions unavailable: {obs.risk_positions_error}")
        return
    if obs.risk_positions is None:
        bad.note = "risk's positions not collected: OMS vs venue only"
        return
    risk = _positions(obs.risk_positions)
    for key in sorted(set(oms) | set(risk)):
        a, b = oms.get(key, Decimal(0)), risk.get(key, Decimal(0))
        if a != b:
            bad.fail(f"{key[0]}/{key[1]}: OMS {a} != risk {b}")


def _check_runtime(inv: dict[str, Invariant], obs: Observations) -> None:
    if not obs.healthy_at_end:
        inv["actors_up_at_end"].fail(obs.unhealthy_detail or "not every actor up / venue connected")
    for o in obs.orphans:
        inv["no_orphans_or_zombies"].fail(f"orphan {o}")
    for z in obs.zombies:
        inv["no_orphans_or_zombies"].fail(f"zombie {z}")
    engaged_at: int | None = None
    for ts, engaged in obs.kill_switch_samples:
        if engaged and engaged_at is None:
            engaged_at = ts
        elif not engaged and engaged_at is not None:
            inv["kill_switch_persistent"].fail(f"engaged at {engaged_at}, seen off at {ts}")
    if engaged_at is not None:
        asked = obs.kill_switch_requested_ns
        if asked is None or engaged_at < asked:
            inv["kill_switch_only_when_asked"].fail(
                f"kill-switch engaged at {engaged_at} without being asked"
            )
    extra = obs.protocol_errors - obs.injected_protocol_errors
    if extra > 0:
        inv["no_protocol_errors"].fail(
            f"{extra} protocol errors logged beyond the {obs.injected_protocol_errors} injected"
        )
    if obs.unmatched_fills:
        inv["no_unmatched_fills"].fail(f"{obs.unmatched_fills} unmatched fills")
    for fault in obs.unrecovered_faults:
        inv["every_fault_recovered"].fail(f"not healthy again within the deadline after {fault}")
    for exit_ in obs.unexpected_exits:
        inv["no_unexpected_actor_exits"].fail(exit_)
    check_resubmits(inv, obs)
