"""Resubmissions the ccxt connector could not send, through the real system (supervisor,
OMS, the ccxt connector, the local exchange as real processes): the exchange fails the
connector's lookups before a resend for more rounds than `max_resubmits`, then answers
again. Found by the 10-minute chaos soak under load (the exchange starved of CPU): five
acknowledged orders ended PENDING_SUBMIT, escalated `resubmit_unconfirmed`, never sent."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from actors.connector.ccxt.flows import RESEND_DELAY_ENV
from actors.oms.reconcile_rules import ReconcilePolicy
from protocol.client import ExecutionClient
from protocol.messages import OrderStatus
from tests.helpers import eventually
from tests.integration.ccxt_support import (
    BTC,
    CONNECTOR,
    VENUE,
    CcxtSystem,
    overrides,
    running,
    settle,
)
from tests.system_ops import (
    client,
    exchange_fault,
    inspect_exchange,
    journal_records,
    submit_when_open,
)

pytestmark = pytest.mark.integration
LOW_BID = "59000.00"
ROUNDS = ReconcilePolicy().max_resubmits + 1
# a resend taken back keeps its grace (at most one resend per grace): each round's resend
# comes once the previous one's grace is over, at the next pass (every RECONCILE_EVERY_S)
GRACE_S = 3.0  # `oms.resubmit_grace_s` (30 s by default: 4 rounds took ~4 min)
RECONCILE_EVERY_S = 2.0
# after a connector start, a lookup's "no such order" counts only after the recvWindow
# (and 1 s): the connector answers the order `pending` until then and the OMS resubmits it
# only after it (so each round outlasts the grace a resend waits, with 4 s to spare). The
# resend's lookup then follows the status query that answered "never seen" by
# milliseconds: the connector holds it RESEND_LOOKUP_DELAY_S
# (`TP_FAULT_RESEND_LOOKUP_DELAY_S`), which gives the test the time to make the exchange
# fail it
RECV_WINDOW_MS = int(GRACE_S * 1000) + 4_000
RESEND_WITHIN_S = RECV_WINDOW_MS / 1000 + 1.0 + RECONCILE_EVERY_S + 30.0  # 30: a slow machine
RESEND_LOOKUP_DELAY_S = 5.0
OMS_KILLED_AT = 2  # the round that starts with a kill -9 of the OMS too


@pytest.fixture(scope="module")
def sut() -> Iterator[CcxtSystem]:
    over = overrides(ccxt={"recv_window_ms": RECV_WINDOW_MS})
    over["oms"] |= {"resubmit_grace_s": GRACE_S, "reconcile_interval_s": RECONCILE_EVERY_S}
    env = {RESEND_DELAY_ENV: str(RESEND_LOOKUP_DELAY_S)}
    yield from running(CcxtSystem(overrides=over, env=env))


@pytest.fixture(scope="module")
def c(sut: CcxtSystem) -> Iterator[ExecutionClient]:
    with client(sut) as ec:
        yield ec


@pytest.mark.timeout(300)  # 4 rounds, each waits out the recvWindow (7 s) + 1 s + 5 s
def test_resends_the_exchange_cannot_check_are_not_counted(
    sut: CcxtSystem, c: ExecutionClient
) -> None:
    """The connector is killed -9 before the order went out; each time it is back, the OMS
    resubmits the order the exchange never saw, and the exchange answers the connector's
    lookup before the resend with 503s: nothing is sent, the connector says so, and the OMS
    does not count it (the next round's resend waits out its grace) - `max_resubmits` + 1
    rounds, the OMS killed -9 too before one of them (its count is replayed from its
    journal). Once the exchange answers again, the order goes out: ACCEPTED, once at the
    exchange, never escalated."""
    coid = "unsent-rest"
    since = sut.mark()
    sut.arm("ccxt_after_intent_before_send")
    submit_when_open(c, VENUE, "BUY", "0.01", LOW_BID, client_order_id=coid, tif="GTC",
                     symbol=BTC)  # fmt: skip
    sut.wait_event("injected_crash", 10.0, since=since, point="ccxt_after_intent_before_send")
    mark = since
    for n in range(ROUNDS):
        if n:
            mark = sut.mark()
            if n == OMS_KILLED_AT:  # the count is the journal's, replayed as counted live
                os.kill(sut.pid_of("oms"), signal.SIGKILL)
            os.kill(sut.pid_of(CONNECTOR), signal.SIGKILL)
            exchange_fault(sut, VENUE, "clear")
        if n == OMS_KILLED_AT:
            sut.wait_event("actor_ready", 20.0, since=mark, child="oms")
        sut.wait_event("actor_ready", 20.0, since=mark, child=CONNECTOR)
        sut.wait_event("order_resubmitted", RESEND_WITHIN_S, since=mark, client_order_id=coid)
        exchange_fault(sut, VENUE, "http_5xx", 100_000)  # before the lookup goes out
        sut.wait_event("ccxt_submit_unsent", RECV_WINDOW_MS / 1000 + 20.0, since=mark,
                       cl_ord_id=coid)  # fmt: skip
        sut.wait_event("order_resubmit_unsent", 10.0, since=mark, client_order_id=coid)
    exchange_fault(sut, VENUE, "clear")
    eventually(
        lambda: c.get_order(coid).status is OrderStatus.ACCEPTED, 40.0,
        message=lambda: f"{c.get_order(coid)}\n{sut.describe()}",
    )  # fmt: skip
    settle(c, sut, [coid])
    exchange = inspect_exchange(sut, VENUE, cli=False)
    at_exchange = [o for o in exchange["orders"] if o["client_order_id"] == coid]
    assert len(at_exchange) == 1 and at_exchange[0]["status"] == "NEW", at_exchange
    assert not [r for r in exchange["refusals"] if coid in str(r)], exchange["refusals"]
    assert not sut.events("reconcile_escalation", since=since, client_order_id=coid)
    assert len(sut.events("order_resubmit_unsent", since=since, client_order_id=coid)) >= ROUNDS
    story = [
        {k: e.get(k) for k in ("ts", "actor", "event", "reason", "resubmits", "state", "detail")}
        for e in sut.events(since=since)
        if coid in (e.get("client_order_id"), e.get("cl_ord_id"))
        or e.get("event") in ("injected_crash", "actor_ready", "actor_hung", "venue_state")
        or e.get("event") in ("venue_request_unconfirmed", "reconcile_failed", "actor_exited")
    ]
    # the one resend that went out counts; one more may, conservatively: a PlaceOrder or an
    # "unsent" lost with an actor killed outside the test (as hung, under load) is counted,
    # the OMS cannot tell it was not sent (seen once in ~25 runs at load 3.5: 2)
    assert 1 <= _journal_resubmits(sut, coid) < ReconcilePolicy().max_resubmits, story


def _journal_resubmits(sut: CcxtSystem, coid: str) -> int:
    """The order's resubmissions as its journal counts them (the latest snapshot's count,
    then its `resubmit` and `resubmit_unsent` records). Not the log's: an OMS killed after
    it applied (and logged) a take-back but before its commit applies it again from the
    connector's outbox, logging it twice, journalling it once."""
    count = 0
    for r in journal_records(sut):
        if r["kind"] == "snapshot":
            orders = [o for o in r["data"]["orders"] if o["client_order_id"] == coid]
            count = orders[0]["resubmits"] if orders else 0
        elif r["kind"] == "record" and r["data"].get("id") == coid:
            event = r["data"].get("event")
            count += {"resubmit": 1, "resubmit_unsent": -1}.get(event, 0)
    return count
