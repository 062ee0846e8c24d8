"""Persistence: a restarted venue (clean stop or kill -9) is the venue it was, the log
tolerates a torn tail but not a corrupt middle, and `inspect()` tells the exact truth."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from actors.venuesim import (
    STATUS_EXEC_ID,
    ExecEvent,
    SimStore,
    Venue,
    exec_seq,
    inspect,
    replay_events,
)
from actors.venuesim.store import LOG_NAME
from protocol.exceptions import JournalCorrupt, StateDirLocked
from tests.helpers import REPO_ROOT
from tests.venuesim.support import D, Sim, execs, sim_cfg, state

MakeSim = Callable[..., Sim]


def scenario(sim: Sim) -> list[Any]:
    """Fills against quotes and against the client's own orders, orders resting at one
    price in time order, a replace, a cancel, rejects, and liquidity steps."""
    return [
        *sim.order("b1", "BUY", 150, "100.01"),  # 100 filled, 50 rest at 100.01
        *sim.order("b2", "BUY", 40, "99.95", tif="GTC"),
        *sim.order("b3", "BUY", 30, "99.95"),  # behind b2
        *sim.order("s1", "SELL", 20, "100.50", tif="GTC"),
        *sim.replace("s1r", "s1", 25, "100.40"),
        *sim.order("m1", "SELL", 120),  # b1's 50 at 100.01, then the market maker
        *sim.order("b4", "BUY", 10, "99.90"),
        *sim.cancel("c4", "b4"),
        *sim.order("b1", "BUY", 1, "99"),  # duplicate
        *sim.order("x1", "BUY", 1, "99", symbol="ZZZ"),
        *sim.steps(40),
    ]


def after(sim: Sim) -> list[Any]:
    """More business on top of the scenario: what priority and counters lead to."""
    return [
        *sim.order("s2", "SELL", 50, "99.95"),  # trades with b2 then b3 (time priority)
        *sim.order("b5", "BUY", 60, "100.40"),
        *sim.replace("b5r", "b5", 30, "100.40"),
        *sim.steps(20),
        *sim.venue.mass_cancel(sim.clock()),
    ]


def test_restart_reproduces_book_positions_quotes_and_exec_counter(make_sim: MakeSim) -> None:
    """A stopped and restarted venue has the same orders, positions, quotes and step, and
    from then on behaves exactly like a twin that never stopped: same trades in the same
    priority, same exec ids."""
    twin, sim = make_sim("twin"), make_sim("restarted")
    scenario(twin)
    scenario(sim)
    sim.store.sync()  # writes the last quiet step, which inspect() reads from the log
    before = state(sim)
    sim.restart()
    assert state(sim) == before
    assert after(sim) == after(twin)


def test_inspect_agrees_with_the_running_venue(make_sim: MakeSim) -> None:
    sim = make_sim()
    scenario(sim)
    view = inspect(sim.state_dir)  # the venue still runs and holds its lock
    for o in view["orders"]:
        order = sim.venue.status(o["cl_ord_id"])
        assert order is not None
        assert (order.order_id, o["cum_qty"], o["leaves_qty"], o["avg_px"]) == (
            o["order_id"],
            str(order.cum_qty),
            str(order.leaves_qty),
            str(order.avg_px),
        )
        assert [f["exec_id"] for f in o["fills"]] == [f.exec_id for f in order.fills]
    assert view["positions"] == {
        s: {k: str(v) for k, v in vars_of(p).items()} for s, p in sim.venue.positions().items()
    }
    json.dumps(view)  # JSON-serialisable as it is


def vars_of(p: Any) -> dict[str, Any]:
    return {k: getattr(p, k) for k in ("net_qty", "avg_px", "bought_qty", "sold_qty")}


def test_kill_9_loses_nothing_acknowledged_and_quiet_steps_replay_the_same(
    make_sim: MakeSim, tmp_path: Path
) -> None:
    """What a kill -9 leaves (the log in the page cache) restarts the venue with every
    order and exec id it handed out. Quiet steps not yet written are lost, but the walk is
    keyed by step, so the restarted venue walks the very same path."""
    sim = make_sim("live")
    scenario(sim)
    sim.steps(7)  # quiet or not, the last may be pending
    sim.crash_copy(tmp_path / "crashed")
    crashed = make_sim("crashed")
    assert crashed.venue.step < sim.venue.step, "the last quiet step was not written"
    assert crashed.venue.open_orders() == sim.venue.open_orders()
    assert crashed.venue.positions() == sim.venue.positions()
    crashed.steps(sim.venue.step - crashed.venue.step)
    crashed.now_ns = sim.now_ns
    assert state(crashed)["references"] == state(sim)["references"]
    assert after(crashed) == after(sim)


_CHILD = """
import json, sys
from pathlib import Path
from actors.venuesim import SimStore, Venue
from tests.venuesim.support import D, sim_cfg
venue = Venue("sim", sim_cfg(), SimStore.open(Path(sys.argv[1]), book_id="bk"), 7)
ids = []
for i in range(50):
    buy = i % 2 == 0
    px = D("100.02") if buy else D("99.98")
    events = venue.new_order(f"o{i}", "AAPL", "BUY" if buy else "SELL", D(30), "LIMIT", px,
                             "GTC", i)
    ids += [e.exec_id for e in events]
print(json.dumps(ids), flush=True)
sys.stdin.read()
"""


def test_real_kill_9_of_the_venue_process(tmp_path: Path) -> None:
    """A venue process killed with SIGKILL right after handing out events: on restart every
    one of those exec ids is on record, the lock is free, and the counter goes on."""
    state_dir = tmp_path / "venue"
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(state_dir)],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        handed_out = json.loads(proc.stdout.readline())
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                pipe.close()
    view = inspect(state_dir)
    on_record = [x["exec_id"] for o in view["orders"] for x in o["execs"]]
    assert sorted(on_record) == sorted(handed_out) and len(view["orders"]) == 50
    store = SimStore.open(state_dir)
    try:
        venue = Venue("sim", sim_cfg(), store, 7)
        (ack,) = execs(venue.new_order("next", "AAPL", "BUY", D(1), "LIMIT", D(90), "DAY", 99))
        assert ack.exec_id > max(handed_out) and ack.exec_id == f"bk-E{len(handed_out) + 1:012d}"
    finally:
        store.close()


def _frames(log: Path) -> list[int]:
    """The offset of every frame in the log."""
    data, off, offsets = log.read_bytes(), 0, []
    while off < len(data):
        offsets.append(off)
        off += 8 + int.from_bytes(data[off : off + 4], "little")
    return offsets


@pytest.mark.parametrize(
    "damage",
    ["half-header", "header-only", "all-but-one-byte", "bad-crc", "zero-fill"],
)
def test_torn_tail_is_dropped_and_the_log_goes_on(make_sim: MakeSim, damage: str) -> None:
    """A last frame that is incomplete or fails its CRC (a write cut short by the kill) or
    a zero-filled tail is dropped: the venue restarts without that operation (whose events
    were never handed out), truncates the tail, and appends after it."""
    sim = make_sim()
    scenario(sim)
    sim.store.sync()
    log = sim.state_dir / LOG_NAME
    good_size, good_view = log.stat().st_size, inspect(sim.state_dir)
    sim.order("lost", "BUY", 10, "99.50")
    sim.close()
    frame = log.read_bytes()[good_size:]
    torn = {
        "half-header": frame[:4],
        "header-only": frame[:8],
        "all-but-one-byte": frame[:-1],
        "bad-crc": frame[:-1] + bytes([frame[-1] ^ 0xFF]),
        "zero-fill": bytes(4096),
    }[damage]
    with log.open("r+b") as fh:
        fh.truncate(good_size)
        fh.seek(good_size)
        fh.write(torn)
    assert inspect(sim.state_dir)["orders"] == good_view["orders"]  # read-only: no truncation
    assert log.stat().st_size == good_size + len(torn)
    again = make_sim()
    assert again.store.torn_bytes == len(torn) and log.stat().st_size == good_size
    assert again.venue.status("lost") is None
    (ack,) = execs(again.order("lost", "BUY", 10, "99.50"))
    assert ack.exec_id == f"bk-E{good_view['last_exec_seq'] + 1:012d}"
    again.restart()
    assert again.venue.status("lost") is not None


def test_corrupt_middle_is_an_error_not_skipped(make_sim: MakeSim) -> None:
    sim = make_sim()
    scenario(sim)
    sim.close()
    log = sim.state_dir / LOG_NAME
    data = bytearray(log.read_bytes())
    middle = _frames(log)[3]
    data[middle + 12] ^= 0xFF
    log.write_bytes(bytes(data))
    with pytest.raises(JournalCorrupt) as err:
        inspect(sim.state_dir)
    assert err.value.offset == middle
    for _ in range(2):  # a failed open leaves the state dir unlocked
        with pytest.raises(JournalCorrupt):
            SimStore.open(sim.state_dir)


@pytest.mark.parametrize("frame", [0, 3], ids=["first-frame", "a-middle-frame"])
@pytest.mark.parametrize("length", [b"GARB", b"\xff\xff\x00\x00"], ids=["garbage", "fits-64MiB"])
def test_a_damaged_frame_length_is_corruption_not_a_torn_tail(
    make_sim: MakeSim, frame: int, length: bytes
) -> None:
    """A frame whose length field was overwritten (the runbook's drill: 8 bytes of garbage
    at the start of venue.log) reads as running past the end of the log. It was taken for a
    torn tail: the log was cut there and the venue started with a new, empty book, its
    orders, fills and positions gone (the OMS then saw the positions diverge). Now it is
    `JournalCorrupt` at that frame (the venue stays down: "Corrupt state files") and the
    file is left as it was, whether the length is absurd or merely too long."""
    sim = make_sim()
    scenario(sim)
    sim.close()
    log = sim.state_dir / LOG_NAME
    at = _frames(log)[frame]
    data = bytearray(log.read_bytes())
    data[at : at + 4] = length
    log.write_bytes(bytes(data))
    with pytest.raises(JournalCorrupt) as err:
        inspect(sim.state_dir)
    assert err.value.offset == at
    with pytest.raises(JournalCorrupt):
        SimStore.open(sim.state_dir)
    assert log.read_bytes() == bytes(data)  # nothing cut


def test_a_second_process_cannot_open_the_same_state(sim: Sim) -> None:
    with pytest.raises(StateDirLocked):
        SimStore.open(sim.state_dir)


def test_book_id_is_chosen_once_and_kept(tmp_path: Path) -> None:
    store = SimStore.open(tmp_path / "v")
    first = store.book_id
    store.close()
    assert len(first) == 8 and int(first, 16) >= 0
    store = SimStore.open(tmp_path / "v", book_id="other")
    try:
        assert store.book_id == first
    finally:
        store.close()


def test_inspect_reports_every_order_exactly(sim: Sim) -> None:
    """Every order with its ClOrdID chain, status, fills and exec ids; rejects that made
    no order; positions. Decimals are strings."""
    sim.order("b1", "BUY", 150, "100.01")  # 100 filled at 100.01, 50 rest
    sim.order("s1", "SELL", 10, "101", tif="GTC")
    sim.replace("s1r", "s1", 20, "101")
    sim.cancel("c1", "s1r")
    sim.order("x1", "BUY", 5, "99", symbol="ZZZ")
    sim.order("b1", "BUY", 1, "99")
    assert inspect(sim.state_dir) == {
        "book_id": "bk",
        "last_exec_id": "bk-E000000000007",
        "last_exec_seq": 7,
        "step": 0,
        "reference_prices": {},
        "orders": [
            {
                "order_id": "bk-O00000001",
                "cl_ord_id": "b1",
                "cl_ord_ids": ["b1"],
                "symbol": "AAPL",
                "side": "BUY",
                "ord_type": "LIMIT",
                "tif": "DAY",
                "order_qty": "150",
                "price": "100.01",
                "status": "PARTIALLY_FILLED",
                "ord_status": "1",
                "cum_qty": "100",
                "leaves_qty": "50",
                "avg_px": "100.01",
                "text": "",
                "ord_rej_reason": None,
                "received_ns": 1000,
                "fills": [
                    {"exec_id": "bk-E000000000002", "qty": "100", "px": "100.01", "ts_ns": 1000}
                ],
                "execs": [
                    {"exec_id": "bk-E000000000001", "exec_type": "0"},
                    {"exec_id": "bk-E000000000002", "exec_type": "F"},
                ],
            },
            {
                "order_id": "bk-O00000002",
                "cl_ord_id": "c1",
                "cl_ord_ids": ["s1", "s1r", "c1"],
                "symbol": "AAPL",
                "side": "SELL",
                "ord_type": "LIMIT",
                "tif": "GTC",
                "order_qty": "20",
                "price": "101",
                "status": "CANCELLED",
                "ord_status": "4",
                "cum_qty": "0",
                "leaves_qty": "0",
                "avg_px": "0",
                "text": "cancelled on request",
                "ord_rej_reason": None,
                "received_ns": 2000,
                "fills": [],
                "execs": [
                    {"exec_id": "bk-E000000000003", "exec_type": "0"},
                    {"exec_id": "bk-E000000000004", "exec_type": "5"},
                    {"exec_id": "bk-E000000000005", "exec_type": "4"},
                ],
            },
            {
                "order_id": "bk-O00000003",
                "cl_ord_id": "x1",
                "cl_ord_ids": ["x1"],
                "symbol": "ZZZ",
                "side": "BUY",
                "ord_type": "LIMIT",
                "tif": "DAY",
                "order_qty": "5",
                "price": "99",
                "status": "REJECTED",
                "ord_status": "8",
                "cum_qty": "0",
                "leaves_qty": "0",
                "avg_px": "0",
                "text": "unknown symbol 'ZZZ'",
                "ord_rej_reason": 1,
                "received_ns": 5000,
                "fills": [],
                "execs": [{"exec_id": "bk-E000000000006", "exec_type": "8"}],
            },
        ],
        "rejects": [
            {
                "cl_ord_id": "b1",
                "exec_id": "bk-E000000000007",
                "ord_rej_reason": 6,
                "text": "duplicate ClOrdID",
                "ts_ns": 6000,
                "poss_dup": False,
            }
        ],
        "positions": {
            "AAPL": {"net_qty": "100", "avg_px": "100.01", "bought_qty": "100", "sold_qty": "0"}
        },
        "log": {"frames": 7, "torn_bytes": 0},
    }


def test_restart_with_20k_orders_rebuilds_the_book(tmp_path: Path) -> None:
    """A log of 20k orders, most filled against quotes, some still resting, with a liquidity
    step between orders, replays in well under a second. (Written straight through the
    store in the engine's record format, so the test itself stays fast.)"""
    state_dir = tmp_path / "big"
    store = SimStore.open(state_dir, book_id="bk")
    x = 0
    for oid in range(1, 20_001):
        side, px = ("BUY", "100.01") if oid % 2 else ("SELL", "99.99")
        resting = oid % 10 == 0
        base = {"ts": oid, "oid": oid}
        txn: list[dict[str, Any]] = [{"t": "tick", "n": oid, "ref": {"AAPL": "100"}, "ts": oid}]
        x += 1
        txn.append(
            {**base, "t": "acc", "cl": f"c{oid}", "sym": "AAPL", "side": side, "typ": "LIMIT",
             "tif": "GTC", "qty": "10", "px": "99.00" if resting else px, "prio": oid, "x": x}
        )  # fmt: skip
        if not resting:
            x += 1
            txn.append({**base, "t": "fill", "q": "10", "px": px, "lvl": px, "x": x})
        store.append(txn)
    store.close()
    store = SimStore.open(state_dir)
    try:
        venue = Venue("sim", sim_cfg(), store, 7)
        assert len(venue.open_orders()) == 2000  # the replay time is in `make bench` (pure)
    finally:
        store.close()


def test_reports_are_rebuilt_exactly_from_the_log(make_sim: MakeSim) -> None:
    """`replay_events` rebuilds every execution report the venue handed out, field for
    field, so a restarted shell can re-send what its FIX store never got."""
    sim = make_sim()
    handed_out = [e for e in [*scenario(sim), *after(sim)] if isinstance(e, ExecEvent)]
    assert len(handed_out) > 20
    assert replay_events(sim.state_dir) == handed_out
    cut = exec_seq(handed_out[9].exec_id)
    assert cut == 10 and replay_events(sim.state_dir, cut) == handed_out[10:]
    assert exec_seq(STATUS_EXEC_ID) == 0
