"""Adversarial replay of issue 15, section 2 ("one value must not crash an actor or corrupt
the book"), one test per finding, against real processes where that is cheap. This module
is the index; the exhaustive unit tests live beside the code they test:

- qty 1e999999999 / NaN; risk's error answer retried at once; REJECTED crashed risk:
  `test_qty_1e999999999_...` here; tests/protocol/test_bounded_values.py (every decimal
  field of every message), tests/oms/test_bad_values.py (a risk error is final),
  tests/risk/test_exposure_values.py (a REJECTED event computes nothing).
- SOH in a symbol crashed the connector on each resubmit: `test_a_symbol_with_an_soh_...`
  here; tests/connector/fix/test_adapter_values.py, tests/oms/test_bad_values.py (an
  order the connector cannot encode is rejected, not resubmitted).
- LastPx 9E+999999 / NaN from a venue: `test_venue_fills_without_a_valid_price_...` here;
  tests/oms/test_bad_values.py (compute before mutating).
- inf in the config, SOH in a CompID: `test_a_config_with_inf_...` here;
  tests/protocol/test_bounded_values.py (every float of every config model).
- a 1 MiB kill-switch reason, `force: "false"`: `test_control_arguments_...` here;
  tests/protocol/test_bounded_values.py.
- a 4 MiB envelope of 4M zeros took 0.55 s to decode, five got the OMS hang-killed:
  tests/protocol/test_codec.py
  (`test_a_max_size_frame_of_many_elements_is_refused_by_its_budget`,
  `test_the_densest_messages_we_send_fit_the_budgets_at_the_frame_limit`); a refused value
  under a key with dots named field '': `test_a_refused_value_names_its_field_even_when_...`.

Section 5 (fuzzing, tests/fuzz/: a target per parser, `make fuzz`, replayed in `make test`)
found more of this class; each saved input replays in tests/fuzz/test_fuzz.py:

- a config that crashed the loader with a traceback instead of exit 2 (not UTF-8, nested
  past tomllib's recursion, `system = 5`, a NUL in a path, `timezone = "America"`):
  `test_a_config_that_broke_the_loader_...` here.
- a MsgSeqNum or NewSeqNo past 2^31-1 crashed the connector or the simulator in
  `data_to_send` (the store cannot keep it): tests/connector/fix/test_session.py
  (`test_a_new_seq_no_past_the_largest_seq_...`, `test_a_msg_seq_num_past_the_largest_...`).
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgpack
import pytest
import simplefix
import zmq

from actors.connector.fix import mapping as fm
from actors.oms.order_book import OrderBook
from protocol.client import InvalidOrder
from protocol.codec import decode
from protocol.messages import ControlReply, ExecReport, OrdType, RiskVerdict, Side, SubmitOrder
from tests.helpers import REPO_ROOT, SUPERVISOR, SystemUnderTest, eventually, run_python
from tests.system_ops import client, submit_when_open

pytestmark = pytest.mark.integration

HOSTILE_SYMBOL = "AAPL\x0155=MSFT"


@contextmanager
def _dealer(endpoint: str) -> Iterator[zmq.Socket[bytes]]:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 2000)  # a frame sent just before close still leaves
    sock.connect(endpoint)
    try:
        yield sock
    finally:
        sock.close()
        ctx.term()


def _raw(msg_type: str, body: dict[str, Any], msg_id: str = "hostile:1") -> list[bytes]:
    """An envelope as a hostile peer writes it: no client-side validation of the body."""
    env = {"v": 1, "type": msg_type, "sender": "hostile", "epoch": 1, "seq": 1, "id": msg_id,
           "corr": "", "ts_ns": 1, "body": body}  # fmt: skip
    return [msgpack.packb(env, use_bin_type=True)]


def _submit_body(coid: str, **over: str) -> dict[str, Any]:
    body = {"client_order_id": coid, "venue": "simA", "symbol": "AAPL", "side": "BUY",
            "qty": "10", "order_type": "LIMIT", "price": "95.00", "tif": "DAY"}  # fmt: skip
    return {**body, **over}


def _bad_messages(sut: SystemUnderTest, actor: str) -> float:
    return sut.metric("tradepulse_bad_messages_total", actor=actor) or 0.0


def _hostile_submit_is_refused_at_decode(sut: SystemUnderTest, coid: str, **over: str) -> None:
    """A SubmitOrder frame with `over` sent straight to the OMS is refused at decode
    (counted); the OMS never heard of the order."""
    before = _bad_messages(sut, "oms")
    with _dealer(sut.cfg.client_endpoint) as sock:
        sock.send_multipart(_raw("submit_order", _submit_body(coid, **over)))
    eventually(lambda: _bad_messages(sut, "oms") > before, 10.0)
    with client(sut) as c:
        assert not [o for o in c.list_orders() if o.client_order_id == coid]


def test_qty_1e999999999_is_refused_at_the_boundary_and_risk_keeps_running(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """qty 1e999999999 (and NaN): the real client refuses it before sending; sent raw to the
    OMS, the frame is refused at decode (counted, logged, the OMS keeps serving). Nothing
    reaches the journal or risk: risk logs no request_failed and keeps its pid, and the
    next order is approved and placed as usual."""
    sut = start_system()
    risk_pid, oms_pid = sut.pid_of("risk"), sut.pid_of("oms")
    mark = sut.mark()
    with client(sut) as c:
        submit_when_open(c, "simA")
        for qty in ("1e999999999", "NaN"):
            with pytest.raises(InvalidOrder, match="qty"):
                c.submit("simA", "AAPL", "BUY", qty, "LIMIT", price="95.00", timeout_s=10)
    _hostile_submit_is_refused_at_decode(sut, "huge-1", qty="1e999999999")
    _hostile_submit_is_refused_at_decode(sut, "huge-2", price="9E+999999")
    sut.wait_event("bad_message", since=mark)
    with client(sut) as c:
        after = c.submit("simA", "AAPL", "BUY", "5", "LIMIT", price="95.00", timeout_s=10)
    assert after.status.value != "REJECTED"
    assert (sut.pid_of("risk"), sut.pid_of("oms")) == (risk_pid, oms_pid)
    assert not sut.events("request_failed", since=mark)


def test_a_symbol_with_an_soh_is_refused_at_intake_and_the_connector_keeps_running(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """`AAPL\\x0155=MSFT`: refused by the real client, and at the OMS's decode when sent raw;
    never acked, never journalled, so the connector never has to encode it (an encoding
    failure there rejects that order alone: tests/connector/fix/test_adapter_values.py);
    the connector keeps its pid and the next order goes out."""
    sut = start_system()
    connector_pid = sut.pid_of("connector.simA")
    with client(sut) as c:
        submit_when_open(c, "simA")
        for symbol in (HOSTILE_SYMBOL, "AAPL\n", " AAPL"):
            with pytest.raises(InvalidOrder, match="symbol"):
                c.submit("simA", symbol, "BUY", "1", "LIMIT", price="95.00", timeout_s=10)
    _hostile_submit_is_refused_at_decode(sut, "soh-1", symbol=HOSTILE_SYMBOL)
    with client(sut) as c:
        submit_when_open(c, "simA")
    assert sut.pid_of("connector.simA") == connector_pid


def _venue_fill(last_px: str) -> ExecReport:
    msg = simplefix.FixMessage()
    for tag, value in ((35, "8"), (150, "F"), (39, "1"), (17, "E1"), (11, "o1"), (55, "ABC"),
                       (54, "1"), (38, "10"), (32, "4"), (31, last_px), (14, "4"), (6, "95"),
                       (151, "6")):  # fmt: skip
        msg.append_pair(tag, value)
    report = fm.to_exec_report(msg, "sim")
    assert report is not None
    return report


@pytest.mark.parametrize("last_px", ["9E+999999", "NaN", "0", "-5"])
def test_venue_fills_without_a_valid_price_change_nothing_and_are_escalated(last_px: str) -> None:
    """A venue ExecutionReport with LastPx 9E+999999 (raised Overflow after cum_qty had
    changed in memory) or NaN (booked at price 0), through the connector's mapping into the
    OMS's book: refused with a `bad_fill` escalation (the OMS engages the kill-switch on
    it, as for an unmatched fill), no record, order and position unchanged."""
    book = OrderBook()
    sub = SubmitOrder(client_order_id="o1", venue="sim", symbol="ABC", side=Side.BUY,
                      qty=Decimal(10), order_type=OrdType.LIMIT, price=Decimal(95))  # fmt: skip
    book.submit(sub, 1)
    book.risk_verdict(RiskVerdict(client_order_id="o1", approved=True), 2)
    book.apply_exec(ExecReport(venue="sim", exec_id="E0", kind="accepted", cl_ord_id="o1"), 3)
    order = book.get("o1")
    assert order is not None
    out = book.apply_exec(_venue_fill(last_px), 4)
    assert (out.kind, out.records) == ("refused", ())
    assert [e.kind for e in out.escalations] == ["bad_fill"]
    assert (order.cum_qty, order.notional, book.position("sim", "ABC").qty) == (0, 0, 0)


@pytest.mark.parametrize(
    ("toml", "field"),
    [
        ("[supervisor]\nheartbeat_interval_s = inf\n", "supervisor.heartbeat_interval_s"),
        ("[oms]\nrequest_timeout_s = nan\n", "oms.request_timeout_s"),
        ("[risk]\nprice_band_pct = inf\n", "risk.price_band_pct"),
        ('[[venues]]\nname = "simA"\nsender_comp_id = "US\\u000156=X"\n',
         "venues[simA].sender_comp_id"),
    ],
)  # fmt: skip
def test_a_config_with_inf_or_an_soh_in_a_comp_id_is_refused_at_start(
    tmp_path: Path, toml: str, field: str
) -> None:
    """`supervisor.py run` with such a config exits 2 at once naming the key (hang
    detection, the request timeout or the price band would have been silently off; an SOH
    in a CompID would have forged header fields)."""
    text = toml if "[[venues]]" in toml else toml + '[[venues]]\nname = "simA"\n'
    path = tmp_path / "config.toml"
    path.write_text(text)
    state = tmp_path / "state"
    proc = run_python([str(SUPERVISOR), "run", "--config", str(path), "--state-dir", str(state)])
    assert proc.returncode == 2, proc.stderr
    assert field in proc.stderr and "config error" in proc.stderr


_CONFIG_CRASHES = sorted((REPO_ROOT / "tests" / "fuzz" / "corpus" / "config").iterdir())


@pytest.mark.parametrize("path", _CONFIG_CRASHES, ids=[p.name for p in _CONFIG_CRASHES])
def test_a_config_that_broke_the_loader_is_refused_at_start(path: Path) -> None:
    """`supervisor.py run` with each config that once raised out of the loader (a
    traceback, exit 1) exits 2 with one stderr line naming the problem. No --state-dir:
    the override would replace a bad state_dir (every one of these fails at load)."""
    proc = run_python([str(SUPERVISOR), "run", "--config", str(path)], timeout_s=30)
    assert proc.returncode == 2, proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("tradepulse: config error: "), line


def _control(sut: SystemUnderTest, command: dict[str, Any]) -> ControlReply:
    with _dealer(sut.cfg.endpoint("control")) as sock:
        sock.send_multipart(_raw("control_request", {"command": command}, "ctl:1"))
        assert sock.poll(10_000), "no answer from the control socket"
        reply = decode(sock.recv_multipart())
    assert isinstance(reply.body, ControlReply) and reply.corr_id == "ctl:1"
    return reply.body


def test_control_arguments_are_taken_by_type_and_reasons_are_bounded(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """`restart` with `force: "false"` is refused with an error naming `force` (it used to
    restart the actor, as if true); a 1 MiB kill-switch reason is refused naming `reason`
    and the switch stays off. The supervisor and risk keep running."""
    sut = start_system(venues=("simA",))
    risk_pid = sut.pid_of("risk")
    reply = _control(sut, {"command": "restart", "actor": "risk", "force": "false"})
    assert reply.status == "error" and "force" in reply.reason
    reply = _control(sut, {"command": "kill-switch", "action": "engage", "reason": "x" * (1 << 20)})
    assert reply.status == "error" and "reason" in reply.reason
    assert sut.status()["kill_switch"]["engaged"] is False
    assert sut.pid_of("risk") == risk_pid
    assert sut.proc is not None and sut.proc.poll() is None
    sut.stop(signal.SIGTERM)
