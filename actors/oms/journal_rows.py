"""The OMS journal as rows for people (`tradepulse journal inspect`), pure: each item of
`actors.oms.journal.inspect` becomes one row, a snapshot one row per order and per position
it holds. Event and fill records name only the order: its venue, symbol and side come from
the order's ``new`` record or the snapshot before them.

Row fields: seq (the item's place in the walk, 1-based; a snapshot's rows share one), ts_ns,
kind (new, event, fill, fill_fee, trade_bust, unmatched_fill, opening_position,
exec_quarantined, snapshot, torn_tail), order_id,
venue, symbol, side, qty, price, status, detail.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from actors.oms.cost_basis import cost_unknown

KINDS = ("new", "event", "fill", "fill_fee", "trade_bust", "unmatched_fill", "opening_position",
         "exec_quarantined", "snapshot", "torn_tail")  # fmt: skip


@dataclass(frozen=True, slots=True)
class Row:
    seq: int
    ts_ns: int
    kind: str
    order_id: str = ""
    venue: str = ""
    symbol: str = ""
    side: str = ""
    qty: str = ""
    price: str = ""
    status: str = ""
    detail: str = ""


@dataclass(frozen=True, slots=True)
class RowFilter:
    order_id: str | None = None
    venue: str | None = None
    kinds: frozenset[str] = frozenset()
    since_ns: int | None = None
    until_ns: int | None = None

    @property
    def empty(self) -> bool:
        return self == RowFilter()

    def __call__(self, row: Row) -> bool:
        return (
            (self.order_id is None or row.order_id == self.order_id)
            and (self.venue is None or row.venue == self.venue)
            and (not self.kinds or row.kind in self.kinds)
            and (self.since_ns is None or row.ts_ns >= self.since_ns)
            and (self.until_ns is None or row.ts_ns <= self.until_ns)
        )


class RowReader:
    """Turns inspected items into rows, remembering each order's venue, symbol and side."""

    def __init__(self) -> None:
        self._orders: dict[str, tuple[str, str, str]] = {}
        self._seq = 0

    def rows(self, item: Mapping[str, Any]) -> list[Row]:
        """The rows of one `inspect` item (its ``kind`` and ``data``)."""
        self._seq += 1
        data = item.get("data") or {}
        if item.get("kind") == "snapshot":
            return self._snapshot(data)
        if item.get("kind") == "torn_tail":
            detail = f"{data.get('detail', '')} ({data.get('dropped_bytes', '?')} bytes dropped)"
            return [Row(self._seq, 0, "torn_tail", detail=detail)]
        return [self._record(data)]

    def _snapshot(self, data: Mapping[str, Any]) -> list[Row]:
        rows = []
        for o in data.get("orders", ()):
            rows.append(self._order_row("snapshot", o, f"cum {o.get('cum_qty')}"))
        for p in data.get("positions", ()):
            rows.append(
                Row(self._seq, 0, "snapshot", "", p["venue"], p["symbol"], "", str(p["qty"]),
                    str(p["avg_px"]), "position", f"realised {p.get('realized_pnl', 0)}")
            )  # fmt: skip
        for q in data.get("quarantined", ()):
            rows.append(_quarantined_row(self._seq, "snapshot", q))
        return rows

    def _order_row(self, kind: str, o: Mapping[str, Any], detail: str) -> Row:
        coid = str(o["client_order_id"])
        self._orders[coid] = (str(o["venue"]), str(o["symbol"]), str(o["side"]))
        ts = int(o.get("ts_updated_ns") or o.get("ts_created_ns") or 0)
        return Row(
            self._seq, ts, kind, coid, str(o["venue"]), str(o["symbol"]), str(o["side"]),
            str(o["qty"]), _s(o.get("price")), str(o["status"]), detail,
        )  # fmt: skip

    def _record(self, r: Mapping[str, Any]) -> Row:
        kind = str(r.get("kind", "?"))
        ts = int(r.get("ts_ns") or 0)
        if kind == "new":
            o = r["order"]
            detail = "external (adopted)" if o.get("external") else str(o.get("order_type", ""))
            return self._order_row("new", o, detail)
        if kind in ("event", "fill", "fill_fee", "trade_bust"):
            coid = str(r.get("id", ""))
            venue, symbol, side = self._orders.get(coid, ("?", "?", "?"))
            if kind == "trade_bust":  # the busted fill's terms; a correction's new ones
                detail = _bust(r)
                qty, px = _s(r.get("qty")), _s(r.get("px"))
            elif kind != "event":
                detail = f"exec {r.get('exec_id', '')}" + _fee(r)
                qty, px = _s(r.get("qty")), _s(r.get("px"))
            else:
                detail = " ".join(
                    str(x) for x in (r.get("event"), r.get("reason"), r.get("exec_id")) if x
                )
                qty, px = _s(r.get("qty")), _s(r.get("price"))
            return Row(
                self._seq, ts, kind, coid, venue, symbol, side, qty, px, _s(r.get("status")),
                detail,
            )  # fmt: skip
        if kind == "unmatched_fill":
            detail = f"exec {r.get('exec_id')} ClOrdID {r.get('cl_ord_id')}" + _fee(r)
            return Row(
                self._seq, ts, kind, "", str(r["venue"]), str(r["symbol"]), _s(r.get("side")),
                _s(r.get("qty")), _s(r.get("px")), "", detail,
            )  # fmt: skip
        if kind == "exec_quarantined":
            return _quarantined_row(self._seq, kind, r)
        if kind == "opening_position":
            known = _cost_known(r)
            return Row(self._seq, ts, kind, "", str(r["venue"]), str(r["symbol"]), "",
                       _s(r.get("qty")), _s(r.get("avg_px")) if known else "",
                       "", "cold start" if known else "cold start, cost unknown")  # fmt: skip
        return Row(self._seq, ts, kind, detail=str(dict(r))[:200])


def read_rows(
    items: Iterable[Mapping[str, Any]], keep: RowFilter
) -> Iterator[tuple[Any, list[Row]]]:
    """(item, its rows that `keep` keeps) for every item with at least one such row."""
    reader = RowReader()
    for item in items:
        rows = [row for row in reader.rows(item) if keep(row)]
        if rows or keep.empty:  # unfiltered: every item, even a snapshot of nothing
            yield item, rows


def _quarantined_row(seq: int, kind: str, r: Mapping[str, Any]) -> Row:
    """An execution the OMS could not apply (`actors.oms.exec_quarantine`); the report as
    received is in the record (`--json`)."""
    detail = (f"exec {r.get('exec_id')} ({r.get('exec_kind', '?')}) ClOrdID "
              f"{r.get('cl_ord_id')} quarantined: {r.get('error', '')}")  # fmt: skip
    ts = int(r.get("ts_ns") or 0)
    return Row(seq, ts, kind, "", str(r.get("venue", "")), status="quarantined", detail=detail)


def _cost_known(r: Mapping[str, Any]) -> bool:
    """An opening position's cost: unknown when the venue gave none (avg_px 0 on a
    position, `actors.oms.cost_basis`); a value that is no number is shown as it is."""
    try:
        return not cost_unknown(Decimal(r.get("qty") or 0), Decimal(r.get("avg_px") or 0))
    except (ArithmeticError, ValueError, TypeError):
        return True


def _s(value: Any) -> str:
    return "" if value is None else str(value)


def _fee(r: Mapping[str, Any]) -> str:
    """The detail of a fill record's fee, " fee 0.001 BTC" ("" without one)."""
    return f" fee {r['fee']} {r.get('fee_asset', '')}".rstrip() if r.get("fee") else ""


def _bust(r: Mapping[str, Any]) -> str:
    """The detail of a ``trade_bust`` record: "exec E busts fill F" (or "corrects fill F
    to 2 @ 101"), its fee given back."""
    ref = r.get("ref", "")
    if "new_qty" in r:
        return (
            f"exec {r.get('exec_id', '')} corrects fill {ref} to {r['new_qty']} @ {r.get('new_px')}"
        )
    return f"exec {r.get('exec_id', '')} busts fill {ref}" + _fee(r)
