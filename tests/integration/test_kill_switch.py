"""Risk and the kill-switch through the real system (supervisor, actors, simulated venues):
fail closed while risk is down, the switch survives kill -9 of everything and a warm start,
engaging it cancels the open orders at every venue, a reset needs a reason, and an
unmatched fill is published and engages it."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from actors.oms.kill_switch_follower import INTAKE_HALTED
from actors.risk import killswitch
from protocol.client import ExecutionClient
from protocol.exceptions import KillSwitchEngaged, RiskRejected
from protocol.messages import ExecReport, OrderStatus, Side, StreamEvent
from protocol.paths import audit_log_path
from tests.helpers import SystemUnderTest, eventually, process_alive
from tests.system_ops import (
    client,
    deliver_through_connector,
    kill_switch,
    sim_fault,
    submit_when_open,
    subscribe_connected,
    venue_order,
    venue_orders,
    venue_status,
)

pytestmark = pytest.mark.integration


def holds_for(predicate: Callable[[], bool], duration_s: float) -> None:
    """`predicate` stays true for the whole window (checked every 20 ms)."""
    deadline = time.monotonic() + duration_s
    while time.monotonic() < deadline:
        assert predicate()
        time.sleep(0.02)


def stream_events(
    c: ExecutionClient, names: set[str], timeout_s: float = 10.0
) -> dict[str, StreamEvent]:
    """The first stream event of each name in `names` (the client must have subscribed
    before they were published)."""
    found: dict[str, StreamEvent] = {}
    deadline = time.monotonic() + timeout_s
    for ev in c.events(timeout_s=timeout_s):
        if isinstance(ev, StreamEvent) and ev.event in names and ev.event not in found:
            found[ev.event] = ev
        if set(found) == names or time.monotonic() > deadline:
            break
    assert set(found) == names, f"saw only {sorted(found)} of {sorted(names)}"
    return found


# --------------------------------------------------------------------------- fail closed


def test_no_order_reaches_the_venue_while_risk_is_down(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """With risk frozen, a new order waits at the OMS (PENDING_RISK) and nothing reaches the
    venue; once risk is killed and back, the OMS's retried check is approved and the order
    goes out."""
    sut = start_system(
        overrides={"supervisor": {"hang_missed_intervals": 100}, "oms": {"request_timeout_s": 20.0}}
    )
    with client(sut) as c:
        first = submit_when_open(c, "simA")
        eventually(lambda: venue_order(sut, "simA", first.cl_ord_id), 10.0)
        base = len(venue_orders(sut, "simA"))
        risk_pid = sut.pid_of("risk")
        os.kill(risk_pid, signal.SIGSTOP)
        result: dict[str, Any] = {}

        def submit() -> None:
            with client(sut) as c2:
                try:
                    result["order"] = c2.submit(
                        "simA", "AAPL", "BUY", "5", "LIMIT", price="96.00", timeout_s=30
                    )
                except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                    result["error"] = exc

        worker = threading.Thread(target=submit)
        worker.start()
        try:
            eventually(
                lambda: [
                    o for o in c.list_orders(open_only=True) if o.status is OrderStatus.PENDING_RISK
                ],
                10.0,
            )
            holds_for(lambda: len(venue_orders(sut, "simA")) == base, 1.0)
        finally:
            since = sut.mark()
            os.kill(risk_pid, signal.SIGKILL)
            sut.wait_event("actor_ready", since=since, child="risk")
            worker.join(timeout=30)
        assert "order" in result, result
        eventually(lambda: venue_order(sut, "simA", result["order"].cl_ord_id), 10.0)
        assert len(venue_orders(sut, "simA")) == base + 1


def test_risk_down_past_the_oms_deadline_rejects_the_order(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """If risk stays down longer than the OMS's request timeout the order is rejected
    (`risk_unavailable`), never sent, and stays rejected after risk is back."""
    sut = start_system(
        overrides={"supervisor": {"hang_missed_intervals": 100}, "oms": {"request_timeout_s": 1.0}}
    )
    with client(sut) as c:
        first = submit_when_open(c, "simA")
        eventually(lambda: venue_order(sut, "simA", first.cl_ord_id), 10.0)
        base = len(venue_orders(sut, "simA"))
        risk_pid = sut.pid_of("risk")
        os.kill(risk_pid, signal.SIGSTOP)
        try:
            with pytest.raises(RiskRejected) as info:
                c.submit(
                    "simA",
                    "AAPL",
                    "BUY",
                    "5",
                    "LIMIT",
                    price="96.00",
                    client_order_id="down-1",
                    timeout_s=10,
                )
            assert "fail closed" in str(info.value)
        finally:
            since = sut.mark()
            os.kill(risk_pid, signal.SIGKILL)
        sut.wait_event("actor_ready", since=since, child="risk")
        assert c.get_order("down-1").status is OrderStatus.REJECTED
        holds_for(lambda: len(venue_orders(sut, "simA")) == base, 0.5)


# --------------------------------------------------------------------------- persistence


def test_engaged_switch_survives_kill9_of_everything_and_a_warm_start(
    start_system: Callable[..., SystemUnderTest], short_tmp: Path
) -> None:
    """Engaged by the operator, then kill -9 of the supervisor and every actor: the warm
    start comes up engaged (state, reason, source, metric) and refuses every order."""
    sut = start_system(root=short_tmp)
    with client(sut) as c:
        submit_when_open(c, "simA")
    done = sut.cli("kill-switch", "engage", "--reason", "desk halt before crash")
    assert done.returncode == 0, done.stdout + done.stderr
    assert kill_switch(sut)["engaged"]
    sut.destroy()  # SIGKILL of everything, the state dir stays
    warm = start_system(root=short_tmp)
    ks = kill_switch(warm)
    assert ks["engaged"] and ks["reason"] == "desk halt before crash" and ks["source"] == "operator"
    assert eventually(lambda: warm.metric("tradepulse_kill_switch_engaged") == 1, 5.0)
    warm.wait_event("kill_switch_loaded", engaged=True)
    base = {v: len(venue_orders(warm, v)) for v in ("simA", "simB")}
    with client(warm) as c:
        for venue in ("simA", "simB"):
            with pytest.raises(KillSwitchEngaged):
                submit_when_open(c, venue)
    assert {v: len(venue_orders(warm, v)) for v in ("simA", "simB")} == base
    status = warm.cli("kill-switch", "status")
    assert status.returncode == 0 and "desk halt before crash" in status.stdout


# --------------------------------------------------------------------------- engagement


def test_engagement_cancels_the_open_orders_at_every_venue(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """The operator engages the switch: MassCancel to every connector, the venues show the
    resting orders cancelled, the OMS learns it, the client stream carries `kill_switch`,
    and the metrics count it."""
    sut = start_system()
    with client(sut) as c:
        a = submit_when_open(c, "simA", "BUY", price="95.00")
        b = submit_when_open(c, "simB", "SELL", price="105.00")
        for venue, order in (("simA", a), ("simB", b)):
            eventually(lambda: venue_status(sut, venue, order.cl_ord_id) == "ACCEPTED", 10.0)  # noqa: B023
        subscribe_connected(sut, c)
        since = sut.mark()
        done = sut.cli("kill-switch", "engage", "--reason", "cancel everything")
        assert done.returncode == 0, done.stdout + done.stderr
        for venue, order in (("simA", a), ("simB", b)):
            eventually(lambda: venue_status(sut, venue, order.cl_ord_id) == "CANCELLED", 10.0)  # noqa: B023
        sut.wait_event("kill_switch_cancel_done", since=since, timeout_s=10.0)
        events = stream_events(c, {"kill_switch"})
        assert events["kill_switch"].data["reason"] == "cancel everything"
        assert events["kill_switch"].data["source"] == "risk"  # the OMS adds who published it
        for order in (a, b):
            coid = order.client_order_id
            eventually(lambda: c.get_order(coid).status is OrderStatus.CANCELLED, 10.0)  # noqa: B023
    assert sut.metric("tradepulse_kill_switch_engaged") == 1
    assert sut.metric("tradepulse_kill_switch_triggers_total", reason="operator") == 1


def test_switch_written_while_risk_is_frozen_stops_orders_queued_at_the_oms(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """Orders risk approved while simA is unreachable wait in the OMS's queue. The switch is
    then engaged with risk frozen, the way the supervisor does it when risk is down (the state
    file is written; no risk event is published): the OMS notices the file, rejects the
    queued orders, and none of them reaches simA once it is back."""
    sut = start_system(overrides={"supervisor": {"hang_missed_intervals": 100}})
    with client(sut) as c:
        first = submit_when_open(c, "simA")
        eventually(lambda: venue_order(sut, "simA", first.cl_ord_id), 10.0)
        sim_fault(sut, "simA", "refuse_logons_s", "60")
        sim_fault(sut, "simA", "drop_session")
        eventually(lambda: sut.actor("oms")["info"]["venues"]["simA"] != "reconciled", 10.0)
        queued = [
            c.submit("simA", "AAPL", "BUY", "5", "LIMIT", price="96.00", client_order_id=f"q-{i}")
            for i in range(2)
        ]
        assert {o.status for o in queued} == {OrderStatus.PENDING_SUBMIT}
        risk_pid = sut.pid_of("risk")
        os.kill(risk_pid, signal.SIGSTOP)
        try:
            since = sut.mark()
            killswitch.engage(
                killswitch.kill_switch_path(sut.state_dir), "desk halt, risk down", "operator"
            )
            sut.wait_event("kill_switch_seen", since=since, engaged=True, via="state_file")
            for o in queued:
                coid = o.client_order_id
                eventually(lambda: c.get_order(coid).status is OrderStatus.REJECTED, 10.0)  # noqa: B023
            # the supervisor's status shows the OMS's info of its latest heartbeat
            eventually(lambda: sut.actor("oms")["info"]["kill_switch"] == "engaged", 5.0)
        finally:
            os.kill(risk_pid, signal.SIGKILL)
        sim_fault(sut, "simA", "refuse_logons_s", "0")
        eventually(lambda: sut.actor("oms")["info"]["venues"]["simA"] == "reconciled", 20.0)
        sent = {cl for o in venue_orders(sut, "simA") for cl in o["cl_ord_ids"]}
        assert not sent & {o.cl_ord_id for o in queued}


def test_reset_without_a_reason_is_refused(start_system: Callable[..., SystemUnderTest]) -> None:
    """`kill-switch reset` without --reason is a usage error (exit 2, one line naming the
    option, nothing sent) and changes nothing; with a reason the switch is reset, the reset
    is in the persisted history, and orders flow again."""
    sut = start_system()
    assert sut.cli("kill-switch", "engage", "--reason", "halt").returncode == 0
    refused = sut.cli("kill-switch", "reset")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert refused.stderr == "tradepulse kill-switch: a reset needs a reason (--reason)\n"
    assert kill_switch(sut)["engaged"]
    done = sut.cli("kill-switch", "reset", "--reason", "checked with the desk")
    assert done.returncode == 0, done.stdout + done.stderr
    assert not kill_switch(sut)["engaged"]
    state = killswitch.load(killswitch.kill_switch_path(sut.state_dir))
    assert [e.action for e in state.history] == ["engage", "reset"]
    assert state.history[-1].reason == "checked with the desk"
    assert eventually(lambda: sut.metric("tradepulse_kill_switch_engaged") == 0, 5.0)
    with client(sut) as c:
        order = submit_when_open(c, "simA")
    eventually(lambda: venue_order(sut, "simA", order.cl_ord_id), 10.0)


def test_status_says_intake_is_halted_while_the_switch_is_engaged(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """`status` (table and --json) and `intake status` say intake is halted by the
    kill-switch while it is engaged, over an operator pause too (whose line stays); a reset
    gives back what holds it otherwise: the pause, then, resumed, open. It said `open`
    while every new order was refused."""
    sut = start_system()
    eventually(lambda: sut.status()["intake"] == "open", 20.0)
    assert sut.cli("kill-switch", "engage", "--reason", "desk halt").returncode == 0
    eventually(lambda: sut.status()["intake"] == INTAKE_HALTED, 5.0, message=sut.status)
    table = sut.cli("status").stdout.splitlines()
    assert "kill-switch: ENGAGED (operator: desk halt)" in table
    assert "intake: halted: kill-switch engaged" in table
    shown = json.loads(sut.cli("status", "--json").stdout)["data"]
    assert shown["intake"] == INTAKE_HALTED and shown["kill_switch"]["engaged"]
    assert sut.cli("intake", "pause", "--reason", "lunch").returncode == 0
    table = sut.cli("status").stdout.splitlines()
    assert "intake: halted: kill-switch engaged" in table
    assert "intake paused globally: lunch" in table
    said = sut.cli("intake", "status").stdout
    assert said.startswith("ok: intake halted: kill-switch engaged"), said
    assert sut.cli("kill-switch", "reset", "--reason", "checked").returncode == 0
    eventually(lambda: sut.status()["intake"] == "paused", 5.0, message=sut.status)
    assert sut.cli("intake", "resume").returncode == 0
    eventually(lambda: sut.status()["intake"] == "open", 5.0, message=sut.status)


def test_connector_that_does_not_answer_is_restarted_and_the_cancel_retried(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """A frozen connector (the supervisor's hang detection set far off) does not answer the
    mass cancel: risk asks the supervisor to restart it, asks the new incarnation again, and
    the venue's resting order ends cancelled. The restart is recorded as risk's (audit
    `via: actor:risk`, risk's pid) and counted reason="kill_switch", not as an operator's."""
    venues = [
        {"name": v, "target_comp_id": v.upper(), "request_timeout_s": 0.5,
         "sim": {"reference_prices": {"AAPL": "100.00"}}}
        for v in ("simA", "simB")
    ]  # fmt: skip
    sut = start_system(overrides={"supervisor": {"hang_missed_intervals": 100}, "venues": venues})
    with client(sut) as c:
        order = submit_when_open(c, "simA", "BUY", price="95.00")
    eventually(lambda: venue_status(sut, "simA", order.cl_ord_id) == "ACCEPTED", 10.0)
    frozen = sut.pid_of("connector.simA")
    risk_pid = sut.pid_of("risk")
    since = sut.mark()
    os.kill(frozen, signal.SIGSTOP)
    try:
        assert sut.cli("kill-switch", "engage", "--reason", "frozen connector").returncode == 0
        sut.wait_event(
            "connector_restart_requested", since=since, child="connector.simA", timeout_s=10.0
        )
        sut.wait_event("actor_ready", since=since, child="connector.simA", timeout_s=15.0)
    finally:
        if process_alive(frozen):
            os.kill(frozen, signal.SIGKILL)
    eventually(lambda: venue_status(sut, "simA", order.cl_ord_id) == "CANCELLED", 15.0)
    done = sut.wait_event("kill_switch_cancel_done", since=since, timeout_s=15.0)
    assert done["venues"]["simA"]["restarts"] == 1 and done["venues"]["simA"]["done"]
    line = sut.wait_event("operator_command", since=since, command="restart")
    assert (line["via"], line["pid"]) == ("actor:risk", risk_pid)
    records = [json.loads(r) for r in audit_log_path(sut.state_dir).read_text().splitlines()]
    (record,) = [r for r in records if r["command"] == "restart"]
    assert (record["via"], record["pid"], record["result"]) == ("actor:risk", risk_pid, "ok")
    restarts = "tradepulse_actor_restarts_total"
    assert sut.metric(restarts, actor="connector.simA", reason="kill_switch") == 1
    assert sut.metric(restarts, actor="connector.simA", reason="operator") == 0


# --------------------------------------------------------------------------- unmatched fill


def test_unmatched_fill_is_published_and_engages_the_switch(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """A fill for a ClOrdID no order has: the OMS records and logs `unmatched_fill`, the
    client stream carries it, and the kill-switch is engaged (source oms)."""
    sut = start_system()
    with client(sut) as c:
        submit_when_open(c, "simA")
        subscribe_connected(sut, c)
        report = ExecReport(
            venue="simA", exec_id="ghost-E1", kind="fill", cl_ord_id="never-sent-by-us",
            symbol="AAPL", side=Side.BUY, order_qty=Decimal(7), last_qty=Decimal(7),
            last_px=Decimal("100.00"), cum_qty=Decimal(7), avg_px=Decimal("100.00"),
        )  # fmt: skip
        deliver_through_connector(sut, report)
        sut.wait_event("unmatched_fill", actor="oms")
        events = stream_events(c, {"unmatched_fill", "kill_switch"})
        assert "ghost-E1" in events["unmatched_fill"].data["detail"]
        assert events["kill_switch"].data["reason"] == "unmatched_fill"
    ks = eventually(lambda: kill_switch(sut) if kill_switch(sut)["engaged"] else None, 10.0)
    assert ks["source"] == "oms" and ks["reason"] == "unmatched_fill"
    # summed over venues: the OMS labels an unmatched fill's venue "unknown" for now (reported)
    assert sut.metric("tradepulse_unmatched_fills_total") == 1
    assert sut.metric("tradepulse_kill_switch_triggers_total", reason="unmatched_fill") == 1


def test_a_switch_file_removed_while_engaged_stays_engaged_also_after_a_restart(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """The operator engages the switch; someone removes `state/risk/kill_switch.json` while
    the system runs (a clean-up of the state dir). Risk reads the removal as ENGAGED
    (`state_unreadable`) and writes the file back engaged: `status` says engaged, orders are
    refused, also after a kill -9 of risk. Before, a missing file read "never engaged":
    trading resumed with no reset, no reason, no history."""
    sut = start_system()
    with client(sut) as c:
        submit_when_open(c, "simA")
    done = sut.cli("kill-switch", "engage", "--reason", "desk halt")
    assert done.returncode == 0, done.stdout + done.stderr
    path = killswitch.kill_switch_path(sut.state_dir)
    path.unlink()
    eventually(lambda: path.exists() and killswitch.load(path).engaged, 10.0)
    assert "removed while running" in killswitch.load(path).reason
    assert kill_switch(sut)["engaged"]
    with client(sut) as c, pytest.raises(KillSwitchEngaged):
        submit_when_open(c, "simA", client_order_id="after-removal")
    since = sut.mark()
    os.kill(sut.pid_of("risk"), signal.SIGKILL)
    sut.wait_event("kill_switch_loaded", 20.0, since=since, engaged=True)
    with client(sut) as c, pytest.raises(KillSwitchEngaged):
        submit_when_open(c, "simA", client_order_id="after-restart")


def test_a_switch_file_removed_while_risk_is_down_is_written_back_engaged(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """As above, but risk is down (frozen, then killed -9) when the file is removed: only
    risk wrote it back, so the restarted risk read it missing ("never engaged") and the
    file stayed missing (a restart of the OMS would read the same). The OMS saw the
    removal: it asks risk to engage until risk answers, and the restarted risk writes it
    back engaged; orders are refused."""
    sut = start_system()
    with client(sut) as c:
        submit_when_open(c, "simA")
    done = sut.cli("kill-switch", "engage", "--reason", "desk halt")
    assert done.returncode == 0, done.stdout + done.stderr
    path, pid = killswitch.kill_switch_path(sut.state_dir), sut.pid_of("risk")
    since = sut.mark()
    os.kill(pid, signal.SIGSTOP)
    try:
        path.unlink()
        sut.wait_event("kill_switch", 10.0, since=since, actor="oms", action="state_unreadable")
    finally:
        os.kill(pid, signal.SIGKILL)
    sut.wait_event("kill_switch_loaded", 20.0, since=since, engaged=False)  # read it missing
    eventually(lambda: path.exists() and killswitch.load(path).engaged, 30.0,
               message="the switch file written back engaged")  # fmt: skip
    assert "removed while running" in killswitch.load(path).reason
    with client(sut) as c, pytest.raises(KillSwitchEngaged):
        submit_when_open(c, "simA", client_order_id="after-removal")
