"""Found by the review of the integration fixes (each failed before its fix): a failed
background snapshot child counts back every record it was to cover, those buffered at
its fork too; the stop's snapshot killing its child is no failure; submits lost in an OMS
restart are resent as soon as it answers again (the probe's answer), not an interval later.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import zmq
from structlog.testing import capture_logs

from actors.oms.journal import Journal
from protocol.client_batch import request_many
from protocol.codec import Sender, decode
from protocol.messages import ErrorCode, RequestRejected, SubmitOrders
from protocol.sockets import connect_dealer
from tests.oms.test_client_batches_review import submits


def _fill(j: Journal, n: int, start: int = 0, *, commit: bool = True) -> None:
    for i in range(start, start + n):
        j.append({"kind": "new", "coid": f"o{i}", "pad": "x" * 200})
    if commit:
        j.commit()


def _broken() -> dict[str, str]:
    raise MemoryError("the child failed")


def test_a_failed_child_counts_back_what_was_buffered_at_the_fork(tmp_path: Path) -> None:
    """(fails on both: c8c279c counted nothing back) `_uncovered` is read before
    `_start_segment()` commits the buffered records: a failure forgets them."""
    j, _ = Journal.open(tmp_path, fsync=False)
    try:
        _fill(j, 100)
        j.write_snapshot({"b": 1})
        _fill(j, 300, 100)
        _fill(j, 200, 400, commit=False)  # appended, committed by the fork's new segment
        assert j.write_snapshot_in_background(_broken) is not None
        code, limit = None, time.monotonic() + 10
        while code is None and time.monotonic() < limit:
            code = j.poll_background()
        assert code == 1
        live = (j.records_since_snapshot, j.bytes_since_snapshot)
    finally:
        j.close()
    r, _ = Journal.open(tmp_path, fsync=False)
    try:
        assert live == (r.records_since_snapshot, r.bytes_since_snapshot)
    finally:
        r.close()


def test_the_stop_snapshot_killing_its_child_is_not_a_failure(tmp_path: Path) -> None:
    j, _ = Journal.open(tmp_path, fsync=False)
    try:
        _fill(j, 50)

        def slow() -> dict[str, int]:
            time.sleep(30)
            return {"b": 2}

        with capture_logs() as logs:
            j.write_snapshot_in_background(slow)
            j.write_snapshot({"b": 3})
        assert [e["event"] for e in logs if e["event"] == "journal_snapshot_failed"] == []
    finally:
        j.close()


def test_submits_lost_in_an_oms_restart_are_resent_once_it_answers_again(tmp_path: Path) -> None:
    """The OMS loses what it read before `up_s` (a kill -9), then answers everything.
    c8c279c: all 50 answered by the deadline; dba8579: the probe alone (the rest wait one
    more `retry_interval_s`, past the deadline)."""
    url = f"ipc://{tmp_path}/oms.sock"
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    try:
        router = ctx.socket(zmq.ROUTER)
        router.setsockopt(zmq.LINGER, 0)
        router.bind(url)
        sock = connect_dealer(ctx, url, "c")
        bodies = submits("o", 50)
        stop, t0, up_s = threading.Event(), time.monotonic(), 0.3

        def oms() -> None:
            s = Sender("oms", 1)
            while not stop.is_set():
                if not router.poll(20):
                    continue
                frames = router.recv_multipart()
                if time.monotonic() - t0 < up_s:
                    continue
                env = decode(frames[1:])
                body = env.body
                ids = (
                    [o["id"] for o in body.orders]
                    if isinstance(body, SubmitOrders)
                    else [env.msg_id]
                )
                for m in ids:
                    no = RequestRejected(code=ErrorCode.BAD_REQUEST, reason="x")
                    router.send_multipart([frames[0], *s.encode(no, corr_id=m)])

        th = threading.Thread(target=oms)
        th.start()
        try:
            out = request_many(sock, Sender("c", 1), bodies, retry_interval_s=0.5, timeout_s=0.95)
        finally:
            stop.set()
            th.join()
        assert sum(o is not None for o in out) == 50
    finally:
        ctx.destroy(linger=0)
