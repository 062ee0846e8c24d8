"""The chaos checker on hand-made histories, OMS views and venue inspections: each invariant
passes on a consistent world and counts exactly the violations planted in it."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from actors.oms.orders import DROPPED_UNSENT
from tests.chaos.busts import correction, recent_fills
from tests.chaos.checker import INVARIANTS, Observations, check
from tests.chaos.history import (
    Entry,
    HistoryWriter,
    client_order_id,
    outcome_counts,
    read_history,
    summarize_submits,
)

T0 = 1_700_000_000_000_000_000


def entry(
    coid: str,
    outcome: str = "ok",
    *,
    op: str = "submit",
    attempt: int = 1,
    error: str = "",
    venue: str = "simA",
    seq: int = 1,
) -> Entry:
    start = T0 + seq * 1_000_000 + attempt * 1000
    return Entry(
        client=0,
        seq=seq,
        op=op,  # type: ignore[arg-type]
        attempt=attempt,
        client_order_id=coid,
        venue=venue,
        symbol="AAPL",
        side="BUY",
        qty="10",
        price="100.00",
        order_type="LIMIT",
        tif="DAY",
        start_ns=start,
        end_ns=start + 500_000,
        outcome=outcome,  # type: ignore[arg-type]
        error=error,
        status="ACCEPTED" if outcome == "ok" else "",
    )


def oms_order(
    coid: str,
    status: str = "FILLED",
    *,
    venue: str = "simA",
    cum: str = "10",
    avg: str = "100",
    qty: str = "10",
    reason: str = "",
    external: bool = False,
) -> dict[str, Any]:
    return {
        "client_order_id": coid,
        "venue": venue,
        "symbol": "AAPL",
        "side": "BUY",
        "qty": qty,
        "order_type": "LIMIT",
        "price": "100.00",
        "status": status,
        "cl_ord_id": coid,
        "cum_qty": cum,
        "avg_px": avg,
        "reason": reason,
        "external": external,
    }


def venue_record(
    cl: str,
    status: str = "FILLED",
    *,
    oid: str = "",
    fills: Iterable[tuple[str, str, str]] = (),
    chain: list[str] | None = None,
    qty: str = "10",
) -> dict[str, Any]:
    """A made-up order row of a venue inspection (what `inspect --json` lists per order)."""
    fl: list[dict[str, Any]] = [{"exec_id": x, "qty": q, "px": p, "ts_ns": 0} for x, q, p in fills]
    cum = sum(int(f["qty"]) for f in fl)
    notional = sum(int(f["qty"]) * float(f["px"]) for f in fl)
    return {
        "order_id": oid or f"B-{cl}",
        "cl_ord_id": (chain or [cl])[-1],
        "cl_ord_ids": chain or [cl],
        "symbol": "AAPL",
        "side": "BUY",
        "order_qty": qty,
        "price": "100.00",
        "status": status,
        "cum_qty": str(cum),
        "avg_px": str(notional / cum) if cum else "0",
        "fills": fl,
    }


def venues(**orders: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, rows in orders.items():
        net = sum(int(o["cum_qty"]) for o in rows)
        out[name] = {
            "orders": rows,
            "rejects": [],
            "positions": {"AAPL": {"net_qty": str(net)}} if net else {},
        }
    return out


def consistent() -> dict[str, Any]:
    """Two orders: one filled in two fills, one cancelled untouched; everything agrees."""
    return dict(
        history=[entry("a1", seq=1), entry("a2", seq=2), entry("a2", op="cancel", seq=3)],
        oms_orders=[oms_order("a1"), oms_order("a2", "CANCELLED", cum="0", avg="0")],
        oms_positions=[{"venue": "simA", "symbol": "AAPL", "qty": "10"}],
        venues=venues(
            simA=[
                venue_record("a1", fills=[("X1", "4", "100"), ("X2", "6", "100")]),
                venue_record("a2", "CANCELLED", chain=["a2", "a2.c1"]),
            ],
            simB=[],
        ),
    )


def violations(obs: Observations) -> dict[str, int]:
    return {k: v.violations for k, v in check(obs).invariants.items() if v.violations}


def test_consistent_world_is_valid() -> None:
    """Agreeing history, OMS and venue: every invariant holds and the run is valid."""
    result = check(Observations(**consistent()))
    assert result.valid, result.to_dict()
    assert set(result.invariants) == set(INVARIANTS)
    assert result.stats["submits"] == {"acked": 2}
    assert result.stats["oms_orders_by_status"] == {"CANCELLED": 1, "FILLED": 1}


def test_acked_order_missing_from_oms_is_lost() -> None:
    """An order acknowledged to the client that the OMS no longer knows is a lost order."""
    w = consistent()
    w["history"].append(entry("a3", seq=4))
    assert violations(Observations(**w)) == {"no_acked_order_lost": 1}


def test_order_twice_at_the_venue() -> None:
    """The same client order placed twice at the venue (two venue orders with the same
    head) violates exactly-once, and the repeated ClOrdID is a duplicate."""
    w = consistent()
    w["venues"]["simA"]["orders"].append(venue_record("a2", "CANCELLED", oid="B-dup"))
    got = violations(Observations(**w))
    assert got["acked_order_at_venue_exactly_once"] == 1
    assert got["no_duplicate_cl_ord_id"] == 1


def test_acked_order_never_reached_the_venue() -> None:
    """OMS says FILLED but the venue never saw the order."""
    w = consistent()
    w["venues"]["simA"]["orders"] = w["venues"]["simA"]["orders"][1:]
    w["venues"]["simA"]["positions"] = {}
    got = violations(Observations(**w))
    assert got["acked_order_at_venue_exactly_once"] == 1
    assert got["oms_equals_venue"] == 1
    assert got["fills_applied_exactly_once"] == 1  # OMS cum 10, venue fills 0
    assert got["positions_equal"] == 1


def test_acked_order_dropped_unsent_by_the_kill_switch_is_honest() -> None:
    """Acknowledged (queued), then rejected before it was sent because the kill-switch was
    engaged meanwhile: not at the venue, and rightly so; any other REJECTED is not."""
    w = consistent()
    w["history"].append(entry("a3", seq=4))
    w["oms_orders"].append(oms_order("a3", "REJECTED", cum="0", avg="0", reason=DROPPED_UNSENT))
    assert violations(Observations(**w)) == {}
    w["oms_orders"][-1] = oms_order("a3", "REJECTED", cum="0", avg="0", reason="whatever")
    assert violations(Observations(**w)) == {"acked_order_at_venue_exactly_once": 1}


def test_venue_order_nobody_asked_for() -> None:
    """A venue order whose ClOrdID no client ever submitted, unknown to the OMS."""
    w = consistent()
    w["venues"]["simA"]["orders"].append(venue_record("zz9", "CANCELLED"))
    got = violations(Observations(**w))
    assert got == {"no_unrequested_venue_order": 1, "oms_equals_venue": 1}


def test_refused_submit_must_not_reach_the_venue_unless_a_retry_was_unanswered() -> None:
    """A definitive refusal (RiskRejected) with the order at the venue is a violation; if an
    earlier attempt timed out, that request may legitimately have been acted upon."""
    w = consistent()
    w["history"] += [entry("r1", "error", error="RiskRejected", seq=5)]
    w["venues"]["simA"]["orders"].append(venue_record("r1", "CANCELLED"))
    w["oms_orders"].append(oms_order("r1", "CANCELLED", cum="0", avg="0"))
    assert violations(Observations(**w)) == {"no_unrequested_venue_order": 1}
    w["history"] += [entry("r1", "timeout", error="Timeout", seq=5, attempt=0)]
    assert violations(Observations(**w)) == {}


def test_open_or_pending_orders_at_the_end() -> None:
    """PENDING_* at the end is not final; UNKNOWN needs a reason; resting orders are only
    fine when the run did not sweep open orders."""
    w = consistent()
    w["oms_orders"][1] = oms_order("a2", "PENDING_CANCEL", cum="0", avg="0")
    got = violations(Observations(**w))
    assert got["final_state_or_honest_unknown"] == 1
    w = consistent()
    w["venues"]["simA"]["orders"][1]["status"] = "ACCEPTED"
    w["oms_orders"][1] = oms_order("a2", "ACCEPTED", cum="0", avg="0")
    assert violations(Observations(**w)) == {"final_state_or_honest_unknown": 1}
    assert violations(Observations(**w, open_orders_allowed=True)) == {}


def test_unknown_with_reason_is_honest_when_the_venue_never_saw_it() -> None:
    """An indeterminate submit the OMS holds as UNKNOWN with a reason and the venue never
    saw is acceptable; without a reason it is not."""
    w = consistent()
    w["history"].append(entry("u1", "timeout", error="Timeout", seq=6))
    w["oms_orders"].append(
        oms_order("u1", "UNKNOWN", cum="0", avg="0", reason="no connector answer")
    )
    assert violations(Observations(**w)) == {}
    w["oms_orders"][-1] = oms_order("u1", "UNKNOWN", cum="0", avg="0")
    assert violations(Observations(**w)) == {"final_state_or_honest_unknown": 1}


def test_oms_and_venue_disagree_on_status_cum_and_avg_px() -> None:
    """Each differing field is reported for the order (one violation per order)."""
    w = consistent()
    w["oms_orders"][0] = oms_order("a1", "PARTIALLY_FILLED", cum="4", avg="99.5")
    w["oms_positions"] = [{"venue": "simA", "symbol": "AAPL", "qty": "4"}]
    result = check(Observations(**w))
    inv = result.invariants["oms_equals_venue"]
    assert inv.violations == 1
    assert "status PARTIALLY_FILLED != FILLED" in inv.examples[0]
    assert "cum_qty 4 != 10" in inv.examples[0] and "avg_px" in inv.examples[0]
    assert result.invariants["fills_applied_exactly_once"].violations == 1
    assert result.invariants["positions_equal"].violations == 1


def test_avg_px_within_tolerance_is_equal() -> None:
    """Average prices that differ only in representation (division precision) are equal."""
    w = consistent()
    w["oms_orders"][0] = oms_order("a1", avg="100.0000000000000000001")
    assert violations(Observations(**w)) == {}


def test_fill_applied_twice_in_the_journal_and_venue_exec_ids_unique() -> None:
    """A venue exec id journalled twice for the same order, and a venue that repeats an exec
    id across orders, are both violations of exactly-once fills."""
    w = consistent()
    journal = [
        {"kind": "record", "data": {"kind": "fill", "id": "a1", "exec_id": x, "qty": q}}
        for x, q in (("X1", "4"), ("X2", "6"), ("X2", "6"))
    ]
    got = violations(Observations(**w, journal=journal))
    assert got == {"fills_applied_exactly_once": 2}  # X2 twice; journal sum 16 != 10
    w["venues"]["simA"]["orders"][1]["fills"] = [{"exec_id": "X1", "qty": "0", "px": "1"}]
    assert violations(Observations(**w))["fills_applied_exactly_once"] == 1


def test_journal_replay_from_a_snapshot() -> None:
    """After compaction the journal is a snapshot plus later records: the snapshot's cum qty
    and exec ids count, a later record repeating a snapshot exec id is a double apply."""
    w = consistent()
    snap = {
        "kind": "snapshot",
        "data": {
            "orders": [
                {"client_order_id": "a1", "cum_qty": "4", "exec_ids": ["X1"]},
                {"client_order_id": "a2", "cum_qty": "0", "exec_ids": []},
            ]
        },
    }
    later = {"kind": "record", "data": {"kind": "fill", "id": "a1", "exec_id": "X2", "qty": "6"}}
    assert check(Observations(**w, journal=[snap, later])).valid
    again = {"kind": "record", "data": {"kind": "fill", "id": "a1", "exec_id": "X1", "qty": "4"}}
    got = violations(Observations(**w, journal=[snap, later, again]))
    assert got == {"fills_applied_exactly_once": 2}  # X1 twice; sum 14 != 10


def test_journal_replay_takes_a_venue_bust_and_correction_back() -> None:
    """A venue's bust (150=H) or correction (150=G) is a ``trade_bust`` record: the fill it
    names comes off the journal's sum (a correction's new qty on), as it came off the OMS's
    cum and the venue's fills (before: "journal fills sum 10 != OMS cum 4" of a bust)."""
    w = consistent()
    w["oms_orders"][0] = oms_order("a1", "CANCELLED", cum="5")
    w["oms_positions"][0]["qty"] = "5"
    fills = [("X1", "4", "100"), ("X2", "1", "100")]  # X2 corrected from 6 to 1
    a2 = w["venues"]["simA"]["orders"][1]
    w["venues"] = venues(simA=[venue_record("a1", "CANCELLED", fills=fills), a2], simB=[])
    journal = [
        {"kind": "record", "data": {"kind": "fill", "id": "a1", "exec_id": x, "qty": q}}
        for x, q in (("X1", "4"), ("X2", "6"))
    ]
    corr = {"kind": "trade_bust", "id": "a1", "exec_id": "G1", "ref": "X2", "qty": "6",
            "new_qty": "1"}  # fmt: skip
    got = violations(Observations(**w, journal=[*journal, {"kind": "record", "data": corr}]))
    assert got == {}
    bust = {"kind": "trade_bust", "id": "a1", "exec_id": "B1", "ref": "X2", "qty": "1"}
    w["oms_orders"][0] = oms_order("a1", "CANCELLED", cum="4")
    w["oms_positions"][0]["qty"] = "4"
    w["venues"] = venues(simA=[venue_record("a1", "CANCELLED", fills=fills[:1]), a2], simB=[])
    records = [*journal, {"kind": "record", "data": corr}, {"kind": "record", "data": bust}]
    assert violations(Observations(**w, journal=records)) == {}


def test_journal_replay_leaves_archived_orders_to_the_archive() -> None:
    """An old terminal order the OMS moved to its archive is in no snapshot and has no
    record after it: the journal says nothing of its fills (not "0"); an order new after
    the snapshot is judged."""
    w = consistent()
    snap = {"kind": "snapshot", "data": {"orders": []}}  # a1 and a2 archived
    assert check(Observations(**w, journal=[snap])).valid
    new = {"kind": "record", "data": {"kind": "new", "order": {"client_order_id": "a1"}}}
    got = violations(Observations(**w, journal=[snap, new]))
    assert got == {"fills_applied_exactly_once": 1}  # a1 new after it, its fills missing


def test_positions_against_risk_when_exposed() -> None:
    """Risk's view is compared when given; a risk that did not answer is a violation; when
    not collected the check says so."""
    w = consistent()
    result = check(Observations(**w))
    assert "not collected" in result.invariants["positions_equal"].note
    silent = Observations(**w, risk_positions_error="risk did not answer")
    assert violations(silent) == {"positions_equal": 1}
    bad = [{"venue": "simA", "symbol": "AAPL", "qty": "7"}]
    assert violations(Observations(**w, risk_positions=bad)) == {"positions_equal": 1}
    good = [{"venue": "simA", "symbol": "AAPL", "qty": "10"}]
    assert violations(Observations(**w, risk_positions=good)) == {}


def test_runtime_invariants() -> None:
    """Actors down, orphans and zombies, protocol errors beyond the injected ones, unmatched
    fills, faults the system never recovered from and crashes (actor exits no fault caused)
    are each counted."""
    w = consistent()
    obs = Observations(
        **w,
        healthy_at_end=False,
        orphans=["123 ppid=1 python"],
        zombies=["9 ppid=8"],
        protocol_errors=3,
        injected_protocol_errors=1,
        unmatched_fills=2,
        unrecovered_faults=["sigkill:oms#3"],
        unexpected_exits=["venuesim.simA pid 698 exit_code 1"],
    )
    assert violations(obs) == {
        "actors_up_at_end": 1,
        "no_orphans_or_zombies": 2,
        "no_protocol_errors": 1,
        "no_unmatched_fills": 1,
        "every_fault_recovered": 1,
        "no_unexpected_actor_exits": 1,
    }


@pytest.mark.parametrize(
    ("samples", "asked", "expected"),
    [
        ([(1, False), (2, False)], None, {}),
        ([(1, False), (2, True), (3, True)], 2, {}),
        ([(1, True), (2, False), (3, True)], 0, {"kill_switch_persistent": 1}),
        ([(1, False), (2, True)], None, {"kill_switch_only_when_asked": 1}),
        ([(1, True)], 5, {"kill_switch_only_when_asked": 1}),
    ],
)
def test_kill_switch_stays_engaged_and_only_when_asked(
    samples: list[tuple[int, bool]], asked: int | None, expected: dict[str, int]
) -> None:
    """Once engaged, every later observation shows it engaged; engaging without the nemesis
    asking (or before it asked) is a finding."""
    obs = Observations(**consistent(), kill_switch_samples=samples, kill_switch_requested_ns=asked)
    assert violations(obs) == expected


def test_adopted_copy_of_a_known_order_is_a_mismatch() -> None:
    """The OMS adopting a venue order it already has (as ext:venue:id) holds it twice."""
    w = consistent()
    w["oms_orders"].append(oms_order("ext:simA:a1", external=True))
    assert violations(Observations(**w))["oms_equals_venue"] >= 1


# --------------------------------------------------------------------------- history


def test_client_order_ids_are_deterministic_and_venue_safe() -> None:
    """Same seed, client and counter give the same id; ids match [A-Za-z0-9_-]{1,24}."""
    assert client_order_id(7, 3, 12) == client_order_id(7, 3, 12)
    assert client_order_id(7, 3, 12) != client_order_id(8, 3, 12)
    assert len(client_order_id(2**40 + 5, 15, 9_999_999)) <= 24


def test_history_round_trip_drops_only_a_torn_last_line(tmp_path: Path) -> None:
    """Entries written by a client read back in start order; a torn last line (a client
    killed mid-write) is dropped, a bad middle line is an error naming the line."""
    w = HistoryWriter(tmp_path / "client-0.jsonl")
    e2, e1 = entry("b", seq=2), entry("a", seq=1)
    w.record(e2)
    w.record(e1)
    w.close()
    path = tmp_path / "client-0.jsonl"
    with path.open("a") as fh:
        fh.write('{"client": 0, "se')
    assert read_history([path]) == [e1, e2]
    path.write_text(path.read_text().replace(e2.to_json(), "garbage", 1))
    with pytest.raises(ValueError, match="client-0.jsonl:1"):
        read_history([path])


def test_submit_summary_and_outcome_counts() -> None:
    """acked if any attempt was ok; refused on a definitive last error; else indeterminate."""
    hist = [
        entry("a", "timeout", error="Timeout", attempt=1),
        entry("a", attempt=2),
        entry("b", "error", error="NotReady", attempt=1, seq=2),
        entry("b", "error", error="VenueDown", attempt=2, seq=2),
        entry("c", "timeout", error="Timeout", seq=3),
        entry("a", op="cancel", seq=4),
    ]
    s = summarize_submits(hist)
    assert (s["a"].result, s["a"].attempts, s["a"].ever_unanswered) == ("acked", 2, True)
    assert (s["b"].result, s["b"].error) == ("refused", "VenueDown")
    assert s["c"].result == "indeterminate"
    assert outcome_counts(hist) == {
        "cancel": {"ok": 1},
        "submit": {"NotReady": 1, "VenueDown": 1, "ok": 1, "timeout": 2},
    }


# --------------------------------------------------------------------------- journal views


def test_journal_views_replay_snapshot_then_records() -> None:
    """When the OMS cannot answer, its orders and positions are replayed from `journal
    inspect` output: the latest snapshot, then the records after it."""
    from decimal import Decimal

    from actors.oms.order_book import OrderBook
    from protocol.messages import OrdType, RiskVerdict, Side, SubmitOrder
    from tests.chaos.settle import journal_views

    def submit(book: OrderBook, coid: str) -> list[dict[str, Any]]:
        msg = SubmitOrder(
            client_order_id=coid,
            venue="simA",
            symbol="AAPL",
            side=Side.BUY,
            qty=Decimal(10),
            order_type=OrdType.LIMIT,
            price=Decimal("100"),
        )
        recs = list(book.submit(msg, 1).records)
        recs += book.risk_verdict(RiskVerdict(client_order_id=coid, approved=True), 2).records
        return [{"kind": "record", "data": r} for r in recs]

    book = OrderBook()
    before = submit(book, "j1")
    snapshot = {"kind": "snapshot", "data": {"next_segment": 2, **book.to_dict()}}
    after = submit(book, "j2")
    orders, positions = journal_views([*before, snapshot, *after])
    assert sorted((o["client_order_id"], o["status"]) for o in orders) == [
        ("j1", "PENDING_SUBMIT"),
        ("j2", "PENDING_SUBMIT"),
    ]
    assert positions == []
    assert [o["client_order_id"] for o in journal_views(after)[0]] == ["j2"]


def test_a_resubmit_the_venue_refused_as_a_duplicate_was_in_flight() -> None:
    """`order_resubmitted` for a ClOrdID the venue rejected as a duplicate (OrdRejReason 6):
    the pass resubmitted an order whose D was still on its way. A resubmit the venue
    took (it never had the order) is fine."""
    world = consistent()
    world["venues"]["simA"]["rejects"] = [
        {"cl_ord_id": "r1", "exec_id": "R1", "text": "duplicate ClOrdID", "ord_rej_reason": 6}
    ]
    world["resubmits"] = [
        {"event": "order_resubmitted", "venue": "simA", "cl_ord_id": "r1"},
        {"event": "order_resubmitted", "venue": "simA", "cl_ord_id": "r2"},
    ]
    stats = check(Observations(**world)).stats
    found = violations(Observations(**world))
    assert found.get("no_inflight_resubmit") == 1, (found, stats)


def test_a_duplicate_refused_in_a_possdup_copy_is_not_a_second_send() -> None:
    """The venue restarted, asked for its inbound messages again and got the resubmit's D
    (PossDupFlag=Y), which it had: its duplicate reject says so, and is no in-flight
    resubmit (a seeded chaos run, seed 3, failed on it: 91 such copies after a supervisor
    kill right after a pass resubmitted 183 orders queued while the venue refused logons)."""
    world = consistent()
    world["venues"]["simA"]["rejects"] = [
        {"cl_ord_id": "r1", "exec_id": "R1", "text": "duplicate ClOrdID", "ord_rej_reason": 6,
         "poss_dup": True},
    ]  # fmt: skip
    world["resubmits"] = [{"event": "order_resubmitted", "venue": "simA", "cl_ord_id": "r1"}]
    assert "no_inflight_resubmit" not in violations(Observations(**world))


def _busted_world() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """a1's fill X2 (6 @ 100) busted by the nemesis at simA: the venue holds X1 alone, the
    OMS cum 4; the journal's fills with their prices, then the bust's record."""
    w = consistent()
    w["oms_orders"][0] = oms_order("a1", "CANCELLED", cum="4")
    w["oms_positions"][0]["qty"] = "4"
    a2 = w["venues"]["simA"]["orders"][1]
    a1 = venue_record("a1", "CANCELLED", fills=[("X1", "4", "100")])
    w["venues"] = venues(simA=[a1, a2], simB=[])
    w["trade_busts"] = [{"venue": "simA", "order": "a1", "exec_id": "X2", "command": "bust_trade"}]
    journal = [
        {
            "kind": "record",
            "data": {"kind": "fill", "id": "a1", "exec_id": x, "qty": q, "px": "100"},
        }
        for x, q in (("X1", "4"), ("X2", "6"))
    ]
    bust = {"kind": "trade_bust", "id": "a1", "exec_id": "H1", "ref": "X2", "qty": "6", "px": "100"}
    return w, [*journal, {"kind": "record", "data": bust}]


def _corrected_world() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """As `_busted_world`, but the nemesis corrected X2 to 6 @ 101 (price only): the venue
    holds both fills (a1 FILLED 10 @ 100.6); the journal's last record (the bust) is the
    caller's to replace."""
    w, journal = _busted_world()
    w["oms_orders"][0] = oms_order("a1", "FILLED", cum="10", avg="100.6")
    w["oms_positions"][0]["qty"] = "10"
    a1 = venue_record("a1", fills=[("X1", "4", "100"), ("X2", "6", "101")])
    a1["avg_px"] = "100.6"
    w["venues"] = venues(simA=[a1, w["venues"]["simA"]["orders"][1]], simB=[])
    w["trade_busts"] = [{"venue": "simA", "order": "a1", "exec_id": "X2",
                         "command": "correct_trade", "qty": "6", "px": "101"}]  # fmt: skip
    return w, journal


def test_a_nemesis_bust_is_judged_by_the_venue_and_the_journal() -> None:
    """The nemesis busted X2: valid when the venue no longer has it and the journal books
    it busted once (also read from a snapshot's `fills`); a venue still holding it, or a
    journal without the bust (the OMS missed it), is a ``busts_applied_exactly_once``
    violation."""
    w, journal = _busted_world()
    assert violations(Observations(**w, journal=journal)) == {}
    snap = {"kind": "snapshot", "data": {"orders": [
        {"client_order_id": "a1", "cum_qty": "4", "exec_ids": ["X1", "X2", "H1"],
         "fills": {"X1": "4 100", "X2": ""}},
        {"client_order_id": "a2", "cum_qty": "0", "exec_ids": [], "fills": None},
    ]}}  # fmt: skip
    assert violations(Observations(**w, journal=[*journal, snap])) == {}
    missed = violations(Observations(**w, journal=journal[:2]))
    assert missed["busts_applied_exactly_once"] == 1  # "journal books X2 as 6 100"
    w["venues"]["simA"]["orders"][0]["fills"].append({"exec_id": "X2", "qty": "6", "px": "100"})
    got = check(Observations(**w, journal=journal)).invariants["busts_applied_exactly_once"]
    assert got.violations == 1 and "venue fill X2 is 6 100" in got.examples[0]


def test_a_nemesis_correction_must_be_booked_on_the_venues_terms() -> None:
    """X2 corrected to 6 @ 101 (price only): the journal booking it so is valid; one
    booking other terms (a correction applied on a stale or doubled basis) is not."""
    w, journal = _corrected_world()
    corr = {"kind": "trade_bust", "id": "a1", "exec_id": "G1", "ref": "X2", "qty": "6",
            "px": "100", "new_qty": "6", "new_px": "101"}  # fmt: skip
    records = [*journal[:2], {"kind": "record", "data": corr}]
    assert violations(Observations(**w, journal=records)) == {}
    corr["new_px"] = "101.5"
    got = check(Observations(**w, journal=records)).invariants["busts_applied_exactly_once"]
    assert got.violations == 1 and "books X2 as 6 101.5" in got.examples[0]


def test_the_nemesis_corrects_recent_fills_in_whole_units_never_qty_at_a_ledger_venue() -> None:
    """A correction halves the fill's qty (whole units, at least one, never more than it
    was) and moves its price by basis points; at a venue whose positions come from the
    connector's fill ledger only the price changes (the ledger keeps no old qty)."""
    fill = {"exec_id": "X9", "qty": "25", "px": "200.00"}
    params = {"qty_frac": 0.5, "px_bp": -50}
    assert correction(fill, params, qty_may_change=True) == "X9 12 199.00"
    assert correction(fill, params, qty_may_change=False) == "X9 25 199.00"
    one = {"exec_id": "X8", "qty": "1", "px": "10.00"}
    assert correction(one, {"qty_frac": 0.5, "px_bp": 0}, True) == "X8 1 10.01"  # changed
    rows = venues(simA=[venue_record("a1", fills=[("X1", "4", "100"), ("X2", "6", "100")])])
    rows["simA"]["orders"][0]["fills"][0]["ts_ns"] = 5
    assert [f["exec_id"] for f in recent_fills(rows["simA"], 1)] == ["X1"]  # the newest


def test_a_nemesis_bust_the_journal_takes_back_twice_is_a_bust_violation() -> None:
    """The OMS journalled two busts of X2 (under two exec ids: the venue's bust, then a
    second take-back the OMS should have found a duplicate): ``busts_applied_exactly_once``
    says so itself ("taken back twice"), not only the sums of
    ``fills_applied_exactly_once``; a correction after a correction of the same fill is
    not a second take-back."""
    w, journal = _busted_world()
    again = {"kind": "trade_bust", "id": "a1", "exec_id": "H2", "ref": "X2", "qty": "6",
             "px": "100"}  # fmt: skip
    got = check(Observations(**w, journal=[*journal, {"kind": "record", "data": again}]))
    bad = got.invariants["busts_applied_exactly_once"]
    assert bad.violations == 1 and "fill X2 taken back twice" in bad.examples[0], bad.examples
    w, journal = _corrected_world()
    steps = (("G1", "100", "100.5"), ("G2", "100.5", "101"))  # corrected, then again
    corr = [
        {"kind": "record", "data": {"kind": "trade_bust", "id": "a1", "exec_id": g, "ref": "X2",
                                    "qty": "6", "px": p, "new_qty": "6", "new_px": n}}
        for g, p, n in steps
    ]  # fmt: skip
    seen = violations(Observations(**w, journal=[*journal[:2], *corr]))
    assert "busts_applied_exactly_once" not in seen


NEW_A1 = {"kind": "record", "data": {"kind": "new", "order": {"client_order_id": "a1"}}}


def _escalated_world() -> dict[str, Any]:
    """a1 (FILLED 10 @ 100 at the OMS) was counted by a reconciliation pass (its journal: one
    ``recon:`` fill, no X1 or X2 of its own); the nemesis then busted X2 (6 @ 100): the venue
    holds X1 alone (a1 CANCELLED at 4, position 4), the OMS escalated the bust
    ``trade_bust_unknown_fill`` and kept 10, and the heartbeat engaged the kill-switch for
    the divergence (runbook 11b‴), before anyone asked."""
    w = consistent()
    a2 = w["venues"]["simA"]["orders"][1]
    w["venues"] = venues(simA=[venue_record("a1", "CANCELLED", fills=[("X1", "4", "100")]), a2])
    w["trade_busts"] = [{"venue": "simA", "order": "a1", "exec_id": "X2", "command": "bust_trade",
                         "was": "6 100"}]  # fmt: skip
    recon = {"kind": "fill", "id": "a1", "exec_id": "recon:a1:10", "qty": "10", "px": "100"}
    w["journal"] = [NEW_A1, {"kind": "record", "data": recon}]
    w["escalation_lines"] = [
        {"event": "trade_bust_unknown_fill", "venue": "simA", "client_order_id": "a1",
         "detail": "H1: bust of fill 'X2', never booked on the order"},
        {"event": "kill_switch_requested", "ts": "2023-11-14T22:13:21Z",
         "reason": "position_divergence: simA AAPL venue 4 oms 10"},
    ]  # fmt: skip
    w["kill_switch_samples"] = [(T0 + 2_000_000_000, True)]  # 1 s after the request
    return w


def test_a_bust_escalated_for_a_fill_reconciliation_counted_is_the_documented_limit() -> None:
    """The OMS keeps no terms of a fill a reconciliation pass counted, so it escalates a
    bust of it (``trade_bust_unknown_fill``) and keeps the fill, by design: the run is
    valid, ``busts_applied_exactly_once`` says which (the summary shows its note), the OMS
    is compared with the venue as if the fill were back, and the heartbeat's kill-switch
    for that divergence counts as asked for. Only that case: the same bust without the
    OMS's escalation (lost), or escalated for a fill the journal booked itself, fails; a
    kill-switch engaged for another symbol's divergence is still unasked."""
    result = check(Observations(**_escalated_world()))
    assert result.valid, result.to_dict()
    note = result.invariants["busts_applied_exactly_once"].note
    assert "1 escalated trade_bust_unknown_fill" in note and "simA X2 of a1" in note, note
    lost = _escalated_world()
    lost["escalation_lines"] = lost["escalation_lines"][1:]
    got = violations(Observations(**lost))
    assert got["busts_applied_exactly_once"] == 1, got
    assert {"oms_equals_venue", "positions_equal", "kill_switch_only_when_asked"} <= set(got)
    booked = _escalated_world()
    booked["journal"] = [NEW_A1] + [
        {"kind": "record", "data": {"kind": "fill", "id": "a1", "exec_id": x, "qty": q,
                                    "px": "100"}}
        for x, q in (("X1", "4"), ("X2", "6"))
    ]  # fmt: skip
    assert violations(Observations(**booked))["busts_applied_exactly_once"] == 1
    other = _escalated_world()
    other["escalation_lines"][1]["reason"] = "position_divergence: simA MSFT venue 0 oms 5"
    assert violations(Observations(**other)) == {"kill_switch_only_when_asked": 1}
