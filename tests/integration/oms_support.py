"""Support for the OMS integration tests: a system with one quiet simulated venue, crash
points armed on demand, the venue's ground truth, and one check that the OMS agrees with it.

Ground truth is the venue's own inspection (`python -m actors.venuesim inspect --json`),
compared with what the OMS tells a client (`list_orders`, `positions`) and what its journal
holds (`supervisor.py journal inspect --json`); reading them is in `tests.system_ops`.

Arming a crash point: `TP_FAULT_CRASH_AT=oms:<point>` is in the supervisor's environment
from the start, but the point's "fired" marker is written beforehand, so nothing fires
while the system starts; `arm(sut, point)` removes the marker once the test is ready, and
the next pass through the point kills the OMS (SIGKILL), once. A point of another actor is
named `<actor>:<point>` (e.g. `connector.simA:mid_request_batch`).
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from protocol import paths
from protocol.client import ExecutionClient
from protocol.control import ControlUnavailable
from protocol.messages import ControlReply, OrderStatus, OrderView
from tests.helpers import SystemUnderTest, eventually
from tests.system_ops import (
    SYMBOL,
    VENUE,
    client,
    find_venue_order,
    inspect_venue,
    journal_records,
    submit_when_open,
)

D = Decimal
PX_TOLERANCE = Decimal("0.000001")
UNSETTLED = frozenset({
    OrderStatus.PENDING_RISK, OrderStatus.PENDING_SUBMIT, OrderStatus.UNKNOWN,
    OrderStatus.PENDING_CANCEL, OrderStatus.PENDING_REPLACE,
})  # fmt: skip


def venue_cfg(name: str = VENUE, **sim: Any) -> dict[str, Any]:
    """A simulated venue whose price stands still (reference 100.00, asks 100.01..100.05 and
    bids 99.99..99.95, 500 each, re-quoted every `liquidity_interval_s`), fast reconnects."""
    return {
        "name": name,
        "target_comp_id": name.upper(),
        "reconnect": {"initial_s": 0.02, "factor": 2.0, "max_s": 0.3, "jitter": 0.2},
        "sim": {"reference_prices": {SYMBOL: "100.00"}, "volatility_bps": 0.0} | sim,
    }


def overrides(*, oms: Mapping[str, Any] | None = None, **sim: Any) -> dict[str, Any]:
    """One venue; the position heartbeat is slowed down so it neither sends requests through
    an armed crash point nor engages the kill-switch on a fill a test swallows on purpose."""
    return {
        "heartbeat": {"interval_s": 60.0, "engage_on_missing": False, "divergence_beats": 1000},
        "oms": {"request_timeout_s": 2.0, **(oms or {})},
        "venues": [venue_cfg(**sim)],
    }


class OmsSystem(SystemUnderTest):
    """A SystemUnderTest that can start cold (`run --cold`) and arm OMS crash points."""

    def __init__(
        self,
        *,
        cold: bool = False,
        crash_at: Iterable[str] = (),
        armed: bool = False,
        **kwargs: Any,
    ) -> None:
        points = [_actor_point(p) for p in crash_at]
        env = dict(kwargs.pop("env", None) or {})
        if points:
            env["TP_FAULT_CRASH_AT"] = ",".join(f"{actor}:{p}" for actor, p in points)
        kwargs.setdefault("venues", (VENUE,))
        super().__init__(env=env, **kwargs)
        self.cold = cold
        for actor, p in points if not armed else ():
            marker = self.marker(f"{actor}:{p}")
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text("disarmed by the test\n")

    def cli_args(self) -> list[str]:
        # `--cold` belongs to `run` only: it is on the command line while starting (no proc yet)
        extra = ["--cold"] if self.cold and self.proc is None else []
        return [*super().cli_args(), *extra]

    def marker(self, point: str) -> Path:
        return paths.crash_marker(self.state_dir, *_actor_point(point))

    def arm(self, point: str) -> None:
        self.marker(point).unlink()


def _actor_point(point: str) -> tuple[str, str]:
    """(actor, point) of `<actor>:<point>`, or of a bare point of the OMS."""
    actor, _, name = point.rpartition(":")
    return actor or "oms", name


@contextlib.contextmanager
def systems() -> Iterator[list[OmsSystem]]:
    """Collects OmsSystems; every one is destroyed (kill -9 of its tree) on exit."""
    started: list[OmsSystem] = []
    try:
        yield started
    finally:
        for sut in started:
            sut.destroy()


def start(started: list[OmsSystem], **kwargs: Any) -> OmsSystem:
    wait_ready = kwargs.pop("wait_ready", True)
    sut = OmsSystem(**kwargs)
    started.append(sut)
    sut.start(wait_ready=wait_ready)
    return sut


def trigger_reconcile(sut: SystemUnderTest, *, timeout_s: float = 10.0) -> ControlReply | None:
    """`reconcile --venue V` (applied, not a dry run) through the control socket; None when
    no answer came (the OMS died meanwhile)."""
    try:
        return sut.control("reconcile", timeout_s=timeout_s, venue=VENUE, dry_run=False)
    except ControlUnavailable:
        return None


# --------------------------------------------------------------------------- OMS == venue


def _same_px(a: Decimal, b: Decimal) -> bool:
    return abs(a - b) <= PX_TOLERANCE * max(D(1), abs(a))


@dataclass
class Comparison:
    """What the OMS says next to what the venue holds; `problems` empty = they agree."""

    oms: dict[str, OrderView]
    venue: dict[str, Any]
    oms_positions: dict[str, Decimal]
    problems: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return not self.problems


def compare(
    c: ExecutionClient,
    sut: SystemUnderTest,
    acked: Iterable[str] = (),
    venue: str = VENUE,
    *,
    positions: bool = True,
    cli: bool = True,
    ignore: Collection[str] = (),
) -> Comparison:
    """Check, for one venue:

    - no duplicate order at the venue: no two venue orders share a ClOrdID chain head;
    - no acknowledged order lost: each id in `acked` is known to the OMS and, unless the
      venue rejected it, is an order at the venue;
    - every venue order is an OMS order (ours or adopted as external), except those whose
      first ClOrdID is in `ignore` (e.g. finished before a cold start);
    - the OMS equals the venue for every order: status, qty, cum qty, avg px; nothing left
      in a pending or UNKNOWN state;
    - positions equal (signed net qty per symbol).
    """
    views = {v.client_order_id: v for v in c.list_orders(venue)}
    data = inspect_venue(sut, venue, cli=cli)
    cmp = Comparison(views, data, {p.symbol: p.qty for p in c.positions(venue) if p.qty})
    heads = Counter(o["cl_ord_ids"][0] for o in data["orders"])
    cmp.problems += [f"{n} venue orders with ClOrdID {h}" for h, n in heads.items() if n > 1]
    for coid in acked:
        view = views.get(coid)
        if view is None:
            cmp.problems.append(f"acked {coid} unknown to the OMS")
        elif (
            find_venue_order(data, view.cl_ord_id) is None
            and view.status is not OrderStatus.REJECTED
        ):
            cmp.problems.append(f"acked {coid} ({view.status}) not at the venue")
    by_cl = {cl: v for v in views.values() for cl in _chain(v)}
    for o in data["orders"]:
        if o["cl_ord_ids"][0] in ignore:
            continue
        if not any(cl in by_cl for cl in o["cl_ord_ids"]):
            cmp.problems.append(f"venue order {o['cl_ord_ids']} unknown to the OMS")
    for coid, view in views.items():
        if view.status in UNSETTLED:
            cmp.problems.append(f"{coid} still {view.status}")
            continue
        vo = find_venue_order(data, view.cl_ord_id)
        if vo is None:
            if view.status is not OrderStatus.REJECTED:
                cmp.problems.append(f"{coid}: OMS {view.status}, no venue order")
            continue
        diffs = []
        if view.status.value != vo["status"]:
            diffs.append(f"status {view.status.value} != {vo['status']}")
        if view.qty != D(vo["order_qty"]):
            diffs.append(f"qty {view.qty} != {vo['order_qty']}")
        if view.cum_qty != D(vo["cum_qty"]):
            diffs.append(f"cum {view.cum_qty} != {vo['cum_qty']}")
        if not _same_px(view.avg_px, D(vo["avg_px"])):
            diffs.append(f"avg_px {view.avg_px} != {vo['avg_px']}")
        if diffs:
            cmp.problems.append(f"{coid}: " + "; ".join(diffs))
    venue_pos = {s: D(p["net_qty"]) for s, p in data["positions"].items() if D(p["net_qty"])}
    if positions and cmp.oms_positions != venue_pos:
        cmp.problems.append(f"positions: OMS {cmp.oms_positions} != venue {venue_pos}")
    return cmp


def _chain(view: OrderView) -> list[str]:
    """ClOrdIDs the venue may list for an OMS order: its live one and the chain head."""
    if view.client_order_id.startswith("ext:"):
        return [view.cl_ord_id, view.client_order_id.split(":", 2)[2]]
    from actors.oms.orders import base_cl_ord_id

    return [view.cl_ord_id, base_cl_ord_id(view.client_order_id)]


def settle(
    c: ExecutionClient,
    sut: SystemUnderTest,
    acked: Iterable[str] = (),
    venue: str = VENUE,
    timeout_s: float = 30.0,
    *,
    positions: bool = True,
    ignore: Collection[str] = (),
) -> Comparison:
    """Wait until the OMS agrees with the venue (see `compare`, polling the venue's state
    in-process), then check once more against the inspection CLI's output."""
    ids = list(acked)
    last: list[Comparison] = []

    def agreed() -> Comparison | None:
        cmp = compare(c, sut, ids, venue, positions=positions, cli=False, ignore=ignore)
        last[:] = [cmp]
        return cmp if cmp else None

    eventually(
        agreed, timeout_s, interval_s=0.1,
        message=lambda: f"OMS != venue: {last[0].problems[:10] if last else '?'}\n{sut.describe()}",
    )  # fmt: skip
    final = compare(c, sut, ids, venue, positions=positions, cli=True, ignore=ignore)
    assert final, final.problems
    return final


def check_sweep(sut: SystemUnderTest, final: Comparison) -> None:
    """The market buy `sweep-1` of 2000 across the quiet venue's four quote levels (500 each
    at 100.01..100.04) ended as the venue has it: FILLED 2000 @ 100.025 from four fills,
    position 2000, each fill journalled once."""
    sweep = final.oms["sweep-1"]
    assert (sweep.status, sweep.cum_qty) == (OrderStatus.FILLED, D(2000))
    assert sweep.avg_px == D("100.025")
    assert len(find_venue_order(final.venue, "sweep-1")["fills"]) == 4  # type: ignore[index]
    assert final.oms_positions == {SYMBOL: D(2000)}
    check_journal_fills(sut, final.oms)


def sweep_through_crash(sut: OmsSystem, actor: str, point: str) -> None:
    """A warm order settled, then crash point `actor:point` armed and the market sweep
    `sweep-1` submitted: the actor dies at the point and is back (READY); then the OMS must
    agree with the venue, the sweep as `check_sweep` has it."""
    with client(sut) as c:
        submit_when_open(c, VENUE, client_order_id="warm-1")
        settle(c, sut, ["warm-1"])
        since = sut.mark()
        sut.arm(f"{actor}:{point}")
        submit_when_open(c, VENUE, qty="2000", price=None, client_order_id="sweep-1")
        sut.wait_event("injected_crash", 15.0, since=since, actor=actor, point=point)
        sut.wait_event("actor_ready", 15.0, since=since, child=actor)
        final = settle(c, sut, ["warm-1", "sweep-1"])
    check_sweep(sut, final)


def check_journal_fills(
    sut: SystemUnderTest,
    views: Mapping[str, OrderView],
    records: list[dict[str, Any]] | None = None,
) -> None:
    """Every fill (and bust) in the journal (after the latest snapshot) has an exec id seen
    once per order, and the journal's fills less its busts add up to the OMS's cum qty.
    `records`: the journal already read (`journal_records`)."""
    cum: dict[str, Decimal] = {}
    seen: dict[str, set[str]] = {}
    for r in journal_records(sut) if records is None else records:
        if r["kind"] == "snapshot":
            cum = {o["client_order_id"]: D(o["cum_qty"]) for o in r["data"]["orders"]}
            seen = {o["client_order_id"]: set(o["exec_ids"]) for o in r["data"]["orders"]}
        elif r["kind"] == "record" and r["data"]["kind"] == "new":
            o = r["data"]["order"]
            cum[o["client_order_id"]] = D(o["cum_qty"])
            seen[o["client_order_id"]] = set(o["exec_ids"])
        elif r["kind"] == "record" and r["data"]["kind"] == "fill":
            rec = r["data"]
            assert rec["exec_id"] not in seen[rec["id"]], f"exec {rec['exec_id']} journalled twice"
            seen[rec["id"]].add(rec["exec_id"])
            cum[rec["id"]] += D(rec["qty"])
        elif r["kind"] == "record" and r["data"]["kind"] == "trade_bust":  # a venue's bust
            rec = r["data"]
            assert rec["exec_id"] not in seen[rec["id"]], f"bust {rec['exec_id']} journalled twice"
            seen[rec["id"]].add(rec["exec_id"])
            cum[rec["id"]] += D(rec.get("new_qty", 0)) - D(rec["qty"])
    for coid, view in views.items():
        assert cum.get(coid, D(0)) == view.cum_qty, (coid, cum.get(coid), view.cum_qty)
