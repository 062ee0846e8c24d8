"""Every fault kind, set at run time through the venue's own control path (or from the
config), observably changes what the real venue-sim process does on the wire."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from actors.connector.fix.events import LoggedOut
from tests.venuesim.rig import FixClient, SimProcess, field

pytestmark = pytest.mark.integration


def ids_and_types(client: FixClient, since: int) -> list[tuple[str, str]]:
    return [
        (field(a.msg, 17) or "", field(a.msg, 150) or "")
        for a in client.app[since:]
        if a.msg_type == "8"
    ]


def test_drop_session_closes_the_connection_and_the_session_resumes(
    sim_process: SimProcess, client: FixClient
) -> None:
    """drop_session: the TCP connection closes at once (no Logout); the client logs on
    again without a reset and trades; sim_fault is logged with the kind."""
    reply = sim_process.control("drop_session")
    assert reply.status == "ok"
    client.wait(lambda: not client.connected, 5, "dropped")
    assert not any(isinstance(e, LoggedOut) for e in client.events)
    client.connect(reset=False)
    m = client.mark()
    client.order("L1", price="99.50")
    assert field(client.wait_msgs(1, m)[0], 150) == "0"
    sim_process.wait_event("sim_fault", kind="drop_session")


def test_hang_stops_answering_but_keeps_the_connection(
    sim_process: SimProcess, client: FixClient
) -> None:
    """hang 0.8: a request sent meanwhile gets no answer while the connection stays
    open; once the hang is over the answer comes on the same connection."""
    # t0 before the hang begins: read after the control's reply, a reply late on a loaded
    # machine took its lateness off the hang, and the answer came "early"
    t0 = time.monotonic()
    assert sim_process.control("hang", 0.8).status == "ok"
    m = client.mark()
    client.send("H", [(11, "NEVER"), (54, "1"), (55, "AAPL")])
    assert client.quiet(m, 0.4) == [] and client.connected
    (answer,) = client.wait_msgs(1, m, timeout_s=5)
    assert time.monotonic() - t0 >= 0.7 and client.connected
    assert field(answer, 58) == "UNKNOWN_ORDER"


def test_delay_exec_ms_delays_reports_not_answers(
    sim_process: SimProcess, client: FixClient
) -> None:
    """delay_exec_ms 400: the New of an order arrives >= 0.4 s after the D, while a status
    request sent after the D is answered before it."""
    assert sim_process.control("delay_exec_ms", 400).status == "ok"
    m = client.mark()
    t0 = time.monotonic()
    client.order("L1", price="99.50")
    client.send("H", [(11, "L1"), (54, "1"), (55, "AAPL")])
    first, second = client.wait_msgs(2, m, timeout_s=5)
    assert time.monotonic() - t0 >= 0.39
    assert (field(first, 150), field(second, 150)) == ("I", "0")


def test_duplicate_exec_sends_each_report_twice(sim_process: SimProcess, client: FixClient) -> None:
    """duplicate_exec: every execution report arrives twice, same ExecID, two MsgSeqNums,
    not flagged PossDup; clear stops it."""
    assert sim_process.control("duplicate_exec").status == "ok"
    m = client.mark()
    client.order("M1", qty="150")
    client.wait_msgs(6, m)
    got = ids_and_types(client, m)
    assert [t for _, t in got] == ["0", "0", "F", "F", "F", "F"]
    assert got[0] == got[1] and got[2] == got[3] and got[4] == got[5]
    assert len({a.seq for a in client.app[m:]}) == 6 and not any(a.poss_dup for a in client.app[m:])
    assert sim_process.control("clear").status == "ok"
    m = client.mark()
    client.order("L1", price="99.50")
    client.wait_msgs(1, m)
    assert len(client.quiet(m, 0.3)) == 1


def test_reorder_exec_swaps_consecutive_reports(sim_process: SimProcess, client: FixClient) -> None:
    """reorder_exec: New, Fill, Fill go out as Fill1, New, then Fill2 (held, then
    released when nothing overtakes it)."""
    assert sim_process.control("reorder_exec", "on").status == "ok"
    m = client.mark()
    client.order("M1", qty="150")
    client.wait_msgs(3, m)
    assert [t for _, t in ids_and_types(client, m)] == ["F", "0", "F"]


def test_reject_next_rejects_that_many_orders(sim_process: SimProcess, client: FixClient) -> None:
    """reject_next 2: the next two valid orders are rejected (ExecType 8, 103=99), the
    third is accepted."""
    assert sim_process.control("reject_next", 2).status == "ok"
    m = client.mark()
    for i in range(3):
        client.order(f"L{i}", price="99.50")
    reports = client.wait_msgs(3, m)
    assert [(field(r, 150), field(r, 103)) for r in reports] == [
        ("8", "99"),
        ("8", "99"),
        ("0", None),
    ]


def test_disconnect_after_drops_after_n_messages_and_delivers_the_rest_later(
    sim_process: SimProcess, client: FixClient
) -> None:
    """disconnect_after 2: of New, Fill, Fill the client gets two, then the connection
    drops; after the next logon the third arrives. No report is lost or duplicated."""
    assert sim_process.control("disconnect_after", 2).status == "ok"
    m = client.mark()
    client.order("M1", qty="150")
    client.wait(lambda: not client.connected, 5, "dropped")
    assert [t for _, t in ids_and_types(client, m)] == ["0", "F"]
    client.connect(reset=False)
    client.wait_msgs(3, m)
    got = ids_and_types(client, m)
    assert [t for _, t in got] == ["0", "F", "F"] and len({i for i, _ in got}) == 3


def test_refuse_logons_answers_logon_with_logout(
    sim_process: SimProcess, client: FixClient
) -> None:
    """refuse_logons_s 1: after a drop, a Logon is answered with a Logout saying why and
    the connection closes; after the second passes the client logs on again."""
    t0 = time.monotonic()  # before the refusals begin (as the hang's t0, not after the drop)
    assert sim_process.control("refuse_logons_s", 1.0).status == "ok"
    assert sim_process.control("drop_session").status == "ok"
    client.wait(lambda: not client.connected, 5, "dropped")
    client.connect(reset=False, wait=False)
    client.wait(lambda: not client.connected, 5, "refused")
    texts = [e.text for e in client.events if isinstance(e, LoggedOut)]
    assert texts and "refused" in texts[-1]
    sim_process.wait_event("sim_logon_refused")
    while not client.logged_on:
        assert time.monotonic() - t0 < 5, "never logged on again"
        client.connect(reset=False, wait=False)
        client.wait(lambda: client.logged_on or not client.connected, 5, "logon answered")
    assert time.monotonic() - t0 >= 0.9


def test_swallow_fills_applies_fills_without_reporting_them(
    sim_process: SimProcess, client: FixClient
) -> None:
    """swallow_fills 1: of New, Fill1, Fill2 the client only sees New and Fill2 (cum qty
    150), while the venue's book and positions hold both fills."""
    assert sim_process.control("swallow_fills", 1).status == "ok"
    m = client.mark()
    client.order("M1", qty="150")
    client.wait_msgs(2, m)
    seen = client.quiet(m, 0.4)
    assert [(field(r, 150), field(r, 14)) for r in seen] == [("0", "0"), ("F", "150")]
    order = next(o for o in sim_process.inspect()["orders"] if o["cl_ord_id"] == "M1")
    assert len(order["fills"]) == 2 and order["cum_qty"] == "150"
    assert field(seen[1], 17) == order["fills"][1]["exec_id"]
    sim_process.wait_event("sim_fill_swallowed", exec_id=order["fills"][0]["exec_id"])


def test_faults_from_config_apply_at_start(
    make_sim_process: Callable[..., SimProcess], make_client: Callable[..., FixClient]
) -> None:
    """SimCfg.faults {reject_next = 1}: the first order is rejected, the second not; the
    status and heartbeat info show the active faults; an invalid one is logged, ignored."""
    sim_process = make_sim_process(
        faults={"reject_next": 1, "duplicate_exec": "off", "nonsense": 3}
    )
    assert sim_process.control("status").data["faults"] == {"reject_next": 1}
    sim_process.wait_event("sim_fault_invalid", kind="nonsense")
    client = make_client(sim_process)
    m = client.mark()
    client.order("L1", price="99.50")
    client.order("L2", price="99.50")
    assert [field(r, 150) for r in client.wait_msgs(2, m)] == ["8", "0"]
    assert sim_process.control("status").data["faults"] == {}


def test_control_cli(sim_process: SimProcess) -> None:
    """`python -m actors.venuesim control`: a fault is set (exit 0, JSON reply with the
    active faults), a bad value is refused (exit 1), status works; with the venue
    stopped the command exits 3 at once."""
    base = ["control", *sim_process.cli_args()]
    ok = sim_process.cli(*base, "delay_exec_ms", "--value", "25", "--json")
    assert ok.returncode == 0, ok.stderr
    reply = json.loads(ok.stdout)
    assert reply["status"] == "ok" and reply["data"]["faults"] == {"delay_exec_ms": 25.0}
    bad = sim_process.cli(*base, "hang", "--value", "soon")
    assert bad.returncode == 1 and "number" in bad.stdout
    status = sim_process.cli(*base, "status")
    assert status.returncode == 0 and f"port: {sim_process.port}" in status.stdout
    assert sim_process.cli(*base, "clear", "--json").returncode == 0
    sim_process.stop()
    t0 = time.monotonic()
    down = sim_process.cli(*base, "status", "--json")
    assert down.returncode == 3 and json.loads(down.stdout)["status"] == "error"
    assert time.monotonic() - t0 < 4
