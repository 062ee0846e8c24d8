"""The FIX adapter against an in-process acceptor over a real loopback socket."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from actors.connector.adapter import RequestFailed, StatusResult
from actors.connector.fix.adapter import FixAdapter
from actors.connector.fix.logon import RESET_MARKER
from actors.connector.fix.msglog import MessageLog
from actors.connector.fix.store import FixStore
from actors.connector.venue_address import venue_address
from protocol.config import SimCfg
from protocol.messages import (
    CancelOnVenue,
    ErrorCode,
    ExecReport,
    OrdType,
    PlaceOrder,
    QueriedOrder,
    Side,
)
from protocol.paths import sim_port_file
from tests.connector.fix.support import (
    LOG,
    MiniVenue,
    RecordingListener,
    TestLoop,
    fields_of,
    venue_cfg,
)

D = Decimal


class Harness:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.loop = TestLoop()
        self.venue = MiniVenue(self.loop, root / "venue")
        self.listener = RecordingListener()
        self.adapters: list[FixAdapter] = []
        self.logs: list[MessageLog] = []
        self.port: int | None = self.venue.port

    def adapter(self, **cfg: Any) -> FixAdapter:
        adapter = FixAdapter(
            self.loop,
            self.listener,
            venue_cfg(**cfg),
            store_dir=self.root / "fix",
            address=lambda: None if self.port is None else ("127.0.0.1", self.port),
            log=LOG,
            id_prefix="t",
            fsync=False,
        )
        self.loop.after_turn.append(adapter.flush)
        self.adapters.append(adapter)
        # what it sends is checked against FIX 4.4 with the rest of the session's logs
        log = MessageLog(self.root / "fix" / "messages", log=LOG)
        adapter.session.set_message_log(log)
        self.logs.append(log)
        return adapter

    def retire(self, adapter: FixAdapter) -> None:
        adapter.close()
        self.loop.after_turn.remove(adapter.flush)

    def connected(self, **cfg: Any) -> FixAdapter:
        adapter = self.adapter(**cfg)
        ups = len(self.listener.ups)
        adapter.connect()
        self.loop.run_until(lambda: len(self.listener.ups) > ups)
        return adapter

    def close(self) -> None:
        for a in self.adapters:
            a.close()
        for log in self.logs:
            log.close()
        self.venue.close()


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(tmp_path)
    yield harness
    harness.close()


class Done:
    def __init__(self) -> None:
        self.calls: list[Any] = []

    def __call__(self, value: Any) -> None:
        self.calls.append(value)


def order(cl: str, qty: str = "10", price: str = "100") -> PlaceOrder:
    return PlaceOrder(
        cl_ord_id=cl,
        symbol="AAPL",
        side=Side.BUY,
        qty=D(qty),
        order_type=OrdType.LIMIT,
        price=D(price),
    )


def ask(cl: str, symbol: str = "AAPL", side: Side = Side.BUY) -> QueriedOrder:
    return QueriedOrder(cl_ord_id=cl, symbol=symbol, side=side)


def kinds(execs: Sequence[ExecReport]) -> list[tuple[str, str]]:
    return [(e.cl_ord_id, e.kind) for e in execs]


def test_cold_logon_resets_sequence_numbers_and_sends_the_credentials(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new store logs on with ResetSeqNumFlag=Y, our comp ids, HeartBtInt and the password
    from the env var; once that logon succeeded, later logons do not reset."""
    monkeypatch.setenv("TP_TEST_PW", "s3cret")
    a = h.connected(password_env="TP_TEST_PW", heartbeat_s=7)
    logon = h.venue.logons[-1]
    assert (logon.get(141), logon.get(108), logon.get(554)) == (b"Y", b"7", b"s3cret")
    assert (logon.get(49), logon.get(56)) == (b"TRADEPULSE", b"MINI")
    assert h.listener.ups == ["logged on"] and a.is_active
    assert not (h.root / "fix" / RESET_MARKER).exists()
    h.retire(a)
    h.venue.drop()
    h.connected()
    assert h.venue.logons[-1].get(141) is None


def test_an_order_sent_to_the_connector_gets_a_business_reject_unsupported(h: Harness) -> None:
    """We are the initiator: a venue that sends us a NewOrderSingle (a FIX 4.4 application
    message we do not serve) gets BusinessMessageReject 380=3 naming it, not silence."""
    h.connected()
    h.venue.send("D", [(11, "X1"), (55, "AAPL"), (54, "1"), (38, "1"), (40, "1")])
    h.venue.flush()
    h.loop.run_until(lambda: [e for e in h.venue.received if e.msg_type == "j"])
    (reject,) = [fields_of(e.msg) for e in h.venue.received if e.msg_type == "j"]
    assert (reject[372], reject[380]) == ("D", "3")


def test_a_reset_logon_that_never_succeeded_is_retried_with_reset(h: Harness) -> None:
    """The reset marker survives a failed first attempt (logon refused)."""
    h.venue.refuse = "not now"
    a = h.adapter()
    a.connect()
    h.loop.run_until(lambda: h.listener.downs)
    assert h.listener.downs == [(h.listener.downs[0][0], False)]
    assert "not now" in h.listener.downs[0][0]
    h.venue.refuse = None
    a.connect()
    h.loop.run_until(lambda: h.listener.ups)
    assert [m.get(141) for m in h.venue.logons] == [b"Y", b"Y"]


def test_order_is_acked_after_it_is_in_the_store_and_executions_follow(h: Harness) -> None:
    """place() -> D on the wire; done(None) only after the store holds it; the venue's
    ExecutionReports come back as ExecReports in order."""
    a = h.connected()
    h.venue.fill_qty = D("4")
    done = Done()
    a.place(order("c1"), done)
    assert done.calls == []  # not before the turn's flush
    h.loop.run_until(lambda: done.calls)
    assert done.calls == [None]
    h.loop.run_until(lambda: len(h.listener.execs) >= 2)
    assert kinds(h.listener.execs) == [("c1", "accepted"), ("c1", "fill")]
    d = h.venue.received[-1]
    assert d.msg_type == "D" and d.msg.get(11) == b"c1" and d.msg.get(44) == b"100"
    cancel = CancelOnVenue(
        cl_ord_id="c1.x", orig_cl_ord_id="c1", symbol="AAPL", side=Side.BUY, qty=D(10)
    )
    a.cancel(cancel, done)
    h.loop.run_until(lambda: len(h.listener.execs) >= 3)
    assert (h.listener.execs[-1].kind, h.listener.execs[-1].orig_cl_ord_id) == ("cancelled", "c1")


def test_requests_while_not_logged_on_fail_at_once_with_venue_down(h: Harness) -> None:
    a = h.adapter()
    results = [Done() for _ in range(5)]
    a.place(order("c1"), results[0])
    a.order_status([ask("c1")], results[1])
    a.open_orders(results[2])
    a.positions(results[3])
    a.mass_cancel(results[4])
    for r in results:
        assert len(r.calls) == 1 and r.calls[0].code is ErrorCode.VENUE_DOWN
    assert h.venue.received == []


def test_rate_limit_queues_the_excess_and_never_drops(h: Harness) -> None:
    """With 20 msg/s and a burst of 2, six orders go out two at once then one per 50 ms,
    in order, each acked when it was actually handed to the session."""
    a = h.connected(rate_limit_per_s=20.0, rate_burst=2)
    acked: list[str] = []

    def on_sent(cl: str) -> Callable[[RequestFailed | None], None]:
        return lambda err: acked.append(cl) if err is None else None

    for i in range(6):
        a.place(order(f"c{i}"), on_sent(f"c{i}"))
    h.loop.turn(0)
    assert acked == ["c0", "c1"]
    h.loop.run_until(lambda: len(acked) == 6, timeout_s=3)
    assert acked == [f"c{i}" for i in range(6)]
    h.loop.run_until(lambda: len([m for m in h.venue.received if m.msg_type == "D"]) == 6)
    sent = [m.msg.get(11).decode() for m in h.venue.received if m.msg_type == "D"]
    assert sent == acked


def test_queued_orders_fail_with_venue_down_when_the_session_drops(h: Harness) -> None:
    """Orders still waiting for a token when the session ends were never sent."""
    a = h.connected(rate_limit_per_s=1.0, rate_burst=1)
    results = [Done() for _ in range(3)]
    for i, r in enumerate(results):
        a.place(order(f"c{i}"), r)
    h.loop.turn(0)
    h.venue.drop()
    h.loop.run_until(lambda: h.listener.downs)
    assert results[0].calls == [None]
    assert [r.calls[0].code for r in results[1:]] == [ErrorCode.VENUE_DOWN] * 2
    assert h.listener.downs[-1][1] is True  # was up


def test_status_open_orders_positions_and_mass_cancel(h: Harness) -> None:
    a = h.connected()
    a.place(order("c1"), Done())
    h.loop.run_until(lambda: h.listener.execs)
    h.venue.positions = [("AAPL", "10", "0", "100.5")]
    status, opened, pos, mc = Done(), Done(), Done(), Done()
    a.order_status([ask("c1"), ask("ghost", "MSFT", Side.SELL)], status)
    a.open_orders(opened)
    a.positions(pos)
    a.mass_cancel(mc)
    h.loop.run_until(lambda: status.calls and opened.calls and pos.calls and mc.calls)
    result: StatusResult = status.calls[0]
    assert [o.cl_ord_id for o in result.orders] == ["c1"] and result.unknown == ["ghost"]
    assert [o.cl_ord_id for o in opened.calls[0]] == ["c1"]
    assert [(p.symbol, p.qty, p.avg_px) for p in pos.calls[0]] == [("AAPL", D(10), D("100.5"))]
    assert mc.calls == [True]


def test_empty_answers(h: Harness) -> None:
    a = h.connected()
    opened, pos, status = Done(), Done(), Done()
    a.open_orders(opened)
    a.positions(pos)
    a.order_status([], status)
    h.loop.run_until(lambda: opened.calls and pos.calls)
    assert opened.calls == [[]] and pos.calls == [[]]
    assert status.calls == [StatusResult()]


def test_unanswered_query_times_out_and_a_dropped_session_fails_the_rest(h: Harness) -> None:
    a = h.connected(request_timeout_s=0.2)
    h.venue.answer = False
    late, dropped = Done(), Done()
    a.open_orders(late)
    h.loop.run_until(lambda: late.calls, timeout_s=2)
    assert isinstance(late.calls[0], RequestFailed) and late.calls[0].code is ErrorCode.TIMEOUT
    a.positions(dropped)
    h.loop.turn(0)
    h.venue.drop()
    h.loop.run_until(lambda: dropped.calls)
    assert dropped.calls[0].code is ErrorCode.VENUE_DOWN


def test_connection_refused_and_unknown_address_are_failed_attempts(h: Harness) -> None:
    spare = socket.socket()
    spare.bind(("127.0.0.1", 0))
    h.port = spare.getsockname()[1]  # bound, not listening: refused
    spare.close()
    a = h.adapter()
    a.connect()
    h.loop.run_until(lambda: h.listener.downs)
    h.port = None
    a.connect()
    h.loop.run_until(lambda: len(h.listener.downs) == 2)
    assert [was_up for _, was_up in h.listener.downs] == [False, False]
    assert "port file" in h.listener.downs[1][0] and a.is_idle


def test_graceful_disconnect_logs_out(h: Harness) -> None:
    a = h.connected()
    a.disconnect("shutdown")
    h.loop.run_until(lambda: a.is_idle)
    assert h.listener.downs == [(h.listener.downs[0][0], True)]


def _durable_next_in(store_dir: Path, copy_to: Path) -> int:
    """next-in as a restarted process would read it from disk."""
    shutil.copytree(store_dir, copy_to, ignore=shutil.ignore_patterns("lock"))
    with FixStore(copy_to) as store:
        return store.next_in


def test_next_in_is_not_durable_before_the_listener_has_the_executions(h: Harness) -> None:
    """The durability barrier: when on_execs runs, the store on disk still expects the
    first of these executions, so a crash here makes the venue send them again."""
    a = h.connected()
    seen: list[tuple[int, list[str]]] = []

    def check(reports: Sequence[ExecReport]) -> None:
        copy = h.root / f"copy{len(seen)}"
        seen.append((_durable_next_in(h.root / "fix", copy), [r.exec_id for r in reports]))

    h.listener.on_execs_hook = check
    a.place(order("c1"), Done())
    h.loop.run_until(lambda: h.listener.execs)
    durable, _ = seen[0]
    # the venue sent: Logon (1), then the ExecutionReport (2)
    assert durable == 2
    h.loop.turn(0)
    assert _durable_next_in(h.root / "fix", h.root / "after") == 3


def test_restart_resumes_the_session_and_the_resend_brings_missed_executions(h: Harness) -> None:
    """Executions the venue sent while the adapter was gone come back (PossDup) after the
    next logon, before the session is reported up; sequence numbers continue."""
    a = h.connected()
    a.place(order("c1"), Done())
    h.loop.run_until(lambda: h.listener.execs)
    tcp = a._tcp  # the process freezes: what the venue sends now is never read
    h.loop.remove(tcp._fd)
    h.venue.exec_report("c1", "F", "1", cum="2", last="2", px="100")
    h.venue.exec_report("c1", "F", "1", cum="5", last="3", px="100")
    h.loop.turn(0)
    h.loop.after_turn.remove(a.flush)
    assert tcp._sock is not None
    tcp._sock.close()  # ... and dies: no Logout, nothing more written
    tcp._sock = None
    a._store.close()
    h.adapters.remove(a)
    h.venue.drop()
    before = len(h.listener.execs)
    order_of_events: list[str] = []
    h.listener.on_execs_hook = lambda reports: order_of_events.append("execs")
    b = h.adapter()
    orig_up = h.listener.on_session_up

    def on_up(detail: str) -> None:
        order_of_events.append("up")
        orig_up(detail)

    h.listener.on_session_up = on_up  # type: ignore[method-assign]
    b.connect()
    h.loop.run_until(lambda: "up" in order_of_events)
    new = h.listener.execs[before:]
    assert [(e.kind, e.last_qty) for e in new] == [("fill", D(2)), ("fill", D(3))]
    assert order_of_events.index("execs") < order_of_events.index("up")
    assert h.venue.logons[-1].get(141) is None


def test_venue_address_from_config_or_the_sim_port_file(tmp_path: Path) -> None:
    real = venue_cfg(host="10.0.0.1", port=9876)
    assert venue_address(real, tmp_path) == ("10.0.0.1", 9876)
    sim = venue_cfg(sim=SimCfg())
    assert venue_address(sim, tmp_path) is None
    sim_port_file(tmp_path, "mini").write_text("41234\n")
    assert venue_address(sim, tmp_path) == ("127.0.0.1", 41234)
    sim_port_file(tmp_path, "mini").write_text("garbage")
    assert venue_address(sim, tmp_path) is None
