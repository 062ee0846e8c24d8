"""The order path's durability, seen in the OMS's own system calls (strace attached to the
real OMS process, every thread):

- the OrderAck of a submit leaves the OMS (zmq's I/O thread `sendto`) only after an
  fdatasync of the journal that began after the order's risk verdict was written has
  returned: durable, then acknowledged;
- so is each OrderAck of a `submit_many` batch, sent inside the `Replies` of its turn;
- the new order and its verdict are written in one journal write and made durable by one
  fdatasync (issue 16, `actors/oms/commit_policy.py`), not two fdatasyncs in series.

strace: the `strace` fixture (tests/integration/conftest.py).
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from protocol.client import ExecutionClient, OrderSpec
from protocol.messages import OrderStatus
from tests.helpers import SystemUnderTest, eventually
from tests.integration.oms_support import overrides
from tests.system_ops import VENUE, submit_when_open

ORDERS = 8
# `-f -ttt -T -y -s N`: "<tid> <epoch s> <call>(<fd><<path>>, "<data>"..., ) = <ret> <<dur>>"
# or split in two by another thread: "... <unfinished ...>" then "<tid> <s> <... call resumed>..."
_CALL = re.compile(r"^(\d+)\s+(\d+\.\d+) (\w+)\(\d+<([^>]*)>(.*)$")
_RESUMED = re.compile(r"^(\d+)\s+\d+\.\d+ <\.\.\. (\w+) resumed>")
_DURATION = re.compile(r"<(\d+\.\d+)>$")


@dataclass
class Call:
    name: str
    path: str
    text: str
    start: float
    end: float | None = None


def parse(text: str) -> list[Call]:
    calls: list[Call] = []
    unfinished: dict[str, Call] = {}
    for line in text.splitlines():
        if (m := _CALL.match(line)) is not None:
            call = Call(m[3], m[4], m[5], float(m[2]))
            calls.append(call)
            if line.endswith("<unfinished ...>"):
                unfinished[m[1]] = call
            elif (d := _DURATION.search(line)) is not None:
                call.end = call.start + float(d[1])
        elif (m := _RESUMED.match(line)) is not None:
            started = unfinished.pop(m[1], None)
            if started is not None and (d := _DURATION.search(line)) is not None:
                started.end = started.start + float(d[1])
    return calls


@contextlib.contextmanager
def strace_attached(strace: Path, pid: int, calls: str, out: Path) -> Iterator[None]:
    """strace (every thread of `pid`, `calls`) writing to `out` while the block runs:
    attached before the block starts, stopped and reaped when it ends, however it ends."""
    tracer = subprocess.Popen(
        [str(strace), "-f", "-ttt", "-T", "-y", "-s", "4096", "-e", f"trace={calls}",
         "-p", str(pid), "-o", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    attached: list[str] = []
    assert tracer.stderr is not None
    pump = threading.Thread(target=lambda: attached.extend(tracer.stderr or ()), daemon=True)
    pump.start()
    try:
        eventually(lambda: any("attached" in line for line in attached), 10.0)
        yield
    finally:
        tracer.terminate()
        tracer.wait(timeout=10)
        pump.join(timeout=5)
        tracer.stderr.close()


@pytest.fixture
def traced_oms(
    start_system: Callable[..., SystemUnderTest], strace: Path, tmp_path: Path
) -> Iterator[tuple[SystemUnderTest, Path]]:
    sut = start_system(venues=(VENUE,), overrides=overrides())
    out = tmp_path / "strace.txt"
    with strace_attached(strace, sut.actor("oms")["pid"], "write,fdatasync,sendto,sendmsg", out):
        yield sut, out


def test_an_order_is_acked_after_one_fdatasync_of_its_new_record_and_verdict(
    traced_oms: tuple[SystemUnderTest, Path],
) -> None:
    """8 orders, one at a time: each one's OrderAck is sent after a journal fdatasync that
    covers its verdict; and the new record and the verdict share one write (one fdatasync)
    for most of them (a verdict slower than the 50 ms deferral bound gets its own, and so
    does a `new` whose turn committed something else: each order is accepted at the venue
    before the next is submitted, so the previous order's execution does not land between
    the next one's new record and its verdict)."""
    sut, out = traced_oms
    ids = [f"fs-{i}" for i in range(ORDERS)]
    with ExecutionClient(sut.cfg) as client:
        for coid in ids:
            # once intake is open (NotReady until the first reconciliation: journals nothing)
            submit_when_open(client, VENUE, qty="1", price="99.00", client_order_id=coid)
            client.wait_for_status(coid, {OrderStatus.ACCEPTED})

    def acks_traced() -> list[Call] | None:
        calls = parse(out.read_text())
        acks = [c for c in calls if c.name in ("sendto", "sendmsg") and "order_ack" in c.text]
        return calls if any(f"\\244{ids[-1]}" in c.text for c in acks) else None

    calls = eventually(acks_traced, 10.0)
    journal = [c for c in calls if "/journal-" in c.path]
    shared = 0
    for coid in ids:
        writes, verdict = _acked_after_sync(calls, journal, coid)
        shared += "\\243new" in writes[0].text and writes[0] is verdict
    assert shared >= ORDERS // 2, f"new record and verdict in one write for {shared}/{ORDERS}"


def test_a_batchs_acks_leave_after_the_fdatasync_of_their_verdicts(
    traced_oms: tuple[SystemUnderTest, Path],
) -> None:
    """8 orders in one `submit_many`: each order's OrderAck (alone, or inside the turn's
    `Replies`) is sent after a journal fdatasync that began after its verdict's write."""
    sut, out = traced_oms
    ids = [f"fb-{i}" for i in range(ORDERS)]
    with ExecutionClient(sut.cfg, retry_interval_s=0.5) as client:
        submit_when_open(client, VENUE, qty="1", price="99.00", client_order_id="fb-p")
        specs = [OrderSpec(VENUE, "AAPL", "BUY", "1", "LIMIT", "98.00", client_order_id=c)
                 for c in ids]  # fmt: skip
        outcomes = client.submit_many(specs, timeout_s=20.0)
    assert all(not isinstance(o, Exception) for o in outcomes), outcomes

    def acks_traced() -> list[Call] | None:
        calls = parse(out.read_text())
        sends = [c for c in calls if c.name in ("sendto", "sendmsg") and "order_ack" in c.text]
        return calls if all(any(f"\\244{i}\\" in c.text for c in sends) for i in ids) else None

    calls = eventually(acks_traced, 10.0)
    journal = [c for c in calls if "/journal-" in c.path]
    for coid in ids:
        _acked_after_sync(calls, journal, coid)


def _acked_after_sync(calls: list[Call], journal: list[Call], coid: str) -> tuple[list[Call], Call]:
    """Order `coid`'s journal writes and its verdict's write, once asserted that its
    OrderAck was sent after a journal fdatasync that began after that write."""
    tag = f"\\244{coid}\\"  # msgpack str of len 4, as strace escapes it
    writes = [c for c in journal if c.name == "write" and tag in c.text]
    assert writes, f"{coid}: never written to the journal"
    verdict = next(c for c in writes if "risk_approved" in c.text)
    ack = next(
        c for c in calls if c.name in ("sendto", "sendmsg")
        and "order_ack" in c.text and tag in c.text
    )  # fmt: skip
    synced = [
        c for c in journal
        if c.name == "fdatasync" and c.start >= verdict.start
        and c.end is not None and c.end <= ack.start
    ]  # fmt: skip
    assert synced, f"{coid}: OrderAck sent before the journal fdatasync of its verdict"
    return writes, verdict
