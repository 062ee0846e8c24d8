"""The Logon dialect (`[venues.dialect] reset_seq_num`, `logon_fields`) against the
simulated venue's own acceptor, which is as strict as a venue with that dialect: under
"every_logon" it refuses a Logon without ResetSeqNumFlag(141)=Y, under "never" one with
it, and with `require_logon_fields` one without each configured field and value."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from actors.connector.fix.adapter import FixAdapter
from actors.connector.fix.logon import RESET_MARKER
from actors.connector.fix.store import FixStore
from actors.venuesim import SimStore, Venue
from actors.venuesim.acceptor import SimAcceptor
from actors.venuesim.faults import Faults
from actors.venuesim.logon_policy import RESET_REQUIRED
from protocol.config import SimCfg
from protocol.fix_config import DialectCfg, ScheduleCfg
from tests.connector.fix.support import LOG, RecordingListener, TestLoop, venue_cfg
from tests.connector.fix.test_adapter import Done, order

D = Decimal


class DialectHarness:
    """Our adapter (dialect `ours`) and the sim's acceptor (dialect `theirs`) in one loop."""

    def __init__(
        self, root: Path, ours: DialectCfg, theirs: DialectCfg, *, require_fields: bool = False
    ) -> None:
        self.root = root
        self.loop = TestLoop()
        cfg = SimCfg(reference_prices={"AAPL": D("100")}, volatility_bps=0.0, dialect=theirs)
        self.sim_store = SimStore.open(root / "sim", book_id="bk")
        self.fix_store = FixStore(root / "sim-fix", fsync=False)
        self.acceptor = SimAcceptor(
            venue=Venue("mini", cfg, self.sim_store, seed=7), store=self.fix_store,
            sender_comp_id="MINI", client_comp_id="TRADEPULSE", heartbeat_s=5,
            faults=Faults(), loop=self.loop, log=LOG, require_logon_fields=require_fields,
        )  # fmt: skip
        self.logons: list[dict[int, str]] = []
        accept = self.acceptor.session._accept_logon  # noqa: SLF001 - record what the venue got

        def recording(msg: Any) -> str | None:
            self.logons.append({int(t): bytes(v).decode() for t, v in msg.pairs})
            return accept(msg)

        self.acceptor.session._accept_logon = recording  # noqa: SLF001
        port = self.acceptor.listen("127.0.0.1", 0)
        self.loop.after_turn.append(self.acceptor.turn)
        self.listener = RecordingListener()
        self.adapter = FixAdapter(
            self.loop, self.listener, venue_cfg(request_timeout_s=3.0, dialect=ours),
            store_dir=root / "fix", address=lambda: ("127.0.0.1", port), log=LOG,
            id_prefix="t", fsync=False,
        )  # fmt: skip
        self.loop.after_turn.append(self.adapter.flush)

    def logon(self) -> str:
        """One connection attempt: "up", or the reason it failed."""
        ups, downs = len(self.listener.ups), len(self.listener.downs)
        self.adapter.connect()
        self.loop.run_until(
            lambda: len(self.listener.ups) > ups or len(self.listener.downs) > downs
        )
        return "up" if len(self.listener.ups) > ups else self.listener.downs[-1][0]

    def logout(self) -> None:
        self.adapter.disconnect("test")
        self.loop.run_until(lambda: self.adapter.is_idle)

    def close(self) -> None:
        self.adapter.close()
        self.acceptor.close()
        self.fix_store.close()
        self.sim_store.close()


def harness(tmp_path: Path, ours: DialectCfg, theirs: DialectCfg, **kw: Any) -> DialectHarness:
    return DialectHarness(tmp_path, ours, theirs, **kw)


def test_every_logon_resets_on_each_logon_and_the_venue_accepts_each(tmp_path: Path) -> None:
    """reset_seq_num = "every_logon": every Logon carries 141=Y with MsgSeqNum 1 (our store
    reset each time, as at a cold start), so a venue that numbers each connection from 1
    takes the second Logon too, and orders flow after it."""
    every = DialectCfg(reset_seq_num="every_logon")
    h = harness(tmp_path, every, every)
    try:
        assert h.logon() == "up"
        h.adapter.place(order("c1", price="99.00"), Done())
        h.loop.run_until(lambda: h.listener.execs)
        h.logout()
        assert h.logon() == "up"
        assert [(m.get(141), m[34]) for m in h.logons] == [("Y", "1"), ("Y", "1")]
        assert h.adapter.info()["next_out"] == 2  # the Logon was number 1 again
        h.adapter.place(order("c2", price="99.00"), Done())
        h.loop.run_until(lambda: len(h.listener.execs) >= 2)
    finally:
        h.close()


def test_a_venue_that_resets_every_logon_refuses_a_logon_without_the_flag(tmp_path: Path) -> None:
    """The simulator is as strict as such a venue: our default ("cold_start") resets only
    the first Logon of a new store; the second one, without 141=Y, is refused with a
    Logout saying the flag is required."""
    h = harness(tmp_path, DialectCfg(), DialectCfg(reset_seq_num="every_logon"))
    try:
        assert h.logon() == "up"
        h.logout()
        assert h.logon() == f"logon refused: {RESET_REQUIRED}"
        assert h.logons[-1].get(141) is None
    finally:
        h.close()


def test_never_logs_on_without_the_flag_even_from_a_new_store(tmp_path: Path) -> None:
    """reset_seq_num = "never": a new store logs on with MsgSeqNum 1 and no 141 at all (a
    venue that takes no ResetSeqNumFlag from clients refuses one that carries it); the
    cold-start marker is gone once logged on, and the numbers continue after a logout."""
    never = DialectCfg(reset_seq_num="never")
    h = harness(tmp_path, never, never)
    try:
        assert h.logon() == "up"
        assert (h.logons[0].get(141), h.logons[0][34]) == (None, "1")
        assert not (tmp_path / "fix" / RESET_MARKER).exists()
        h.logout()
        assert h.logon() == "up"
        assert h.logons[-1].get(141) is None and int(h.logons[-1][34]) > 1
    finally:
        h.close()


def test_a_venue_that_takes_no_reset_flag_refuses_our_cold_start_logon(tmp_path: Path) -> None:
    """The simulator with reset_seq_num = "never" refuses a Logon carrying 141=Y (what the
    default cold start sends)."""
    h = harness(tmp_path, DialectCfg(), DialectCfg(reset_seq_num="never"))
    try:
        assert h.logon().startswith("logon refused: ResetSeqNumFlag(141)=Y not accepted")
    finally:
        h.close()


def test_logon_fields_are_sent_and_a_venue_requiring_them_accepts(tmp_path: Path) -> None:
    """`logon_fields` are appended to our Logon (tag order, after the credentials); a venue
    that requires them with those values accepts the Logon."""
    fields = DialectCfg(logon_fields={"1137": "9", "1408": "FIX5.0SP2 EP999"})
    h = harness(tmp_path, fields, fields, require_fields=True)
    try:
        assert h.logon() == "up"
        assert (h.logons[0].get(1137), h.logons[0].get(1408)) == ("9", "FIX5.0SP2 EP999")
    finally:
        h.close()


def test_a_venue_requiring_logon_fields_refuses_a_logon_without_them(tmp_path: Path) -> None:
    """A Logon that lacks a required field, or carries another value, is refused with a
    Logout naming the tag."""
    theirs = DialectCfg(logon_fields={"1137": "9"})
    h = harness(tmp_path, DialectCfg(), theirs, require_fields=True)
    try:
        assert h.logon() == "logon refused: Logon field 1137 missing"
    finally:
        h.close()
    h = harness(tmp_path / "b", DialectCfg(logon_fields={"1137": "7"}), theirs, require_fields=True)
    try:
        assert h.logon() == "logon refused: Logon field 1137 not accepted"
    finally:
        h.close()


def test_daily_reset_resets_the_first_logon_of_each_new_session_only(tmp_path: Path) -> None:
    """With the schedule's `reset_seq_num_daily`, the first Logon after a new trading
    session opened carries 141=Y with MsgSeqNum 1 (store reset: nothing of the last
    session is resent) and the venue accepts it; a reconnect, or a restarted connector,
    inside the same session continues the numbers."""
    h = harness(tmp_path, DialectCfg(), DialectCfg())
    h.adapter.close()
    cfg = venue_cfg(request_timeout_s=3.0, schedule=ScheduleCfg(reset_seq_num_daily=True))

    def adapter() -> FixAdapter:
        a = FixAdapter(
            h.loop, h.listener, cfg, store_dir=tmp_path / "fix",
            address=lambda: ("127.0.0.1", h.acceptor.port), log=LOG, id_prefix="t", fsync=False,
        )  # fmt: skip
        h.loop.after_turn.append(a.flush)
        return a

    h.adapter = adapter()
    try:
        h.adapter.new_trading_session("2026-01-05T14:30:00+00:00")
        assert h.logon() == "up"
        h.adapter.place(order("c1", price="99.00"), Done())
        h.loop.run_until(lambda: h.listener.execs)
        h.logout()
        assert h.logon() == "up"  # same session: no reset
        h.logout()
        h.adapter.new_trading_session("2026-01-06T14:30:00+00:00")
        assert h.logon() == "up"
        assert [(m.get(141), m[34]) for m in h.logons] == [("Y", "1"), (None, "4"), ("Y", "1")]
        assert h.adapter.info()["next_out"] == 2
        h.logout()
        h.loop.after_turn.remove(h.adapter.flush)
        h.adapter.close()
        h.adapter = adapter()  # a restart inside the session
        h.adapter.new_trading_session("2026-01-06T14:30:00+00:00")
        assert h.logon() == "up"
        assert h.logons[-1].get(141) is None and int(h.logons[-1][34]) > 1
    finally:
        h.close()
