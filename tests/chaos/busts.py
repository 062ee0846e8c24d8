"""The nemesis's trade busts and corrections, and the checker's view of them.

Injection (`bust_or_correct`): the venue's operations desk takes back (FIX 150=H) or
corrects (150=G) one of the venue's recent trades, through the simulator's control path
(`bust_trade` / `correct_trade`, `actors.venuesim.busts`), as `venuectl` drives the other
venue faults. Which trade, and the corrected terms, come from the planner's seeded
`params` and the venue's inspection when the fault is injected: `pick` indexes the
venue's `RECENT` newest fills, a correction sizes the fill by `qty_frac` (whole lots, at
least one) and moves its price by `px_bp` basis points. The fault's record says what the
venue did (`detail["trade_bust"]`): that is the venue's truth the checker holds the OMS to.

A qty-changing correction is drawn only at a venue that serves its positions (AN): at one
that does not, the connector's fill ledger stands in for the venue's positions and does
not keep the old quantity of a fill, so a correction leaves it off by the difference
(docs/architecture.md, "Trade busts and corrections") and the heartbeat would engage the
kill-switch unasked; a price-only correction is drawn there instead.

Checking (`check_busts`, invariant ``busts_applied_exactly_once``): after settle,
- the venue shows each of them (a busted ExecID gone from its order's fills, a corrected
  one on its new terms, as the last of the faults on that trade left it);
- the journal's replay (latest snapshot's `fills`, then every ``fill`` and ``trade_bust``
  record) books each such trade as the venue has it: busted, or at the corrected terms
  (taken back once: never left on, never taken back twice, which `fills_applied_exactly_once`
  and the cum / avg / position comparisons also see).

The documented limit (`counted_escalations`, `as_booked`, `engage_explained`): the OMS keeps
no terms of a fill a reconciliation pass counted from venue state, so a bust or correction
of it is escalated ``trade_bust_unknown_fill`` and not applied (docs/runbook.md 11b‴): by
design, a wrong book never silently. Such a trade is listed in the invariant's note, not
failed; the other comparisons take the OMS's holding that fill (and the heartbeat's
kill-switch for that divergence) as the venue's. Nothing else is excused: a bust with no
such escalation, or of a fill the journal booked under its own exec id, still fails.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any, Protocol

from actors.oms.trade_busts import UNKNOWN_FILL
from actors.venuesim.store import inspect
from protocol.config import SystemConfig
from protocol.paths import venue_state_dir

RECENT = 20  # the nemesis busts one of the venue's newest this many fills
PX_STEP = Decimal("0.01")
BUSTED = ""  # the journal replay's terms of a busted fill (as `actors.oms.fill_terms`)
ALIAS = "="
# the log events `counted_escalations` and `engage_explained` read (`ChaosSystem` keeps them)
ESCALATION_EVENTS = frozenset({UNKNOWN_FILL, "kill_switch_requested"})
DIVERGENCE = "position_divergence: "  # the heartbeat's kill-switch reason: "<venue> <symbol> ..."


class _Side(Protocol):
    cfg: SystemConfig
    state_dir: Any


def recent_fills(inspection: Mapping[str, Any], n: int = RECENT) -> list[dict[str, Any]]:
    """The venue's newest `n` fills (with their order's ClOrdID chain head), oldest first."""
    rows = [
        {**f, "order": (o.get("cl_ord_ids") or [o["cl_ord_id"]])[0], "order_qty": o["order_qty"],
         "cum_qty": o["cum_qty"]}
        for o in inspection.get("orders", [])
        for f in o.get("fills", [])
    ]  # fmt: skip
    rows.sort(key=lambda f: (int(f["ts_ns"]), f["exec_id"]))
    return rows[-n:]


def correction(fill: Mapping[str, Any], params: Mapping[str, Any], qty_may_change: bool) -> str:
    """`correct_trade`'s value for `fill`: its qty x `qty_frac` in whole units (at least
    one; as it was where the qty may not change), its price moved `px_bp` basis points."""
    qty, px = Decimal(fill["qty"]), Decimal(fill["px"])
    new_qty = qty
    if qty_may_change:
        new_qty = max(Decimal(1), (qty * Decimal(str(params["qty_frac"]))).quantize(1, ROUND_DOWN))
        new_qty = min(new_qty, qty)  # never overfills the order
    new_px = (px * (1 + Decimal(int(params["px_bp"])) / 10_000)).quantize(PX_STEP)
    if new_px <= 0 or (new_px == px and new_qty == qty):
        new_px = px + PX_STEP
    return f"{fill['exec_id']} {new_qty} {new_px}"


def bust_or_correct(
    side: _Side, venue: str, params: Mapping[str, Any], send: Any
) -> dict[str, Any]:
    """Bust or correct one of `venue`'s recent fills (`send(cfg, venue, command, value)`:
    `venuectl.sim_request`); returns the fault's detail, `trade_bust` what the venue did
    (none when it had no fill yet)."""
    fills = recent_fills(inspect(venue_state_dir(side.state_dir, venue)))
    if not fills:
        return {"no_fill": True}
    fill = fills[min(len(fills) - 1, int(float(params["pick"]) * len(fills)))]
    if params.get("correct"):
        serves = side.cfg.venue(venue).dialect.serves_positions
        command, value = "correct_trade", correction(fill, params, serves)
    else:
        command, value = "bust_trade", fill["exec_id"]
    send(side.cfg, venue, command, value)
    done = {"venue": venue, "order": fill["order"], "exec_id": fill["exec_id"],
            "command": command, "was": f"{fill['qty']} {fill['px']}"}  # fmt: skip
    if command == "correct_trade":
        _, qty, px = value.split()
        done |= {"qty": qty, "px": px}
    return {"trade_bust": done}


# --------------------------------------------------------------------------- checking


def booked_terms(
    journal: Iterable[Mapping[str, Any]], twice: list[tuple[str, str]] | None = None
) -> dict[str, dict[str, str]]:
    """Per client order id, exec id -> "qty px" as the journal books it (`BUSTED` once
    busted), replayed from the latest snapshot's orders' `fills` and the records after it;
    an order a snapshot left out (archived) is not in the result. `twice` gets the
    (client order id, fill) of each ``trade_bust`` record naming a fill busted already:
    the final terms cannot show a second take-back (busted is busted), the records do."""
    out: dict[str, dict[str, str]] = {}
    for r in journal:
        if r.get("kind") == "snapshot":
            out = {}
            for o in (r.get("data") or {}).get("orders", []):
                out[str(o["client_order_id"])] = {
                    x: _qty_px(t) for x, t in (o.get("fills") or {}).items()
                }
            continue
        rec = r.get("data") or {}
        if r.get("kind") != "record":
            continue
        if rec.get("kind") == "new":
            out.setdefault(str((rec.get("order") or {}).get("client_order_id")), {})
        elif rec.get("kind") == "fill" and not str(rec["exec_id"]).startswith("recon:"):
            out.setdefault(str(rec["id"]), {})[str(rec["exec_id"])] = (
                f"{rec['qty']} {rec.get('px')}"
            )
        elif rec.get("kind") == "trade_bust":
            terms = out.setdefault(str(rec["id"]), {})
            if twice is not None and terms.get(str(rec["ref"])) == BUSTED:
                twice.append((str(rec["id"]), str(rec["ref"])))
            new = f"{rec['new_qty']} {rec['new_px']}" if "new_qty" in rec else BUSTED
            terms[str(rec["ref"])] = new
            if "new_qty" in rec:
                terms[str(rec["exec_id"])] = ALIAS + str(rec["ref"])
    return out


def _qty_px(text: str) -> str:
    return " ".join(text.split(" ")[:2]) if text and not text.startswith(ALIAS) else text


def _same(a: str, b: str) -> bool:
    if a == BUSTED or b == BUSTED:
        return a == b
    return all(Decimal(x) == Decimal(y) for x, y in zip(a.split(), b.split(), strict=True))


def check_busts(
    bad: Any,
    busts: Sequence[Mapping[str, Any]],
    venues: Mapping[str, Mapping[str, Any]],
    journal: Sequence[Mapping[str, Any]] | None,
    oms_by_key: Mapping[str, Mapping[str, Any]],
    limits: Sequence[Mapping[str, Any]] = (),
) -> None:
    """`bad.fail(...)` for every bust or correction the venue or the OMS does not show as
    applied once (see the module docstring); `busts` in the order they were injected.
    `limits` (`counted_escalations`): the OMS escalated them as designed; the journal is
    not held to them, `bad.note` lists them (the run's summary shows it)."""
    final: dict[tuple[str, str], str] = {}  # (venue, exec id) -> the venue's last word
    heads: dict[tuple[str, str], str] = {}
    for b in busts:
        key = (str(b["venue"]), str(b["exec_id"]))
        final[key] = BUSTED if b["command"] == "bust_trade" else f"{b['qty']} {b['px']}"
        heads[key] = str(b["order"])
    fills = {
        (name, str(f["exec_id"])): f"{f['qty']} {f['px']}"
        for name, data in venues.items()
        for o in data.get("orders", [])
        for f in o.get("fills", [])
    }
    for key, want in final.items():
        got = fills.get(key, BUSTED)
        if not _same(got, want):
            left = want or "busted"
            bad.fail(f"{key[0]}: venue fill {key[1]} is {got or 'gone'}, the nemesis left {left}")
    if journal is None or not final:
        return
    twice: list[tuple[str, str]] = []
    booked = booked_terms(journal, twice)
    excused = {(str(b["venue"]), str(b["exec_id"])) for b in limits}
    if excused:
        bad.note = (
            f"{len(excused)} escalated trade_bust_unknown_fill, not applied, for a fill "
            "reconciliation counted (the documented limit): "
            + ", ".join(f"{b['venue']} {b['exec_id']} of {b['client_order_id']}" for b in limits)
        )
    for coid, ref in twice:
        bad.fail(f"{coid}: journal has fill {ref} taken back twice")
    for key, want in final.items():
        if key in excused:
            continue
        order = oms_by_key.get(heads[key])
        if order is None or order.get("venue") != key[0]:
            bad.fail(
                f"{key[0]}: {heads[key]} (trade {key[1]} {want or 'busted'}) unknown to the OMS"
            )
            continue
        terms = booked.get(str(order["client_order_id"]))
        if terms is None:
            continue  # archived: compacted out of the journal
        got = terms.get(key[1])
        if got is None or not _same(got, want):
            bad.fail(
                f"{order['client_order_id']}: journal books {key[1]} as "
                f"{'busted' if got == BUSTED else got or 'never booked'}, "
                f"the venue {want or 'busted'}"
            )


# ----------------------------------------------------------- the documented limit


def counted_escalations(
    busts: Sequence[Mapping[str, Any]],
    journal: Sequence[Mapping[str, Any]] | None,
    escalations: Iterable[Mapping[str, Any]],
    oms_by_key: Mapping[str, Mapping[str, Any]],
) -> list[Mapping[str, Any]]:
    """The nemesis's busts and corrections the OMS escalated as designed, not applied: its
    ``trade_bust_unknown_fill`` line names the fill (`escalations`, the OMS's log events),
    the journal never booked that fill under its own exec id and counted the order from
    venue state (a ``recon:`` fill): the OMS keeps no terms of a counted fill
    (docs/architecture.md, "Trade busts and corrections"; runbook 11b‴). Only that case:
    a bust the OMS lost (no such line), or escalated for a fill it booked itself, is not
    here. None without the journal (the settle loop's checks)."""
    if journal is None:
        return []
    said = {(str(e.get("venue")), str(e.get("client_order_id")), str(e.get("detail")))
            for e in escalations if e.get("event") == UNKNOWN_FILL}  # fmt: skip
    counted: dict[str, set[str]] = {}  # client order id -> exec ids of its journal
    for r in journal:
        data = r.get("data") or {}
        if r.get("kind") == "snapshot":
            counted = {str(o["client_order_id"]): {str(x) for x in o.get("exec_ids") or ()}
                       for o in data.get("orders", [])}  # fmt: skip
        elif r.get("kind") == "record" and data.get("kind") == "fill":
            counted.setdefault(str(data["id"]), set()).add(str(data["exec_id"]))
    out = []
    for b in busts:
        order = oms_by_key.get(str(b["order"])) or {}
        coid, ids = (
            str(order.get("client_order_id")),
            counted.get(str(order.get("client_order_id"))),
        )
        named = f"of fill {str(b['exec_id'])!r}"
        if (
            ids is not None and "was" in b and str(b["exec_id"]) not in ids
            and any(x.startswith("recon:") for x in ids)
            and any(v == b["venue"] and c == coid and named in d for v, c, d in said)
        ):  # fmt: skip
            out.append({**b, "client_order_id": coid, "symbol": order.get("symbol")})
    return out


def as_booked(
    venues: Mapping[str, Mapping[str, Any]], limits: Iterable[Mapping[str, Any]]
) -> dict[str, Mapping[str, Any]]:
    """`venues`' inspections with each of `limits` (`counted_escalations`) undone: the
    fill back on its terms before the bust or correction (the order's cum, avg, status and
    the venue's position with it), which is what the OMS holds by design; every other
    comparison stays exact."""
    out = {name: dict(data) for name, data in venues.items()}
    for b in limits:
        data = out[str(b["venue"])]
        orders = [dict(o) for o in data.get("orders", [])]
        data["orders"] = orders
        was_qty, was_px = (Decimal(x) for x in str(b["was"]).split())
        for o in orders:
            if (o.get("cl_ord_ids") or [o.get("cl_ord_id")])[0] != b["order"]:
                continue
            fills = [f for f in o.get("fills", []) if f["exec_id"] != b["exec_id"]]
            now = sum((Decimal(str(f["qty"])) for f in o.get("fills", [])), Decimal(0))
            fills.append({"exec_id": b["exec_id"], "qty": str(was_qty), "px": str(was_px)})
            cum = sum((Decimal(str(f["qty"])) for f in fills), Decimal(0))
            notional = sum(
                (Decimal(str(f["qty"])) * Decimal(str(f["px"])) for f in fills), Decimal(0)
            )
            o |= {"fills": fills, "cum_qty": str(cum), "avg_px": str(notional / cum if cum else 0)}
            if cum == Decimal(str(o["order_qty"])):
                o["status"] = "FILLED"
            elif cum and o.get("status") == "ACCEPTED":
                o["status"] = "PARTIALLY_FILLED"
            sign = 1 if o.get("side") == "BUY" else -1
            positions = {s: dict(p) for s, p in (data.get("positions") or {}).items()}
            pos = positions.setdefault(str(o["symbol"]), {"net_qty": "0"})
            pos["net_qty"] = str(Decimal(str(pos["net_qty"])) + sign * (cum - now))
            data["positions"] = positions
    return out


def engage_explained(
    lines: Iterable[Mapping[str, Any]], limits: Sequence[Mapping[str, Any]], asked: int | None
) -> int | None:
    """When the kill-switch counts as asked for (`Observations.kill_switch_requested_ns`):
    as `asked`, or earlier at the position heartbeat's first request for a divergence the
    `limits` explain (its reason names a venue of theirs and only their symbols: the OMS
    holds what the venue took back, and the heartbeat engages the switch by design,
    runbook 11b‴)."""
    held = {(str(b["venue"]), str(b["symbol"])) for b in limits}
    for e in lines:
        reason = str(e.get("reason", ""))
        if e.get("event") != "kill_switch_requested" or not reason.startswith(DIVERGENCE):
            continue
        venue, _, rest = reason[len(DIVERGENCE) :].partition(" ")
        named = {part.split(" ")[0] for part in rest.split(", ")}
        if named and all((venue, s) in held for s in named) and "more symbols" not in rest:
            ts = int(datetime.fromisoformat(str(e["ts"])).timestamp() * 1e9)
            return ts if asked is None else min(ts, asked)
    return asked
