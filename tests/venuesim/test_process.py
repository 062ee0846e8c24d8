"""The real venue-sim process over a real socket: a FIX client (our own FixSession) sends
orders and queries and checks every answer; kill -9 and restart keep the book and the
session; inspect agrees with what the client saw."""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
import simplefix  # type: ignore[import-untyped]

from actors.connector.fix import codec as fc
from actors.connector.fix.events import Disconnect, LoggedOut
from tests.helpers import eventually
from tests.venuesim.rig import VENUE, FixClient, SimProcess, field

pytestmark = pytest.mark.integration
D = Decimal


def fx(msg: simplefix.FixMessage) -> dict[int, str]:
    return {int(t): v.decode() for t, v in msg.pairs}


def exec_types(msgs: list[simplefix.FixMessage]) -> list[str]:
    return [field(m, 150) or "" for m in msgs]


def now_fix() -> str:
    return fc.sending_time(time.time())


def test_market_order_gets_new_then_fills(sim_process: SimProcess, client: FixClient) -> None:
    """D market buy 150 (the offer is 100 @ 100.01, 100 @ 100.02): ExecutionReports New,
    then two trades with LastQty/LastPx; the last one FILLED with CumQty 150."""
    m = client.mark()
    client.order("M1", qty="150")
    new, t1, t2 = (fx(x) for x in client.wait_msgs(3, m, msg_type="8"))
    assert (new[150], new[39], new[11]) == ("0", "0", "M1")
    assert (t1[150], t1[32], t1[31]) == ("F", "100", "100.01")
    assert (t2[150], t2[32], t2[31], t2[39], t2[14], t2[151]) == (
        "F",
        "50",
        "100.02",
        "2",
        "150",
        "0",
    )
    assert len({new[17], t1[17], t2[17]}) == 3 and new[37] == t1[37] == t2[37]


def test_limit_rests_replace_then_cancel(sim_process: SimProcess, client: FixClient) -> None:
    """A limit buy below the offer rests (New only); G replaces it (ExecType 5, new
    qty/price, 41 = old id); F cancels it (ExecType 4); a second F gets 35=9."""
    m = client.mark()
    client.order("L1", price="99.50")
    (new,) = client.wait_msgs(1, m)
    assert client.quiet(m, 0.2) == [new] and (field(new, 150), field(new, 44)) == ("0", "99.50")
    m = client.mark()
    client.send("G", [(11, "L2"), (41, "L1"), (55, "AAPL"), (54, "1"), (60, now_fix()),
                      (38, "20"), (40, "2"), (44, "99.60")])  # fmt: skip
    rep = fx(client.wait_msgs(1, m)[0])
    assert (rep[150], rep[11], rep[41], rep[38], rep[44]) == ("5", "L2", "L1", "20", "99.60")
    m = client.mark()
    client.send("F", [(11, "X1"), (41, "L2"), (55, "AAPL"), (54, "1"), (60, now_fix()), (38, "20")])
    cxl = fx(client.wait_msgs(1, m)[0])
    assert (cxl[150], cxl[39], cxl[11], cxl[41]) == ("4", "4", "X1", "L2")
    m = client.mark()
    client.send("F", [(11, "X2"), (41, "L2"), (55, "AAPL"), (54, "1"), (60, now_fix()), (38, "20")])
    (rej,) = client.wait_msgs(1, m, msg_type="9")
    assert (field(rej, 434), field(rej, 102)) == ("1", "0")


def test_status_request_known_and_unknown(sim_process: SimProcess, client: FixClient) -> None:
    """H on a resting order: ExecType I with its state; on a ClOrdID never sent:
    ExecType I, OrdStatus 8, OrdRejReason 5, Text UNKNOWN_ORDER, ClOrdID echoed."""
    m = client.mark()
    client.order("L1", price="99.50")
    client.wait_msgs(1, m)
    m = client.mark()
    client.send("H", [(11, "L1"), (54, "1"), (55, "AAPL")])
    client.send("H", [(11, "NEVER"), (54, "1"), (55, "AAPL")])
    known, unknown = (fx(x) for x in client.wait_msgs(2, m))
    assert (known[150], known[39], known[11], known[151]) == ("I", "0", "L1", "10")
    assert (unknown[150], unknown[39], unknown[103], unknown[58], unknown[11]) == (
        "I", "8", "5", "UNKNOWN_ORDER", "NEVER",
    )  # fmt: skip


def test_mass_status_with_and_without_open_orders(
    sim_process: SimProcess, client: FixClient
) -> None:
    """AF 585=7 with nothing open: one ExecType I report with ClOrdID NONE, 911=0, 912=Y;
    with two resting orders: one report each, 584 echoed, 911=2, 912=Y on the last."""
    m = client.mark()
    client.send("AF", [(584, "MS1"), (585, 7)])
    none = fx(client.wait_msgs(1, m)[0])
    assert (none[150], none[11], none[911], none[912], none[584]) == ("I", "NONE", "0", "Y", "MS1")
    m = client.mark()
    client.order("L1", price="99.50")
    client.order("L2", price="100.50", side="2")
    client.wait_msgs(2, m)
    m = client.mark()
    client.send("AF", [(584, "MS2"), (585, 7)])
    reports = [fx(x) for x in client.wait_msgs(2, m)]
    assert [(r[11], r[584], r[911], r.get(912)) for r in reports] == [
        ("L1", "MS2", "2", None), ("L2", "MS2", "2", "Y"),
    ]  # fmt: skip
    assert client.quiet(m + 2, 0.1) == []


def test_positions_request(sim_process: SimProcess, client: FixClient) -> None:
    """AN before any trade: one AP with PosReqResult 2, 727=0; after a buy of 150 and a
    sell of 30: one AP with LongQty 120, 728=0, 727=1, PosReqID echoed."""
    req: list[tuple[int, fc.Value]] = [
        (724, 0), (1, "ACC"), (581, 1), (715, time.strftime("%Y%m%d")), (60, now_fix()),
    ]  # fmt: skip
    m = client.mark()
    client.send("AN", [(710, "P1"), *req])
    none = fx(client.wait_msgs(1, m)[0])
    assert (none[35], none[710], none[728], none[727]) == ("AP", "P1", "2", "0")
    m = client.mark()
    client.order("B1", qty="150")
    client.order("S1", qty="30", side="2")
    client.wait_msgs(5, m)
    m = client.mark()
    client.send("AN", [(710, "P2"), *req])
    ap = fx(client.wait_msgs(1, m, msg_type="AP")[0])
    assert (ap[710], ap[728], ap[727], ap[55], ap[704], ap[705], ap[1]) == (
        "P2", "0", "1", "AAPL", "120", "0", "ACC",
    )  # fmt: skip


def test_mass_cancel(sim_process: SimProcess, client: FixClient) -> None:
    """q 530=7: an OrderMassCancelReport(r) with 531=7 first, then one ExecType 4 per
    resting order; afterwards nothing is open."""
    m = client.mark()
    for i, px in enumerate(("99.50", "99.40", "99.30")):
        client.order(f"L{i}", price=px)
    client.wait_msgs(3, m)
    m = client.mark()
    client.send("q", [(11, "MC1"), (530, 7), (60, now_fix())])
    r, *cancels = client.wait_msgs(4, m)
    assert (field(r, 35), field(r, 11), field(r, 531), field(r, 533)) == ("r", "MC1", "7", "3")
    assert sorted(field(c, 11) or "" for c in cancels) == ["L0", "L1", "L2"]
    assert exec_types(cancels) == ["4", "4", "4"]
    m = client.mark()
    client.send("AF", [(584, "MS"), (585, 7)])
    assert field(client.wait_msgs(1, m)[0], 11) == "NONE"


def test_duplicate_cl_ord_id_is_rejected(sim_process: SimProcess, client: FixClient) -> None:
    """A D reusing a ClOrdID (even of a filled order) is rejected: ExecType 8,
    OrdRejReason 6, Text containing "duplicate"; the original order is unchanged."""
    m = client.mark()
    client.order("M1", qty="5")
    client.wait_msgs(2, m)
    m = client.mark()
    client.order("M1", qty="5")
    rej = fx(client.wait_msgs(1, m)[0])
    assert (rej[150], rej[39], rej[103], rej[11]) == ("8", "8", "6", "M1")
    assert "duplicate" in rej[58].lower()
    order = next(o for o in sim_process.inspect()["orders"] if o["cl_ord_id"] == "M1")
    assert (order["status"], order["cum_qty"]) == ("FILLED", "5")


def test_garbage_and_unsupported_messages_do_not_hurt(
    sim_process: SimProcess, client: FixClient
) -> None:
    """An unsupported application message gets a BusinessMessageReject; a second TCP
    connection sending garbage, or a Logon with foreign CompIDs, is closed while the live
    session keeps trading."""
    m = client.mark()
    client.send("AD", [(568, "T1"), (569, 0)])
    (j,) = client.wait_msgs(1, m)
    assert (field(j, 35), field(j, 372), field(j, 380)) == ("j", "AD", "3")
    for payload in (
        b"GET / HTTP/1.0\r\n\r\n" * 10 + b"8=FIX.4.4\x019=5\x0135=A\x0110=000\x01",
        fc.encode("A", [(49, b"INTRUDER"), (56, b"SIMA"), (34, b"1"), (52, now_fix().encode())],
                  [(98, b"0"), (108, b"5")]),
    ):  # fmt: skip
        with socket.create_connection(("127.0.0.1", sim_process.port), timeout=5) as raw:
            raw.sendall(payload)
            raw.settimeout(5)
            assert raw.recv(1024) == b""  # closed by the venue
    assert client.logged_on
    m = client.mark()
    client.order("L1", price="99.50")
    assert field(client.wait_msgs(1, m)[0], 150) == "0"
    sim_process.wait_event("sim_connection_refused")  # its log is read by a thread


def test_new_connection_for_the_same_comp_ids_replaces_the_old(
    sim_process: SimProcess, make_client: Callable[..., FixClient]
) -> None:
    """A second client logging on with our CompIDs takes over: the first connection is
    closed, the second trades."""
    first = make_client(sim_process, "one")
    second = make_client(sim_process, "two", reset=True)
    first.wait(lambda: not first.connected, 5, "first connection closed")
    m = second.mark()
    second.order("L1", price="99.50")
    assert field(second.wait_msgs(1, m)[0], 150) == "0"


def test_liquidity_fills_resting_order_while_client_is_away(
    make_sim_process: Callable[..., SimProcess], make_client: Callable[..., FixClient]
) -> None:
    """With a moving price, a resting buy below the market fills over time; a fill that
    happens while the client is disconnected reaches it after the next logon (backlog or
    resend), with the ExecID the venue's inspection shows."""
    sim_process = make_sim_process(volatility_bps=20.0, liquidity_interval_s=0.02)
    client = make_client(sim_process)
    m = client.mark()
    client.order("L1", price="99.95", qty="10")
    client.wait_msgs(1, m)
    client.close()

    def filled() -> dict[str, Any] | None:
        order = next(o for o in sim_process.inspect()["orders"] if o["cl_ord_id"] == "L1")
        return order if order["status"] == "FILLED" else None

    order = eventually(filled, 20.0, interval_s=0.05)
    client.connect()
    fills = client.wait(
        lambda: [x.msg for x in client.app if field(x.msg, 150) == "F"] or None, 5, "fill report"
    )
    assert {field(x, 17) for x in fills} == {f["exec_id"] for f in order["fills"]}


def test_kill9_and_restart_keep_book_positions_ids_and_session(
    sim_process: SimProcess, client: FixClient
) -> None:
    """After kill -9 and restart: the same orders and positions (inspect is identical),
    the same port, the FIX session resumes without a reset (sequence numbers continue),
    an old order is still known, and new ExecIDs are never ones used before."""
    m = client.mark()
    client.order("B1", qty="150")
    client.order("L1", price="99.50")
    client.order("S1", qty="20", side="2")
    got = client.wait_msgs(6, m)
    seen_ids = {field(x, 17) for x in got}
    before = sim_process.inspect()
    port = sim_process.port
    sim_process.kill9()
    client.wait(lambda: not client.connected, 5, "disconnect on kill")
    sim_process.start()
    after = sim_process.inspect()
    assert (after["orders"], after["positions"], after["book_id"], after["last_exec_id"]) == (
        before["orders"], before["positions"], before["book_id"], before["last_exec_id"],
    )  # fmt: skip
    assert sim_process.port == port
    client.connect(reset=False)
    assert not any(isinstance(e, LoggedOut) for e in client.events)
    status = sim_process.control("status").data
    assert (status["fix_next_in"], status["fix_next_out"]) == (
        client.store.next_out, client.store.next_in,
    )  # fmt: skip
    m = client.mark()
    client.send("H", [(11, "L1"), (54, "1"), (55, "AAPL")])
    assert (field(client.wait_msgs(1, m)[0], 39), field(client.wait_msgs(1, m)[0], 11)) == (
        "0",
        "L1",
    )
    m = client.mark()
    client.order("B2", qty="10")
    new_ids = {field(x, 17) for x in client.wait_msgs(2, m)}
    assert not new_ids & seen_ids
    assert all((i or "") > before["last_exec_id"] for i in new_ids)


def test_graceful_stop_logs_the_client_out(sim_process: SimProcess, client: FixClient) -> None:
    """SIGTERM: the venue sends a Logout, closes, and exits 0 with actor_stopped."""
    assert sim_process.proc is not None
    sim_process.proc.send_signal(signal.SIGTERM)
    client.wait(lambda: not client.connected, 5, "logout and close")
    assert any(isinstance(e, LoggedOut) for e in client.events)
    assert sim_process.proc.wait(timeout=10) == 0
    sim_process.wait_event("actor_stopped")


def test_inspect_matches_what_the_client_saw(sim_process: SimProcess, client: FixClient) -> None:
    """inspect --json: every order with its ClOrdID, status, cum qty, avg px and fills
    whose ExecIDs are those of the client's trade reports; positions agree with AP;
    the table form lists the same orders."""
    m = client.mark()
    client.order("B1", qty="150")
    client.order("S1", qty="30", side="2")
    client.order("L1", price="99.50")
    reports = client.wait_msgs(6, m)
    data = sim_process.inspect()
    by_cl = {o["cl_ord_id"]: o for o in data["orders"]}
    trades = [fx(r) for r in reports if field(r, 150) == "F"]
    for cl in ("B1", "S1"):
        last = [t for t in trades if t[11] == cl][-1]
        assert (by_cl[cl]["cum_qty"], by_cl[cl]["avg_px"], by_cl[cl]["status"]) == (
            last[14], last[6], "FILLED",
        )  # fmt: skip
        assert [f["exec_id"] for f in by_cl[cl]["fills"]] == [t[17] for t in trades if t[11] == cl]
    assert by_cl["L1"]["status"] == "ACCEPTED"
    assert data["positions"]["AAPL"]["net_qty"] == "120"
    table = sim_process.cli("inspect", "--state-dir", str(sim_process.state_dir), "--venue", VENUE)
    assert table.returncode == 0
    assert all(cl in table.stdout for cl in ("B1", "S1", "L1")) and "AAPL" in table.stdout
    missing = sim_process.cli(
        "inspect", "--state-dir", str(sim_process.root / "nowhere"), "--venue", VENUE
    )
    assert missing.returncode == 1 and "no state" in missing.stderr
    assert not any(isinstance(e, Disconnect) for e in client.events)


def test_second_run_on_the_same_state_refuses_and_leaves_the_first_alone(
    sim_process: SimProcess, client: FixClient
) -> None:
    """`run` while the venue already runs on that state dir exits 1 at once, saying so,
    and the running venue keeps its control endpoint and its session."""
    second = sim_process.cli("run", *sim_process.cli_args())
    assert second.returncode == 1 and "already running" in second.stderr
    assert sim_process.control("status").data["session"] == "active"
    m = client.mark()
    client.order("L1", price="99.50")
    assert field(client.wait_msgs(1, m)[0], 150) == "0"
