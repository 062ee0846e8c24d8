"""The FIX path's Python work, in one process (`python -m tests.bench.fixpath`; not a `make
bench` section): the connector's `FixSession` and the venue's `VenueSession`, engine and
`fixmap` wired back to back, no sockets, FIX stores without fsync, no message logs.

- D -> 8: `ORDERS` resting limit orders, one at a time: place_fields + send + take, the
  venue's receive, answer (engine, fixmap), send + take, the connector's receive and
  `to_exec_report`. CPU us per order, in all and by leg.
- mass status: the venue answers an AF over `MASS` open orders (every part sent, taken
  every 256 as the pump does) and the connector reads them into a `MassStatusQuery`. CPU
  seconds of each side (the warm start's "~0.9 s of mass status" has these two in it).

Run it alternately on two trees for an A/B (`PYTHONPATH=<tree>`); CPU time, not wall time,
so a busy machine moves it less.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import structlog

from actors.connector.fix import mapping as fm
from actors.connector.fix.events import AppMessage
from actors.connector.fix.queries import MassStatusQuery
from actors.connector.fix.session import FixSession
from actors.connector.fix.store import FixStore
from actors.venuesim import fixmap
from actors.venuesim.engine import Venue
from actors.venuesim.store import SimStore
from actors.venuesim.venue_session import VenueSession
from protocol.config import SimCfg
from protocol.messages import OrdType, PlaceOrder, Side, TimeInForce, VenueOrder

ORDERS = 4000
MASS = 10_000
WARMUP = 200
_LEGS = (
    "connector send D", "venue receive D", "venue answer", "venue send 8",
    "connector receive 8", "to_exec_report",
)  # fmt: skip


def _pair(tmp: Path) -> tuple[FixSession, VenueSession, Venue]:
    log = structlog.get_logger("bench")
    conn = FixSession(
        sender_comp_id="US", target_comp_id="SIMA", store=FixStore(tmp / "c", fsync=False),
        initiator=True, log=log, app_msg_types=frozenset({"8", "9", "AP", "AO", "r", "j"}),
    )  # fmt: skip
    sim = VenueSession(
        sender_comp_id="SIMA", target_comp_id="US", store=FixStore(tmp / "v", fsync=False),
        initiator=False, log=log, informational_msg_types=frozenset(),
    )  # fmt: skip
    cfg = SimCfg(reference_prices={"AAPL": Decimal("100")}, volatility_bps=0.0)
    venue = Venue("simA", cfg, SimStore.open(tmp / "sim", book_id="bk"), 7)
    sim.connection_made()
    conn.logon(reset=True)
    sim.receive(conn.data_to_send())
    conn.receive(sim.data_to_send())
    assert conn.state == sim.state == "active"
    return conn, sim, venue


def _order(i: int) -> PlaceOrder:
    return PlaceOrder(
        cl_ord_id=f"c-{i}", symbol="AAPL", side=Side.BUY, qty=Decimal("10"),
        order_type=OrdType.LIMIT, price=Decimal("90.5"), tif=TimeInForce.DAY,
    )  # fmt: skip


def _round(conn: FixSession, sim: VenueSession, venue: Venue, order: PlaceOrder) -> list[float]:
    """One D -> 8; the CPU seconds of each leg."""
    marks = [time.process_time()]
    conn.send("D", fm.place_fields(order, time.time()))
    data = conn.data_to_send()
    marks.append(time.process_time())
    events = sim.receive(data)
    marks.append(time.process_time())
    outs = [
        out
        for ev in events
        if isinstance(ev, AppMessage)
        for out in fixmap.handle(venue, ev.msg_type, ev.msg, ev.seq, time.time_ns())
    ]
    marks.append(time.process_time())
    for out in outs:
        sim.send(out.msg_type, out.fields)
    back = sim.data_to_send()
    marks.append(time.process_time())
    events = conn.receive(back)
    marks.append(time.process_time())
    reports = [fm.to_exec_report(ev.msg, "simA") for ev in events if isinstance(ev, AppMessage)]
    conn.data_to_send()
    marks.append(time.process_time())
    assert reports and reports[0] is not None and reports[0].kind == "accepted"
    return [b - a for a, b in zip(marks, marks[1:], strict=False)]


def orders(n: int) -> dict[str, float]:
    """CPU us per order of D -> 8, in all and by leg."""
    with tempfile.TemporaryDirectory() as tmp:
        conn, sim, venue = _pair(Path(tmp))
        for i in range(WARMUP):
            _round(conn, sim, venue, _order(i))
        sums = [0.0] * len(_LEGS)
        for i in range(WARMUP, WARMUP + n):
            for leg, spent in enumerate(_round(conn, sim, venue, _order(i))):
                sums[leg] += spent
    out = {name: s / n * 1e6 for name, s in zip(_LEGS, sums, strict=True)}
    out["total"] = sum(sums) / n * 1e6
    return out


def mass_status(n: int) -> dict[str, float]:
    """CPU seconds for the venue to build `n` status reports and the connector to read them."""
    with tempfile.TemporaryDirectory() as tmp:
        conn, sim, venue = _pair(Path(tmp))
        for i in range(n):
            venue.new_order(
                f"c-{i}", "AAPL", "BUY", Decimal(10), "LIMIT", Decimal("90.5"), "DAY", 1
            )
        conn.send("AF", fm.mass_status_fields("ms1"))
        request = conn.data_to_send()
        start = time.process_time()
        chunks = []
        for ev in sim.receive(request):
            assert isinstance(ev, AppMessage)
            for k, out in enumerate(fixmap.answer(venue, ev.msg_type, ev.msg, ev.seq, 2)):
                sim.send(out.msg_type, out.fields)
                if k % 256 == 255:
                    chunks.append(sim.data_to_send())
        chunks.append(sim.data_to_send())
        built = time.process_time()
        query = MassStatusQuery("ms1", lambda _result: None, limit=n)
        complete = False
        for chunk in chunks:
            for ev in conn.receive(chunk):
                if isinstance(ev, AppMessage):
                    complete = query.answer(ev.msg)
            conn.data_to_send()
        read = time.process_time()
        assert complete and len(query.orders) == n
        assert all(isinstance(o, VenueOrder) for o in query.orders)
    return {"venue_build_s": built - start, "connector_read_s": read - built}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--orders", type=int, default=ORDERS)
    parser.add_argument("--mass", type=int, default=MASS)
    args = parser.parse_args(argv)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))
    per_order = orders(args.orders)
    print(f"D -> 8, {args.orders} orders, CPU us per order: {per_order['total']:.1f}")
    for name in _LEGS:
        print(f"   {name:22s} {per_order[name]:7.1f}")
    mass = mass_status(args.mass)
    print(
        f"mass status of {args.mass}: venue builds {mass['venue_build_s']:.3f} s, "
        f"connector reads {mass['connector_read_s']:.3f} s (CPU)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
