"""The adapter's queries follow the venue's dialect (issue 11, finding 2), against the
simulated venue with the same dialect switches (`[venues.sim.dialect]`): a venue silent on
an AF that matches no orders, and a venue whose H takes no Symbol/Side."""

from __future__ import annotations

import time
from pathlib import Path

from actors.connector.adapter import RequestFailed, StatusResult
from protocol.fix_config import DialectCfg
from protocol.messages import ErrorCode, OrderStatus
from tests import fixlogs
from tests.connector.fix.test_adapter import Done, ask, order
from tests.connector.fix.test_adapter_venuesim import SimHarness


def _sent(h: SimHarness) -> list[dict[int, str]]:
    """The fields of every message the adapter sent (its FIX store)."""
    store = h.adapter._store
    out = []
    for _seq, raw in store.sent_messages(1, store.next_out):
        pairs = (p.split(b"=", 1) for p in raw.split(b"\x01") if p)
        out.append({int(t): v.decode() for t, v in pairs})
    return out


def test_silent_empty_af_is_no_open_orders_after_the_dialect_wait(tmp_path: Path) -> None:
    """The venue answers an AF matching no orders with nothing. With the dialect
    `empty_mass_status = "silent"` the connector completes the AF with no open orders
    after `empty_mass_status_wait_s`; an AF that matches orders is answered as usual."""
    silent = DialectCfg(empty_mass_status="silent", empty_mass_status_wait_s=0.3)
    h = SimHarness(tmp_path, sim_dialect=silent, dialect=silent)
    try:
        done = Done()
        started = time.monotonic()
        h.adapter.open_orders(done)
        h.loop.run_until(lambda: done.calls, timeout_s=2.0)
        assert done.calls == [[]]
        assert 0.3 <= time.monotonic() - started < 2.0
        h.adapter.place(order("c1", price="99.00"), Done())
        h.loop.run_until(lambda: h.listener.execs)
        listed = Done()
        h.adapter.open_orders(listed)
        h.loop.run_until(lambda: listed.calls)
        ((only,),) = listed.calls
        assert (only.cl_ord_id, only.status) == ("c1", OrderStatus.ACCEPTED)
    finally:
        h.close()


def test_silent_empty_af_still_times_out_with_the_report_dialect(tmp_path: Path) -> None:
    """The same silent venue with the connector's default dialect ("report"): the AF gets
    no answer and fails with TIMEOUT after `request_timeout_s`, as before."""
    h = SimHarness(
        tmp_path, sim_dialect=DialectCfg(empty_mass_status="silent"), request_timeout_s=0.5
    )
    try:
        done = Done()
        h.adapter.open_orders(done)
        h.loop.run_until(lambda: done.calls, timeout_s=3.0)
        (err,) = done.calls
        assert isinstance(err, RequestFailed) and err.code is ErrorCode.TIMEOUT
    finally:
        h.close()


def test_status_requests_without_instrument_for_a_venue_that_takes_none(
    tmp_path: Path,
) -> None:
    """`status_request_instrument = false`: each H carries no 55/54, and a venue that
    takes such an H answers it. The strict simulator (FIX 4.4) would refuse that H with a
    session Reject: checked by sending it the same H."""
    lenient = DialectCfg(status_request_instrument=False)
    for problem in ("required tag 54 missing", "required tag 55 missing"):
        fixlogs.allow(tmp_path, "H", problem)  # the dialect's point
    h = SimHarness(tmp_path / "lenient", sim_dialect=lenient, dialect=lenient)
    try:
        h.adapter.place(order("c1", price="99.00"), Done())
        h.loop.run_until(lambda: h.listener.execs)
        status = Done()
        h.adapter.order_status([ask("c1"), ask("ghost")], status)
        h.loop.run_until(lambda: status.calls)
        (result,) = status.calls
        assert isinstance(result, StatusResult), result
        assert [o.cl_ord_id for o in result.orders] == ["c1"] and result.unknown == ["ghost"]
        sent = [f for f in _sent(h) if f.get(35) == "H"]
        assert len(sent) == 2 and all(55 not in f and 54 not in f for f in sent)
    finally:
        h.close()
    strict = SimHarness(tmp_path / "strict", dialect=lenient, request_timeout_s=1.0)
    try:
        refused = Done()
        strict.adapter.order_status([ask("ghost")], refused)
        strict.loop.run_until(lambda: refused.calls)
        (err,) = refused.calls
        assert isinstance(err, RequestFailed) and err.code is ErrorCode.VENUE_REFUSED
    finally:
        strict.close()


def test_a_long_mass_status_answer_is_timed_by_its_silence_not_its_total(
    tmp_path: Path,
) -> None:
    """4,000 open orders: the venue's answer (one 8 each, pumped across loop turns) takes
    longer than `request_timeout_s` from first to last report, yet completes, because the
    timeout counts only silence since the last report. The venue is made slow (20 ms per
    turn of 256 reports, the stimulus): the sim's answer got fast enough to finish inside
    the timeout, which is not what this test is about."""
    h = SimHarness(tmp_path, request_timeout_s=0.25)
    try:
        venue = h.acceptor.venue
        h.loop.after_turn.append(lambda: time.sleep(0.02) if h.acceptor.info()["pumping"] else None)
        for i in range(4000):
            venue.new_order(f"r{i}", "AAPL", "BUY", "1", "LIMIT", "95.00", "DAY", time.time_ns())
        done = Done()
        started = time.monotonic()
        h.adapter.open_orders(done)
        h.loop.run_until(lambda: done.calls, timeout_s=30.0)
        (orders,) = done.calls
        assert not isinstance(orders, RequestFailed), orders
        assert len(orders) == 4000
        assert time.monotonic() - started > 0.25  # longer than the timeout, in total
    finally:
        h.close()


def test_a_mass_status_being_pumped_is_dropped_with_its_session(tmp_path: Path) -> None:
    """The session goes while the venue is still pumping a mass status: the rest of the
    answer is dropped (nobody can receive it), the engine forgets its snapshot, and the
    connector's query fails with the session (VENUE_DOWN), not at a timeout."""
    h = SimHarness(tmp_path)
    try:
        venue = h.acceptor.venue
        for i in range(3000):
            venue.new_order(f"r{i}", "AAPL", "BUY", "1", "LIMIT", "95.00", "DAY", time.time_ns())
        done = Done()
        h.adapter.open_orders(done)
        h.loop.run_until(lambda: h.acceptor.info()["pumping"], timeout_s=5.0)
        h.acceptor.apply_fault("drop_session", None)
        assert h.acceptor.info()["pumping"] == 0
        assert not venue._snapshots  # noqa: SLF001 - released
        h.loop.run_until(lambda: done.calls, timeout_s=5.0)
        (err,) = done.calls
        assert isinstance(err, RequestFailed) and err.code is ErrorCode.VENUE_DOWN
    finally:
        h.close()
