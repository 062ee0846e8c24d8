"""Operator control of intake and of single actors, through `supervisor.py` against the real
system (issue 14 §2-3): a per-venue intake pause refuses only that venue, with its reason,
and survives a kill -9 of the OMS; `run --intake paused` starts with intake closed until
`intake resume`; `stop connector.V` keeps the connector stopped (no restart, no budget, no
outage: the kill-switch stays off well past the outage tolerance) until `start`, which
brings the venue back and reconciled."""

from __future__ import annotations

import math
import os
import signal
from collections.abc import Callable
from typing import Any

import pytest

from protocol.client import ExecutionClient, IntakePaused, UnknownOrder
from protocol.messages import OrderStatus, OrderView
from tests.helpers import SystemUnderTest, eventually, process_alive
from tests.system_ops import (
    SYMBOL,
    client,
    kill_switch,
    sim_fault,
    submit_when_open,
    venue_status,
)

pytestmark = pytest.mark.integration

INTERVAL_S = 0.2  # heartbeat beat, and the venue positions interval
OUTAGE_S = 1.0  # oms.outage_tolerance_s: a real outage engages the switch after this


def _cli(sut: SystemUnderTest, *argv: str, code: int = 0) -> str:
    out = sut.cli(*argv)
    assert out.returncode == code, f"{argv}: exit {out.returncode}\n{out.stdout}\n{out.stderr}"
    return out.stdout + out.stderr


def _submit(c: ExecutionClient, venue: str, coid: str) -> OrderView:
    return c.submit(venue, SYMBOL, "BUY", "10", "LIMIT", price="95.00", client_order_id=coid)


def queue_for_down_simb(sut: SystemUnderTest, c: ExecutionClient) -> OrderView:
    """Intake open and every venue reconciled; then simB refuses logons and drops its
    session, and an order to simB ("queued-b") waits at the OMS, PENDING_SUBMIT, never sent."""
    submit_when_open(c, "simA", client_order_id="a-open")
    eventually(lambda: _oms_info(sut)["venues"]["simB"] == "reconciled", 30.0)
    sim_fault(sut, "simB", "refuse_logons_s", "600")
    sim_fault(sut, "simB", "drop_session")
    eventually(lambda: sut.status()["venues"]["simB"]["state"] != "CONNECTED", 15.0)
    _submit(c, "simB", "queued-b")
    view: OrderView = eventually(
        lambda: (o := c.get_order("queued-b")).status is OrderStatus.PENDING_SUBMIT and o,
        15.0,
    )
    return view


def _oms_info(sut: SystemUnderTest) -> dict[str, Any]:
    info: dict[str, Any] = sut.actor("oms")["info"]
    return info


def test_a_venue_pause_refuses_only_that_venue_and_survives_an_oms_kill(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """`intake pause --venue simA --reason R`: a submit to simA is refused (IntakePaused)
    naming simA and R, simB keeps trading, a resting simA order can still be cancelled;
    status shows the pause. After a kill -9 of the OMS its new incarnation still refuses
    simA (the pause is persisted); `intake resume --venue simA` opens it again."""
    sut = start_system()
    reason = "fat-finger review"
    with client(sut) as c:
        submit_when_open(c, "simA", client_order_id="rest-a")
        c.wait_for_status("rest-a", {OrderStatus.ACCEPTED})
        since = sut.mark()
        out = _cli(sut, "intake", "pause", "--venue", "simA", "--reason", reason)
        assert f"simA paused ({reason})" in out
        sut.wait_event("intake_paused", since=since, actor="oms", scope="simA", reason=reason)
        with pytest.raises(
            IntakePaused, match=f"intake for simA is paused by an operator: {reason}"
        ):
            _submit(c, "simA", "a-refused")
        assert _submit(c, "simB", "b-1").client_order_id == "b-1"
        # a replace adding risk is refused like a new order; lowering the quantity is not
        with pytest.raises(IntakePaused, match="intake for simA is paused by an operator"):
            c.replace("rest-a", qty="20")
        with pytest.raises(IntakePaused, match=reason):
            c.replace("rest-a", price="96.00")
        c.replace("rest-a", qty="5")
        eventually(lambda: c.get_order("rest-a").qty == 5, 15.0)
        c.cancel("rest-a")
        c.wait_for_status("rest-a", {OrderStatus.CANCELLED})
        # status shows the OMS's view as of its last heartbeat (each beat carries it): the
        # orders above can all be done within one beat of the pause on a quick turn
        status = eventually(
            lambda: (st := sut.status())["intake_pauses"]["venues"].get("simA") and st, 10.0
        )
        assert status["intake_pauses"]["venues"]["simA"]["reason"] == reason
        # who paused it: the CLI's kernel credentials, recorded by the supervisor
        by = status["intake_pauses"]["venues"]["simA"]["by"]
        assert by is not None and f"(uid {os.getuid()}, pid " in by, by
        assert status["intake_pauses"]["global"] is None and status["intake"] == "open"
        assert f"intake paused for simA: {reason}" in _cli(sut, "status")
        assert sut.metric("tradepulse_intake_paused", scope="simA") == 1

        old = sut.pid_of("oms")
        os.kill(old, signal.SIGKILL)
        eventually(
            lambda: (
                sut.actor("oms")["pid"] not in (None, old)
                and sut.actor("oms")["state"] == "running"
            ),
            30.0,
        )
        submit_when_open(c, "simB", client_order_id="b-after-kill")  # the new OMS is open
        with pytest.raises(IntakePaused, match=reason):
            _submit(c, "simA", "a-refused-again")
        sut.wait_event("intake_pauses_loaded", since=since, actor="oms")

        assert "no operator pause" in _cli(sut, "intake", "resume", "--venue", "simA")
        assert _submit(c, "simA", "a-after-resume").client_order_id == "a-after-resume"
        eventually(lambda: venue_status(sut, "simA", "a-after-resume") is not None, 10.0)
        with pytest.raises(UnknownOrder):  # a refused submit leaves no order behind
            c.get_order("a-refused")


def test_run_with_intake_paused_refuses_orders_until_resumed(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """`run --intake paused`: the system comes up with intake closed globally, the pause
    recorded with the reason "started with --intake paused" (status shows it); a submit is
    refused until `intake resume`, then taken."""
    sut = start_system(run_args=["--intake", "paused"])
    with client(sut) as c:
        with pytest.raises(IntakePaused, match="started with --intake paused"):
            _submit(c, "simA", "too-early")
        eventually(lambda: sut.status()["intake"] == "paused", 10.0)
        text = _cli(sut, "status")
        assert "intake: paused" in text
        assert "intake paused globally: started with --intake paused" in text
        assert "intake paused" in _cli(sut, "intake", "status")
        with pytest.raises(IntakePaused):
            _submit(c, "simB", "still-too-early")
        _cli(sut, "intake", "resume")
        view = submit_when_open(c, "simA", client_order_id="after-resume")
        assert view.client_order_id == "after-resume"
        eventually(lambda: sut.status()["intake"] == "open", 10.0)


def _overrides() -> dict[str, Any]:
    return {
        "heartbeat": {
            "interval_s": INTERVAL_S,
            "venue_positions_interval_s": INTERVAL_S,
            "missing_intervals": 2,
        },
        "oms": {"outage_tolerance_s": OUTAGE_S},
    }


def _heartbeat_beats(sut: SystemUnderTest) -> int:
    return int(sut.actor("heartbeat")["info"].get("beats", 0))


def test_a_stopped_connector_stays_stopped_without_an_outage_until_started(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """`stop connector.simB --reason R`: its process is gone and not restarted (restart count
    unchanged), status says `stopped (by operator: R)` for the actor and the venue, a
    submit to simB is refused saying simB is stopped while simA trades, and the
    kill-switch stays off after three outage tolerances' worth of heartbeat beats (no
    missed beat is even logged for simB). `restart` of it and `stop oms` are refused.
    `start connector.simB`: a new process, the venue CONNECTED and reconciled again, an
    order to simB reaches the venue."""
    sut = start_system(overrides=_overrides())
    reason = "venue maintenance window"
    with client(sut) as c:
        submit_when_open(c, "simB", client_order_id="b-before")
        sut.wait_event("heartbeat", venue="simB")
        before = sut.actor("connector.simB")
        pid = int(before["pid"])
        eventually(lambda: _oms_info(sut).get("open_at_venue", {}).get("simB") == 1, 15.0)
        refused = _cli(sut, "stop", "connector.simB", "--reason", reason, code=1)
        assert "1 order(s) open at simB" in refused and "--force" in refused
        assert sut.actor("connector.simB")["pid"] == pid
        since = sut.mark()
        stopping = _cli(sut, "stop", "connector.simB", "--reason", reason, "--force")
        assert "connector.simB stopping" in stopping
        eventually(lambda: not process_alive(pid), 15.0)
        row = eventually(
            lambda: (a := sut.actor("connector.simB"))["state"] == "stopped" and a, 15.0
        )
        assert row["pid"] is None and row["stopped_by_operator"] == reason
        assert f"(uid {os.getuid()}, pid " in row["stopped_by"]  # who: the CLI's credentials
        assert row["restarts"] == before["restarts"]
        name = row["stopped_by"].split(" (", 1)[0]
        stopped = f"stopped (by operator {name}: {reason})"
        status = sut.status()
        assert status["venues"]["simB"] == {
            "state": "stopped",
            "detail": stopped,
            "host_group": "core",
        }
        assert stopped in _cli(sut, "status")
        held = {"actor": "connector.simB"}
        assert sut.metric("tradepulse_actor_stopped_by_operator", **held) == 1  # no ActorDown

        with pytest.raises(IntakePaused, match=f"simB is stopped by an operator \\({reason}\\)"):
            _submit(c, "simB", "b-refused")
        assert _submit(c, "simA", "a-while-b-stopped").client_order_id == "a-while-b-stopped"

        # three outage tolerances, counted in the heartbeat's own beats after the stop
        beats = _heartbeat_beats(sut) + 3 * math.ceil(OUTAGE_S / INTERVAL_S)
        eventually(lambda: _heartbeat_beats(sut) >= beats, 30.0)
        assert "simB" in sut.actor("heartbeat")["info"]["stopped_venues"]
        assert not kill_switch(sut)["engaged"]
        assert not sut.events("kill_switch_requested", since=since)
        assert not sut.events("heartbeat_missed", since=since, venue="simB")
        assert sut.actor("connector.simB")["pid"] is None  # still not restarted
        assert sut.events("actor_restarting", since=since, child="connector.simB") == []

        refused = _cli(sut, "restart", "connector.simB", code=1)
        assert "tradepulse start connector.simB" in refused
        assert "critical" in _cli(sut, "stop", "oms", "--reason", "no", code=1)
        assert "critical" in _cli(sut, "stop", "risk", code=1)
        assert "divergence" in _cli(sut, "stop", "heartbeat", code=1)
        assert "not stopped by an operator" in _cli(sut, "start", "connector.simA", code=1)

        # an OMS restarted while simB is stopped: intake opens (the stop is a planned outage,
        # simB never reconciles until `start`), not "starting" for as long as the stop lasts
        old = sut.pid_of("oms")
        os.kill(old, signal.SIGKILL)
        eventually(
            lambda: sut.actor("oms")["pid"] not in (None, old) and _oms_info(sut).get("intake"),
            30.0,
        )
        eventually(
            lambda: sut.status()["intake"] == "open", 20.0, message=lambda: str(_oms_info(sut))
        )

        assert "connector.simB starting" in _cli(sut, "start", "connector.simB")
        eventually(
            lambda: (
                (a := sut.actor("connector.simB"))["state"] == "running"
                and a["pid"] not in (None, pid)
            ),
            30.0,
        )
        eventually(lambda: sut.status()["venues"]["simB"]["state"] == "CONNECTED", 30.0)
        eventually(lambda: _oms_info(sut)["venues"]["simB"] == "reconciled", 30.0)
        view = submit_when_open(c, "simB", client_order_id="b-after-start")
        assert view.client_order_id == "b-after-start"
        eventually(lambda: venue_status(sut, "simB", "b-after-start") is not None, 15.0)
        assert sut.actor("connector.simB")["stopped_by_operator"] is None
        assert sut.metric("tradepulse_actor_stopped_by_operator", **held) == 0
        assert not kill_switch(sut)["engaged"]


def test_the_kill_switch_lifts_a_stop_so_its_mass_cancel_reaches_the_venue(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """An order rests at simB, then `stop connector.simB`. The kill-switch engages: the
    stopped connector cannot answer risk's mass cancel, risk asks the supervisor to restart
    it (`override_stop`), the stop is lifted, the new connector takes the cancel and the
    resting order ends CANCELLED at the venue."""
    venues = [
        {"name": v, "target_comp_id": v.upper(), "request_timeout_s": 0.5,
         "sim": {"reference_prices": {"AAPL": "100.00"}}}
        for v in ("simA", "simB")
    ]  # fmt: skip
    sut = start_system(overrides={"venues": venues})
    with client(sut) as c:
        order = submit_when_open(c, "simB", "BUY", price="95.00", client_order_id="resting")
    eventually(lambda: venue_status(sut, "simB", order.cl_ord_id) == "ACCEPTED", 10.0)
    pid = sut.pid_of("connector.simB")
    _cli(sut, "stop", "connector.simB", "--reason", "maintenance", "--force")
    eventually(lambda: sut.actor("connector.simB")["state"] == "stopped", 15.0)
    since = sut.mark()
    _cli(sut, "kill-switch", "engage", "--reason", "desk halt while simB is stopped")
    sut.wait_event("connector_restart_requested", since=since, child="connector.simB")
    sut.wait_event(
        "actor_start_requested", since=since, child="connector.simB", why="mass cancel unanswered"
    )
    eventually(lambda: venue_status(sut, "simB", order.cl_ord_id) == "CANCELLED", 30.0)
    row = sut.actor("connector.simB")
    assert row["stopped_by_operator"] is None and row["pid"] not in (None, pid)
    assert kill_switch(sut)["engaged"]


def test_an_order_queued_for_a_stopped_venue_is_rejected_not_sent_at_its_start(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """simB refuses logons and drops its session: an order to simB queues at the OMS
    (PENDING_SUBMIT, never sent). `stop connector.simB` rejects it ("venue stopped by an
    operator before the order was sent", logged `order_dropped_unsent`); after the venue
    recovers and `start connector.simB` brings it back reconciled, the venue never saw it
    and it stays REJECTED."""
    sut = start_system()
    with client(sut) as c:
        view = queue_for_down_simb(sut, c)
        assert view.cl_ord_id
        since = sut.mark()
        _cli(sut, "stop", "connector.simB", "--reason", "venue incident")
        dropped = "venue stopped by an operator before the order was sent"
        sut.wait_event("order_dropped_unsent", 15.0, since=since, client_order_id="queued-b")
        rejected = c.wait_for_status("queued-b", {OrderStatus.REJECTED})
        assert rejected.reason == dropped
        eventually(lambda: sut.actor("connector.simB")["state"] == "stopped", 15.0)

        sim_fault(sut, "simB", "clear")
        _cli(sut, "start", "connector.simB")
        eventually(lambda: _oms_info(sut)["venues"]["simB"] == "reconciled", 30.0)
        after = submit_when_open(c, "simB", client_order_id="b-after-start")
        eventually(lambda: venue_status(sut, "simB", after.cl_ord_id) is not None, 15.0)
        assert venue_status(sut, "simB", view.cl_ord_id) is None  # never reached the venue
        assert c.get_order("queued-b").status is OrderStatus.REJECTED
