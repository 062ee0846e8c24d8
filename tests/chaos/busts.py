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
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import ROUND_DOWN, Decimal
from typing import Any, Protocol

from actors.venuesim.store import inspect
from protocol.config import SystemConfig
from protocol.paths import venue_state_dir

RECENT = 20  # the nemesis busts one of the venue's newest this many fills
PX_STEP = Decimal("0.01")
BUSTED = ""  # the journal replay's terms of a busted fill (as `actors.oms.fill_terms`)
ALIAS = "="


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
) -> None:
    """`bad.fail(...)` for every bust or correction the venue or the OMS does not show as
    applied once (see the module docstring); `busts` in the order they were injected."""
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
    for coid, ref in twice:
        bad.fail(f"{coid}: journal has fill {ref} taken back twice")
    for key, want in final.items():
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
