"""The connector's FIX store durability, seen in the connector's own system calls (strace
attached to the real connector process): every NewOrderSingle reaches the venue's socket
only after the FIX store's record of it was written and an fsync of the store that began
after that write returned (`actors/connector/fix/store.py`: appended records, fsync).

strace: the `strace` fixture (tests/integration/conftest.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from protocol.client import ExecutionClient
from protocol.messages import OrderStatus
from tests.helpers import SystemUnderTest, eventually
from tests.integration.oms_support import overrides
from tests.integration.test_order_fsyncs import Call, parse, strace_attached
from tests.system_ops import VENUE, submit_when_open

ORDERS = 6
# strace shows an SOH as \1, or \001 before a digit
_CL_ORD_ID = re.compile(r"\\00135=D\\001.*?\\00111=([^\\]+)\\")


@pytest.fixture
def traced_connector(
    start_system: Callable[..., SystemUnderTest], strace: Path, tmp_path: Path
) -> Iterator[tuple[SystemUnderTest, Path]]:
    sut = start_system(venues=(VENUE,), overrides=overrides())
    out = tmp_path / "strace.txt"
    pid = sut.actor(f"connector.{VENUE}")["pid"]
    with strace_attached(strace, pid, "pwrite64,write,fdatasync,fsync,sendto", out):
        yield sut, out


def test_every_new_order_single_leaves_after_a_sync_of_its_store_record(
    traced_connector: tuple[SystemUnderTest, Path],
) -> None:
    """6 orders, one at a time: each D's bytes are written to the venue socket after the
    store's write of it and an fsync of session.log that began after that write."""
    sut, out = traced_connector
    with ExecutionClient(sut.cfg) as client:
        for i in range(ORDERS):
            coid = f"ss-{i}"
            # once intake is open: NotReady until the venue is reconciled (it failed at load 25)
            submit_when_open(client, VENUE, "BUY", "1", "99.00", client_order_id=coid)
            client.wait_for_status(coid, {OrderStatus.ACCEPTED})

    def sent_ds() -> list[tuple[str, Call]] | None:
        sends = [c for c in parse(out.read_text()) if c.name == "sendto" and "35=D" in c.text]
        ds = [(m[1], c) for c in sends for m in _CL_ORD_ID.finditer(c.text)]
        return ds if len(ds) >= ORDERS else None

    ds = eventually(sent_ds, 10.0)
    calls = parse(out.read_text())
    store = [c for c in calls if c.path.endswith("/session.log")]
    for cl_ord_id, send in ds:
        wrote = [
            c for c in store
            if c.name in ("write", "pwrite64") and f"\\00111={cl_ord_id}\\" in c.text
            and c.start <= send.start
        ]  # fmt: skip
        assert wrote, f"D {cl_ord_id} sent before the FIX store had it"
        synced = [
            c for c in store
            if c.name in ("fsync", "fdatasync") and c.start >= wrote[-1].start
            and c.end is not None and c.end <= send.start
        ]  # fmt: skip
        assert synced, f"D {cl_ord_id} sent before the sync of its store record"
